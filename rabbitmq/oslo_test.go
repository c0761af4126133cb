package rabbitmq

import (
	"net/url"
	"os/exec"
	"strings"
	"testing"
)

func TestURLEscape(t *testing.T) {
	for in, want := range map[string]string{
		"/":                "%2F",
		"openstack":        "openstack",
		"a-b.c_d~e":        "a-b.c_d~e",
		"p@ss:w%rd,$x+ é/": "p%40ss%3Aw%25rd%2C%24x%2B%20%C3%A9%2F",
		"a;b?c#d&e=f'g\"h": "a%3Bb%3Fc%23d%26e%3Df%27g%22h",
	} {
		got := URLEscape(in)
		if got != want {
			t.Errorf("URLEscape(%q) = %q, want %q", in, got, want)
		}
		// What oslo.messaging does first: decode once.
		if back, err := url.PathUnescape(got); err != nil || back != in {
			t.Errorf("%q decodes to %q, %v", got, back, err)
		}
		if strings.Contains(got, "$") {
			t.Errorf("%q keeps a $ that oslo.config would substitute", got)
		}
	}
}

func TestTransportURL(t *testing.T) {
	for _, tc := range []struct {
		brokers               []string
		user, password, vhost string
		want                  string
	}{
		{[]string{"192.0.2.11:5672", "192.0.2.12:5672"}, "openstack", "", "/", "rabbit://openstack:PASSWORD@192.0.2.11:5672,openstack:PASSWORD@192.0.2.12:5672/%2F"},
		{[]string{"192.0.2.10:5672"}, "nova", "s3cr,t@x", "openstack", "rabbit://nova:s3cr%2Ct%40x@192.0.2.10:5672/openstack"},
	} {
		if got := TransportURL(tc.brokers, tc.user, tc.password, tc.vhost); got != tc.want {
			t.Errorf("TransportURL(%v, %q, %q, %q) = %s, want %s", tc.brokers, tc.user, tc.password, tc.vhost, got, tc.want)
		}
	}
}

// The user, password and vhost checks refuse what oslo.messaging 14.0.3
// would hand to kombu in a form kombu misreads (shown with Debian 12's
// oslo.messaging and kombu: a / in the password makes kombu read the
// port as "a"; a ; in the vhost cuts it).
func TestOsloChecks(t *testing.T) {
	for _, tc := range []struct {
		check func(string) error
		in    string
		bad   bool
	}{
		{CheckOsloUser, "openstack", false},
		{CheckOsloUser, "nova svc@x:y", false},
		{CheckOsloUser, "", true},
		{CheckOsloUser, "a/b", true},
		{CheckOsloUser, "a\tb", true},
		{CheckOsloPassword, "0b5e1c3d9f7a2468", false},
		{CheckOsloPassword, "p@ss:w%rd,$x+ é", false},
		{CheckOsloPassword, "", true},
		{CheckOsloPassword, "abc/def+gh==", true}, // openssl rand -base64
		{CheckOsloPassword, "two\nlines", true},
		{CheckOsloPassword, "trailing ", true},
		{CheckOsloVhost, "/", false},
		{CheckOsloVhost, "openstack/nova", false},
		{CheckOsloVhost, "a b@c:d", false},
		{CheckOsloVhost, "", true},
		{CheckOsloVhost, "a%41", true},
		{CheckOsloVhost, "a?b", true},
		{CheckOsloVhost, "a#b", true},
		{CheckOsloVhost, "a;b", true},
	} {
		if err := tc.check(tc.in); (err != nil) != tc.bad {
			t.Errorf("%q: %v, want refused %v", tc.in, err, tc.bad)
		}
	}
}

func TestOsloSettingsModes(t *testing.T) {
	cfg := Config{Witness: "wit1"}
	cfg.SetDefaults()
	for mode, want := range map[string][]string{
		ModeMirrored:      {"DEFAULT.transport_url", "amqp_durable_queues", "heartbeat_timeout_threshold", "heartbeat_rate", "rabbit_retry_interval", "rabbit_retry_backoff", "rabbit_interval_max", "kombu_failover_strategy"},
		ModeQuorum:        {"DEFAULT.transport_url", "rabbit_quorum_queue", "amqp_durable_queues", "heartbeat_timeout_threshold", "heartbeat_rate", "rabbit_retry_interval", "rabbit_retry_backoff", "rabbit_interval_max", "kombu_failover_strategy"},
		ModeActivePassive: {"DEFAULT.transport_url", "amqp_durable_queues", "heartbeat_timeout_threshold", "heartbeat_rate", "rabbit_retry_interval", "rabbit_retry_backoff", "rabbit_interval_max"},
	} {
		cfg.Mode = mode
		brokers := []string{"192.0.2.11:5672", "192.0.2.12:5672"}
		if mode == ModeActivePassive {
			brokers = brokers[:1]
		}
		s, err := NewOsloSettings(OsloInput{Config: cfg, Brokers: brokers, User: "openstack", Vhost: "/"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, o := range s.Options {
			name := o.Name
			if o.Section != "oslo_messaging_rabbit" {
				name = o.Section + "." + name
			}
			got = append(got, name)
			if o.Why == "" {
				t.Errorf("%s: %s has no reason", mode, name)
			}
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: options %v, want %v", mode, got, want)
		}
		ctl := "rabbitmqctl "
		if mode == ModeActivePassive {
			ctl = "rabbitmqctl -n rabbit@localhost "
		}
		for _, c := range s.BrokerCommands {
			if !strings.Contains(c.Command, ctl) {
				t.Errorf("%s: %q does not run %q", mode, c.Command, ctl)
			}
		}
	}
	cfg.Mode = "bogus"
	if _, err := NewOsloSettings(OsloInput{Config: cfg, Brokers: []string{"192.0.2.11:5672"}, User: "openstack", Vhost: "/"}); err == nil {
		t.Error("mode bogus accepted")
	}
}

// ShellQuote's output is read back by sh as the word it quoted.
func TestShellQuote(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	for _, s := range []string{"openstack", "/", "nova user", "it's", `^(?!amq\.).*`, `{"ha-mode":"all"}`, "$HOME", ""} {
		out, err := exec.Command(sh, "-c", "printf %s "+ShellQuote(s)).Output()
		if err != nil || string(out) != s {
			t.Errorf("ShellQuote(%q) = %s: sh reads %q, %v", s, ShellQuote(s), out, err)
		}
	}
}
