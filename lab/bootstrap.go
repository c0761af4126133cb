package lab

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/haconf/haconf/bootstrap"
	"github.com/haconf/haconf/internal/atomicfile"
	"github.com/haconf/haconf/pacemaker"
)

// Paths inside the nodes, where the playbook would put them.
const (
	NodeConfigPath  = "/etc/haconf/haconf.yaml"
	NodeSecretsPath = "/etc/haconf/secrets.yaml"
)

// BootstrapResult is one node's `haconf bootstrap` run.
type BootstrapResult struct {
	Node     string
	Output   string
	ExitCode int
	Took     time.Duration
}

// secrets returns the lab's shared secrets, generating them once (mode
// 0600 in the lab directory).
func (l *Lab) secrets() ([]byte, error) {
	p := l.path("secrets.yaml")
	if _, err := bootstrap.LoadSecrets(p); err == nil {
		return os.ReadFile(p)
	}
	s, err := bootstrap.GenerateSecrets()
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(p, s.Marshal(), 0o600); err != nil {
		return nil, err
	}
	return s.Marshal(), nil
}

// put writes content to path in node with mode, through exec's stdin (never argv).
func (l *Lab) put(ctx context.Context, c *Client, node, path string, mode os.FileMode, content []byte) error {
	r, err := c.Exec(ctx, node, ExecRequest{
		// umask first: the file is never readable by others, even briefly.
		Argv: []string{"sh", "-c", `umask 077 && mkdir -p "$(dirname "$1")" && cat > "$1.tmp" && chmod "$2" "$1.tmp" && mv "$1.tmp" "$1"`,
			"sh", path, fmt.Sprintf("%04o", mode)},
		Stdin: content,
	})
	if err != nil {
		return err
	}
	if r.ExitCode != 0 {
		return fmt.Errorf("%s: write %s: exit %d: %s", node, path, r.ExitCode, strings.TrimSpace(string(r.Stderr)))
	}
	return nil
}

// Bootstrap does what the playbook does on real controllers: places
// haconf.yaml and the secrets file in both nodes, then runs `haconf
// bootstrap` in both at the same time. Then it creates the demo's MariaDB
// and RabbitMQ user lab (password lab), reachable through the VIP from the
// host.
func (l *Lab) Bootstrap(ctx context.Context, extraArgs ...string) ([]BootstrapResult, error) {
	c, err := l.Client()
	if err != nil {
		return nil, err
	}
	secrets, err := l.secrets()
	if err != nil {
		return nil, err
	}
	for _, n := range Nodes {
		// Rendered files (the DRBD handlers, the agents' wrappers, the
		// watchdog unit) call haconf and haconf-agent where the playbook
		// installs them.
		link := "ln -sf /usr/local/sbin/haconf /usr/local/bin/haconf && " +
			"if [ -e /usr/local/sbin/haconf-agent ]; then ln -sf /usr/local/sbin/haconf-agent /usr/local/bin/haconf-agent; else rm -f /usr/local/bin/haconf-agent; fi"
		if r, err := c.Exec(ctx, n.Name, ExecRequest{Argv: []string{"sh", "-c", link}}); err != nil || r.ExitCode != 0 {
			return nil, fmt.Errorf("%s: link /usr/local/bin/haconf and haconf-agent: %v %s", n.Name, err, r.Stderr)
		}
		if err := l.put(ctx, c, n.Name, NodeConfigPath, 0o640, Config()); err != nil {
			return nil, err
		}
		if err := l.put(ctx, c, n.Name, NodeSecretsPath, 0o600, secrets); err != nil {
			return nil, err
		}
	}
	results := make([]BootstrapResult, len(Nodes))
	var wg sync.WaitGroup
	for i, n := range Nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			// UML nodes on a shared 2-core host: RabbitMQ's first cluster
			// join alone can take minutes, more than bootstrap's default, and the
			// second node's broker boots only after the first one's (10 min ran
			// out on ctl2 with both boots at 5-7 min each on a loaded host).
			argv := append([]string{"/usr/local/sbin/haconf", "bootstrap", "-c", NodeConfigPath, "--node", n.Name, "--secrets", NodeSecretsPath, "--timeout", "20m"}, extraArgs...)
			r, err := c.Exec(ctx, n.Name, ExecRequest{Argv: argv, Timeout: "45m"})
			results[i] = BootstrapResult{Node: n.Name, Output: string(r.Stdout) + string(r.Stderr), ExitCode: r.ExitCode, Took: time.Since(start)}
			if err != nil {
				results[i].ExitCode = -1
				results[i].Output += err.Error()
			}
		}()
	}
	wg.Wait()
	var failed []string
	for _, r := range results {
		if r.ExitCode != 0 {
			failed = append(failed, fmt.Sprintf("%s (exit %d)", r.Node, r.ExitCode))
		}
	}
	if len(failed) > 0 {
		return results, fmt.Errorf("haconf bootstrap failed on %s", strings.Join(failed, ", "))
	}
	for _, a := range extraArgs {
		if a == "--dry-run" {
			return results, nil
		}
	}
	if err := l.createDemoUser(ctx, c); err != nil {
		return results, err
	}
	for _, n := range Nodes {
		if err := l.startWatchdog(ctx, c, n.Name); err != nil {
			return results, err
		}
	}
	return results, nil
}

// WatchdogLog is where a lab node's watchdog writes.
const WatchdogLog = "/var/log/haconf/watchdog.log"

// startWatchdog starts `haconf watchdog` in node unless it runs, as the
// rendered systemd unit would on a controller (the nodes have no systemd),
// and waits until it answers on the management network.
func (l *Lab) startWatchdog(ctx context.Context, c *Client, node string) error {
	script := "pgrep -f '^/usr/local/sbin/haconf watchdog' >/dev/null || { mkdir -p /var/log/haconf; " +
		"setsid /usr/local/sbin/haconf watchdog -c " + NodeConfigPath + " >>" + WatchdogLog + " 2>&1 </dev/null & }"
	r, err := c.Exec(ctx, node, ExecRequest{Argv: []string{"sh", "-c", script}})
	if err != nil {
		return err
	}
	if r.ExitCode != 0 {
		return fmt.Errorf("%s: start the watchdog: exit %d: %s", node, r.ExitCode, r.Stderr)
	}
	n, _ := NodeByName(node)
	url := "http://" + n.Mgmt.String() + ":9750/healthz"
	deadline := time.Now().Add(time.Minute)
	for {
		hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		req, _ := http.NewRequestWithContext(hctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		cancel()
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("HTTP %d", resp.StatusCode)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: the watchdog does not answer on %s: %v (see %s)", node, url, err, WatchdogLog)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// createDemoUser creates MariaDB user lab/lab on the node running MariaDB.
func (l *Lab) createDemoUser(ctx context.Context, c *Client) error {
	node, err := l.ActiveNode(ctx)
	if err != nil {
		return err
	}
	sql := "CREATE USER IF NOT EXISTS 'lab'@'%' IDENTIFIED BY 'lab';\nGRANT ALL PRIVILEGES ON *.* TO 'lab'@'%';\nCREATE DATABASE IF NOT EXISTS lab;\n"
	r, err := c.Exec(ctx, node, ExecRequest{Argv: []string{"mariadb", "--batch"}, Stdin: []byte(sql)})
	if err != nil {
		return err
	}
	if r.ExitCode != 0 {
		return fmt.Errorf("%s: create the lab MariaDB user: %s", node, strings.TrimSpace(string(r.Stderr)))
	}
	return l.createRabbitUser(ctx, c, node)
}

// createRabbitUser creates RabbitMQ's user lab/lab (guest only works from
// localhost). Users are cluster-wide, so one node does it; right after
// bootstrap a node may still be booting or joining its peer, so each node
// is tried in turn for up to 5 minutes.
func (l *Lab) createRabbitUser(ctx context.Context, c *Client, first string) error {
	order := []string{first}
	for _, n := range Nodes {
		if n.Name != first {
			order = append(order, n.Name)
		}
	}
	var last error
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		for _, node := range order {
			if last = rabbitUser(ctx, c, node); last == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
	return last
}

// rabbitUserExpr creates the user lab (password lab, the demo's) unless it
// exists and lets it use vhost /: what rabbitmqctl add_user and
// set_permissions call (RabbitMQ 3.8-3.13), through erl_call as
// unsyncedQueues does, for the same reason (each rabbitmqctl timed out
// after 3 minutes in a loaded lab).
const rabbitUserExpr = `case rabbit_auth_backend_internal:lookup_user(<<"lab">>) of
  {ok, _} -> ok;
  _ -> ok = rabbit_auth_backend_internal:add_user(<<"lab">>, <<"lab">>, <<"haconf-lab">>)
end,
rabbit_auth_backend_internal:set_permissions(<<"lab">>, <<"/">>, <<".*">>, <<".*">>, <<".*">>, <<"haconf-lab">>).
`

func rabbitUser(ctx context.Context, c *Client, node string) error {
	r, err := c.Exec(ctx, node, ExecRequest{Argv: []string{"su", "rabbitmq", "-s", "/bin/sh", "-c", erlCall}, Stdin: []byte(rabbitUserExpr), Timeout: "1m"})
	if err != nil {
		return err
	}
	if out := strings.TrimSpace(string(r.Stdout) + string(r.Stderr)); r.ExitCode != 0 || out != "{ok, ok}" {
		return fmt.Errorf("%s: create the lab RabbitMQ user: exit %d: %s", node, r.ExitCode, firstLine(out))
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

// ActiveNode returns the node where Pacemaker runs MariaDB.
func (l *Lab) ActiveNode(ctx context.Context) (string, error) {
	c, err := l.Client()
	if err != nil {
		return "", err
	}
	var lastErr error
	for _, n := range Nodes {
		mon, err := crmMon(ctx, c, n.Name)
		if err != nil {
			lastErr = err
			continue
		}
		for _, res := range mon.Resources {
			if res.ID == pacemaker.MariaDB && res.Role == "Started" && len(res.Nodes) == 1 {
				return res.Nodes[0], nil
			}
		}
		lastErr = errors.New("MariaDB is not running on any node")
	}
	return "", lastErr
}

// WaitRejoined waits until node, restarted after a crash, is back in the
// cluster as the standby: its init started corosync, Pacemaker and the
// watchdog at boot (lab-services.sh, what systemd does on a controller
// where bootstrap enabled them), it is Online, and the DRBD clone runs
// there Unpromoted. Nothing is run in the node to make it rejoin.
func (l *Lab) WaitRejoined(ctx context.Context, node string, timeout time.Duration) error {
	c, err := l.Client()
	if err != nil {
		return err
	}
	if err := l.startWatchdog(ctx, c, node); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if mon, err := crmMon(ctx, c, node); err == nil {
			for _, x := range mon.Resources {
				if x.Promotable && x.Role == "Unpromoted" && len(x.Nodes) == 1 && x.Nodes[0] == node {
					return nil
				}
			}
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("%s did not rejoin as the standby within %v", node, timeout)
}

// crmMon reads Pacemaker's view of the cluster from node, within 10 s.
func crmMon(ctx context.Context, c *Client, node string) (pacemaker.CrmMon, error) {
	// crm_mon takes seconds on a UML node of a loaded 2-core host: 10 s
	// ran out for ten minutes in a row while the pair was whole.
	ctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	mon, err := pacemaker.Cluster{Run: c.Runner(node)}.Status(ctx)
	if err != nil {
		return pacemaker.CrmMon{}, fmt.Errorf("%s: %w", node, err)
	}
	return mon, nil
}

// WaitSettled waits until the pair is whole again after a rejoin: DRBD
// UpToDate on both sides, every resource started, and with rabbit,
// RabbitMQ running on both nodes (a queue is only mirrored to a running
// node) - the state a failover must start from to be fair.
func (l *Lab) WaitSettled(ctx context.Context, timeout time.Duration, rabbit bool) error {
	c, err := l.Client()
	if err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	why := "nothing read yet"
	// Every reason seen, with when it was first and last seen: the last
	// one alone hid what had kept the pair unsettled for minutes.
	type seen struct {
		first, last time.Time
		n           int
	}
	reasons := map[string]*seen{}
	var order []string
	for time.Now().Before(deadline) {
		why = l.unsettled(ctx, c, rabbit)
		if why == "" {
			return nil
		}
		if reasons[why] == nil {
			reasons[why] = &seen{first: time.Now()}
			order = append(order, why)
		}
		reasons[why].last, reasons[why].n = time.Now(), reasons[why].n+1
		time.Sleep(2 * time.Second)
	}
	var b strings.Builder
	for _, r := range order {
		s := reasons[r]
		fmt.Fprintf(&b, "\n  %s-%s (%dx): %s", s.first.Format(time.TimeOnly), s.last.Format(time.TimeOnly), s.n, r)
	}
	return fmt.Errorf("the pair did not settle within %v; what was not whole:%s", timeout, b.String())
}

// unsettled says what is not yet whole ("" when everything is).
func (l *Lab) unsettled(ctx context.Context, c *Client, rabbit bool) string {
	mon, err := crmMon(ctx, c, Nodes[0].Name)
	if err != nil {
		return err.Error()
	}
	running := map[string]int{}
	for _, r := range mon.Resources {
		switch {
		case r.ID == pacemaker.RabbitMQ && !rabbit:
		case r.Failed:
			return r.ID + " failed"
		case r.Role == "Started" || r.Role == "Promoted" || r.Role == "Unpromoted":
			running[r.ID] += len(r.Nodes)
		default:
			return fmt.Sprintf("%s is %s", r.ID, r.Role)
		}
	}
	need := []string{pacemaker.NamesFor(DRBDResource).DRBD()}
	if rabbit {
		need = append(need, pacemaker.RabbitMQ)
	}
	for _, id := range need {
		if running[id] != 2 {
			return fmt.Sprintf("%s runs on %d nodes", id, running[id])
		}
	}
	r, err := c.Exec(ctx, Nodes[0].Name, ExecRequest{Argv: []string{"cat", "/proc/drbd"}})
	if err != nil {
		return err.Error()
	}
	if !strings.Contains(string(r.Stdout), "ds:UpToDate/UpToDate") {
		return "DRBD is not UpToDate on both nodes"
	}
	if rabbit {
		return unsyncedQueues(ctx, c)
	}
	return ""
}

// unsyncedQueues names the mirrored queues without a synchronised mirror
// ("" when every queue has one). Running on both nodes is not enough: a
// mirror that joined copies the queue first, and a crash of the master
// during that copy is not the failover being measured.
//
// It asks the broker through erl_call, Erlang/OTP's C client of the
// distribution protocol, as the rabbitmq user (whose home holds the
// cookie): a few seconds in a UML node, where each rabbitmqctl boots an
// Erlang VM of its own and took 1-4 minutes on a loaded 2-core host.
func unsyncedQueues(ctx context.Context, c *Client) string {
	start := time.Now()
	r, err := c.Exec(ctx, Nodes[0].Name, ExecRequest{Argv: []string{"su", "rabbitmq", "-s", "/bin/sh", "-c", erlCall}, Stdin: []byte(syncedMirrorsExpr), Timeout: "1m"})
	if err != nil {
		return err.Error()
	}
	if r.ExitCode != 0 {
		return fmt.Sprintf("erl_call (the mirrors' state): exit %d after %s: %s", r.ExitCode, time.Since(start).Round(time.Second), firstLine(string(r.Stdout)+string(r.Stderr)))
	}
	unsynced, err := parseSyncedMirrors(string(r.Stdout))
	if err != nil {
		return err.Error()
	}
	if len(unsynced) > 0 {
		return "queues without a synchronised mirror: " + strings.Join(unsynced, ", ")
	}
	return ""
}

// erlCall runs the expression on stdin in the node's broker, rabbit@ and
// the node's short host name. erl_call's own node name is one the broker
// hands out (-R, OTP 23+): with the fixed default (c17) one erl_call left
// hanging by a timed-out exec made every later call fail with "failed to
// connect to node" for the 18 minutes a lab test then waited. -timeout
// ends a call before the exec's minute does.
const erlCall = `HOME=/var/lib/rabbitmq exec "$(ls /usr/lib/erlang/erts-*/bin/erl_call | head -n 1)" -R -timeout 50 -sname rabbit -e`

// syncedMirrorsExpr lists vhost /'s queues, each name hex-encoded (erl_call
// prints a binary as #Bin<...> and a string without escaping its quotes),
// with its count of synchronised mirrors: [{"6869", N}, ...].
// rabbit_amqqueue:info_all/2 is what rabbitmqctl list_queues reads
// (RabbitMQ 3.8-3.13).
const syncedMirrorsExpr = `[{binary_to_list(binary:encode_hex(N)), length(S)} ||
  Q <- rabbit_amqqueue:info_all(<<"/">>, [name, synchronised_slave_pids]),
  {name, {resource, _, queue, N}} <- [lists:keyfind(name, 1, Q)],
  {synchronised_slave_pids, S0} <- [lists:keyfind(synchronised_slave_pids, 1, Q)],
  S <- [case is_list(S0) of true -> S0; false -> [] end]].
`

var (
	erlCallOK    = regexp.MustCompile(`^\{ok,\s*\[(.*)\]\}$`)
	syncedMirror = regexp.MustCompile(`\{"([0-9A-Fa-f]*)",\s*(\d+)\}`)
)

// parseSyncedMirrors reads erl_call's answer to syncedMirrorsExpr,
// {ok, [{"7131", 1}, ...]}, and returns the queues with no synchronised
// mirror.
func parseSyncedMirrors(out string) ([]string, error) {
	out = strings.TrimSpace(out)
	m := erlCallOK.FindStringSubmatch(out)
	if m == nil {
		return nil, fmt.Errorf("erl_call (the mirrors' state): unexpected answer: %s", firstLine(out))
	}
	var unsynced []string
	for _, q := range syncedMirror.FindAllStringSubmatch(m[1], -1) {
		if q[2] != "0" {
			continue
		}
		name, err := hex.DecodeString(q[1])
		if err != nil {
			return nil, fmt.Errorf("erl_call (the mirrors' state): queue name %q: %v", q[1], err)
		}
		unsynced = append(unsynced, string(name))
	}
	return unsynced, nil
}
