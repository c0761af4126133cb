package main

import (
	"strings"
	"testing"

	"github.com/haconf/haconf/lab/cloud"
)

func TestReport(t *testing.T) {
	rounds := []cloud.BenchRound{
		{Tool: "haconf", Round: 1, Servers: 20, Detected: 5.1, Fenced: 5.6, Isolated: 5.7, FirstEvacuate: 6, AllActive: 14, EvacuatedOnce: true, Spread: map[string]int{"cmp3": 7, "cmp2": 13}},
		{Tool: "haconf", Round: 2, Servers: 20, Detected: 4.9, FirstEvacuate: 5.8, AllActive: 16, EvacuatedOnce: true},
		{Tool: "masakari (defaults)", Round: 1, Servers: 20, FirstEvacuate: 250, AllActive: 390},
		{Tool: "masakari (fastest)", Round: 1, Servers: 20, FirstEvacuate: 70, Error: "12 of 20 servers ACTIVE elsewhere"},
	}
	out := Report(rounds)
	for _, want := range []string{
		"| haconf | 1 | 20 | 5.1 s | 5.6 s | 5.7 s | 6.0 s | 14.0 s | cmp2 13, cmp3 7 | yes |",
		"| haconf | 2 | 5.0 s / 5.1 s | 5.9 s / 6.0 s | 15.0 s / 16.0 s | - |",
		"| masakari (defaults) | 1 | - | 250.0 s / 250.0 s | 390.0 s / 390.0 s | 26.0x |",
		"not within the limit: 12 of 20 servers ACTIVE elsewhere",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
}
