package rabbitmq

import (
	"os"
	"testing"
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
