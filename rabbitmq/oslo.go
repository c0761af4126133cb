package rabbitmq

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// What OpenStack's services (nova, neutron, cinder, ...) set to reach the
// pair's brokers through oslo.messaging's rabbit driver: the transport_url
// and the [oslo_messaging_rabbit] options that decide how a client lives
// through a controller failover, for each mode. Every option name is one
// of oslo.messaging 14.0.3's (Debian 12): cmd/haconf's tests check the
// printed ones against its oslo-config-generator output.

// PasswordPlaceholder stands for the password in a transport_url printed
// without a password file.
const PasswordPlaceholder = "PASSWORD"

// ActivePassiveNodename is the broker's node name in active-passive mode:
// the default of ocf:rabbitmq:rabbitmq-server's nodename, which haconf's CIB
// keeps, so the broker is the same node (and its Mnesia directory on the
// DRBD volume the same) on either controller. rabbitmqctl must be told
// (-n): rabbitmq-env.conf names the host's own node.
const ActivePassiveNodename = "rabbit@localhost"

// OsloInput is what OsloSettings needs from haconf.yaml and the command line.
type OsloInput struct {
	Config Config
	// Brokers are the addresses (host:port) clients connect to: both
	// controllers' management addresses, or the VIP in active-passive mode.
	Brokers []string
	User    string
	Vhost   string
	// Password is the user's password; empty prints PasswordPlaceholder.
	Password string
	// PasswordFile is where Password came from (shown in the broker
	// commands).
	PasswordFile string
}

// OsloSettings is the oslo.messaging configuration of one mode.
type OsloSettings struct {
	Mode         string   `json:"mode"`
	Brokers      []string `json:"brokers"`
	User         string   `json:"user"`
	Vhost        string   `json:"vhost"`
	PasswordFile string   `json:"password_file,omitempty"`
	// TransportURL holds PasswordPlaceholder when PasswordFile is empty.
	TransportURL string `json:"transport_url"`
	// Options are the ini settings in order, [DEFAULT] transport_url first.
	Options []OsloOption `json:"options"`
	// Notes are comments of the [oslo_messaging_rabbit] section: options
	// deliberately not set, and why.
	Notes []string `json:"notes"`
	// BrokerCommands create the user and its permissions, once.
	BrokerCommands []BrokerCommand `json:"broker_commands"`
	// BrokerWhere says where to run BrokerCommands.
	BrokerWhere string `json:"broker_where"`
}

// OsloOption is one setting of a service's configuration file.
type OsloOption struct {
	Section string `json:"section"`
	Name    string `json:"name"`
	Value   string `json:"value"`
	Why     string `json:"why"`
}

// BrokerCommand is one shell command run on a controller.
type BrokerCommand struct {
	Command string `json:"command"`
	Why     string `json:"why"`
}

// NewOsloSettings returns the settings for in's mode. It refuses a user,
// password or vhost that oslo.messaging 14 cannot hand to kombu intact.
func NewOsloSettings(in OsloInput) (OsloSettings, error) {
	if err := CheckOsloUser(in.User); err != nil {
		return OsloSettings{}, err
	}
	if err := CheckOsloVhost(in.Vhost); err != nil {
		return OsloSettings{}, err
	}
	if in.Password != "" {
		if err := CheckOsloPassword(in.Password); err != nil {
			return OsloSettings{}, err
		}
	}
	if len(in.Brokers) == 0 {
		return OsloSettings{}, errors.New("no broker address")
	}
	mode := in.Config.Mode
	s := OsloSettings{Mode: mode, Brokers: in.Brokers, User: in.User, Vhost: in.Vhost, PasswordFile: in.PasswordFile}
	s.TransportURL = TransportURL(in.Brokers, in.User, in.Password, in.Vhost)

	var hostsWhy string
	switch mode {
	case ModeMirrored:
		hostsWhy = "Both controllers' brokers, by management address: a client whose broker goes away reconnects to the other."
	case ModeQuorum:
		hostsWhy = "Both controllers' brokers, by management address: a client whose broker goes away reconnects to the other. " +
			"The witness " + in.Config.Witness + " is left out: it serves clients only while it is in the majority with a controller, whose broker serves them as well."
	case ModeActivePassive:
		hostsWhy = "The API VIP: it moves with the one broker to the active controller."
	default:
		return OsloSettings{}, fmt.Errorf("rabbitmq.mode %q: must be mirrored, active-passive or quorum", mode)
	}
	vhostWhy := " The path is the virtual host, percent-encoded."
	if in.Vhost == "/" {
		vhostWhy = " The path is the virtual host, percent-encoded: %2F is /."
	}
	s.Options = append(s.Options, OsloOption{"DEFAULT", "transport_url", s.TransportURL, hostsWhy + vhostWhy})

	rabbit := func(name, value, why string) {
		s.Options = append(s.Options, OsloOption{"oslo_messaging_rabbit", name, value, why})
	}
	const redeclare = " On a cloud that ran without it, delete the old queues and exchanges first: redeclaring them fails (PRECONDITION_FAILED, inequivalent arg '%s')."
	switch mode {
	case ModeMirrored:
		rabbit("amqp_durable_queues", "true", "Durable exchanges and queues: they and their persistent messages outlive a restart of both brokers."+fmt.Sprintf(redeclare, "durable"))
	case ModeQuorum:
		rabbit("rabbit_quorum_queue", "true", "The services' queues are quorum queues (x-queue-type: quorum), replicated on both controllers and the witness. "+
			"On a cloud that ran without it, delete the old classic queues first: redeclaring them fails (PRECONDITION_FAILED, inequivalent arg 'x-queue-type').")
		rabbit("amqp_durable_queues", "true", "Durable exchanges and queues: oslo.messaging 14 implies it with rabbit_quorum_queue; set to say so.")
	case ModeActivePassive:
		rabbit("amqp_durable_queues", "true", "The broker restarts on the other controller at every failover: only durable exchanges and queues (and their persistent messages) come back from the DRBD volume."+fmt.Sprintf(redeclare, "durable"))
	}
	rabbit("heartbeat_timeout_threshold", "30", "A dead broker (a controller powered off sends no TCP reset) is noticed after two missed heartbeats: about 60 s, not 120 s with the default 60. Lower would drop busy eventlet services.")
	rabbit("heartbeat_rate", "3", "The heartbeat thread wakes every threshold/rate/2 = 5 s (7.5 s with the default 2).")
	rabbit("rabbit_retry_interval", "1", "The first reconnection attempt comes 1 s after the failure.")
	rabbit("rabbit_retry_backoff", "2", "Each further attempt waits 2 s longer (1, 3, 5, ... s), up to rabbit_interval_max.")
	rabbit("rabbit_interval_max", "10", "Attempts are never more than 10 s apart (default 30): a client is back within 10 s of its broker starting.")
	if len(in.Brokers) > 1 {
		rabbit("kombu_failover_strategy", "round-robin", "oslo.messaging shuffles the hosts once; round-robin then tries the other controller next, where shuffle may pick the dead one again.")
	}

	note := func(format string, a ...any) { s.Notes = append(s.Notes, fmt.Sprintf(format, a...)) }
	switch mode {
	case ModeMirrored:
		note("rabbit_ha_queues stays unset (false): haconf's policy %s (%s) mirrors the queues of vhost /, and the x-ha-policy argument the option adds is ignored since RabbitMQ 3.0.", in.Config.Policy.Name, in.Config.Policy.PolicyDefinition())
		note("enable_cancel_on_failover stays unset (false): consumers of a queue whose leader failed over keep consuming from the promoted mirror, which redelivers the unacknowledged messages either way.")
	case ModeQuorum:
		note("rabbit_ha_queues stays unset (false): oslo.messaging refuses it together with rabbit_quorum_queue.")
	case ModeActivePassive:
		note("rabbit_ha_queues stays unset (false): one broker, nothing to mirror.")
	}

	ctl := "rabbitmqctl"
	switch mode {
	case ModeActivePassive:
		ctl += " -n " + ActivePassiveNodename
		s.BrokerWhere = "on the active controller (the broker runs there only, as " + ActivePassiveNodename + "; its users live on the DRBD volume and move with it)"
	default:
		s.BrokerWhere = "on either controller while its broker runs (users, vhosts and permissions are cluster-wide)"
	}
	user, vhost := ShellQuote(in.User), ShellQuote(in.Vhost)
	if in.PasswordFile != "" {
		s.BrokerCommands = append(s.BrokerCommands, BrokerCommand{ctl + " add_user " + user + " < " + ShellQuote(in.PasswordFile),
			"rabbitmqctl reads the password from stdin when argv has none, so it never shows in ps; for an existing user, change_password the same way."})
	} else {
		s.BrokerCommands = append(s.BrokerCommands, BrokerCommand{`read -rs pw && printf '%s\n' "$pw" | ` + ctl + " add_user " + user + "; unset pw",
			"Type the password (bash, not echoed): rabbitmqctl reads it from stdin when argv has none, so it never shows in ps; for an existing user, change_password the same way."})
	}
	if in.Vhost != "/" {
		s.BrokerCommands = append(s.BrokerCommands, BrokerCommand{ctl + " add_vhost " + vhost, "haconf's definitions.json creates / only."})
		if mode == ModeMirrored {
			p := in.Config.Policy
			s.BrokerCommands = append(s.BrokerCommands, BrokerCommand{
				ctl + " set_policy -p " + vhost + " --apply-to queues " + ShellQuote(p.Name) + " " + ShellQuote(p.Pattern) + " " + ShellQuote(p.PolicyDefinition()),
				"haconf's definitions.json mirrors the queues of / only."})
		}
	}
	s.BrokerCommands = append(s.BrokerCommands, BrokerCommand{ctl + " set_permissions -p " + vhost + " " + user + " '.*' '.*' '.*'",
		"Configure, write and read on every queue and exchange of the vhost, as the services need."})
	return s, nil
}

// WriteText writes s as an ini snippet for the services' configuration
// files, the broker commands first, as comments.
func (s OsloSettings) WriteText(w io.Writer) {
	comment(w, "", fmt.Sprintf("oslo.messaging settings for the pair's RabbitMQ (rabbitmq.mode: %s), printed by haconf openstack messaging. "+
		"Put them in every OpenStack service's configuration file (nova.conf, neutron.conf, cinder.conf, glance-api.conf, ...); "+
		"notifications use the same transport_url unless [oslo_messaging_notifications] sets one.", s.Mode))
	fmt.Fprintln(w, "#")
	comment(w, "", "Once, "+s.BrokerWhere+":")
	for _, c := range s.BrokerCommands {
		fmt.Fprintln(w, "#")
		fmt.Fprintf(w, "#   %s\n", c.Command)
		comment(w, "     ", c.Why)
	}
	section := ""
	for _, o := range s.Options {
		if o.Section != section {
			section = o.Section
			fmt.Fprintf(w, "\n[%s]\n", section)
			if section == "oslo_messaging_rabbit" {
				for _, n := range s.Notes {
					comment(w, "", n)
				}
				if len(s.Notes) > 0 {
					fmt.Fprintln(w)
				}
			}
		} else {
			fmt.Fprintln(w)
		}
		comment(w, "", o.Why)
		if o.Name == "transport_url" && s.PasswordFile == "" {
			where := "in its place"
			if len(s.Brokers) > 1 {
				where = "in place of each"
			}
			comment(w, "", PasswordPlaceholder+" is a placeholder: put the user's password "+where+", percent-encoded "+
				"(every character but letters, digits and - . _ ~ as %XX: oslo.config would read a $), "+
				"and without / (oslo.messaging 14 hands it to kombu unescaped); or print this with --password-file.")
		}
		fmt.Fprintf(w, "%s = %s\n", o.Name, o.Value)
	}
}

// comment writes text as "#"-comment lines of at most 80 columns, each
// line's text after indent.
func comment(w io.Writer, indent, text string) {
	line := "#" + indent
	for _, word := range strings.Fields(text) {
		if len(line) > len(indent)+1 && len(line)+1+len(word) > 80 {
			fmt.Fprintln(w, line)
			line = "#" + indent
		}
		line += " " + word
	}
	fmt.Fprintln(w, line)
}

// TransportURL is oslo.messaging's transport_url for the brokers: each
// host with the credentials, the vhost as the path. password "" is
// PasswordPlaceholder. Every part is percent-encoded but RFC 3986's
// unreserved characters: oslo.messaging decodes the user, password and
// vhost once (the vhost "/" is %2F; an empty path would also mean "/").
func TransportURL(brokers []string, user, password, vhost string) string {
	pw := PasswordPlaceholder
	if password != "" {
		pw = URLEscape(password)
	}
	hosts := make([]string, len(brokers))
	for i, b := range brokers {
		hosts[i] = URLEscape(user) + ":" + pw + "@" + b
	}
	return "rabbit://" + strings.Join(hosts, ",") + "/" + URLEscape(vhost)
}

// URLEscape percent-encodes every byte of s but letters, digits and
// - . _ ~: safe in a transport_url's user, password and path, and free of
// the $ that oslo.config would read as a reference to another option.
func URLEscape(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// oslo.messaging 14.0.3 builds kombu's URL from the decoded transport_url:
// user and password go through urllib's quote, which leaves / as it is,
// and the vhost is appended as it is. kombu then parses that URL: a / in
// the user or password ends its host part, and in the vhost % is decoded a
// second time, ? and # end the path, and ; separates failover URLs.

// CheckOsloUser refuses a user oslo.messaging 14 cannot pass to kombu.
func CheckOsloUser(u string) error {
	switch {
	case u == "":
		return errors.New("the user is empty")
	case strings.Contains(u, "/"):
		return fmt.Errorf("user %q: oslo.messaging 14 hands the user to kombu with its / unescaped, and kombu then misreads the URL: choose a user without /", u)
	case hasControl(u):
		return fmt.Errorf("user %q holds a control character", u)
	}
	return nil
}

// CheckOsloPassword refuses a password oslo.messaging 14 cannot pass to
// kombu, or rabbitmqctl would not read back from stdin as it is (it trims
// white space).
func CheckOsloPassword(p string) error {
	switch {
	case p == "":
		return errors.New("the password is empty")
	case strings.Contains(p, "/"):
		return errors.New("the password holds a /: oslo.messaging 14 hands it to kombu unescaped, and kombu then misreads the URL (every connection fails): choose one without / (e.g. openssl rand -hex 24)")
	case hasControl(p):
		return errors.New("the password holds a control character or a second line")
	case strings.TrimSpace(p) != p:
		return errors.New("the password starts or ends with white space, which rabbitmqctl trims from what it reads")
	}
	return nil
}

// CheckOsloVhost refuses a vhost oslo.messaging 14 cannot pass to kombu.
func CheckOsloVhost(v string) error {
	switch {
	case v == "":
		return errors.New("the vhost is empty (the default vhost is /)")
	case strings.ContainsAny(v, "%?#;"):
		return fmt.Errorf("vhost %q: oslo.messaging 14 hands the vhost to kombu unescaped, which decodes %% a second time, ends the path at ? or # and splits URLs at ;: choose a vhost without %% ? # ;", v)
	case hasControl(v):
		return fmt.Errorf("vhost %q holds a control character", v)
	}
	return nil
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f })
}

// ShellQuote quotes s for a POSIX shell when it needs it.
func ShellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./@:%+=,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
