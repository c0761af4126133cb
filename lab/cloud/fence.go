package cloud

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/haconf/haconf/lab"
)

// The lab's fence agent for compute hosts (haconf-lab compute fence),
// speaking the fence-agents protocol the way fence_ipmilan does: options
// as key=value lines on stdin (how Pacemaker's fencer and haconf run
// agents) or on the command line (-o ACTION -n PLUG, --action=, --plug=).
//
// Exit codes are fencing.py's: 0 success (for status: the host is on),
// 1 failure or bad input (unknown action, missing or unknown plug,
// malformed option), 2 status: the host is off.

// Fence agent exit codes.
const (
	FenceOK     = 0
	FenceFailed = 1
	FenceOff    = 2
)

// FenceRequest is one fence agent invocation.
type FenceRequest struct {
	Action string // off, on, reboot, status, monitor, list, list-status, metadata, validate-all
	Plug   string // the host: cmpN
	Dir    string // the cloud's directory; DefaultDir when empty
}

// ParseFenceRequest reads fence-agents options from args or, when args
// hold none but --dir, key=value lines from stdin. Unknown keys on stdin are ignored:
// Pacemaker passes more than an agent declares (nodename, pcmk_*).
func ParseFenceRequest(args []string, stdin io.Reader) (FenceRequest, error) {
	r := FenceRequest{Action: "reboot"}
	set := func(k, v string) bool {
		switch k {
		case "action", "option", "o":
			r.Action = v
		case "plug", "port", "n":
			r.Plug = v
		case "dir":
			r.Dir = v
		default:
			return false
		}
		return true
	}
	keys, err := lab.FenceArgs(args, set)
	if err != nil {
		return r, fmt.Errorf("parse error: %w", err)
	}
	if slices.ContainsFunc(keys, func(k string) bool { return k != "dir" }) {
		return r, nil
	}
	if err := lab.FenceStdin(stdin, true, set); err != nil {
		return r, fmt.Errorf("parse error: %w", err)
	}
	return r, nil
}

// PowerSwitch is what the fence agent drives: the cloud's hosts.
type PowerSwitch interface {
	HostNames() ([]string, error)
	Power(ctx context.Context, host string) (Power, error)
	PowerOff(ctx context.Context, host string) error
	PowerOn(ctx context.Context, host string) error
}

// Fence carries out r against sw the way a fence agent does, writing its
// messages as fence agents do, and returns the exit code.
func Fence(ctx context.Context, sw PowerSwitch, r FenceRequest, stdout, stderr io.Writer) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, format+"\n", a...)
		return FenceFailed
	}
	switch r.Action {
	case "metadata":
		io.WriteString(stdout, fenceMetadata)
		return FenceOK
	case "validate-all":
		return FenceOK
	case "list", "list-status", "monitor", "status", "off", "on", "reboot":
	default:
		return fail("Failed: Unrecognised action '%s' (want on, off, reboot, status, monitor, list, list-status, metadata or validate-all)", r.Action)
	}
	hosts, err := sw.HostNames()
	if err != nil {
		return fail("Unable to connect/login to fencing device: %v", err)
	}
	switch r.Action {
	case "monitor":
		return FenceOK
	case "list", "list-status":
		for _, h := range hosts {
			if r.Action == "list" {
				fmt.Fprintf(stdout, "%s,%s\n", h, h)
				continue
			}
			p, err := sw.Power(ctx, h)
			if err != nil {
				return fail("Failed: Unable to obtain correct plug status or plug is not available: %s: %v", h, err)
			}
			fmt.Fprintf(stdout, "%s,%s,%s\n", h, h, strings.ToUpper(string(p)))
		}
		return FenceOK
	}
	if r.Plug == "" {
		return fail("Failed: You have to enter plug number or machine identification")
	}
	if !slices.Contains(hosts, r.Plug) {
		return fail("Failed: Unable to obtain correct plug status or plug is not available: unknown plug %q (the lab has %s)", r.Plug, strings.Join(hosts, ", "))
	}
	p, err := sw.Power(ctx, r.Plug)
	if err != nil {
		return fail("Failed: Unable to obtain correct plug status or plug is not available: %v", err)
	}
	switch r.Action {
	case "status":
		fmt.Fprintf(stdout, "Status: %s\n", strings.ToUpper(string(p)))
		if p == PowerOff {
			return FenceOff
		}
		return FenceOK
	case "off", "on":
		if string(p) == r.Action {
			fmt.Fprintf(stdout, "Success: Already %s\n", strings.ToUpper(r.Action))
			return FenceOK
		}
	}
	if r.Action == "off" || (r.Action == "reboot" && p == PowerOn) {
		if err := sw.PowerOff(ctx, r.Plug); err != nil {
			return fail("Failed: Timed out waiting to power OFF: %v", err)
		}
		if r.Action == "off" {
			fmt.Fprintln(stdout, "Success: Powered OFF")
			return FenceOK
		}
	}
	if err := sw.PowerOn(ctx, r.Plug); err != nil {
		return fail("Failed: Timed out waiting to power ON: %v", err)
	}
	if r.Action == "reboot" {
		fmt.Fprintln(stdout, "Success: Rebooted")
	} else {
		fmt.Fprintln(stdout, "Success: Powered ON")
	}
	return FenceOK
}

// HostNames implements PowerSwitch: the hosts of the cloud that is up.
func (c *Cloud) HostNames() ([]string, error) {
	s, err := c.loadSettings()
	if err != nil {
		if errors.Is(err, ErrNotUp) {
			return nil, fmt.Errorf("%w (no %s)", err, c.settingsFile())
		}
		return nil, err
	}
	var names []string
	for _, h := range Hosts(s.Hosts) {
		names = append(names, h.Name)
	}
	return names, nil
}

// Power implements PowerSwitch.
func (c *Cloud) Power(_ context.Context, host string) (Power, error) {
	h, _, err := c.host(host)
	if err != nil {
		return "", err
	}
	return c.power(h), nil
}

// PowerOff implements PowerSwitch: Crash.
func (c *Cloud) PowerOff(ctx context.Context, host string) error { return c.Crash(ctx, host) }

// PowerOn implements PowerSwitch: Start.
func (c *Cloud) PowerOn(ctx context.Context, host string) error { return c.Start(ctx, host) }

const fenceMetadata = `<?xml version="1.0" ?>
<resource-agent name="fence_haconf_compute" shortdesc="Fence agent for the haconf compute lab's hosts">
<longdesc>Powers a fake compute host of the haconf compute lab (a network namespace running nova-compute) off, on or both: off kills every process of the host at once and takes its links down; on boots it again. Run as haconf-lab compute fence on the lab host, as root.</longdesc>
<vendor-url>https://github.com/haconf/haconf</vendor-url>
<parameters>
	<parameter name="action" unique="0" required="1">
		<getopt mixed="-o, --action=[action]" />
		<content type="string" default="reboot" />
		<shortdesc lang="en">Fencing action</shortdesc>
	</parameter>
	<parameter name="plug" unique="0" required="1" obsoletes="port">
		<getopt mixed="-n, --plug=[id]" />
		<content type="string" />
		<shortdesc lang="en">Compute host to fence (cmp1, cmp2, ...)</shortdesc>
	</parameter>
	<parameter name="port" unique="0" required="1" deprecated="1">
		<getopt mixed="-n, --plug=[id]" />
		<content type="string" />
		<shortdesc lang="en">Compute host to fence (cmp1, cmp2, ...)</shortdesc>
	</parameter>
	<parameter name="dir" unique="0" required="0">
		<getopt mixed="--dir=[path]" />
		<content type="string" default="` + DefaultDir + `" />
		<shortdesc lang="en">The compute lab's directory</shortdesc>
	</parameter>
</parameters>
<actions>
	<action name="on" automatic="0"/>
	<action name="off" />
	<action name="reboot" />
	<action name="status" />
	<action name="list" />
	<action name="list-status" />
	<action name="monitor" />
	<action name="metadata" />
	<action name="validate-all" />
</actions>
</resource-agent>
`
