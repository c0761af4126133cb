package testenv

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// SSHServer is a private OpenSSH sshd started by StartSSHD: on 127.0.0.1
// and a free port, with its own host key and config, admitting one
// client key for the current user to the sftp subsystem only
// (ForceCommand internal-sftp, what a backup host gives a controller).
type SSHServer struct {
	Host string
	Port int
	User string
	// IdentityFile is the client's private key (0600, no passphrase).
	IdentityFile string
	// KnownHostsFile holds the server's host key for [Host]:Port.
	KnownHostsFile string
	// HostKeyLine is that known_hosts line.
	HostKeyLine string
	// Dir is a directory for the test's files (outside the server's
	// config and keys).
	Dir string
	// Log is sshd's own log (-e).
	Log *SyncBuffer
}

// StartSSHD starts sshd -D -e with a config, host key and authorized_keys
// made in a temp dir (the machine's /etc/ssh and port 22 are never used)
// and returns once it accepts connections; it stops when t ends. It needs
// root (sshd's privilege separation), sshd and ssh-keygen (Debian's
// openssh-server and openssh-client). sshd needs its privilege separation
// directory /run/sshd, which the ssh service creates at boot: when it is
// missing it is created (empty, root's, 0755) and left there.
func StartSSHD(t testing.TB) SSHServer {
	t.Helper()
	bins := RequireCommands(t, "sshd", "ssh-keygen")
	RequireRoot(t)
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.Mkdir(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	hostKey, clientKey := filepath.Join(keys, "host_ed25519"), filepath.Join(keys, "client_ed25519")
	for _, k := range []string{hostKey, clientKey} {
		if out, err := exec.Command(bins[1], "-q", "-t", "ed25519", "-N", "", "-C", "haconf-test", "-f", k).CombinedOutput(); err != nil {
			t.Fatalf("ssh-keygen: %v\n%s", err, out)
		}
	}
	pub := func(path string) string {
		b, err := os.ReadFile(path + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(b))
		return f[0] + " " + f[1]
	}
	if err := os.WriteFile(filepath.Join(keys, "authorized_keys"), []byte(pub(clientKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	s := SSHServer{Host: "127.0.0.1", Port: port, User: u.Username, IdentityFile: clientKey,
		KnownHostsFile: filepath.Join(keys, "known_hosts"), Dir: filepath.Join(dir, "data"), Log: &SyncBuffer{}}
	s.HostKeyLine = "[127.0.0.1]:" + strconv.Itoa(port) + " " + pub(hostKey)
	if err := os.WriteFile(s.KnownHostsFile, []byte(s.HostKeyLine+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(s.Dir, 0o700); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(keys, "sshd_config")
	// StrictModes would refuse keys under /tmp (world-writable).
	cfg := "HostKey " + hostKey + "\nPidFile none\nAuthorizedKeysFile " + filepath.Join(keys, "authorized_keys") + "\n" +
		"ListenAddress 127.0.0.1\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n" +
		"PermitRootLogin prohibit-password\nAllowUsers " + u.Username + "\nSubsystem sftp internal-sftp\nForceCommand internal-sftp\n" +
		"LogLevel VERBOSE\n"
	if err := os.WriteFile(config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshd's privilege separation directory: %v", err)
	}
	cmd := exec.Command(bins[0], "-D", "-e", "-f", config, "-p", strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = s.Log, s.Log
	t.Cleanup(func() {
		// Runs after StartProcess's cleanup (last in, first out): sshd has stopped.
		if t.Failed() {
			t.Logf("sshd log:\n%s", s.Log)
		}
	})
	done := StartProcess(t, cmd, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := WaitListening(ctx, "127.0.0.1:"+strconv.Itoa(port), done); err != nil {
		t.Fatalf("sshd does not listen on 127.0.0.1:%d: %v\n%s", port, err, s.Log)
	}
	return s
}
