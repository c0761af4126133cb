package main

import (
	"bytes"
	"fmt"
	"io"
	"net"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/secretfile"
	"github.com/haconf/haconf/rabbitmq"
)

func newOpenStackCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "openstack",
		Short: "Print what OpenStack's services need to use the pair",
		Example: `  haconf openstack messaging
  haconf openstack messaging --password-file /etc/haconf/rabbitmq-openstack.password`,
	}
	cmd.AddCommand(newOpenStackMessagingCmd(g))
	return cmd
}

type openStackMessagingOptions struct {
	user, vhost, passwordFile string
	output                    string
}

func newOpenStackMessagingCmd(g *globals) *cobra.Command {
	o := &openStackMessagingOptions{}
	cmd := &cobra.Command{
		Use:   "messaging",
		Short: "Print the oslo.messaging settings (transport_url, failover options) for the pair's RabbitMQ",
		Long: `Prints an ini snippet for every OpenStack service's configuration file (nova.conf,
neutron.conf, cinder.conf, ...): [DEFAULT] transport_url and the
[oslo_messaging_rabbit] options that decide how the services live through a
controller failover, for the configured rabbitmq.mode, each with the reason it
is there; and, as comments before it, the rabbitmqctl commands that create the
user and its permissions on the broker once.

transport_url lists both controllers' management addresses (port 5672) in
modes mirrored and quorum (not the witness: it serves clients only while a
controller does too), and the API VIP in active-passive mode. The user,
password and vhost are percent-encoded; the vhost / is %2F.

The password is never printed unless --password-file gives it: the URL holds
the placeholder PASSWORD instead. The file (one line) must be readable by its
owner only (chmod 600). A password with a / is refused: oslo.messaging 14
hands it to kombu unescaped and every connection fails.

The options are checked against oslo.messaging 14.0.3 (Debian 12). Changes
nothing; needs haconf.yaml only.`,
		Example: `  haconf openstack messaging -c /etc/haconf/haconf.yaml > messaging.conf   # then merge it into nova.conf, neutron.conf, ...
  haconf openstack messaging --user nova --vhost openstack
  install -m 600 /dev/null /root/rabbitmq-openstack.password && openssl rand -hex 24 > /root/rabbitmq-openstack.password
  haconf openstack messaging --password-file /root/rabbitmq-openstack.password
  haconf openstack messaging -o json | jq -r .transport_url`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.loadConfig()
			if err != nil {
				return err
			}
			if err := rabbitmq.CheckOsloUser(o.user); err != nil {
				return cli.Usagef("--user: %v", err)
			}
			if err := rabbitmq.CheckOsloVhost(o.vhost); err != nil {
				return cli.Usagef("--vhost: %v", err)
			}
			var password string
			if o.passwordFile != "" {
				if password, err = readPasswordFile(o.passwordFile); err != nil {
					return err
				}
			}
			s, err := rabbitmq.NewOsloSettings(rabbitmq.OsloInput{
				Config:       c.RabbitMQ,
				Brokers:      messagingBrokers(c),
				User:         o.user,
				Vhost:        o.vhost,
				Password:     password,
				PasswordFile: o.passwordFile,
			})
			if err != nil {
				return err
			}
			return cli.Output(cmd.OutOrStdout(), o.output, "haconf.openstack.messaging/v1", s, func(w io.Writer, s rabbitmq.OsloSettings) { s.WriteText(w) })
		},
	}
	cmd.Flags().StringVar(&o.user, "user", "openstack", "the RabbitMQ user the services connect as")
	cmd.Flags().StringVar(&o.vhost, "vhost", "/", "the RabbitMQ virtual host")
	cmd.Flags().StringVar(&o.passwordFile, "password-file", "", "a file (mode 0600) holding the user's password, put in transport_url (default: the placeholder PASSWORD)")
	cli.OutputFlag(cmd, &o.output, "text", "json")
	return cmd
}

// messagingBrokers are the addresses clients reach RabbitMQ at: both
// controllers' management addresses, or the VIP, which follows the one
// broker, in active-passive mode.
func messagingBrokers(c *config.Config) []string {
	if c.RabbitMQ.Mode == rabbitmq.ModeActivePassive {
		p, _ := c.VIP.Prefix() // valid: Load checked it
		return []string{net.JoinHostPort(p.Addr().String(), rabbitmq.DefaultPort)}
	}
	var out []string
	for _, n := range c.Nodes {
		out = append(out, net.JoinHostPort(n.Management, rabbitmq.DefaultPort))
	}
	return out
}

// readPasswordFile reads the one-line password in path, refusing a file
// that group or others can read.
func readPasswordFile(path string) (string, error) {
	b, err := secretfile.Read(path, 4<<10, 0o600)
	if err != nil {
		return "", fmt.Errorf("--password-file: %w", err)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	b = bytes.TrimSuffix(b, []byte("\r"))
	if err := rabbitmq.CheckOsloPassword(string(b)); err != nil {
		return "", fmt.Errorf("--password-file: %s: %v", path, err)
	}
	return string(b), nil
}
