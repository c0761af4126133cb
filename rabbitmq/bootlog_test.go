package rabbitmq

import (
	"strings"
	"testing"
)

// Logs of RabbitMQ 3.10.8 node a, clustered with b, stopped first and
// started alone (captured from TestAgentStartWaitsForPeer; node names
// replaced, retry timeout 3000 ms): the end of an earlier, normal boot,
// then the boot that waits for b.
const (
	normalBoot = `2026-11-21 15:38:37.121669+00:00 [info] <0.223.0> Waiting for Mnesia tables for 3000 ms, 1 retries left
2026-11-21 15:38:37.121790+00:00 [info] <0.223.0> Successfully synced tables from a peer
`
	waitingBoot = `2026-11-21 15:38:45.956714+00:00 [info] <0.223.0>  Starting RabbitMQ 3.10.8 on Erlang 25.2.3 [jit]
2026-11-21 15:38:46.004092+00:00 [info] <0.223.0> Waiting for Mnesia tables for 3000 ms, 1 retries left
`
	waitingRetry = `2026-11-21 15:38:49.005006+00:00 [warning] <0.223.0> Error while waiting for Mnesia tables: {timeout_waiting_for_tables,
2026-11-21 15:38:49.005006+00:00 [warning] <0.223.0>                                         ['rabbit@ctl1',
2026-11-21 15:38:49.005006+00:00 [warning] <0.223.0>                                          'rabbit@ctl2'],
2026-11-21 15:38:49.005006+00:00 [warning] <0.223.0>                                         [rabbit_durable_queue]}
2026-11-21 15:38:49.005145+00:00 [info] <0.223.0> Waiting for Mnesia tables for 3000 ms, 0 retries left
`
	// The server's standard output when it gives up.
	bootFailed = `  Starting broker...
BOOT FAILED
===========
Timeout contacting cluster nodes: ['rabbit@ctl2'].

BACKGROUND
==========

This cluster node was shut down while other nodes were still running.
`
)

func TestWaitingHint(t *testing.T) {
	const hint = "waiting for rabbit@ctl2, which was running when this node stopped: start it first, or force_boot if it is lost"
	for _, tc := range []struct{ name, log, want string }{
		{"normal boot", normalBoot, ""},
		{"nothing", "Starting broker...\n", ""},
		{"first wait", normalBoot + waitingBoot, "waiting for the peer, which was running when this node stopped: start it first, or force_boot if it is lost"},
		// The node list names this node too.
		{"after a retry", normalBoot + waitingBoot + waitingRetry, hint},
		{"boot failed", bootFailed, hint},
		// An earlier boot's wait, then a boot that got its tables.
		{"waited before", waitingBoot + waitingRetry + strings.ReplaceAll(waitingBoot, "Waiting for Mnesia", "Foo") + normalBoot, ""},
	} {
		if got := WaitingHint([]byte(tc.log), "rabbit@ctl1"); got != tc.want {
			t.Errorf("%s: WaitingHint = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestBannerLogs(t *testing.T) {
	banner := `
  ##  ##      RabbitMQ 3.10.8

  Doc guides:  https://rabbitmq.com/documentation.html

  Logs: /var/log/rabbitmq/rabbit@ctl1.log
        /var/log/rabbitmq/rabbit@ctl1_upgrade.log
        <stdout>

  Config file(s): /etc/rabbitmq/rabbitmq.conf

  Starting broker... completed with 0 plugins.
`
	got := strings.Join(BannerLogs([]byte(banner)), " ")
	if got != "/var/log/rabbitmq/rabbit@ctl1.log /var/log/rabbitmq/rabbit@ctl1_upgrade.log" {
		t.Fatalf("BannerLogs: %s", got)
	}
}
