package lab

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestLabBootstrapFailover is issue 5's claim on real nodes: haconf
// bootstrap on both fresh controllers gives a running pair; a second run
// changes nothing; crashing the active node while a client writes through
// the VIP and publishes confirmed messages to the mirrored queue loses no
// acknowledged row and no confirmed message, the crashed node is fenced and, started
// again, rejoins as the standby.
func TestLabBootstrapFailover(t *testing.T) {
	l, _ := newTestLab(t)
	// Bootstrap alone waits minutes for MariaDB and RabbitMQ on UML nodes:
	// this test gets its own, longer budget.
	budget := 30 * time.Minute
	if dl, ok := t.Deadline(); ok && time.Until(dl)-time.Minute < budget {
		budget = time.Until(dl) - time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	if err := l.Up(ctx); err != nil {
		t.Fatalf("lab up: %v", err)
	}

	results, err := l.Bootstrap(ctx, "--timeout", "10m")
	for _, r := range results {
		t.Logf("bootstrap %s: exit %d in %s\n%s", r.Node, r.ExitCode, r.Took.Round(time.Second), r.Output)
	}
	if err != nil {
		t.Fatalf("first bootstrap: %v", err)
	}

	results, err = l.Bootstrap(ctx, "--timeout", "10m")
	for _, r := range results {
		t.Logf("second bootstrap %s: exit %d in %s\n%s", r.Node, r.ExitCode, r.Took.Round(time.Second), r.Output)
	}
	if err != nil {
		t.Fatalf("second bootstrap: %v", err)
	}
	for _, r := range results {
		if !strings.Contains(r.Output, r.Node+": no changes") {
			t.Errorf("second bootstrap on %s changed something:\n%s", r.Node, r.Output)
		}
	}

	fr, err := l.Failover(ctx)
	t.Logf("failover:\n%s", fr)
	if err != nil {
		t.Fatalf("failover: %v", err)
	}
	if fr.Committed == 0 || fr.Found != fr.Committed {
		t.Fatalf("acknowledged rows: %d, on the survivor: %d", fr.Committed, fr.Found)
	}
	if m := fr.Messages; m == nil || m.Confirmed == 0 || m.Missing != 0 {
		t.Fatalf("confirmed RabbitMQ messages: %+v", m)
	}
	fenced := false
	for _, p := range fr.Phases {
		fenced = fenced || p.Name == PhaseFenced
	}
	if !fenced {
		t.Errorf("the survivor never showed %s fenced (phases %v)", fr.Crashed, fr.Phases)
	}

	if err := l.Start(ctx, fr.Crashed); err != nil {
		t.Fatalf("start %s: %v", fr.Crashed, err)
	}
	if err := l.WaitRejoined(ctx, fr.Crashed, 5*time.Minute); err != nil {
		t.Fatal(err)
	}
}
