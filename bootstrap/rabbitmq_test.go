package bootstrap

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/runner"
)

// fakeBroker answers the rabbitmq step's probes: whether an Erlang VM runs,
// and systemd's view of the package's service.
type fakeBroker struct {
	beam bool
	ran  []string
}

func (f *fakeBroker) RunCmd(ctx context.Context, c runner.Cmd) ([]byte, error) {
	line := c.Name + " " + strings.Join(c.Args, " ")
	f.ran = append(f.ran, line)
	switch {
	case c.Name == "pidof" && f.beam:
		return []byte("4242\n"), nil
	case c.Name == "pidof":
		return nil, errors.New("exit status 1")
	case c.Name == "systemctl" && c.Args[0] == "is-enabled":
		return []byte("disabled\n"), errors.New("exit status 1")
	case c.Name == "systemctl" && c.Args[0] == "is-active":
		return []byte("inactive\n"), errors.New("exit status 3")
	case c.Name == "chown":
		return nil, nil
	}
	return nil, errors.New("unexpected " + line)
}

func (f *fakeBroker) StartDaemon(string, []string, string) (int, error) {
	return 0, errors.New("no daemons")
}

func rabbitBootstrap(t *testing.T, h *fakeBroker, dryRun bool) (*Bootstrap, string) {
	t.Helper()
	c, err := config.Parse("example.yaml", config.Example())
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	return &Bootstrap{Cfg: c, Node: "ctl2", R: h, Root: root, DryRun: dryRun}, root
}

// The package's standalone node (created when apt started the service) is
// moved aside, never deleted, so the broker boots blank and joins its peer;
// the second run changes nothing.
func TestRabbitMQStepKeepsTheStandaloneData(t *testing.T) {
	h := &fakeBroker{}
	b, root := rabbitBootstrap(t, h, false)
	node := filepath.Join(root, rabbitMQMnesia, "rabbit@ctl2")
	if err := os.MkdirAll(node, 0o750); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(node, "msg_store"), []byte("a message"), 0o640)

	dry := *b
	dry.DryRun = true
	if changed, detail, err := dry.rabbitmq(context.Background()); err != nil || !changed || !strings.HasPrefix(detail, "would have moved") {
		t.Fatalf("dry run: changed=%v detail=%q err=%v", changed, detail, err)
	}
	if _, err := os.Stat(filepath.Join(node, "msg_store")); err != nil {
		t.Fatalf("the dry run touched the data: %v", err)
	}

	changed, detail, err := b.rabbitmq(context.Background())
	if err != nil || !changed {
		t.Fatalf("changed=%v detail=%q err=%v", changed, detail, err)
	}
	kept, _ := filepath.Glob(filepath.Join(root, rabbitMQMnesia+".pre-haconf-*", "rabbit@ctl2", "msg_store"))
	if len(kept) != 1 {
		t.Fatalf("standalone data not kept aside; detail %q", detail)
	}
	if got, _ := os.ReadFile(kept[0]); string(got) != "a message" {
		t.Errorf("kept copy holds %q", got)
	}
	if entries, err := os.ReadDir(filepath.Join(root, rabbitMQMnesia)); err != nil || len(entries) != 0 {
		t.Errorf("mnesia dir not blank: %v %v", entries, err)
	}
	if !strings.Contains(detail, rabbitMQMnesia+".pre-haconf-") {
		t.Errorf("detail does not say where the data went: %q", detail)
	}

	if changed, detail, err := b.rabbitmq(context.Background()); err != nil || changed {
		t.Fatalf("second run: changed=%v detail=%q err=%v", changed, detail, err)
	}
}

// A running broker (Pacemaker runs it: an install from before this step)
// keeps its data: only the marker is written.
func TestRabbitMQStepLeavesARunningBroker(t *testing.T) {
	h := &fakeBroker{beam: true}
	b, root := rabbitBootstrap(t, h, false)
	node := filepath.Join(root, rabbitMQMnesia, "rabbit@ctl2")
	os.MkdirAll(node, 0o750)
	changed, detail, err := b.rabbitmq(context.Background())
	if err != nil || !changed || !strings.Contains(detail, "left the running") {
		t.Fatalf("changed=%v detail=%q err=%v", changed, detail, err)
	}
	if _, err := os.Stat(node); err != nil {
		t.Errorf("running node's data moved: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, rabbitMQMarker)); err != nil {
		t.Errorf("no marker: %v", err)
	}
}

// A node that was clustered keeps its data even when its broker is not
// running (an upgrade while the node was down): it rejoins with it.
func TestRabbitMQStepLeavesAClusteredNode(t *testing.T) {
	h := &fakeBroker{}
	b, root := rabbitBootstrap(t, h, false)
	node := filepath.Join(root, rabbitMQMnesia, "rabbit@ctl2")
	os.MkdirAll(node, 0o750)
	// As RabbitMQ 3.10.8 writes it.
	os.WriteFile(filepath.Join(node, "cluster_nodes.config"), []byte("{[rabbit@ctl1,rabbit@ctl2],[rabbit@ctl1,rabbit@ctl2]}.\n"), 0o640)
	changed, detail, err := b.rabbitmq(context.Background())
	if err != nil || !changed || !strings.Contains(detail, "clustered with rabbit@ctl1") {
		t.Fatalf("changed=%v detail=%q err=%v", changed, detail, err)
	}
	if _, err := os.Stat(filepath.Join(node, "cluster_nodes.config")); err != nil {
		t.Errorf("clustered node's data moved: %v", err)
	}
}
