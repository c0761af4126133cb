package backup

import (
	"fmt"
	"strings"
	"testing"

	"github.com/haconf/haconf/internal/validate"
)

func TestConfigDefaultsAndValidate(t *testing.T) {
	var c Config
	c.SetDefaults()
	if c.Compression != CompressS2 || c.DifferentialChecksums == nil || *c.DifferentialChecksums || c.Retention.Fulls != 4 {
		t.Fatalf("defaults: %+v", c)
	}
	v := validate.New("backup")
	c.Validate(v)
	if err := v.Err(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	c.Compression = "lz4"
	c.Files = []string{"/etc/haconf/haconf.yaml", "cib.xml"}
	c.Differential = "@daily"
	c.Full = ""
	v = validate.New("backup")
	c.Validate(v)
	msg := v.Err().Error()
	for _, want := range []string{"compression", "files[1]", "needs a full schedule"} {
		if !strings.Contains(msg, want) {
			t.Errorf("problems %q lack %q", msg, want)
		}
	}
	o := c.Options(nil, nil)
	if o.Compression != "lz4" || o.Repo.Dir != c.Repository || o.Checksums || len(o.ConfigFiles) != 2 {
		t.Fatalf("options: %+v", o)
	}
}

func TestCopyTargetDefaults(t *testing.T) {
	c := Config{Copies: []CopyTarget{{Host: "backup-1.example", Port: 22, User: "haconf", Path: "/srv/haconf", IdentityFile: "/etc/haconf/copy.key", KnownHostsFile: "/etc/haconf/copy.known_hosts"}}}
	c.SetDefaults()
	v := validate.New("backup")
	c.Validate(v)
	if err := v.Err(); err != nil || c.Copies[0].Name != "backup-1.example" {
		t.Fatalf("a target without a name is named after its host: %+v %v", c.Copies[0], err)
	}
	c.Copies = append(c.Copies, CopyTarget{Name: "backup-1.example", Host: "2001:db8::5", Port: 2222, User: "root", Path: "/", IdentityFile: "/k", KnownHostsFile: "/kh"})
	v = validate.New("backup")
	c.Validate(v)
	msg := fmt.Sprint(v.Err())
	for _, want := range []string{`backup.copies[1].name: "backup-1.example": is also the name of copies[0]`, `backup.copies[1].path: "/": must be an absolute, clean directory path other than /`} {
		if !strings.Contains(msg, want) {
			t.Errorf("problems %q lack %q", msg, want)
		}
	}
	if a := c.Copies[1].Addr(); a != "[2001:db8::5]:2222" {
		t.Errorf("addr %s", a)
	}
}

func TestBinlogExpireDays(t *testing.T) {
	for _, c := range []struct {
		full string
		want int
	}{
		{"", 8},
		{"@daily", 8},         // 2 x 1 + 1 = 3: the old 8 days stay the floor
		{"0 2 * * 0", 15},     // weekly: 2 x 7 + 1
		{"0 2 * * 0,3", 9},    // every 3 or 4 days: 2 x 4 + 1
		{"0 2 1 * *", 63},     // monthly: 2 x 31 + 1
		{"0 2 1 1 *", 99},     // yearly: capped at expire_logs_days' maximum
		{"not a schedule", 8}, // Validate reports it
	} {
		cfg := Config{Full: c.full}
		if got := cfg.BinlogExpireDays(); got != c.want {
			t.Errorf("full %q: %d days, want %d", c.full, got, c.want)
		}
	}
}
