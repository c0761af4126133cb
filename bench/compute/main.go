// Command compute-report turns the JSON lines TestComputeBench writes (one
// cloud.BenchRound per round) into the tables of bench/results/compute.md:
// each round, then per tool the median and the max of each phase, and how
// many times faster haconf is than each Masakari setting.
//
//	go run ./bench/compute -in rounds.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/haconf/haconf/lab/cloud"
)

func main() {
	in := flag.String("in", "", "JSON lines from TestComputeBench")
	flag.Parse()
	rounds, err := read(*in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compute-report:", err)
		os.Exit(1)
	}
	fmt.Print(Report(rounds))
}

func read(path string) ([]cloud.BenchRound, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var rounds []cloud.BenchRound
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		var r cloud.BenchRound
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		rounds = append(rounds, r)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(rounds) == 0 {
		return nil, fmt.Errorf("no rounds in %s", path)
	}
	return rounds, nil
}

// Report is the markdown: every round, then a summary per tool.
func Report(rounds []cloud.BenchRound) string {
	var b strings.Builder
	b.WriteString("| tool | round | servers | detected | fenced | forced down + disabled | first evacuate | **all ACTIVE elsewhere** | spread | each evacuated once |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rounds {
		all := sec(r.AllActive)
		if r.Error != "" {
			all = "not within the limit: " + r.Error
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s |\n", r.Tool, r.Round, r.Servers,
			sec(r.Detected), sec(r.Fenced), sec(r.Isolated), sec(r.FirstEvacuate), all, spread(r.Spread), yesNo(r.EvacuatedOnce))
	}
	b.WriteString("\n| tool | rounds | detected (median / max) | first evacuate (median / max) | **all ACTIVE elsewhere (median / max)** | haconf faster by (median) |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	var tools []string
	for _, r := range rounds {
		if !slices.Contains(tools, r.Tool) {
			tools = append(tools, r.Tool)
		}
	}
	haconfAll := median(column(rounds, "haconf", func(r cloud.BenchRound) float64 { return r.AllActive }))
	for _, tool := range tools {
		det := column(rounds, tool, func(r cloud.BenchRound) float64 { return r.Detected })
		first := column(rounds, tool, func(r cloud.BenchRound) float64 { return r.FirstEvacuate })
		all := column(rounds, tool, func(r cloud.BenchRound) float64 { return r.AllActive })
		ratio := "-"
		if tool != "haconf" && haconfAll > 0 && median(all) > 0 {
			ratio = fmt.Sprintf("%.1fx", median(all)/haconfAll)
		}
		n := 0
		for _, r := range rounds {
			if r.Tool == tool {
				n++
			}
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %s |\n", tool, n, medMax(det), medMax(first), medMax(all), ratio)
	}
	return b.String()
}

// column is f of tool's rounds that measured it (non-zero).
func column(rounds []cloud.BenchRound, tool string, f func(cloud.BenchRound) float64) []float64 {
	var out []float64
	for _, r := range rounds {
		if v := f(r); r.Tool == tool && v > 0 {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

func median(v []float64) float64 {
	switch n := len(v); {
	case n == 0:
		return 0
	case n%2 == 1:
		return v[n/2]
	default:
		return (v[n/2-1] + v[n/2]) / 2
	}
}

func medMax(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	return sec(median(v)) + " / " + sec(v[len(v)-1])
}

func sec(s float64) string {
	if s <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.1f s", s)
}

func spread(m map[string]int) string {
	var parts []string
	for h, n := range m {
		parts = append(parts, fmt.Sprintf("%s %d", h, n))
	}
	slices.Sort(parts)
	return strings.Join(parts, ", ")
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}
