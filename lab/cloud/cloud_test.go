package cloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/haconf/haconf/lab"
)

func TestHosts(t *testing.T) {
	h := NewHost(3)
	if h.Name != "cmp3" || h.Mgmt.String() != "10.251.0.103" || h.Storage.String() != "10.251.1.103" {
		t.Errorf("NewHost(3) = %+v", h)
	}
	if h.Namespace() != "hccmp-cmp3" || h.Veth(lab.LinkMgmt) != "hccmp-cmp3-m" || h.Veth(lab.LinkStorage) != "hccmp-cmp3-s" {
		t.Errorf("names: %s %s %s", h.Namespace(), h.Veth(lab.LinkMgmt), h.Veth(lab.LinkStorage))
	}
	// Interface names fit IFNAMSIZ, addresses stay clear of the controllers.
	last := NewHost(MaxHosts)
	if len(last.Veth(lab.LinkStorage)) > 15 || !lab.MgmtPrefix.Contains(last.Mgmt) {
		t.Errorf("host %d: %s %s", MaxHosts, last.Veth(lab.LinkStorage), last.Mgmt)
	}
	for _, n := range lab.Nodes {
		for _, h := range Hosts(MaxHosts) {
			if h.Mgmt == n.Mgmt || h.Storage == n.Storage || h.Mgmt == lab.VIP || h.Mgmt == lab.HostMgmt {
				t.Errorf("%s collides with %s", h.Name, n.Name)
			}
		}
	}
	for _, name := range []string{"cmp0", "cmp01", "cmp", "ctl1", "cmp51", "cmp-1", "xcmp1"} {
		if _, err := ParseHost(name); !errors.Is(err, ErrUnknownHost) {
			t.Errorf("ParseHost(%q): %v, want ErrUnknownHost", name, err)
		}
	}
	if h, err := ParseHost("cmp12"); err != nil || h.Index != 12 {
		t.Errorf("ParseHost(cmp12) = %+v, %v", h, err)
	}
}

func TestRender(t *testing.T) {
	s := Secrets{Admin: "adminpw", Service: "servicepw", Rabbit: "rabbitpw"}
	l := layout{Dir: "/var/lib/haconf-cloud", Addr: "10.251.0.1", Secrets: s, Masakari: true}
	files, err := render(l, Hosts(2))
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]string{}
	for _, f := range files {
		byPath[f.Path] = f.Content
	}
	want := map[string][]string{
		"etc/nova/nova.conf": {
			"transport_url = rabbit://openstack:rabbitpw@10.251.0.1:5697/",
			"compute_driver = fake.MediumFakeDriver",
			"osapi_compute_listen = 10.251.0.1",
			"discover_hosts_in_cells_interval = -1",
			"[keystone_authtoken]\nwww_authenticate_uri = http://10.251.0.1:5000/",
			"[placement]\nauth_type = password\nauth_url = http://10.251.0.1:5000/v3",
			"username = neutron\npassword = servicepw\nregion_name = RegionOne",
		},
		"etc/nova/nova-db.conf": {
			"connection = mysql+pymysql://root@localhost/nova_api?unix_socket=/var/lib/haconf-cloud/run/mysql.sock&charset=utf8",
		},
		"etc/keystone/keystone.conf":   {"provider = fernet", "key_repository = /var/lib/haconf-cloud/state/keystone/fernet-keys"},
		"etc/placement/placement.conf": {"connection = mysql+pymysql://root@localhost/placement?", "username = placement"},
		"etc/masakari/masakari.conf":   {"masakari_api_listen = 10.251.0.1", "os_privileged_user_password = servicepw"},
		"etc/nova/cmp2.conf":           {"host = cmp2", "my_ip = 10.251.0.102", "state_path = /var/lib/haconf-cloud/hosts/cmp2/state"},
		"etc/uwsgi-nova-api.ini":       {"http-socket = 10.251.0.1:8774", "env = OS_NOVA_CONFIG_FILES=api-paste.ini;nova.conf;nova-db.conf", "add-header = Connection: close"},
	}
	for path, lines := range want {
		content, ok := byPath[path]
		if !ok {
			t.Errorf("%s not rendered", path)
			continue
		}
		for _, line := range lines {
			if !strings.Contains(content, line) {
				t.Errorf("%s lacks %q:\n%s", path, line, content)
			}
		}
	}
	// nova-compute refuses direct database access: no URL where it reads.
	for _, path := range []string{"etc/nova/nova.conf", "etc/nova/cmp1.conf"} {
		if strings.Contains(byPath[path], "mysql") || strings.Contains(byPath[path], "database") {
			t.Errorf("%s holds a database URL:\n%s", path, byPath[path])
		}
	}
	// oslo.config interpolates %: no URL may be escaped.
	for path, content := range byPath {
		if strings.Contains(content, "%2F") {
			t.Errorf("%s holds an escaped path", path)
		}
	}
	files, _ = render(layout{Dir: "/d", Addr: "10.251.0.1", Secrets: s}, nil)
	for _, f := range files {
		if strings.Contains(f.Path, "masakari") {
			t.Errorf("%s rendered without masakari", f.Path)
		}
	}
}

func TestParseIPLinks(t *testing.T) {
	out := []byte(`[{"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"]},
{"ifindex":5,"ifname":"hclab-mgmt","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"link_type":"ether"},
{"ifindex":7,"ifname":"hclab-ctl1-m","flags":["BROADCAST","UP"],"master":"hclab-mgmt"},
{"ifindex":9,"link_index":2,"ifname":"hccmp-cmp1-m","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"master":"hclab-mgmt","link_netnsid":0},
{"ifindex":10,"link_index":3,"ifname":"hccmp-cmp1-s","flags":["BROADCAST","MULTICAST"],"master":"hclab-stor","link_netnsid":0}]`)
	links, err := parseIPLinks(out)
	if err != nil {
		t.Fatal(err)
	}
	mgmt, storage := hostLinks(links, NewHost(1))
	if !mgmt || storage {
		t.Errorf("cmp1 links: mgmt %v storage %v, want up and down", mgmt, storage)
	}
	if ports := portsOf(links, "hclab-mgmt"); len(ports) != 2 {
		t.Errorf("ports of hclab-mgmt: %v", ports)
	}
	if mgmt, storage := hostLinks(links, NewHost(2)); mgmt || storage {
		t.Error("a missing host's links are up")
	}
	if _, err := parseIPLinks([]byte("not json")); err == nil {
		t.Error("no error for bad input")
	}
}

func TestEnv(t *testing.T) {
	env := map[string]string{}
	for _, kv := range Env(Secrets{Admin: "pw"}, "p1") {
		env[kv[0]] = kv[1]
	}
	if env["OS_AUTH_URL"] != "http://10.251.0.1:5000/v3" || env["OS_PASSWORD"] != "pw" || env["OS_USERNAME"] != "admin" || env["OS_PROJECT_NAME"] != "admin" || env["OS_PROJECT_ID"] != "p1" {
		t.Errorf("env: %v", env)
	}
}

func TestStubs(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	neutron := httptest.NewServer(NeutronHandler(log))
	defer neutron.Close()
	glance := httptest.NewServer(GlanceHandler(log))
	defer glance.Close()
	for _, tc := range []struct {
		base, path string
		code       int
		want       string
	}{
		{neutron.URL, "/v2.0/ports?device_id=x", 200, `"ports":[]`},
		{neutron.URL, "/v2.0/security-groups.json", 200, `"security_groups":[]`},
		{neutron.URL, "/", 200, `"v2.0"`},
		{neutron.URL, "/v2.0/ports/abc", 404, "NeutronError"},
		{glance.URL, "/", 300, `"v2.9"`},
		{glance.URL, "/v2/images/" + ImageID, 200, `"status":"active"`},
		{glance.URL, "/v2/images?name=" + ImageName, 200, ImageID},
		{glance.URL, "/v2/images?name=other", 200, `"images":[]`},
		{glance.URL, "/v2/images/nope", 404, "no image"},
		{glance.URL, "/v2/schemas/image", 200, `"additionalProperties":true`},
	} {
		resp, err := http.Get(tc.base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(b.String(), tc.want) || !json.Valid(b.Bytes()) {
			t.Errorf("GET %s: %d %s; want %d with %s", tc.path, resp.StatusCode, b.String(), tc.code, tc.want)
		}
	}
	resp, err := http.Post(neutron.URL+"/v2.0/ports", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("POST port: %d, want 404 (servers boot with networks none)", resp.StatusCode)
	}
}

// fakeSwitch is a PowerSwitch with hosts in memory.
type fakeSwitch struct {
	power map[string]Power
	calls []string
	err   error
}

func (f *fakeSwitch) HostNames() ([]string, error) {
	if f.err != nil {
		return nil, f.err
	}
	return []string{"cmp1", "cmp2"}, nil
}

func (f *fakeSwitch) Power(_ context.Context, h string) (Power, error) { return f.power[h], nil }

func (f *fakeSwitch) PowerOff(_ context.Context, h string) error {
	f.calls = append(f.calls, "off "+h)
	f.power[h] = PowerOff
	return nil
}

func (f *fakeSwitch) PowerOn(_ context.Context, h string) error {
	f.calls = append(f.calls, "on "+h)
	f.power[h] = PowerOn
	return nil
}

func TestFence(t *testing.T) {
	for _, tc := range []struct {
		name, stdin string
		args        []string
		code        int
		out, err    string
		calls       string
		notUp       bool
	}{
		{"status on", "action=status\nplug=cmp1\n", nil, FenceOK, "Status: ON", "", "", false},
		{"status off", "action=status\nport=cmp2\n", nil, FenceOff, "Status: OFF", "", "", false},
		{"off", "action=off\nplug=cmp1\nnodename=cmp1\npcmk_host_list=cmp1\n", nil, FenceOK, "Success: Powered OFF", "", "off cmp1", false},
		{"off when off", "action=off\nplug=cmp2\n", nil, FenceOK, "Success: Already OFF", "", "", false},
		{"on", "action=on\nplug=cmp2\n", nil, FenceOK, "Success: Powered ON", "", "on cmp2", false},
		{"reboot (default action)", "plug=cmp1\n", nil, FenceOK, "Success: Rebooted", "", "off cmp1,on cmp1", false},
		{"reboot when off", "action=reboot\nplug=cmp2\n", nil, FenceOK, "Success: Rebooted", "", "on cmp2", false},
		{"list", "action=list\n", nil, FenceOK, "cmp1,cmp1\ncmp2,cmp2\n", "", "", false},
		{"list-status", "action=list-status\n", nil, FenceOK, "cmp1,cmp1,ON\ncmp2,cmp2,OFF\n", "", "", false},
		{"monitor", "action=monitor\n", nil, FenceOK, "", "", "", false},
		{"monitor, lab down", "action=monitor\n", nil, FenceFailed, "", "Unable to connect/login to fencing device", "", true},
		{"metadata", "", []string{"-o", "metadata"}, FenceOK, `<resource-agent name="fence_haconf_compute"`, "", "", false},
		{"command line", "", []string{"-o", "status", "-n", "cmp2"}, FenceOff, "Status: OFF", "", "", false},
		{"long options", "", []string{"--action=off", "--plug", "cmp1"}, FenceOK, "Powered OFF", "", "off cmp1", false},
		{"unknown action", "action=explode\nplug=cmp1\n", nil, FenceFailed, "", "Failed: Unrecognised action 'explode'", "", false},
		{"unknown plug", "action=off\nplug=cmp7\n", nil, FenceFailed, "", `plug is not available: unknown plug "cmp7"`, "", false},
		{"no plug", "action=off\n", nil, FenceFailed, "", "You have to enter plug number", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sw := &fakeSwitch{power: map[string]Power{"cmp1": PowerOn, "cmp2": PowerOff}}
			if tc.notUp {
				sw.err = ErrNotUp
			}
			r, err := ParseFenceRequest(tc.args, strings.NewReader(tc.stdin))
			if err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			code := Fence(context.Background(), sw, r, &out, &errb)
			if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errb.String(), tc.err) || strings.Join(sw.calls, ",") != tc.calls {
				t.Errorf("exit %d, stdout %q, stderr %q, calls %v; want %d, %q, %q, %q", code, out.String(), errb.String(), sw.calls, tc.code, tc.out, tc.err, tc.calls)
			}
			if code != FenceOK && errb.Len() == 0 && code != FenceOff {
				t.Error("failure without a reason on stderr")
			}
		})
	}
}

func TestParseFenceRequestErrors(t *testing.T) {
	for _, tc := range []struct {
		args  []string
		stdin string
		want  string
	}{
		{nil, "action=off\nthis is not an option\n", "line 2"},
		{[]string{"-o"}, "", "needs a value"},
		{[]string{"--bogus=1"}, "", "unknown option"},
		{[]string{"cmp1"}, "", "unexpected argument"},
	} {
		if _, err := ParseFenceRequest(tc.args, strings.NewReader(tc.stdin)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %q: %v, want an error with %q", tc.args, tc.stdin, err, tc.want)
		}
	}
	r, err := ParseFenceRequest([]string{"--dir", "/srv/cloud", "-ooff", "-ncmp2"}, nil)
	if err != nil || r.Dir != "/srv/cloud" || r.Action != "off" || r.Plug != "cmp2" {
		t.Errorf("got %+v, %v", r, err)
	}
}

func FuzzParseFenceRequest(f *testing.F) {
	f.Add("action=off\nplug=cmp1\n")
	f.Add("port=cmp2\n# comment\n\n")
	f.Fuzz(func(t *testing.T, stdin string) {
		r, err := ParseFenceRequest(nil, strings.NewReader(stdin))
		if err != nil {
			return
		}
		var out, errb bytes.Buffer
		sw := &fakeSwitch{power: map[string]Power{"cmp1": PowerOn, "cmp2": PowerOff}}
		if code := Fence(context.Background(), sw, r, &out, &errb); code != FenceOK && code != FenceOff && code != FenceFailed {
			t.Errorf("exit %d", code)
		}
	})
}
