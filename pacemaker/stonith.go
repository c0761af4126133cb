package pacemaker

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/haconf/haconf/internal/runner"
)

// The controllers' stonith devices: what the CIB configures (templates
// renders them from here) and the status question preflight and status
// ask each device's fence agent. Fence agents (fence-agents 4.x, and the
// lab's fence_haconf_lab) take their options as key=value lines on stdin,
// which is how Pacemaker's fencer calls them: nothing secret is ever put
// on a command line.

// FenceLabAgent is the lab fence agent's name (installed by haconf lab).
const FenceLabAgent = "fence_haconf_lab"

// FenceStatusTimeout bounds one status run of a fence agent: Pacemaker's
// own default for a stonith device's monitor (fence_ipmilan needs about
// 20 s to give up on a BMC that does not answer).
const FenceStatusTimeout = 60 * time.Second

// Param is a resource parameter.
type Param struct{ Name, Value string }

// StonithDevice is the stonith resource that fences one controller.
type StonithDevice struct {
	ID     string // FenceDevice(Target)
	Agent  string // fence_ipmilan, fence_sbd, fence_haconf_lab
	Target string // the node this device fences
	// Params are the resource's parameters in the CIB.
	Params []Param
	// Plug is the plug (port) option the agent needs to know which node
	// to act on; Pacemaker passes it by itself. "" for agents that power
	// one machine (a BMC).
	Plug string
	// PasswordFile is the file the agent's password_script reads ("" when
	// the agent needs no password).
	PasswordFile string
}

// Devices returns the stonith device of each node, in order; none when
// fencing.type is none.
func (c *FencingConfig) Devices(nodes []string) []StonithDevice {
	var out []StonithDevice
	for _, n := range nodes {
		d := StonithDevice{ID: FenceDevice(n), Target: n}
		switch c.Type {
		case FenceIPMI:
			b := c.IPMI[n]
			lanplus := "1"
			if b.Lanplus != nil && !*b.Lanplus {
				lanplus = "0"
			}
			d.Agent = "fence_ipmilan"
			d.PasswordFile = b.PasswordFile
			d.Params = []Param{
				{"ip", b.Address},
				{"username", b.User},
				// The password stays in a root-only file; the CIB holds only its path.
				{"password_script", "/bin/cat " + b.PasswordFile},
				{"lanplus", lanplus},
				{"pcmk_host_list", n},
			}
		case FenceSBD:
			d.Agent = "fence_sbd"
			d.Params = []Param{{"devices", strings.Join(c.SBD.Devices, ",")}, {"pcmk_host_list", n}}
		case FenceLab:
			d.Agent = FenceLabAgent
			d.Plug = n
			d.Params = []Param{{"url", c.Lab.URL}, {"pcmk_host_list", n}}
		default:
			return nil
		}
		out = append(out, d)
	}
	return out
}

// StatusRequest is what the agent reads on stdin to report its device's
// power state: action=status and the device's parameters, without
// Pacemaker's own (pcmk_*), which the fencer keeps for itself. A
// non-empty password replaces password_script: preflight uses the
// secrets file's value when the password file is not installed yet.
func (d StonithDevice) StatusRequest(password string) []byte {
	var b bytes.Buffer
	b.WriteString("action=status\n")
	if d.Plug != "" {
		fmt.Fprintf(&b, "plug=%s\n", d.Plug)
	}
	for _, p := range d.Params {
		if strings.HasPrefix(p.Name, "pcmk_") || (password != "" && p.Name == "password_script") {
			continue
		}
		fmt.Fprintf(&b, "%s=%s\n", p.Name, p.Value)
	}
	if password != "" {
		fmt.Fprintf(&b, "password=%s\n", password)
	}
	return b.Bytes()
}

// Power states a fence agent's status action reports.
const (
	PowerOn  = "on"
	PowerOff = "off"
)

// A fence agent's status exit codes (fence-agents' fencing.py): 0 the
// machine is on, 2 it is off; anything else is a failure to tell.
const (
	fenceExitOn  = 0
	fenceExitOff = 2
)

// ErrFenceAgent is a fence agent that could not tell its device's state:
// the device did not answer, refused the login, or the agent could not run.
var ErrFenceAgent = errors.New("fence agent failed")

// FenceStatus is what one device's fence agent said.
type FenceStatus struct {
	Device string `json:"device"`
	Target string `json:"target"`
	Agent  string `json:"agent"`
	// Power is on or off: the device answered ("" when it did not).
	Power string `json:"power,omitempty"`
	// Error is the agent's own message when it could not tell.
	Error string `json:"error,omitempty"`
	// Missing says the agent is not installed on this node.
	Missing bool `json:"agent_missing,omitempty"`
}

// ParseFenceStatus reads a fence agent's status run: its exit code,
// standard output and standard error. It returns the power state, or an
// error wrapping ErrFenceAgent with the agent's own message.
func ParseFenceStatus(code int, stdout, stderr []byte) (string, error) {
	switch code {
	case fenceExitOn:
		return PowerOn, nil
	case fenceExitOff:
		return PowerOff, nil
	}
	return "", fmt.Errorf("%w: %s", ErrFenceAgent, failure(code, stdout, stderr))
}

// failure is what a fence agent that exited with code said about why.
func failure(code int, stdout, stderr []byte) string {
	if msg := agentMessage(stderr); msg != "" {
		return msg
	}
	if msg := agentMessage(stdout); msg != "" {
		return msg
	}
	return fmt.Sprintf("exit status %d, no message", code)
}

// logPrefix is the timestamp fence-agents' logging puts before each line
// ("2026-12-06 19:20:11,217 ").
var logPrefix = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ `)

// agentMessage picks what a fence agent said about its failure: its ERROR
// lines (once each, without timestamps), else its other lines, never
// Python's warnings about the agent's own code.
func agentMessage(b []byte) string {
	var errs, other []string
	seen := map[string]bool{}
	skipNext := false
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if skipNext {
			// The source line Python prints under a warning.
			skipNext = false
			continue
		}
		switch {
		case line == "":
			continue
		case strings.Contains(line, "DeprecationWarning:") || strings.Contains(line, "SyntaxWarning:"):
			skipNext = true
			continue
		}
		line = logPrefix.ReplaceAllString(line, "")
		// Before it parsed its options an agent logs through Python's
		// root logger: "ERROR:root:..." for "ERROR: ...".
		for _, level := range []string{"ERROR", "WARNING", "CRITICAL"} {
			if rest, ok := strings.CutPrefix(line, level+":root:"); ok {
				line = level + ": " + rest
			}
		}
		msg, isErr := strings.CutPrefix(line, "ERROR: ")
		if !isErr {
			msg, isErr = strings.CutPrefix(line, "CRITICAL: ")
		}
		switch {
		case isErr && msg == "Please use '-h' for usage":
			// fencing.py's advice after a usage error: not the cause.
		case isErr && !seen[msg]:
			seen[msg] = true
			errs = append(errs, msg)
		case !isErr && !strings.HasPrefix(line, "WARNING: "):
			other = append(other, line)
		}
	}
	if len(errs) > 0 {
		return strings.Join(errs, "; ")
	}
	return strings.Join(other, "; ")
}

// Status runs the device's fence agent with action=status (and password,
// when not "", instead of the password file) within FenceStatusTimeout or
// ctx's deadline, whichever is first.
func (d StonithDevice) Status(ctx context.Context, r CmdRunner, password string) FenceStatus {
	st := FenceStatus{Device: d.ID, Target: d.Target, Agent: d.Agent}
	ctx, cancel := context.WithTimeout(ctx, FenceStatusTimeout)
	defer cancel()
	out, err := r.RunCmd(ctx, runner.Cmd{Name: d.Agent, Stdin: d.StatusRequest(password)})
	if err == nil {
		st.Power = PowerOn
		return st
	}
	code := runner.ExitCode(err)
	switch {
	case errors.Is(err, exec.ErrNotFound):
		st.Missing = true
		st.Error = d.Agent + " is not installed"
	case code < 0:
		// It did not finish (or did not start): the runner says why.
		st.Error = err.Error()
	case code == fenceExitOff:
		st.Power = PowerOff
	default:
		var stderr []byte
		var e *runner.Error
		if errors.As(err, &e) {
			stderr = []byte(e.Stderr)
		}
		st.Error = failure(code, out, stderr)
	}
	return st
}
