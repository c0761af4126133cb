package lab

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/haconf/haconf/lab/workload"
	"github.com/haconf/haconf/pacemaker"
)

// Phase is when the survivor first showed one step of the takeover,
// measured from the crash.
type Phase struct {
	Name  string        `json:"name"`
	After time.Duration `json:"after_ns"`
}

// FailoverResult is one measured failover.
type FailoverResult struct {
	Crashed  string `json:"crashed"`
	Survivor string `json:"survivor"`
	// Failover is from the crash until a write through the VIP succeeds again.
	Failover time.Duration `json:"failover_ns"`
	Phases   []Phase       `json:"phases"`
	// Committed rows (acknowledged before or after the crash) and how many
	// of them the survivor has: they must be equal.
	Committed int `json:"committed"`
	Found     int `json:"found"`
	// Messages published with publisher confirms to a mirrored queue
	// through the crash: every confirmed one must be in the queue after.
	Messages *MessageCheck `json:"messages,omitempty"`
}

// MessageCheck is the RabbitMQ side of a failover.
type MessageCheck struct {
	Confirmed   int           `json:"confirmed"`
	Missing     int           `json:"missing"`
	Unconfirmed int           `json:"unconfirmed"`
	LongestGap  time.Duration `json:"longest_gap_ns"`
}

func (r FailoverResult) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "crashed %s; %s took over: a write through the VIP succeeded %.1fs after the crash\n", r.Crashed, r.Survivor, r.Failover.Seconds())
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "  %-28s %5.1fs\n", p.Name, p.After.Seconds())
	}
	fmt.Fprintf(&b, "  committed rows: %d, present on %s: %d\n", r.Committed, r.Survivor, r.Found)
	if m := r.Messages; m != nil {
		fmt.Fprintf(&b, "  confirmed messages: %d, missing: %d (longest wait for a confirm %.1fs)\n", m.Confirmed, m.Missing, m.LongestGap.Seconds())
	}
	return b.String()
}

// demoDB reaches the lab's MariaDB as user lab (password lab, created by
// Bootstrap) through the VIP.
func demoDB() (*sql.DB, error) {
	return workload.OpenMariaDB(VIP.String()+":3306", "lab", "lab", "lab")
}

// Failover crashes the node running the services while a client writes
// rows through the VIP, and measures until a write succeeds again. It
// also records when the survivor showed each phase, and checks that every
// row whose commit was acknowledged is on the survivor.
func (l *Lab) Failover(ctx context.Context) (FailoverResult, error) {
	return l.FailoverWith(ctx, FailoverOptions{Messages: true})
}

// FailoverOptions say what a failover checks besides MariaDB.
type FailoverOptions struct {
	// Messages publishes confirmed messages to the mirrored queue through
	// the crash and checks them after; it needs RabbitMQ running on both
	// nodes before the crash.
	Messages bool
}

// FailoverWith is Failover with options.
func (l *Lab) FailoverWith(ctx context.Context, o FailoverOptions) (FailoverResult, error) {
	var res FailoverResult
	// A crash while an action is in flight (a RabbitMQ start that takes a
	// minute in the lab) measures Pacemaker waiting for that action, not
	// the takeover: the pair must be whole first.
	if err := l.WaitSettled(ctx, 10*time.Minute, o.Messages); err != nil {
		return res, fmt.Errorf("the pair is not whole before the crash: %w", err)
	}
	active, err := l.ActiveNode(ctx)
	if err != nil {
		return res, err
	}
	res.Crashed = active
	for _, n := range Nodes {
		if n.Name != active {
			res.Survivor = n.Name
		}
	}
	db, err := demoDB()
	if err != nil {
		return res, err
	}
	defer db.Close()
	writer := &workload.Writer{DB: db}
	if err := writer.Prepare(ctx); err != nil {
		return res, fmt.Errorf("write through the VIP before the crash: %w", err)
	}

	// The writer: one row at a time, each acknowledged commit recorded.
	// Until the crash is done the old node may still acknowledge writes, so
	// the first write after the failover is the first to start after it.
	wctx, stopWriter := context.WithCancel(ctx)
	defer stopWriter()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		writer.Run(wctx)
	}()
	// The messages: persistent, with publisher confirms, to a queue the
	// cluster's policy mirrors, through the VIP (then either controller).
	var pub *workload.Publisher
	pubDone := make(chan error, 1)
	if o.Messages {
		pub = &workload.Publisher{Endpoint: demoAMQP(), Queue: "haconf-failover", Interval: 20 * time.Millisecond}
		go func() {
			_, err := pub.Run(wctx)
			pubDone <- err
		}()
		wait, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := pub.WaitConfirmed(wait, 20)
		cancel()
		if err != nil {
			return res, fmt.Errorf("no confirmed messages through the VIP before the crash: %w", err)
		}
	}
	time.Sleep(2 * time.Second) // steady writes first

	crashAt := time.Now()
	if err := l.Crash(ctx, active); err != nil {
		return res, err
	}
	writer.Mark()
	c, err := l.Client()
	if err != nil {
		return res, err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if _, done := writer.FirstAfterMark(); done {
			break
		}
		if time.Now().After(deadline) {
			stopWriter()
			phases, _ := l.failoverPhases(ctx, c, active, res.Survivor, crashAt, 0)
			return res, fmt.Errorf("no successful write through the VIP within 3 minutes of crashing %s (phases seen: %v)", active, phases)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The survivor's Pacemaker log says when each step happened (its
	// clock is the host's: UML reads the host's time).
	if res.Phases, err = l.failoverPhases(ctx, c, active, res.Survivor, crashAt, 60*time.Second); err != nil {
		return res, err
	}
	if pub != nil {
		before := len(pub.Result().Confirmed)
		wait, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err := pub.WaitConfirmed(wait, before+20)
		cancel()
		if err != nil {
			return res, fmt.Errorf("no confirmed message through the VIP after the crash (%d before it): %w\n%s", before, err, rabbitDiagnostics(ctx, c, res.Survivor))
		}
	}
	time.Sleep(time.Second)
	stopWriter()
	<-writerDone
	firstAfter, _ := writer.FirstAfterMark()
	res.Failover = firstAfter.Sub(crashAt)
	res.Committed = writer.Committed()
	if pub != nil {
		if err := <-pubDone; err != nil {
			return res, fmt.Errorf("publisher: %w", err)
		}
		r := pub.Result()
		d, err := workload.Drain(ctx, demoAMQP(), pub.Queue)
		if err != nil {
			return res, fmt.Errorf("drain the queue on %s: %w", res.Survivor, err)
		}
		v := workload.Verify(r, d)
		res.Messages = &MessageCheck{Confirmed: v.Confirmed, Missing: len(v.Missing), Unconfirmed: len(r.Unconfirmed), LongestGap: r.LongestGap}
		if err := v.Err(); err != nil {
			return res, fmt.Errorf("RabbitMQ on %s: %w", res.Survivor, err)
		}
	}
	// Every acknowledged commit must be on the survivor.
	if res.Committed, res.Found, err = writer.Check(ctx); err != nil {
		return res, fmt.Errorf("read back through the VIP: %w", err)
	}
	if res.Found != res.Committed {
		return res, fmt.Errorf("%d of %d acknowledged rows are missing on %s", res.Committed-res.Found, res.Committed, res.Survivor)
	}
	return res, nil
}

// demoAMQP reaches the lab's RabbitMQ as user lab (password lab, created
// by Bootstrap): through the VIP first, then either controller.
func demoAMQP() workload.Endpoint {
	addrs := []string{VIP.String() + ":5672"}
	for _, n := range Nodes {
		addrs = append(addrs, n.Mgmt.String()+":5672")
	}
	return workload.Endpoint{Addrs: addrs, User: "lab", Password: "lab", DialTimeout: time.Second}
}

// rabbitDiagnostics is what the survivor's RabbitMQ says about itself, for
// a failover that lost the message path.
func rabbitDiagnostics(ctx context.Context, c *Client, node string) string {
	r, err := c.Exec(ctx, node, ExecRequest{Argv: []string{"sh", "-c",
		"rabbitmqctl -q cluster_status 2>&1 | head -30; rabbitmqctl -q list_queues name pid slave_pids synchronised_slave_pids messages 2>&1; " +
			"tail -n 30 /var/log/rabbitmq/rabbit@" + node + ".log"}, Timeout: "2m"})
	if err != nil {
		return node + ": " + err.Error()
	}
	return node + " RabbitMQ:\n" + string(r.Stdout) + string(r.Stderr)
}

// failoverPhases reads the survivor's Pacemaker log for the takeover's
// steps after crashAt, waiting up to wait for all of them to appear.
// grep -a: a node that was powered off once has NUL blocks in its log
// (lost page cache), and grep would only say "binary file matches".
func (l *Lab) failoverPhases(ctx context.Context, c *Client, crashed, survivor string, crashAt time.Time, wait time.Duration) ([]Phase, error) {
	deadline := time.Now().Add(wait)
	for {
		r, err := c.Exec(ctx, survivor, ExecRequest{Argv: []string{"grep", "-a", "-E", phasePattern, "/var/log/pacemaker/pacemaker.log"}, Timeout: "20s"})
		if err != nil {
			return nil, err
		}
		phases := ParseFailoverLog(r.Stdout, crashed, survivor, crashAt)
		if len(phases) == phaseCount || time.Now().After(deadline) {
			return phases, nil
		}
		time.Sleep(time.Second)
	}
}

// Failover phases, in the order a takeover goes through them.
const (
	PhaseDetected   = "detected"
	PhaseFenced     = "fenced"
	PhasePromoted   = "DRBD promoted"
	PhaseMounted    = "filesystem mounted"
	PhaseMariaDB    = "MariaDB started"
	PhaseVIP        = "VIP up"
	phaseCount      = 6
	phasePattern    = `state is now lost|was terminated|Result of (promote|start) operation`
	pacemakerLayout = "Jan _2 15:04:05.000"
)

// ParseFailoverLog finds the takeover's steps in a Pacemaker 2.1 detail
// log (pacemaker.log) after since: the crashed node lost, fenced, then the
// survivor's promote of DRBD and starts of the filesystem, MariaDB and the
// VIP. Times are relative to since, in the order they happened (the VIP
// starts before MariaDB since session 3's CIB). The log has no year:
// since's is used.
func ParseFailoverLog(log []byte, crashed, survivor string, since time.Time) []Phase {
	type match struct {
		name string
		ok   func(line string) bool
	}
	result := func(op, rsc string) func(string) bool {
		what, where := "Result of "+op+" operation for "+rsc, " on "+survivor+": ok"
		return func(line string) bool { return strings.Contains(line, what) && strings.Contains(line, where) }
	}
	steps := []match{
		{PhaseDetected, func(line string) bool { return strings.Contains(line, "Node "+crashed+" state is now lost") }},
		{PhaseFenced, func(line string) bool {
			return strings.Contains(line, "Peer "+crashed+" was terminated") && strings.Contains(line, ": OK")
		}},
		{PhasePromoted, result("promote", pacemaker.NamesFor(DRBDResource).DRBD())},
		{PhaseMounted, result("start", pacemaker.Filesystem)},
		{PhaseMariaDB, result("start", pacemaker.MariaDB)},
		{PhaseVIP, result("start", pacemaker.VIP)},
	}
	seen := map[string]time.Duration{}
	for _, line := range strings.Split(string(log), "\n") {
		if len(line) < len(pacemakerLayout) {
			continue
		}
		at, err := time.ParseInLocation(pacemakerLayout, line[:len(pacemakerLayout)], since.Location())
		if err != nil {
			continue
		}
		at = at.AddDate(since.Year(), 0, 0)
		if at.Before(since) {
			continue
		}
		for _, m := range steps {
			if _, done := seen[m.name]; !done && m.ok(line) {
				seen[m.name] = at.Sub(since)
			}
		}
	}
	var out []Phase
	for _, m := range steps {
		if d, ok := seen[m.name]; ok {
			out = append(out, Phase{Name: m.name, After: d})
		}
	}
	slices.SortStableFunc(out, func(a, b Phase) int { return cmp.Compare(a.After, b.After) })
	return out
}
