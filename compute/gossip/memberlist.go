package gossip

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"strings"

	"github.com/hashicorp/memberlist"
)

// memberlistConfig is the profile's configuration for cfg's pool on link l:
// bound to and advertising cfg.Bind[l], labelled, encrypted, and reporting
// to p.
func (p *Pools) memberlistConfig(cfg Config, l Link) *memberlist.Config {
	c := profiles[cfg.Profile]()
	b := cfg.Bind[l]
	c.Name = cfg.Name
	c.BindAddr = b.Addr().String()
	c.BindPort = int(b.Port())
	c.AdvertiseAddr, c.AdvertisePort = c.BindAddr, c.BindPort
	c.Label = label(cfg.Domain, l)
	c.SecretKey = cfg.Key
	d := delegate{p: p, link: l}
	c.Delegate, c.Events = d, d
	c.Logger = log.New(logWriter{p.log.With("link", l)}, "", 0)
	if cfg.tune != nil {
		cfg.tune(c)
	}
	return c
}

// wrapTransport gives c the transport memberlist would make itself (a
// NetTransport on c's address and port), wrapped by wrap.
func wrapTransport(c *memberlist.Config, wrap func(Link, memberlist.NodeAwareTransport) memberlist.NodeAwareTransport, l Link) error {
	nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
		BindAddrs: []string{c.BindAddr}, BindPort: c.BindPort, Logger: c.Logger,
	})
	if err != nil {
		return fmt.Errorf("network transport: %w", err)
	}
	c.Transport = wrap(l, nt)
	return nil
}

// delegate is one pool's memberlist.Delegate and memberlist.EventDelegate.
type delegate struct {
	p    *Pools
	link Link
}

func (d delegate) NodeMeta(limit int) []byte {
	if m := *d.p.meta.Load(); len(m) <= limit {
		return m
	}
	return nil // SetHealth refuses meta over MetaMaxSize; nothing else is longer
}

func (d delegate) NotifyMsg(msg []byte)            { d.p.noticed(d.link, msg) }
func (d delegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d delegate) LocalState(bool) []byte          { return nil }
func (d delegate) MergeRemoteState([]byte, bool)   {}

func (d delegate) NotifyJoin(n *memberlist.Node)   { d.p.observe(d.link, n, true) }
func (d delegate) NotifyUpdate(n *memberlist.Node) { d.p.observe(d.link, n, true) }
func (d delegate) NotifyLeave(n *memberlist.Node)  { d.p.observe(d.link, n, false) }

// logWriter turns memberlist's log lines ("[WARN] memberlist: text") into
// debug records, with the line's own level as the severity attribute.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(b []byte) (int, error) {
	if !w.log.Enabled(context.Background(), slog.LevelDebug) {
		return len(b), nil
	}
	line := strings.TrimSpace(string(b))
	severity := ""
	if rest, ok := strings.CutPrefix(line, "["); ok {
		if s, text, ok := strings.Cut(rest, "]"); ok {
			severity, line = s, strings.TrimSpace(text)
		}
	}
	w.log.Debug("memberlist", "severity", severity, "text", strings.TrimPrefix(line, "memberlist: "))
	return len(b), nil
}
