package lab

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/pacemaker"
)

func TestConfigValidates(t *testing.T) {
	c, err := config.Parse("lab.yaml", Config())
	if err != nil {
		t.Fatalf("lab config does not validate: %v", err)
	}
	if c.Fencing.Type != "lab" || c.Fencing.Lab.URL != FencedURL() {
		t.Errorf("fencing = %+v, want type lab at %s", c.Fencing, FencedURL())
	}
	if got := c.NodeNames(); len(got) != 2 || got[0] != "ctl1" || got[1] != "ctl2" {
		t.Errorf("nodes = %v", got)
	}
}

func TestParseFenceArgs(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  FenceRequest
	}{
		{"stdin from pacemaker", nil, "action=off\nport=ctl2\nnodename=ctl2\npcmk_host_list=ctl1 ctl2\n",
			FenceRequest{Action: "off", Plug: "ctl2", URL: FencedURL(), TokenFile: DefaultTokenFile}},
		{"stdin plug and url", nil, "# comment\naction=status\nplug=ctl1\nurl=http://10.251.2.1:9\ntoken_file=/t\n",
			FenceRequest{Action: "status", Plug: "ctl1", URL: "http://10.251.2.1:9", TokenFile: "/t"}},
		{"old option key", nil, "option=reboot\nport=ctl1\n",
			FenceRequest{Action: "reboot", Plug: "ctl1", URL: FencedURL(), TokenFile: DefaultTokenFile}},
		{"short options", []string{"-o", "off", "-n", "ctl2"}, "",
			FenceRequest{Action: "off", Plug: "ctl2", URL: FencedURL(), TokenFile: DefaultTokenFile}},
		{"long options", []string{"--action=on", "--plug", "ctl1", "--url=http://x", "--token-file", "/t"}, "",
			FenceRequest{Action: "on", Plug: "ctl1", URL: "http://x", TokenFile: "/t"}},
		{"metadata", []string{"-o", "metadata"}, "",
			FenceRequest{Action: "metadata", URL: FencedURL(), TokenFile: DefaultTokenFile}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseFenceArgs(tt.args, strings.NewReader(tt.stdin))
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	if _, err := ParseFenceArgs([]string{"--bogus", "x"}, nil); err == nil {
		t.Error("unknown option accepted")
	}
}

func TestFenceAgentMetadataAndList(t *testing.T) {
	var out, errb bytes.Buffer
	if code := FenceAgent(context.Background(), FenceRequest{Action: "metadata"}, &out, &errb); code != 0 {
		t.Fatalf("metadata exit %d: %s", code, errb.String())
	}
	for _, want := range []string{`<resource-agent name="fence_haconf_lab"`, `<action name="reboot" />`, `name="port"`, `name="plug"`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("metadata lacks %s", want)
		}
	}
	out.Reset()
	if code := FenceAgent(context.Background(), FenceRequest{Action: "list"}, &out, &errb); code != 0 || out.String() != "ctl1,ctl1\nctl2,ctl2\n" {
		t.Errorf("list: exit %d, %q", code, out.String())
	}
}

func TestRequireToken(t *testing.T) {
	a := &Agent{Node: "ctl1", Token: "s3cret"}
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	for _, tc := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer nope", 401}, {"Bearer s3cret", 200}} {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/ping", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("auth %q: status %d, want %d", tc.auth, resp.StatusCode, tc.want)
		}
	}
}

func TestClientRefusesNonLabAddresses(t *testing.T) {
	c := NewClient("x")
	err := c.do(context.Background(), "GET", "http://127.0.0.1:1/v1/ping", nil, nil)
	if err == nil || !strings.Contains(err.Error(), "not a lab address") {
		t.Errorf("err = %v, want a refusal", err)
	}
}

func TestCheckDir(t *testing.T) {
	for dir, ok := range map[string]bool{
		"/var/lib/haconf-lab": true, "/srv/lab": true, "/var/tmp/x": true,
		"relative": false, "/": false, "/tmp/lab": false, "/run/lab": false, "/dev/shm/x": false,
	} {
		err := checkDir(dir)
		if (err == nil) != ok {
			t.Errorf("checkDir(%s) = %v", dir, err)
		}
		if err != nil && !errors.Is(err, ErrBadDir) {
			t.Errorf("checkDir(%s) error is not ErrBadDir", dir)
		}
	}
}

func TestParseLinks(t *testing.T) {
	out := []byte(`[{"ifname":"lo","flags":["LOOPBACK","UP"]},
{"ifname":"hclab-mgmt","flags":["BROADCAST","UP"],"operstate":"UP"},
{"ifname":"hclab-ctl2-s","flags":["BROADCAST","UP"],"operstate":"UP"},
{"ifname":"hclab-ctl1-m","flags":["BROADCAST","UP"],"master":"hclab-mgmt"}]`)
	m, err := parseLinks(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(m) != 3 || m["hclab-ctl1-m"].Master != BridgeMgmt || !m["hclab-mgmt"].up() || m["hclab-ctl2-s"].Master != "" {
		t.Errorf("parseLinks = %+v", m)
	}
}

func TestBootFilesRender(t *testing.T) {
	l := &Lab{Dir: "/var/lib/haconf-lab"}
	n := Nodes[1]
	d := bootData{Node: n.Name, Dir: l.Dir, NodeDir: l.nodeDir(n), Binary: l.binPath(), AgentBinary: l.agentBinPath(), LabBinary: l.labBinPath(), Modules: UMLModules,
		ModuleTree: "/usr/lib/uml/modules", Mgmt: n.Mgmt, Storage: n.Storage, Control: n.Control,
		HostControl: HostControl, VIP: VIP, AgentPort: AgentPort, LVSize: lvSize, Nodes: Nodes}
	for _, f := range bootFiles {
		out, err := renderBoot(f.src, d)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(out, []byte("<no value>")) {
			t.Errorf("%s has an unfilled value", f.src)
		}
	}
	s2, _ := renderBoot("stage2.sh", d)
	for _, want := range []string{"ip addr add 10.251.0.12/24 dev eth0", "ip addr add 10.251.2.12/32 peer 10.251.2.1 dev eth2", "hostname ctl2"} {
		if !bytes.Contains(s2, []byte(want)) {
			t.Errorf("stage2.sh lacks %q", want)
		}
	}
	tab, _ := renderBoot("inittab", d)
	if !bytes.Contains(tab, []byte("/usr/local/sbin/haconf-lab agent --node ctl2 --listen 10.251.2.12:7411")) {
		t.Errorf("inittab: %s", tab)
	}
	// haconf (what a controller runs) and haconf-lab (the lab's agents) are
	// both in the node; the fence agent runs haconf-lab.
	s1, _ := renderBoot("stage1.sh", d)
	for _, want := range []string{"ln -sfn /var/lib/haconf-lab/bin/haconf $R/usr/local/sbin/haconf\n", "ln -sfn /var/lib/haconf-lab/bin/haconf-lab $R/usr/local/sbin/haconf-lab\n"} {
		if !bytes.Contains(s1, []byte(want)) {
			t.Errorf("stage1.sh lacks %q", want)
		}
	}
	if fa, _ := renderBoot("fence_haconf_lab", d); !bytes.Contains(fa, []byte(`exec /usr/local/sbin/haconf-lab fence-agent "$@"`)) {
		t.Errorf("fence_haconf_lab: %s", fa)
	}
}

func TestUMLArgvUsesOwnDisksAndTaps(t *testing.T) {
	l := &Lab{Dir: "/srv/lab", Memory: "256M"}
	argv := strings.Join(l.umlArgv(Nodes[0]), " ")
	for _, want := range []string{"mem=256M", "ubd0=/srv/lab/ctl1/root.img", "ubd1=/srv/lab/ctl1/disk.img",
		"eth0=tuntap,hclab-ctl1-m,", "eth1=tuntap,hclab-ctl1-s,", "eth2=tuntap,hclab-ctl1-c,", " ro ", "umid=hclab-ctl1"} {
		if !strings.Contains(argv, want) {
			t.Errorf("argv lacks %q: %s", want, argv)
		}
	}
}

func TestAgentExec(t *testing.T) {
	a := &Agent{Node: "ctl1", Token: "t", Log: slog.New(slog.DiscardHandler)}
	for _, tc := range []struct {
		req        ExecRequest
		code       int
		out, errut string
	}{
		{ExecRequest{Argv: []string{"sh", "-c", "echo out; echo err >&2; exit 3"}}, 3, "out\n", "err\n"},
		{ExecRequest{Argv: []string{"cat"}, Stdin: []byte("in")}, 0, "in", ""},
		{ExecRequest{Argv: []string{"/nonexistent/haconf-test"}}, 127, "", ""},
	} {
		res := a.exec(context.Background(), tc.req)
		if res.ExitCode != tc.code || string(res.Stdout) != tc.out || (tc.errut != "" && string(res.Stderr) != tc.errut) {
			t.Errorf("%v: got exit %d out %q err %q", tc.req.Argv, res.ExitCode, res.Stdout, res.Stderr)
		}
	}
}

// handlerTransport serves requests with h instead of the network.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	return w.Result(), nil
}

// A lab node is a command runner: what the drivers take on a controller.
func TestNodeRunner(t *testing.T) {
	a := &Agent{Node: "ctl2", Token: "t", Log: slog.New(slog.DiscardHandler)}
	c := &Client{Token: "t", HTTP: &http.Client{Transport: handlerTransport{a.Handler()}}}
	var run pacemaker.Runner = c.Runner("ctl2")
	ctx := context.Background()

	out, err := run.Run(ctx, "sh", "-c", "echo out; echo err >&2")
	if err != nil || string(out) != "out\n" {
		t.Errorf("ok: out %q, err %v", out, err)
	}
	out, err = run.Run(ctx, "sh", "-c", "echo partial; echo why >&2; exit 3")
	var e *runner.Error
	if !errors.As(err, &e) || e.ExitCode != 3 || e.Stderr != "why\n" || e.Argv[0] != "sh" || string(out) != "partial\n" {
		t.Errorf("exit 3: out %q, err %#v", out, err)
	}
	if _, err := run.Run(ctx, "/nonexistent/haconf-test"); runner.ExitCode(err) != 127 {
		t.Errorf("not found: err %v, want exit 127", err)
	}
	if _, err := c.Runner("ctl9").Run(ctx, "true"); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("unknown node: err %v", err)
	}
}

// The answers are erl_call's (RabbitMQ 3.10.8, OTP 25: in a lab node, and
// a broker on the host with two unmirrored queues).
func TestParseSyncedMirrors(t *testing.T) {
	for _, tc := range []struct {
		out     string
		want    []string
		wantErr string
	}{
		{out: "{ok, []}"},
		{out: `{ok, [{"616263", 1}, {"7120223222", 0}]}` + "\n", want: []string{`q "2"`}},
		{out: `{ok, [{"7120223222", 0}, {"6861636F6E662D6661696C6F766572", 0}]}`, want: []string{`q "2"`, "haconf-failover"}},
		{out: `{error, "*** eval: {'EXIT',{boom,[{erl_eval,do_apply,7,\n"}`, wantErr: "unexpected answer: {error"},
		{out: "", wantErr: "unexpected answer"},
	} {
		got, err := parseSyncedMirrors(tc.out)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%q: error %v, want %q", tc.out, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: %q %v, want %q", tc.out, got, err, tc.want)
		}
	}
}
