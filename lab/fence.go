package lab

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Fenced is the host's fence daemon (`haconf-lab fenced`): the lab's BMC.
// Nodes reach it over their control links at FencedURL.
//
//	GET  /v1/ping
//	GET  /v1/nodes/{node}            {"node": "ctl2", "power": "on"|"off"}
//	POST /v1/nodes/{node}/{action}   action: off, on, reboot
type Fenced struct {
	Lab   *Lab
	Token string
	Log   *slog.Logger
	mu    sync.Mutex // one power action at a time
}

// PowerState is a node's power as the fence daemon sees it.
type PowerState struct {
	Node  string `json:"node"`
	Power string `json:"power"` // on or off
}

// Handler returns the daemon's HTTP API.
func (f *Fenced) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/ping", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"service": "haconf-lab-fenced"})
	})
	mux.HandleFunc("GET /v1/nodes/{node}", func(w http.ResponseWriter, r *http.Request) {
		n, err := NodeByName(r.PathValue("node"))
		if err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, f.power(n))
	})
	mux.HandleFunc("POST /v1/nodes/{node}/{action}", func(w http.ResponseWriter, r *http.Request) {
		n, err := NodeByName(r.PathValue("node"))
		if err != nil {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
			return
		}
		action := r.PathValue("action")
		if err := f.act(r.Context(), n, action); err != nil {
			f.Log.Error("fence action failed", "node", n.Name, "action", action, "err", err)
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, f.power(n))
	})
	return requireToken(f.Token, mux)
}

func (f *Fenced) power(n Node) PowerState {
	if _, ok := f.Lab.Running(n); ok {
		return PowerState{Node: n.Name, Power: "on"}
	}
	return PowerState{Node: n.Name, Power: "off"}
}

// act powers n off, on, or off then on. "on" returns once the kernel has
// been started, like a BMC's power-on; it does not wait for the boot.
func (f *Fenced) act(ctx context.Context, n Node, action string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Log.Info("fence request", "node", n.Name, "action", action)
	switch action {
	case "off":
		return f.Lab.powerOff(n)
	case "on":
		return f.Lab.powerOn(n)
	case "reboot":
		if err := f.Lab.powerOff(n); err != nil {
			return err
		}
		return f.Lab.powerOn(n)
	}
	return fmt.Errorf("unknown action %q: want off, on or reboot", action)
}

// Serve runs the daemon on addr until ctx ends. The daemon is the nodes'
// parent and a child subreaper: it reaps every process of the nodes it
// starts, whatever the machine's PID 1 does with orphans.
func (f *Fenced) Serve(ctx context.Context, addr string) error {
	if err := becomeSubreaper(); err != nil {
		return err
	}
	go reapChildren(ctx)
	return serveHTTP(ctx, addr, f.Handler(), f.Log)
}

// Power asks the fence daemon at url to act on node.
func (c *Client) Power(ctx context.Context, url, node, action string) (PowerState, error) {
	var st PowerState
	err := c.do(ctx, http.MethodPost, strings.TrimRight(url, "/")+"/v1/nodes/"+node+"/"+action, struct{}{}, &st)
	return st, err
}

// PowerStatus asks the fence daemon at url whether node is on.
func (c *Client) PowerStatus(ctx context.Context, url, node string) (PowerState, error) {
	var st PowerState
	err := c.do(ctx, http.MethodGet, strings.TrimRight(url, "/")+"/v1/nodes/"+node, nil, &st)
	return st, err
}

// DefaultTokenFile is where a node keeps the lab token.
const DefaultTokenFile = "/etc/haconf/lab-token"

// FenceRequest is a fence agent invocation, from the command line
// (-o ACTION -n NODE --url URL) or from key=value lines on stdin, which is
// how Pacemaker's fencer calls agents.
type FenceRequest struct {
	Action    string
	Plug      string
	URL       string
	TokenFile string
}

// ParseFenceArgs reads fence-agents style options; with no arguments it
// reads key=value lines from stdin. Unknown keys are ignored, as
// Pacemaker passes more than an agent declares (nodename, pcmk_*).
func ParseFenceArgs(args []string, stdin io.Reader) (FenceRequest, error) {
	r := FenceRequest{Action: "reboot", URL: FencedURL(), TokenFile: DefaultTokenFile}
	set := func(k, v string) bool {
		switch k {
		case "action", "option", "o":
			r.Action = v
		case "port", "plug", "n":
			r.Plug = v
		case "url":
			r.URL = v
		case "token_file", "token-file":
			r.TokenFile = v
		default:
			return false
		}
		return true
	}
	if len(args) == 0 {
		return r, FenceStdin(stdin, false, set)
	}
	_, err := FenceArgs(args, set)
	return r, err
}

// FenceAgent carries out r the way a fence agent does and returns its exit
// status: 0 success (and "on" for status), 1 failure, 2 "off" for status.
func FenceAgent(ctx context.Context, r FenceRequest, stdout, stderr io.Writer) int {
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "fence_haconf_lab: "+format+"\n", a...)
		return 1
	}
	switch r.Action {
	case "metadata":
		io.WriteString(stdout, fenceMetadata)
		return 0
	case "list":
		for _, n := range Nodes {
			fmt.Fprintf(stdout, "%s,%s\n", n.Name, n.Name)
		}
		return 0
	case "validate-all":
		if r.URL == "" {
			return fail("url is required")
		}
		return 0
	}
	token, err := ReadTokenFile(r.TokenFile)
	if err != nil {
		return fail("%v", err)
	}
	c := NewClient(token)
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	switch r.Action {
	case "monitor":
		if err := c.do(ctx, http.MethodGet, strings.TrimRight(r.URL, "/")+"/v1/ping", nil, nil); err != nil {
			return fail("monitor: %v", err)
		}
		return 0
	case "list-status":
		for _, n := range Nodes {
			st, err := c.PowerStatus(ctx, r.URL, n.Name)
			if err != nil {
				return fail("status %s: %v", n.Name, err)
			}
			fmt.Fprintf(stdout, "%s,%s,%s\n", n.Name, n.Name, strings.ToUpper(st.Power))
		}
		return 0
	case "status", "off", "on", "reboot":
	default:
		return fail("unknown action %q", r.Action)
	}
	if _, err := NodeByName(r.Plug); err != nil {
		return fail("port/plug: %v", err)
	}
	if r.Action == "status" {
		st, err := c.PowerStatus(ctx, r.URL, r.Plug)
		if err != nil {
			return fail("status %s: %v", r.Plug, err)
		}
		fmt.Fprintf(stdout, "Status: %s\n", strings.ToUpper(st.Power))
		if st.Power == "off" {
			return 2
		}
		return 0
	}
	st, err := c.Power(ctx, r.URL, r.Plug, r.Action)
	if err != nil {
		return fail("%s %s: %v", r.Action, r.Plug, err)
	}
	fmt.Fprintf(stdout, "Success: %s %s (power %s)\n", r.Action, r.Plug, st.Power)
	return 0
}

const fenceMetadata = `<?xml version="1.0" ?>
<resource-agent name="fence_haconf_lab" shortdesc="Fence agent for haconf lab nodes">
<longdesc>fence_haconf_lab power-cycles a haconf lab node (a User-Mode Linux kernel on the lab host) by asking the host's fence daemon, haconf-lab fenced, over the node's control link.</longdesc>
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
		<shortdesc lang="en">Lab node to fence (ctl1 or ctl2)</shortdesc>
	</parameter>
	<parameter name="port" unique="0" required="1" deprecated="1">
		<getopt mixed="-n, --plug=[id]" />
		<content type="string" />
		<shortdesc lang="en">Lab node to fence (ctl1 or ctl2)</shortdesc>
	</parameter>
	<parameter name="url" unique="0" required="0">
		<getopt mixed="--url=[url]" />
		<content type="string" default="` + "http://10.251.2.1:7410" + `" />
		<shortdesc lang="en">URL of the lab host's fence daemon</shortdesc>
	</parameter>
	<parameter name="token_file" unique="0" required="0">
		<getopt mixed="--token-file=[path]" />
		<content type="string" default="/etc/haconf/lab-token" />
		<shortdesc lang="en">File holding the lab token (mode 0600)</shortdesc>
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
