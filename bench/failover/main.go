// Command failover-report turns the JSON lines TestLabFailoverBench writes
// (one lab.FailoverResult per crash) into the markdown table of
// bench/results/failover.md: each round's failover time and phases, then
// the median and the max of each.
//
//	go run ./bench/failover -in rounds.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/haconf/haconf/lab"
)

func main() {
	in := flag.String("in", "", "JSON lines from TestLabFailoverBench")
	flag.Parse()
	f, err := os.Open(*in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "failover-report:", err)
		os.Exit(1)
	}
	defer f.Close()
	var rounds []lab.FailoverResult
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r lab.FailoverResult
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			fmt.Fprintln(os.Stderr, "failover-report:", err)
			os.Exit(1)
		}
		rounds = append(rounds, r)
	}
	if len(rounds) == 0 {
		fmt.Fprintln(os.Stderr, "failover-report: no rounds in", *in)
		os.Exit(1)
	}
	fmt.Print(Table(rounds))
}

// In the order a takeover goes through them (the VIP starts before MariaDB).
var phases = []string{lab.PhaseDetected, lab.PhaseFenced, lab.PhasePromoted, lab.PhaseMounted, lab.PhaseVIP, lab.PhaseMariaDB}

// Table is the markdown table: one row per round, then median and max.
func Table(rounds []lab.FailoverResult) string {
	var b strings.Builder
	b.WriteString("| round | crashed | " + strings.Join(phases, " | ") + " | **write through the VIP again** | rows kept | messages kept |\n")
	b.WriteString("|---|---|" + strings.Repeat("---|", len(phases)) + "---|---|---|\n")
	cols := make([][]time.Duration, len(phases)+1)
	for i, r := range rounds {
		fmt.Fprintf(&b, "| %d | %s |", i+1, r.Crashed)
		for j, name := range phases {
			d, ok := phase(r, name)
			if ok {
				cols[j] = append(cols[j], d)
				fmt.Fprintf(&b, " %.1f |", d.Seconds())
			} else {
				b.WriteString(" - |")
			}
		}
		cols[len(phases)] = append(cols[len(phases)], r.Failover)
		msgs := "-"
		if m := r.Messages; m != nil {
			msgs = fmt.Sprintf("%d/%d", m.Confirmed-m.Missing, m.Confirmed)
		}
		fmt.Fprintf(&b, " **%.1f** | %d/%d | %s |\n", r.Failover.Seconds(), r.Found, r.Committed, msgs)
	}
	for _, stat := range []struct {
		name string
		f    func([]time.Duration) time.Duration
	}{{"median", median}, {"max", slices.Max[[]time.Duration]}} {
		fmt.Fprintf(&b, "| **%s** | |", stat.name)
		for j := range cols {
			if len(cols[j]) == 0 {
				b.WriteString(" - |")
				continue
			}
			v := fmt.Sprintf("%.1f", stat.f(cols[j]).Seconds())
			if j == len(phases) {
				v = "**" + v + "**"
			}
			fmt.Fprintf(&b, " %s |", v)
		}
		b.WriteString(" | |\n")
	}
	return b.String()
}

func phase(r lab.FailoverResult, name string) (time.Duration, bool) {
	for _, p := range r.Phases {
		if p.Name == name {
			return p.After, true
		}
	}
	return 0, false
}

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
