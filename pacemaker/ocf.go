package pacemaker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"
)

// OCF exit codes (Open Cluster Framework resource agent API 1.1). Pacemaker
// treats ErrInstalled as "never on this node" and ErrConfigured as "nowhere".
const (
	OCFSuccess          = 0
	OCFErrGeneric       = 1
	OCFErrArgs          = 2
	OCFErrUnimplemented = 3
	OCFErrPerm          = 4
	OCFErrInstalled     = 5
	OCFErrConfigured    = 6
	OCFNotRunning       = 7
	// OCFRunningPromoted is a promotable resource's monitor result when it
	// runs in the promoted role.
	OCFRunningPromoted = 8
	// OCFDegraded is a monitor result: running, but not fully (a service
	// still booting). Pacemaker counts it as running (OCF 1.1, Pacemaker
	// 2.1) and shows the reason.
	OCFDegraded = 190
)

// OCFError is an agent failure with the OCF exit code Pacemaker acts on.
type OCFError struct {
	Code   int
	Reason string
}

func (e *OCFError) Error() string { return e.Reason }

// OCFFail returns an *OCFError with code and a formatted reason.
func OCFFail(code int, format string, args ...any) error {
	return &OCFError{Code: code, Reason: fmt.Sprintf(format, args...)}
}

// ErrNotRunning is what Monitor returns for a cleanly stopped resource.
var ErrNotRunning = &OCFError{Code: OCFNotRunning, Reason: "not running"}

// Agent is a resource agent written in Go. Pacemaker calls it through a
// two-line wrapper in /usr/lib/ocf/resource.d/haconf/ that execs
// `haconf ocf NAME ACTION`: one exec instead of the hundreds of forks a
// shell agent makes, which is what made failover slow on loaded nodes.
type Agent interface {
	// MetaData is the agent's OCF meta-data XML.
	MetaData() string
	// Validate checks the parameters (OCF_RESKEY_*).
	Validate() error
	// Start returns once the resource serves; it is a no-op when it does.
	Start(ctx context.Context) error
	// Stop returns once the resource is fully stopped; a no-op when it is.
	Stop(ctx context.Context) error
	// Monitor returns nil when running, ErrNotRunning when cleanly stopped,
	// another error when failed.
	Monitor(ctx context.Context) error
}

// RunningPromoted is what a promotable agent's Monitor returns when the
// resource runs promoted (exit code 8, not a failure).
var RunningPromoted = &OCFError{Code: OCFRunningPromoted, Reason: "running promoted"}

// PromotableAgent is an Agent for a promotable clone.
type PromotableAgent interface {
	Agent
	Promote(ctx context.Context) error
	Demote(ctx context.Context) error
	// Notify handles clone notifications (OCF_RESKEY_CRM_meta_notify_*).
	Notify(ctx context.Context) error
}

// OCFEnv is the environment Pacemaker passes to an agent.
type OCFEnv struct {
	Getenv func(string) string
}

// Param returns OCF_RESKEY_name, or def when unset or empty.
func (e OCFEnv) Param(name, def string) string {
	if v := e.Getenv("OCF_RESKEY_" + name); v != "" {
		return v
	}
	return def
}

// Timeout is the action's timeout Pacemaker set (OCF_RESKEY_CRM_meta_timeout,
// milliseconds), or def when it is absent (a manual run).
func (e OCFEnv) Timeout(def time.Duration) time.Duration {
	ms, err := strconv.Atoi(e.Getenv("OCF_RESKEY_CRM_meta_timeout"))
	if err != nil || ms <= 0 {
		return def
	}
	return time.Duration(ms) * time.Millisecond
}

// RunAgent performs one OCF action and returns the exit code. Failure
// reasons go to stderr with the "ocf-exit-reason:" prefix, which Pacemaker
// shows in crm_mon as the failure's reason.
func RunAgent(ctx context.Context, a Agent, action string, env OCFEnv, stdout, stderr io.Writer, log *slog.Logger) int {
	if action == "meta-data" {
		io.WriteString(stdout, a.MetaData())
		return OCFSuccess
	}
	if action == "usage" || action == "help" || action == "" {
		fmt.Fprintln(stdout, "usage: start | stop | monitor | status | validate-all | meta-data")
		if action == "" {
			return OCFErrArgs
		}
		return OCFSuccess
	}
	ctx, cancel := context.WithTimeout(ctx, env.Timeout(60*time.Second))
	defer cancel()
	var err error
	switch action {
	case "validate-all":
		err = a.Validate()
	case "promote", "demote", "notify":
		pa, ok := a.(PromotableAgent)
		if !ok {
			fmt.Fprintf(stderr, "ocf-exit-reason:%s is only for promotable agents\n", action)
			return OCFErrUnimplemented
		}
		if err = a.Validate(); err != nil {
			break
		}
		switch action {
		case "promote":
			err = pa.Promote(ctx)
		case "demote":
			err = pa.Demote(ctx)
		default:
			err = pa.Notify(ctx)
		}
	case "start", "stop", "monitor", "status", "probe":
		if err = a.Validate(); err != nil {
			// A probe (interval 0) or stop with unusable parameters must
			// not report a failure Pacemaker would answer by fencing:
			// nothing can run with them. A recurring monitor reports it.
			iv := env.Getenv("OCF_RESKEY_CRM_meta_interval")
			switch {
			case action == "stop":
				err = nil
			case action != "start" && (iv == "" || iv == "0"):
				err = ErrNotRunning
			}
			break
		}
		switch action {
		case "start":
			err = a.Start(ctx)
		case "stop":
			err = a.Stop(ctx)
		default:
			err = a.Monitor(ctx)
		}
	default:
		fmt.Fprintf(stderr, "ocf-exit-reason:unknown action %q\n", action)
		return OCFErrUnimplemented
	}
	if err == nil {
		return OCFSuccess
	}
	code := OCFCode(err)
	monitor := action == "monitor" || action == "status" || action == "probe"
	if (code == OCFNotRunning || code == OCFRunningPromoted) && monitor {
		return code
	}
	if code == OCFDegraded && monitor {
		log.Info("running, degraded", "action", action, "reason", err)
		fmt.Fprintf(stderr, "ocf-exit-reason:%s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		return code
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = fmt.Errorf("%s timed out: %w", action, err)
	}
	log.Error("ocf action failed", "action", action, "code", code, "err", err)
	fmt.Fprintf(stderr, "ocf-exit-reason:%s\n", strings.ReplaceAll(err.Error(), "\n", " "))
	return code
}

// OCFCode is the exit code an agent action's error stands for: 0 for nil,
// the code of an OCFError, 1 (generic) for any other error.
func OCFCode(err error) int {
	if err == nil {
		return OCFSuccess
	}
	var oe *OCFError
	if errors.As(err, &oe) {
		return oe.Code
	}
	return OCFErrGeneric
}

// OCFMetaData renders a minimal meta-data document.
type OCFMetaData struct {
	Name, Short, Long string
	Params            []OCFParam
	// Timeouts of start, stop, monitor (default op timeouts Pacemaker shows).
	Start, Stop, Monitor time.Duration
	MonitorInterval      time.Duration
	// Promotable lists promote, demote and notify.
	Promotable bool
}

// OCFParam is one parameter in OCF meta-data.
type OCFParam struct {
	Name, Short, Default string
	Required             bool
}

func (m OCFMetaData) String() string {
	var b strings.Builder
	esc := func(s string) string {
		r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")
		return r.Replace(s)
	}
	fmt.Fprintf(&b, "<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n")
	fmt.Fprintf(&b, "<resource-agent name=\"%s\" version=\"1.0\">\n<version>1.1</version>\n", esc(m.Name))
	fmt.Fprintf(&b, "<longdesc lang=\"en\">%s</longdesc>\n<shortdesc lang=\"en\">%s</shortdesc>\n<parameters>\n", esc(m.Long), esc(m.Short))
	for _, p := range m.Params {
		req := 0
		if p.Required {
			req = 1
		}
		fmt.Fprintf(&b, "<parameter name=\"%s\" unique=\"0\" required=\"%d\">\n<longdesc lang=\"en\">%s</longdesc>\n<shortdesc lang=\"en\">%s</shortdesc>\n<content type=\"string\" default=\"%s\"/>\n</parameter>\n",
			esc(p.Name), req, esc(p.Short), esc(p.Short), esc(p.Default))
	}
	secs := func(d time.Duration) string { return strconv.Itoa(int(d.Seconds())) + "s" }
	fmt.Fprintf(&b, "</parameters>\n<actions>\n")
	fmt.Fprintf(&b, "<action name=\"start\" timeout=\"%s\"/>\n<action name=\"stop\" timeout=\"%s\"/>\n", secs(m.Start), secs(m.Stop))
	fmt.Fprintf(&b, "<action name=\"monitor\" timeout=\"%s\" interval=\"%s\"/>\n", secs(m.Monitor), secs(m.MonitorInterval))
	if m.Promotable {
		fmt.Fprintf(&b, "<action name=\"promote\" timeout=\"90s\"/>\n<action name=\"demote\" timeout=\"90s\"/>\n<action name=\"notify\" timeout=\"90s\"/>\n")
		fmt.Fprintf(&b, "<action name=\"monitor\" role=\"Promoted\" timeout=\"%s\" interval=\"%s\"/>\n", secs(m.Monitor), secs(m.MonitorInterval-time.Second))
	}
	fmt.Fprintf(&b, "<action name=\"validate-all\" timeout=\"10s\"/>\n<action name=\"meta-data\" timeout=\"5s\"/>\n</actions>\n</resource-agent>\n")
	return b.String()
}
