package rabbitmq

import (
	"os"
	"strings"
)

// Debian's RabbitMQ layout: the defaults of the resource agent's
// parameters (ocf:haconf:rabbitmq).
const (
	DefaultServer     = "/usr/sbin/rabbitmq-server"
	DefaultMnesiaBase = "/var/lib/rabbitmq/mnesia"
	DefaultPort       = "5672"
	DefaultServerLog  = "/var/log/rabbitmq/haconf-server.log"
	DefaultUser       = "rabbitmq"
	DefaultConfig     = "/etc/rabbitmq/rabbitmq.conf"
)

// DefaultNodename is RabbitMQ's default node name: rabbit@ and the short
// host name.
func DefaultNodename() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	short, _, _ := strings.Cut(host, ".")
	return "rabbit@" + short
}
