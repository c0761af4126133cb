package main

import (
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/lab"
)

func TestTable(t *testing.T) {
	r := func(fail float64, crashed string) lab.FailoverResult {
		return lab.FailoverResult{Crashed: crashed, Failover: time.Duration(fail * float64(time.Second)), Committed: 10, Found: 10,
			Phases:   []lab.Phase{{Name: lab.PhaseDetected, After: 4 * time.Second}, {Name: lab.PhaseMariaDB, After: time.Duration(fail * float64(time.Second))}},
			Messages: &lab.MessageCheck{Confirmed: 5}}
	}
	got := Table([]lab.FailoverResult{r(20, "ctl1"), r(10, "ctl2"), r(15, "ctl1")})
	for _, want := range []string{"| 2 | ctl2 | 4.0 | - | - | - | - | 10.0 | **10.0** | 10/10 | 5/5 |", "| **median** | | 4.0 | - | - | - | - | 15.0 | **15.0** |", "| **max** | | 4.0 | - | - | - | - | 20.0 | **20.0** |"} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
}
