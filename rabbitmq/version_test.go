package rabbitmq

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]Version{
		"3.10.8-1.1+deb12u2": {3, 10, 8}, // Debian 12
		"4.0.5-3":            {4, 0, 5},  // Debian 13
		"1:3.12.1-1":         {3, 12, 1},
		"4.1":                {4, 1, 0},
		"3.13.7\n":           {3, 13, 7}, // rabbitmqctl version
	} {
		got, err := ParseVersion(in)
		if err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "unknown", "v3.10"} {
		if _, err := ParseVersion(in); err == nil {
			t.Errorf("ParseVersion(%q): no error", in)
		}
	}
}

func TestCheckMode(t *testing.T) {
	for _, tc := range []struct {
		mode, version string
		want          string // "" when the mode runs there
	}{
		{ModeMirrored, "3.10.8", ""},
		{ModeMirrored, "3.13.7", ""},
		{ModeMirrored, "4.0.5", "RabbitMQ 4.0.5 has no classic queue mirroring (removed in 4.0)"},
		{ModeQuorum, "3.10.8", "RabbitMQ 3.10.8 does not read default_queue_type"},
		{ModeQuorum, "3.13.2", "install RabbitMQ 3.13.3 or later"},
		{ModeQuorum, "3.13.3", ""},
		{ModeQuorum, "4.0.5", ""},
		{ModeActivePassive, "3.10.8", ""},
		{ModeActivePassive, "4.0.5", ""},
	} {
		v, _ := ParseVersion(tc.version)
		err := CheckMode(tc.mode, v)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s on %s: %v", tc.mode, tc.version, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s on %s: %v; want %q", tc.mode, tc.version, err, tc.want)
		}
	}
}

type answers map[string]string // command line -> output ("!" prefix: error)

func (a answers) Run(_ context.Context, name string, args ...string) ([]byte, error) {
	out, ok := a[strings.Join(append([]string{name}, args...), " ")]
	if !ok || strings.HasPrefix(out, "!") {
		return []byte(strings.TrimPrefix(out, "!")), errors.New("exit status 1")
	}
	return []byte(out), nil
}

func TestPackageVersion(t *testing.T) {
	const query = "dpkg-query -W -f=${Status}\t${Version} rabbitmq-server"
	const policy = "apt-cache policy rabbitmq-server"
	for name, tc := range map[string]struct {
		a         answers
		want      Version
		installed bool
		err       string
	}{
		"installed":            {a: answers{query: "install ok installed\t3.10.8-1.1+deb12u2"}, want: Version{3, 10, 8}, installed: true},
		"candidate":            {a: answers{query: "!dpkg-query: no packages found matching rabbitmq-server", policy: "rabbitmq-server:\n  Installed: (none)\n  Candidate: 4.0.5-3\n"}, want: Version{4, 0, 5}},
		"removed, config left": {a: answers{query: "deinstall ok config-files\t3.10.8-1.1", policy: "rabbitmq-server:\n  Installed: (none)\n  Candidate: 3.10.8-1.1+deb12u2\n"}, want: Version{3, 10, 8}},
		"nowhere":              {a: answers{query: "!", policy: "rabbitmq-server:\n  Installed: (none)\n  Candidate: (none)\n"}, err: "neither installed nor installable"},
	} {
		t.Run(name, func(t *testing.T) {
			v, installed, err := PackageVersion(context.Background(), tc.a)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || v != tc.want || installed != tc.installed {
				t.Errorf("got %v installed=%v err=%v; want %v installed=%v", v, installed, err, tc.want, tc.installed)
			}
		})
	}
}
