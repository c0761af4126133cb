package rabbitmq

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSeed(t *testing.T) {
	// The rendered lab rabbitmq.conf (templates' golden file for ctl1).
	conf, err := os.ReadFile("../templates/testdata/golden/example-ctl1-drbd9/etc/rabbitmq/rabbitmq.conf")
	if err != nil {
		t.Fatal(err)
	}
	if got := Seed(conf); got != "rabbit@ctl1" {
		t.Errorf("Seed = %q, want rabbit@ctl1", got)
	}
	if got := Seed([]byte("cluster_formation.classic_config.nodes.3 = rabbit@c\ncluster_formation.classic_config.nodes.2 = rabbit@b\n")); got != "rabbit@b" {
		t.Errorf("Seed = %q, want the lowest index", got)
	}
	if got := Seed([]byte("listeners.tcp.default = 5672\n")); got != "" {
		t.Errorf("Seed = %q without a peer list", got)
	}
}

// A blank node that is not the seed does not boot while the seed does not
// answer: it would form a cluster of its own.
func TestStartBlankNodeWaitsForTheSeed(t *testing.T) {
	dir := t.TempDir()
	// A port nothing listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	l.Close()
	conf := filepath.Join(dir, "rabbitmq.conf")
	os.WriteFile(conf, []byte("cluster_formation.classic_config.nodes.1 = rabbit@127.0.0.1\ncluster_formation.classic_config.nodes.2 = rabbit@localhost\n"), 0o644)
	started := false
	a := &Agent{Nodename: "rabbit@localhost", MnesiaBase: filepath.Join(dir, "mnesia"), Port: port, Config: conf,
		Daemon: func(string, []string, string) (int, error) { started = true; return 0, errors.New("must not start") }}
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	err = a.waitSeed(ctx)
	if err == nil || !strings.Contains(err.Error(), "waits for the seed rabbit@127.0.0.1") {
		t.Fatalf("waitSeed = %v", err)
	}
	if started {
		t.Error("the server was started")
	}
	// Not blank (it booted before): no wait, its database knows its cluster.
	os.MkdirAll(filepath.Join(a.MnesiaBase, a.Nodename), 0o750)
	os.WriteFile(filepath.Join(a.MnesiaBase, a.Nodename, "schema.DAT"), nil, 0o640)
	if err := a.waitSeed(context.Background()); err != nil {
		t.Errorf("non-blank node waited: %v", err)
	}
	// The seed itself never waits.
	b := &Agent{Nodename: "rabbit@127.0.0.1", MnesiaBase: filepath.Join(dir, "other"), Port: port, Config: conf}
	if err := b.waitSeed(context.Background()); err != nil {
		t.Errorf("the seed waited: %v", err)
	}
}
