package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/rabbitmq"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata/openstack-messaging")

// osloReference is oslo-config-generator's output for oslo.messaging
// 14.0.3, Debian 12's: the options haconf may print.
const osloReference = "testdata/oslo.messaging-14.0.3.conf"

// messagingConfig is the example haconf.yaml in mode (mirrored, the
// example's own, active-passive or quorum with the witness wit1).
func messagingConfig(t *testing.T, mode string) string {
	t.Helper()
	ex := string(config.Example())
	const line = "  mode: mirrored "
	if !strings.Contains(ex, line) {
		t.Fatalf("the example has no %q line", line)
	}
	switch mode {
	case rabbitmq.ModeActivePassive:
		ex = strings.Replace(ex, line, "  mode: active-passive ", 1)
	case rabbitmq.ModeQuorum:
		ex = strings.Replace(ex, line, "  witness: wit1\n  mode: quorum ", 1)
	}
	return writeConfig(t, ex)
}

// writeSecret writes a password file with the given mode (whatever the
// umask) and returns its path.
func writeSecret(t *testing.T, dir, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, "rabbitmq-openstack.password")
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// The whole output of each mode, and of the password file cases, is the
// golden file's (go test -run OpenStackMessaging -update rewrites them).
// The password file's directory is shown as $DIR.
func TestOpenStackMessagingGolden(t *testing.T) {
	dir := t.TempDir()
	ok := writeSecret(t, dir, "0b5e1c3d9f7a2468\n", 0o600)
	for _, tc := range []struct {
		name string
		mode string
		args []string
		code int
	}{
		{"mirrored", rabbitmq.ModeMirrored, nil, cli.ExitOK},
		{"active-passive", rabbitmq.ModeActivePassive, nil, cli.ExitOK},
		{"quorum", rabbitmq.ModeQuorum, nil, cli.ExitOK},
		{"mirrored-user-vhost", rabbitmq.ModeMirrored, []string{"--user", "nova", "--vhost", "openstack"}, cli.ExitOK},
		{"mirrored-json", rabbitmq.ModeMirrored, []string{"-o", "json"}, cli.ExitOK},
		{"password-file-ok", rabbitmq.ModeMirrored, []string{"--password-file", ok}, cli.ExitOK},
		{"password-file-missing", rabbitmq.ModeMirrored, []string{"--password-file", filepath.Join(dir, "missing.password")}, cli.ExitFailure},
		{"password-file-0644", rabbitmq.ModeMirrored, []string{"--password-file", writeSecret(t, t.TempDir(), "0b5e1c3d9f7a2468\n", 0o644)}, cli.ExitFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"openstack", "messaging", "-c", messagingConfig(t, tc.mode)}, tc.args...)
			out, errOut, code := haconf(t, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			got := out
			if code != cli.ExitOK {
				if out != "" {
					t.Errorf("stdout %q, want nothing", out)
				}
				got = errOut
			}
			for _, a := range tc.args {
				if strings.HasPrefix(a, "/") {
					got = strings.ReplaceAll(got, filepath.Dir(a), "$DIR")
				}
			}
			golden := filepath.Join("testdata", "openstack-messaging", tc.name+".txt")
			if *updateGolden {
				if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -run OpenStackMessaging -update writes it)", err)
			}
			if got != string(want) {
				t.Errorf("output differs from %s (go test -run OpenStackMessaging -update rewrites it):\n%s", golden, got)
			}
		})
	}
}

// osloOptions reads the reference: section -> option names. Option lines
// are "#name = default" in their section.
func osloOptions(t *testing.T) map[string]map[string]bool {
	t.Helper()
	f, err := os.Open(osloReference)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	known := map[string]map[string]bool{}
	section := ""
	opt := regexp.MustCompile(`^#([a-z0-9_]+) =`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			known[section] = map[string]bool{}
		} else if m := opt.FindStringSubmatch(line); m != nil && section != "" {
			known[section][m[1]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	// The reference itself: the sections and options this test relies on.
	for section, opts := range map[string][]string{
		"DEFAULT":               {"transport_url", "rpc_response_timeout"},
		"oslo_messaging_rabbit": {"amqp_durable_queues", "rabbit_quorum_queue", "rabbit_ha_queues", "heartbeat_timeout_threshold", "kombu_failover_strategy"},
	} {
		for _, o := range opts {
			if !known[section][o] {
				t.Fatalf("%s: no option %s in [%s]: is it oslo-config-generator's output?", osloReference, o, section)
			}
		}
	}
	return known
}

// printedOptions parses haconf's ini snippet: the options set, in order,
// as "section.name", and their values.
func printedOptions(t *testing.T, ini string) ([]string, map[string]string) {
	t.Helper()
	var names []string
	values := map[string]string{}
	section := ""
	for i, line := range strings.Split(ini, "\n") {
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
		default:
			name, value, ok := strings.Cut(line, " = ")
			if !ok || section == "" {
				t.Fatalf("line %d %q: neither a comment, a section nor name = value in a section", i+1, line)
			}
			names = append(names, section+"."+name)
			values[section+"."+name] = value
		}
	}
	return names, values
}

// Every option printed, in every mode, is an option of its section in
// oslo.messaging 14.0.3, set once; each mode sets what it must.
func TestOpenStackMessagingOptionsExist(t *testing.T) {
	known := osloOptions(t)
	for _, tc := range []struct {
		mode      string
		args      []string
		must, not []string
	}{
		{rabbitmq.ModeMirrored, nil, []string{"amqp_durable_queues = true", "kombu_failover_strategy = round-robin"}, []string{"rabbit_quorum_queue", "rabbit_ha_queues", "enable_cancel_on_failover"}},
		{rabbitmq.ModeMirrored, []string{"--vhost", "openstack", "--user", "nova"}, []string{"amqp_durable_queues = true"}, []string{"rabbit_quorum_queue", "rabbit_ha_queues"}},
		{rabbitmq.ModeActivePassive, nil, []string{"amqp_durable_queues = true"}, []string{"rabbit_quorum_queue", "rabbit_ha_queues", "kombu_failover_strategy"}},
		{rabbitmq.ModeQuorum, nil, []string{"rabbit_quorum_queue = true", "amqp_durable_queues = true", "kombu_failover_strategy = round-robin"}, []string{"rabbit_ha_queues"}},
	} {
		args := append([]string{"openstack", "messaging", "-c", messagingConfig(t, tc.mode)}, tc.args...)
		out, errOut, code := haconf(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, errOut)
		}
		names, values := printedOptions(t, out)
		if len(names) < 6 || names[0] != "DEFAULT.transport_url" {
			t.Errorf("%s: options %v, want transport_url first and the failover options", tc.mode, names)
		}
		for i, n := range names {
			section, name, _ := strings.Cut(n, ".")
			if !known[section][name] {
				t.Errorf("%s: [%s] %s is not an option of [%s] in %s", tc.mode, section, name, section, osloReference)
			}
			if slices.Contains(names[:i], n) {
				t.Errorf("%s: [%s] %s is set twice", tc.mode, section, name)
			}
		}
		for _, m := range tc.must {
			name, value, _ := strings.Cut(m, " = ")
			if values["oslo_messaging_rabbit."+name] != value {
				t.Errorf("%s: [oslo_messaging_rabbit] %s = %q, want %q", tc.mode, name, values["oslo_messaging_rabbit."+name], value)
			}
		}
		for _, n := range tc.not {
			if _, set := values["oslo_messaging_rabbit."+n]; set {
				t.Errorf("%s: [oslo_messaging_rabbit] %s is set", tc.mode, n)
			}
		}
	}
}

// urlHost is one host of a transport_url, decoded.
type urlHost struct{ User, Password, Host, Vhost string }

// parseTransportURL splits s at the commas between hosts, as
// oslo.messaging does, and parses each host with the path as a URL of its
// own (net/url takes one host only).
func parseTransportURL(s string) ([]urlHost, error) {
	rest, ok := strings.CutPrefix(s, "rabbit://")
	if !ok {
		return nil, errors.New("not rabbit://")
	}
	authority, path, ok := strings.Cut(rest, "/")
	if !ok {
		return nil, errors.New("no path")
	}
	var out []urlHost
	for _, h := range strings.Split(authority, ",") {
		u, err := url.Parse("rabbit://" + h + "/" + path)
		if err != nil {
			return nil, err
		}
		if u.User == nil || u.RawQuery != "" || u.Fragment != "" {
			return nil, fmt.Errorf("%s: no user, or a query or fragment", h)
		}
		pw, _ := u.User.Password()
		out = append(out, urlHost{u.User.Username(), pw, u.Host, strings.TrimPrefix(u.Path, "/")})
	}
	return out, nil
}

// The printed transport_url parses back (net/url, one host at a time, as
// oslo.messaging splits the hosts at commas) to the brokers of the mode,
// the user, the password (or the placeholder) and the vhost.
func TestOpenStackMessagingURLParsesBack(t *testing.T) {
	dir := t.TempDir()
	const password = "p@ss:w%rd,$x+ é"
	pwFile := writeSecret(t, dir, password+"\n", 0o600)
	for _, tc := range []struct {
		mode            string
		args            []string
		user, pw, vhost string
		hosts           []string
	}{
		{rabbitmq.ModeMirrored, nil, "openstack", rabbitmq.PasswordPlaceholder, "/", []string{"192.0.2.11:5672", "192.0.2.12:5672"}},
		{rabbitmq.ModeQuorum, nil, "openstack", rabbitmq.PasswordPlaceholder, "/", []string{"192.0.2.11:5672", "192.0.2.12:5672"}},
		{rabbitmq.ModeActivePassive, nil, "openstack", rabbitmq.PasswordPlaceholder, "/", []string{"192.0.2.10:5672"}},
		{rabbitmq.ModeMirrored, []string{"--user", "nova svc@x:y", "--vhost", "open stack/nova", "--password-file", pwFile}, "nova svc@x:y", password, "open stack/nova", []string{"192.0.2.11:5672", "192.0.2.12:5672"}},
	} {
		args := append([]string{"openstack", "messaging", "-c", messagingConfig(t, tc.mode), "-o", "json"}, tc.args...)
		out, errOut, code := haconf(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, errOut)
		}
		var doc struct {
			TransportURL string   `json:"transport_url"`
			Brokers      []string `json:"brokers"`
			Options      []struct{ Section, Name, Value string }
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatal(err)
		}
		if doc.Options[0].Name != "transport_url" || doc.Options[0].Value != doc.TransportURL {
			t.Errorf("%s: options[0] %+v, want transport_url %s", tc.mode, doc.Options[0], doc.TransportURL)
		}
		hosts, err := parseTransportURL(doc.TransportURL)
		if err != nil {
			t.Fatalf("%s: %s: %v", tc.mode, doc.TransportURL, err)
		}
		var got []string
		for _, h := range hosts {
			got = append(got, h.Host)
			if h.User != tc.user || h.Password != tc.pw || h.Vhost != tc.vhost {
				t.Errorf("%s: %s: host %s: user %q password %q vhost %q; want %q %q %q", tc.mode, doc.TransportURL, h.Host, h.User, h.Password, h.Vhost, tc.user, tc.pw, tc.vhost)
			}
		}
		if !slices.Equal(got, tc.hosts) || !slices.Equal(doc.Brokers, tc.hosts) {
			t.Errorf("%s: hosts %v, brokers %v; want %v", tc.mode, got, doc.Brokers, tc.hosts)
		}
	}
}

// A password file is read only when its owner alone can read it, and only
// when oslo.messaging can use what it holds; the error names the file.
func TestOpenStackMessagingPasswordFileRefused(t *testing.T) {
	p := messagingConfig(t, rabbitmq.ModeMirrored)
	for _, tc := range []struct {
		content string
		mode    os.FileMode
		want    string
	}{
		{"secret\n", 0o640, "mode -rw-r-----: readable by group or others (chmod 600 "},
		{"secret\n", 0o604, "readable by group or others"},
		{"", 0o600, "the password is empty"},
		{"\n", 0o600, "the password is empty"},
		{"ab/cd\n", 0o600, "the password holds a /"},
		{"two\nlines\n", 0o600, "second line"},
		{" padded\n", 0o600, "white space"},
	} {
		f := writeSecret(t, t.TempDir(), tc.content, tc.mode)
		out, errOut, code := haconf(t, "openstack", "messaging", "-c", p, "--password-file", f)
		if code != cli.ExitFailure || out != "" || !strings.Contains(errOut, tc.want) || !strings.Contains(errOut, "--password-file: "+f) {
			t.Errorf("%q mode %v: exit %d, stdout %q, stderr %q; want %d, %q and the file", tc.content, tc.mode, code, out, errOut, cli.ExitFailure, tc.want)
		}
		if strings.Contains(errOut, "secret") {
			t.Errorf("stderr shows the password: %q", errOut)
		}
	}
	// A directory is not a password file.
	if _, errOut, code := haconf(t, "openstack", "messaging", "-c", p, "--password-file", t.TempDir()); code != cli.ExitFailure || !strings.Contains(errOut, "is not a regular file") {
		t.Errorf("directory: exit %d, %q", code, errOut)
	}
}

// A user or vhost oslo.messaging 14 cannot hand to kombu is a usage error.
func TestOpenStackMessagingFlagsRefused(t *testing.T) {
	p := messagingConfig(t, rabbitmq.ModeMirrored)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--user", "a/b"}, "--user: user \"a/b\": oslo.messaging 14 hands the user to kombu"},
		{[]string{"--user", ""}, "--user: the user is empty"},
		{[]string{"--vhost", ""}, "--vhost: the vhost is empty"},
		{[]string{"--vhost", "a;b"}, "choose a vhost without % ? # ;"},
		{[]string{"--vhost", "50%"}, "choose a vhost without % ? # ;"},
		{[]string{"extra"}, `unknown command "extra" for "haconf openstack messaging"`},
	} {
		args := append([]string{"openstack", "messaging", "-c", p}, tc.args...)
		out, errOut, code := haconf(t, args...)
		if code != cli.ExitUsage || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d and %q", tc.args, code, out, errOut, cli.ExitUsage, tc.want)
		}
	}
	// A compute-only haconf.yaml has no brokers to print.
	compute, _ := computeConfig(t)
	if _, errOut, code := haconf(t, "openstack", "messaging", "-c", compute); code != cli.ExitConfig || !strings.Contains(errOut, "compute failover only") {
		t.Errorf("compute-only config: exit %d, %q", code, errOut)
	}
}
