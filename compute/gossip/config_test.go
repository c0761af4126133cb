package gossip

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/haconf/haconf/internal/validate"
)

func TestValidate(t *testing.T) {
	good := func() Config { return testConfig("rack1", "cmp1", RoleAgent, 1, 27001) }
	for _, c := range []struct {
		name   string
		change func(*Config)
		want   []string // one substring per expected problem
	}{
		{"good", func(*Config) {}, nil},
		{"lan by default", func(c *Config) { c.Profile = "" }, nil},
		{"empty", func(c *Config) { *c = Config{} }, []string{
			"gossip.name: is required",
			`gossip.domain: must be`,
			"gossip.role: must be",
			"gossip.bind.management: is required",
			"gossip.bind.storage: is required",
			"gossip.key: is required",
		}},
		{"bad values", func(c *Config) {
			c.Domain = "rack/1"
			c.Role = "compute"
			c.Bind[Storage] = netip.MustParseAddrPort("0.0.0.0:27001")
			c.Seeds = map[Link][]string{Management: {""}, "tenant": {"x:1"}}
			c.Key = []byte("short")
			c.Profile = "wan"
		}, []string{
			`gossip.domain: "rack/1": must be`,
			`gossip.role: "compute": must be "agent" or "controller"`,
			`gossip.bind.storage: "0.0.0.0:27001": must be a specific address`,
			"gossip.seeds.management[0]: is empty",
			"gossip.seeds.tenant: is not a link",
			"gossip.key: is 5 bytes, must be 16, 24 or 32",
			`gossip.profile: "wan": must be lan or local`,
		}},
		{"one address for both", func(c *Config) {
			c.Bind[Storage] = c.Bind[Management]
		}, []string{`gossip.bind.storage: "127.0.1.1:27001": is the management address too`}},
		{"no port", func(c *Config) {
			c.Bind[Management] = netip.AddrPortFrom(c.Bind[Management].Addr(), 0)
		}, []string{`gossip.bind.management: "127.0.1.1:0": must be an address and a port`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := good()
			c.change(&cfg)
			v := validate.New("gossip")
			cfg.Validate(v)
			errs := validate.Flatten(v.Err())
			if len(errs) != len(c.want) {
				t.Errorf("got %d problems, want %d: %v", len(errs), len(c.want), errs)
			}
			for _, w := range c.want {
				found := false
				for _, e := range errs {
					found = found || strings.Contains(e.Error(), w)
				}
				if !found {
					t.Errorf("no problem %q in %v", w, errs)
				}
			}
		})
	}
}

func TestJoinRefusesBadConfig(t *testing.T) {
	cfg := testConfig("rack1", "cmp1", RoleAgent, 1, 27002)
	cfg.Key = nil
	if p, err := Join(t.Context(), cfg); err == nil {
		p.Shutdown()
		t.Fatal("Join without a key succeeded")
	}
}

func TestDeriveKey(t *testing.T) {
	secret := []byte("corosync authkey bytes")
	k := DeriveKey(secret)
	if len(k) != 32 {
		t.Fatalf("key is %d bytes, want 32", len(k))
	}
	if err := memberlist.ValidateKey(k); err != nil {
		t.Errorf("memberlist refuses the key: %v", err)
	}
	want, err := hkdf.Key(sha256.New, secret, nil, keyInfo, 32)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k, want) {
		t.Errorf("DeriveKey = %x, the standard library's HKDF-SHA256 gives %x", k, want)
	}
	if bytes.Equal(k, DeriveKey([]byte("another secret"))) {
		t.Error("two secrets give the same key")
	}
}

// The node meta stays far under memberlist's limit, whatever the health says.
func TestMetaSize(t *testing.T) {
	yes := true
	b, err := json.Marshal(meta{Role: RoleController, Health: Health{
		NovaCompute: true, Libvirt: &yes, Maintenance: true,
		Checked: time.Date(2025, 12, 31, 23, 59, 59, 999999999, time.FixedZone("", -11*3600)),
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > memberlist.MetaMaxSize/2 {
		t.Errorf("meta is %d bytes: %s", len(b), b)
	}
	t.Logf("largest meta: %d bytes", len(b))
}
