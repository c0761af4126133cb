package backup

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Host key errors: a copy target is reached only when its host key is the
// one in its known_hosts_file.
var (
	// ErrHostKeyUnknown means known_hosts_file holds no key for the target.
	ErrHostKeyUnknown = errors.New("the target's host key is not in known_hosts_file")
	// ErrHostKeyChanged means known_hosts_file holds another key for the
	// target: a reinstalled host, or someone in between.
	ErrHostKeyChanged = errors.New("the target's host key differs from the one in known_hosts_file")
)

// sshTimeout bounds the TCP connect and the SSH handshake, and is how long
// a keepalive may stay unanswered before the connection is given up.
const sshTimeout = 30 * time.Second

// dialTarget logs in to t over SSH with its identity file, checking the
// host key against its known_hosts file, and opens an SFTP session. The
// connection is closed when ctx ends or when the server stops answering
// keepalives, so a dead network fails the copy instead of hanging it.
// The returned function ends the session.
func dialTarget(ctx context.Context, t CopyTarget) (*sftp.Client, func(), error) {
	signer, err := loadIdentity(t.IdentityFile)
	if err != nil {
		return nil, nil, err
	}
	hostKey, err := knownhosts.New(t.KnownHostsFile)
	if err != nil {
		return nil, nil, fmt.Errorf("known_hosts_file %s: %w", t.KnownHostsFile, err)
	}
	addr := t.Addr()
	cfg := &ssh.ClientConfig{
		User:              t.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback:   checkHostKey(hostKey, t.KnownHostsFile),
		HostKeyAlgorithms: knownKeyAlgorithms(hostKey, addr),
		Timeout:           sshTimeout,
	}
	d := net.Dialer{Timeout: sshTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	_ = conn.SetDeadline(time.Now().Add(sshTimeout))
	sc, chans, reqs, err := ssh.NewClientConn(conn, addr, cfg)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("ssh %s@%s: %w", t.User, addr, err)
	}
	_ = conn.SetDeadline(time.Time{})
	client := ssh.NewClient(sc, chans, reqs)
	done := make(chan struct{})
	go keepalive(ctx, client, done)
	s, err := sftp.NewClient(client, sftp.UseConcurrentWrites(true))
	if err != nil {
		close(done)
		client.Close()
		return nil, nil, fmt.Errorf("sftp on %s@%s (the account must allow the sftp subsystem): %w", t.User, addr, err)
	}
	return s, func() {
		close(done)
		s.Close()
		client.Close()
	}, nil
}

// keepalive closes client when ctx ends, or when the server leaves a
// keepalive request unanswered for sshTimeout, until done is closed.
func keepalive(ctx context.Context, client *ssh.Client, done chan struct{}) {
	tick := time.NewTicker(sshTimeout / 2)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			client.Close()
			return
		case <-tick.C:
			reply := make(chan error, 1)
			go func() {
				_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
				reply <- err
			}()
			select {
			case err := <-reply:
				if err != nil {
					client.Close()
					return
				}
			case <-time.After(sshTimeout):
				client.Close()
				return
			case <-done:
				return
			case <-ctx.Done():
				client.Close()
				return
			}
		}
	}
}

// loadIdentity reads an unencrypted private key that only its owner can
// read. The key's content never appears in an error.
func loadIdentity(path string) (ssh.Signer, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("identity_file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("identity_file %s: mode %v: readable by group or others (chmod 600 %s)", path, st.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("identity_file: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(data)
	var pp *ssh.PassphraseMissingError
	switch {
	case errors.As(err, &pp):
		return nil, fmt.Errorf("identity_file %s is protected by a passphrase: haconf runs unattended, so it needs a key without one, readable by its owner only", path)
	case err != nil:
		return nil, fmt.Errorf("identity_file %s: not a private key haconf can use: %v", path, err)
	}
	return signer, nil
}

// checkHostKey wraps a known_hosts callback so that its refusals say what
// happened and what to do.
func checkHostKey(cb ssh.HostKeyCallback, file string) ssh.HostKeyCallback {
	return func(host string, remote net.Addr, key ssh.PublicKey) error {
		err := cb(host, remote, key)
		var ke *knownhosts.KeyError
		if !errors.As(err, &ke) {
			return err
		}
		fp := key.Type() + " " + ssh.FingerprintSHA256(key)
		if len(ke.Want) == 0 {
			h, port, _ := net.SplitHostPort(host)
			return fmt.Errorf("%w: %s offers %s, and %s has no key for it; check that fingerprint with the target's administrator, then add the key (e.g. ssh-keyscan -p %s %s >> %s)",
				ErrHostKeyUnknown, host, fp, file, port, h, file)
		}
		return fmt.Errorf("%w: %s offers %s, %s:%d holds another key for it; if the target was reinstalled, replace that line after checking the new fingerprint, otherwise someone may be in between",
			ErrHostKeyChanged, host, fp, ke.Want[0].Filename, ke.Want[0].Line)
	}
}

// knownKeyAlgorithms are the host key algorithms to ask the server for:
// those of the keys known_hosts holds for addr (the handshake would
// otherwise pick the server's preferred key, which may be one that the
// file does not hold, and fail as a changed key). Nil when none is known:
// the handshake then fails with ErrHostKeyUnknown.
func knownKeyAlgorithms(cb ssh.HostKeyCallback, addr string) []string {
	// Asking with a key that cannot be known lists the known ones.
	err := cb(addr, &net.TCPAddr{IP: net.IPv4zero}, probeKey{})
	var ke *knownhosts.KeyError
	if !errors.As(err, &ke) {
		return nil
	}
	var algs []string
	for _, k := range ke.Want {
		switch t := k.Key.Type(); t {
		case ssh.KeyAlgoRSA:
			algs = append(algs, ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256)
		default:
			algs = append(algs, t)
		}
	}
	slices.Sort(algs)
	return slices.Compact(algs)
}

// probeKey is a public key no known_hosts file holds.
type probeKey struct{}

func (probeKey) Type() string                        { return "haconf-probe" }
func (probeKey) Marshal() []byte                     { return []byte("haconf-probe") }
func (probeKey) Verify([]byte, *ssh.Signature) error { return errors.New("probe key") }
