package bootstrap

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/haconf/haconf/rabbitmq"
)

// RabbitMQ's data under Debian's layout.
const (
	rabbitMQHome   = "/var/lib/rabbitmq"
	rabbitMQMnesia = rabbitMQHome + "/mnesia"
	// rabbitMQMarker records that bootstrap handed this node's broker to
	// Pacemaker; it is written once and never removed.
	rabbitMQMarker = rabbitMQHome + "/.haconf-handed-over"
)

// rabbitmq hands the broker to Pacemaker. Debian's package starts a
// standalone node (under systemd) at install time; a node with data never
// uses peer discovery, so the second controller would stay on its own. The
// first run therefore stops and disables the package's service and moves
// the standalone node's data aside (kept, never deleted) so the broker
// boots blank under ocf:haconf:rabbitmq and joins its peer by itself. A
// broker that is already running (Pacemaker runs it) is left as it is.
func (b *Bootstrap) rabbitmq(ctx context.Context) (bool, string, error) {
	var did []string
	if b.systemd() {
		enabled, _ := b.run(ctx, "systemctl", "is-enabled", "rabbitmq-server")
		active, _ := b.run(ctx, "systemctl", "is-active", "rabbitmq-server")
		if strings.TrimSpace(string(enabled)) == "enabled" || strings.TrimSpace(string(active)) == "active" {
			did = append(did, "stopped and disabled rabbitmq-server.service (Pacemaker runs RabbitMQ)")
			if !b.DryRun {
				if _, err := b.run(ctx, "systemctl", "disable", "--now", "rabbitmq-server"); err != nil {
					return false, "", err
				}
			}
		}
	}
	if b.Cfg.RabbitMQ.Mode == rabbitmq.ModeActivePassive {
		// The broker's data lives on the DRBD volume (the datadir step).
		return b.report(did, "RabbitMQ runs from the DRBD volume")
	}
	if _, err := os.Stat(b.path(rabbitMQMarker)); err == nil {
		return b.report(did, "RabbitMQ already handed to Pacemaker")
	}
	if _, err := b.run(ctx, "pidof", "beam.smp"); err == nil {
		// Running without the marker: an install from before this step
		// (Pacemaker runs it). Its data is the cluster's: leave it.
		did = append(did, "left the running RabbitMQ's data as it is")
	} else if peers := clusteredWith(b.path(rabbitMQMnesia), "rabbit@"+b.Node); len(peers) > 0 {
		// A node that was clustered (an install from before this step)
		// rejoins its cluster with its own data: never blank it.
		did = append(did, "left RabbitMQ's data as it is (clustered with "+strings.Join(peers, ", ")+")")
	} else if entries, _ := os.ReadDir(b.path(rabbitMQMnesia)); len(entries) > 0 {
		aside := rabbitMQMnesia + ".pre-haconf-" + time.Now().UTC().Format("20060102T150405Z")
		did = append(did, fmt.Sprintf("moved the package's standalone RabbitMQ data %s to %s (kept) so the broker joins its peer blank", rabbitMQMnesia, aside))
		if !b.DryRun {
			if err := os.Rename(b.path(rabbitMQMnesia), b.path(aside)); err != nil {
				return false, "", err
			}
			if err := os.Mkdir(b.path(rabbitMQMnesia), 0o750); err != nil {
				return false, "", err
			}
			if _, err := b.run(ctx, "chown", "rabbitmq:rabbitmq", b.path(rabbitMQMnesia)); err != nil {
				return false, "", err
			}
		}
	}
	did = append(did, "marked "+rabbitMQMarker)
	if !b.DryRun {
		marker := []byte("RabbitMQ on this node is run by Pacemaker (ocf:haconf:rabbitmq); written by haconf bootstrap\n")
		if err := os.WriteFile(b.path(rabbitMQMarker), marker, 0o644); err != nil {
			return false, "", err
		}
	}
	return b.report(did, "")
}

// clusteredWith lists the other nodes a RabbitMQ node's database names as
// cluster members (its cluster_nodes.config), none for a standalone node.
func clusteredWith(mnesia, node string) []string {
	b, err := os.ReadFile(filepath.Join(mnesia, node, "cluster_nodes.config"))
	if err != nil {
		return nil
	}
	var peers []string
	for _, f := range strings.FieldsFunc(string(b), func(r rune) bool { return strings.ContainsRune("{}[],.'\" \n\t", r) }) {
		if strings.Contains(f, "@") && f != node && !slices.Contains(peers, f) {
			peers = append(peers, f)
		}
	}
	return peers
}

// report turns what a step did into its result; unchanged says why nothing
// was done.
func (b *Bootstrap) report(did []string, unchanged string) (bool, string, error) {
	if len(did) == 0 {
		return false, unchanged, nil
	}
	if b.DryRun {
		return true, "would have " + strings.Join(did, "; "), nil
	}
	return true, strings.Join(did, "; "), nil
}
