package rabbitmq

import (
	"reflect"
	"testing"

	"github.com/haconf/haconf/internal/fixtures"
)

// Fixtures in testdata were captured from RabbitMQ 3.10.8 (Debian 12): two
// nodes rabbit@localhost and rabbit2@localhost clustered in a private
// network namespace, policy ha-all as haconf sets it, three classic queues
// and one quorum queue with one message each.
func readFixture(t testing.TB, name string) []byte { return fixtures.Read(t, "rabbitmq", name) }

func TestParseClusterStatus(t *testing.T) {
	both := []string{"rabbit2@localhost", "rabbit@localhost"}
	tests := []struct {
		file           string
		nodes, running []string
		stopped        []string
	}{
		{"rabbitmqctl-3108-cluster_status-single-node.json", []string{"rabbit@localhost"}, []string{"rabbit@localhost"}, nil},
		{"rabbitmqctl-3108-cluster_status-two-running.json", both, both, nil},
		{"rabbitmqctl-3108-cluster_status-peer-stopped.json", both, []string{"rabbit@localhost"}, []string{"rabbit2@localhost"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := ParseClusterStatus(readFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.Nodes(), tt.nodes) || len(c.RunningNodes) != len(tt.running) || !reflect.DeepEqual(c.Stopped(), tt.stopped) {
				t.Errorf("nodes %v running %v stopped %v", c.Nodes(), c.RunningNodes, c.Stopped())
			}
			for _, n := range tt.running {
				if !c.Running(n) {
					t.Errorf("%s not running", n)
				}
			}
			if c.ClusterName != "rabbit@vm" || c.Versions["rabbit@localhost"] != "3.10.8" || len(c.Partitions) != 0 || len(c.Alarms) != 0 {
				t.Errorf("status %+v", c)
			}
			if c.Maintenance["rabbit@localhost"] != "not under maintenance" {
				t.Errorf("maintenance %v", c.Maintenance)
			}
		})
	}
}

func TestParseClusterStatusPartitionAlarm(t *testing.T) {
	in := `{"alarms":[{"node":"rabbit@ctl1","resource":"disk","type":"resource_limit"}],"disk_nodes":["rabbit@ctl1","rabbit@ctl2"],` +
		`"running_nodes":["rabbit@ctl1"],"partitions":{"rabbit@ctl1":["rabbit@ctl2"]}}`
	c, err := ParseClusterStatus([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c.Partitions, map[string][]string{"rabbit@ctl1": {"rabbit@ctl2"}}) || !reflect.DeepEqual(c.Alarms, []string{"disk on rabbit@ctl1"}) {
		t.Errorf("got %+v", c)
	}
	for _, bad := range []string{"", "{}", "[]", readNodeDown(t)} {
		if _, err := ParseClusterStatus([]byte(bad)); err == nil {
			t.Errorf("%.30q parsed", bad)
		}
	}
}

func readNodeDown(t *testing.T) string {
	return string(readFixture(t, "rabbitmqctl-3108-cluster_status-node-down-stderr.txt"))
}

func TestParsePolicies(t *testing.T) {
	tests := []struct {
		file     string
		n        int
		mode     string
		syncMode string
	}{
		{"rabbitmqctl-3108-list_policies-ha-all.json", 1, "all", "automatic"},
		{"rabbitmqctl-3108-list_policies-ha-all-manual.json", 1, "all", "manual"},
		{"rabbitmqctl-3108-list_policies-none.json", 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ps, err := ParsePolicies(readFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != tt.n {
				t.Fatalf("policies %+v", ps)
			}
			p, ok := FindPolicy(ps, "/", "ha-all")
			if ok != (tt.n > 0) || p.HAMode() != tt.mode || p.HASyncMode() != tt.syncMode {
				t.Errorf("ha-all %+v %v", p, ok)
			}
			if ok && (p.Pattern != `^(?!amq\.).*` || p.ApplyTo != "queues") {
				t.Errorf("policy %+v", p)
			}
		})
	}
	obj := `[{"vhost":"/","name":"ha","pattern":".*","apply-to":"all","definition":{"ha-mode":"exactly","ha-params":2},"priority":"1"}]`
	ps, err := ParsePolicies([]byte(obj))
	if err != nil || len(ps) != 1 || ps[0].HAMode() != "exactly" || ps[0].Priority != 1 {
		t.Errorf("object definition: %+v %v", ps, err)
	}
	if _, err := ParsePolicies([]byte(`[{"name":"x","definition":"{bad"}]`)); err == nil {
		t.Error("bad definition parsed")
	}
}

func TestParseQueues(t *testing.T) {
	type counts struct{ mirrors, synced int }
	tests := []struct {
		file   string
		policy string
		want   counts // of every classic queue
		quorum [2]int // members, online of qq-test
	}{
		{"rabbitmqctl-3108-list_queues-mirrored-synced.json", "ha-all", counts{1, 1}, [2]int{2, 2}},
		{"rabbitmqctl-3108-list_queues-peer-stopped.json", "ha-all", counts{0, 0}, [2]int{2, 1}},
		{"rabbitmqctl-3108-list_queues-mirror-unsynchronised.json", "ha-all", counts{1, 0}, [2]int{2, 2}},
		{"rabbitmqctl-3108-list_queues-no-policy.json", "", counts{0, 0}, [2]int{2, 2}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			qs, err := ParseQueues(readFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(qs) != 4 {
				t.Fatalf("queues %+v", qs)
			}
			for _, q := range qs {
				if !q.Durable || q.State != "running" || q.Messages != 1 {
					t.Errorf("%s: %+v", q.Name, q)
				}
				if q.Type == "quorum" {
					if q.Name != "qq-test" || q.Leader != "rabbit@localhost" || [2]int{len(q.Members), len(q.Online)} != tt.quorum {
						t.Errorf("quorum queue %+v", q)
					}
					continue
				}
				if q.Type != "classic" || q.Policy != tt.policy || (counts{q.Mirrors, q.SyncedMirrors}) != tt.want {
					t.Errorf("classic queue %+v", q)
				}
				total, synced := q.Replicas()
				if total != 1+tt.want.mirrors || synced != 1+tt.want.synced {
					t.Errorf("%s: replicas %d/%d", q.Name, synced, total)
				}
			}
		})
	}
	if _, err := ParseQueues([]byte(`[{"type":"classic"}]`)); err == nil {
		t.Error("queue without name parsed")
	}
	if qs, err := ParseQueues([]byte(`[]`)); err != nil || len(qs) != 0 {
		t.Errorf("empty: %v %v", qs, err)
	}
}

func FuzzParseQueues(f *testing.F) {
	f.Add(readFixture(f, "rabbitmqctl-3108-list_queues-mirrored-synced.json"))
	f.Fuzz(func(t *testing.T, data []byte) {
		qs, err := ParseQueues(data)
		if err != nil {
			return
		}
		for _, q := range qs {
			if total, synced := q.Replicas(); synced < 0 || total < 0 || q.Name == "" {
				t.Fatalf("queue %+v", q)
			}
		}
	})
}
