package bootstrap

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/templates"
)

// fakeCIB is a cluster's node attributes and CIB pushes, as the cib step
// sees them through crm_attribute and cibadmin.
type fakeCIB struct {
	mu     sync.Mutex
	attrs  map[string]string // node -> haconf-agents
	pushed []string          // scopes replaced
}

func (f *fakeCIB) RunCmd(ctx context.Context, c runner.Cmd) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a := c.Args
	switch {
	case c.Name == "crm_attribute" && a[len(a)-2] == "-G":
		if v, ok := f.attrs[a[1]]; ok {
			return []byte(v + "\n"), nil
		}
		return nil, errors.New("exit 105: attribute not found")
	case c.Name == "crm_attribute" && a[len(a)-2] == "-v":
		f.attrs[a[1]] = a[len(a)-1]
		return nil, nil
	case c.Name == "cibadmin" && a[0] == "--query":
		return []byte("<configuration/>"), nil // a fresh CIB: everything differs
	case c.Name == "cibadmin" && a[0] == "--replace":
		f.pushed = append(f.pushed, a[2])
		if a[2] == "configuration" || a[2] == "nodes" {
			// As Pacemaker does: the new nodes section has no attributes.
			clear(f.attrs)
		}
		return nil, nil
	}
	return nil, errors.New("unexpected " + c.Name + " " + strings.Join(a, " "))
}

func (f *fakeCIB) StartDaemon(string, []string, string) (int, error) {
	return 0, errors.New("no daemons")
}

// The first node pushes a CIB naming haconf's agents only once its peer
// announces the same agents: an upgrade that pushed earlier made the
// peer's probe say "not installed" while DRBD was Primary there.
func TestCIBWaitsForThePeersAgents(t *testing.T) {
	c, err := config.Parse("example.yaml", config.Example())
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	files, err := templates.Render(c, "ctl1", templates.Options{DRBDVersion: "9"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := templates.Write(root, files); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		f := &fakeCIB{attrs: map[string]string{}}
		b := &Bootstrap{Cfg: c, Node: "ctl1", R: f, DRBDVersion: "9", Root: root, Timeout: time.Minute}
		digest, err := b.agentsDigest()
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { _, _, err := b.cib(context.Background()); done <- err }()
		time.Sleep(30 * time.Second)
		synctest.Wait()
		f.mu.Lock()
		if f.attrs["ctl1"] != digest || len(f.pushed) != 0 {
			t.Fatalf("before the peer has the agents: attrs %v, pushed %v", f.attrs, f.pushed)
		}
		f.attrs["ctl2"] = digest // ctl2's bootstrap reached its cib step
		f.mu.Unlock()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if len(f.pushed) == 0 {
			t.Fatal("nothing pushed once the peer had the agents")
		}
		// The push dropped the node attributes; both are announced again
		// (else this node's next bootstrap, after a crash, waits in vain).
		if f.attrs["ctl1"] != digest || f.attrs["ctl2"] != digest {
			t.Fatalf("after the push: attrs %v, want both %s", f.attrs, digest)
		}

		// A peer that never runs bootstrap: a clear error, nothing pushed.
		f = &fakeCIB{attrs: map[string]string{"ctl2": "0123456789abcdef"}}
		b.R = f
		_, _, err = b.cib(context.Background())
		if err == nil || !strings.Contains(err.Error(), "run haconf bootstrap on ctl2 too") || len(f.pushed) != 0 {
			t.Fatalf("peer with other agents: %v, pushed %v", err, f.pushed)
		}
	})
}
