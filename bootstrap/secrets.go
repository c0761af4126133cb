package bootstrap

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/big"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/pacemaker"
)

// Secrets are the values both controllers must share and nobody may see:
// the corosync authkey, the Erlang cookie, the MySQL password haconf uses
// and the fence devices' passwords. They travel as one file (mode 0600):
// `haconf secrets generate` writes it once (on the operator's machine or
// the first controller), the operator adds the fence passwords, the
// playbook or `haconf-lab bootstrap` copies it to both controllers, and
// bootstrap installs each value into its own root-only file. Nothing is
// ever passed in argv or logged.
type Secrets struct {
	CorosyncAuthkey string `yaml:"corosync_authkey"` // base64 of 256 random bytes
	ErlangCookie    string `yaml:"erlang_cookie"`    // 32 upper-case letters
	MySQLUser       string `yaml:"mysql_user"`
	MySQLPassword   string `yaml:"mysql_password"`
	// FencePasswords are the controllers' BMC passwords by node name
	// (fencing.type ipmi), installed in fencing.ipmi.<node>.password_file.
	FencePasswords map[string]string `yaml:"fence_passwords,omitempty"`
	// ComputeFencePasswords are the compute hosts' fence agent passwords
	// by host name, installed on both controllers (the compute controller
	// runs on the active one) in compute.hosts[].fence.password_file.
	ComputeFencePasswords map[string]string `yaml:"compute_fence_passwords,omitempty"`

	// File is the path the secrets were read from (not part of the YAML).
	File string `yaml:"-"`
}

// Keys of the fence passwords in the secrets file.
const (
	FencePasswordsKey        = "fence_passwords"
	ComputeFencePasswordsKey = "compute_fence_passwords"
)

// GenerateSecrets returns fresh random secrets.
func GenerateSecrets() (*Secrets, error) {
	key := make([]byte, 256)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	cookie, err := randomString("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 32)
	if err != nil {
		return nil, err
	}
	pw, err := randomString("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789", 32)
	if err != nil {
		return nil, err
	}
	return &Secrets{
		CorosyncAuthkey: base64.StdEncoding.EncodeToString(key),
		ErlangCookie:    cookie,
		MySQLUser:       "haconf",
		MySQLPassword:   pw,
	}, nil
}

func randomString(alphabet string, n int) (string, error) {
	b := make([]byte, n)
	for i := range b {
		k, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", err
		}
		b[i] = alphabet[k.Int64()]
	}
	return string(b), nil
}

// Marshal renders the secrets file.
func (s *Secrets) Marshal() []byte {
	b, _ := yaml.Marshal(s)
	out := append([]byte("# haconf secrets: keep mode 0600, copy to both controllers, never commit.\n"), b...)
	if len(s.FencePasswords) == 0 && len(s.ComputeFencePasswords) == 0 {
		// Fence passwords are set on the BMCs, not generated: say where they go.
		out = append(out, []byte(`# The fence devices' passwords (bootstrap installs each, mode 0600, in the
# password_file haconf.yaml names for it):
# fence_passwords:           # fencing.ipmi.<node>.password_file
#   ctl1: BMC-PASSWORD
#   ctl2: BMC-PASSWORD
# compute_fence_passwords:   # compute.hosts[].fence.password_file
#   cmp1: BMC-PASSWORD
`)...)
	}
	return out
}

// ErrSecretsExposed means the secrets file is readable by others than its owner.
var ErrSecretsExposed = errors.New("secrets file is readable by group or others")

// LoadSecrets reads and checks a secrets file. It refuses a file that group
// or others can read, and never includes a secret value in an error.
func LoadSecrets(path string) (*Secrets, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w (create it with: haconf secrets generate -o %s)", err, path)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%s: mode %v: %w (chmod 600 %s)", path, st.Mode().Perm(), ErrSecretsExposed, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	var s Secrets
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("%s: not a haconf secrets file (keys: corosync_authkey, erlang_cookie, mysql_user, mysql_password, fence_passwords, compute_fence_passwords)", path)
	}
	s.File = path
	var problems []error
	if k, err := base64.StdEncoding.DecodeString(s.CorosyncAuthkey); err != nil || len(k) < 128 || len(k) > 1024 {
		problems = append(problems, fmt.Errorf("%s: corosync_authkey: must be base64 of 128-1024 random bytes", path))
	}
	if len(s.ErlangCookie) < 20 {
		problems = append(problems, fmt.Errorf("%s: erlang_cookie: must be at least 20 characters", path))
	}
	if s.MySQLUser == "" {
		problems = append(problems, fmt.Errorf("%s: mysql_user: is required", path))
	}
	if len(s.MySQLPassword) < 12 {
		problems = append(problems, fmt.Errorf("%s: mysql_password: must be at least 12 characters", path))
	}
	for _, m := range []struct {
		key string
		pw  map[string]string
	}{{FencePasswordsKey, s.FencePasswords}, {ComputeFencePasswordsKey, s.ComputeFencePasswords}} {
		for _, name := range slices.Sorted(maps.Keys(m.pw)) {
			switch pw := m.pw[name]; {
			case pw == "":
				problems = append(problems, fmt.Errorf("%s: %s.%s: is empty", path, m.key, name))
			case strings.ContainsAny(pw, "\r\n"):
				// The fence agents read their options one per line.
				problems = append(problems, fmt.Errorf("%s: %s.%s: must be one line", path, m.key, name))
			}
		}
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	return &s, nil
}

// Authkey returns the decoded corosync authkey.
func (s *Secrets) Authkey() []byte {
	k, _ := base64.StdEncoding.DecodeString(s.CorosyncAuthkey)
	return k
}

// MySQLOptionFile renders a [client] option file with the credentials, for
// mysql.credentials_file (mode 0600).
func (s *Secrets) MySQLOptionFile() []byte {
	return []byte(fmt.Sprintf("# generated by haconf from the secrets file\n[client]\nuser=%s\npassword=%s\n", s.MySQLUser, s.MySQLPassword))
}

// SecretFile is a secret and where it goes.
type SecretFile struct {
	Path    string
	Mode    fs.FileMode
	Content []byte
	Owner   string // user that must own it ("" = root)
}

// String never shows the content.
func (f SecretFile) String() string {
	return fmt.Sprintf("%s (mode %v, %d bytes)", f.Path, f.Mode, len(f.Content))
}

// fencePasswordFile is a fence password file haconf.yaml names, with its
// password from the secrets file.
type fencePasswordFile struct {
	Path string // absolute, on the controllers
	// Keys are where the secrets file keeps its password
	// (fence_passwords.ctl1); more than one when hosts share the file.
	Keys []string
	// For says whose password it is ("ctl1's BMC").
	For string
	// Password is the secrets file's ("" when it has none).
	Password string
}

// fencePasswordFiles lists the fence password files c names, in config
// order (the controllers', then the compute hosts'), with the passwords s
// holds for them (s may be nil). It refuses a password in s that is for no
// file (a misspelt name would leave the real file as it is) and two
// different passwords for one file.
func fencePasswordFiles(c *config.Config, s *Secrets) ([]fencePasswordFile, error) {
	if s == nil {
		s = &Secrets{}
	}
	var files []fencePasswordFile
	byPath := map[string]int{}
	used := map[string]bool{}
	var problems []error
	add := func(path, mapKey, name, whose string, pws map[string]string) {
		key := mapKey + "." + name
		used[key] = true
		pw := pws[name]
		i, ok := byPath[path]
		if !ok {
			byPath[path] = len(files)
			files = append(files, fencePasswordFile{Path: path, Keys: []string{key}, For: whose, Password: pw})
			return
		}
		f := &files[i]
		f.Keys = append(f.Keys, key)
		switch {
		case pw == "":
		case f.Password == "":
			f.Password = pw
		case f.Password != pw:
			problems = append(problems, fmt.Errorf("%s: %s and %s differ, but haconf.yaml has both read from %s", secretsName(s), f.Keys[0], key, path))
		}
	}
	if c.Fencing.Type == pacemaker.FenceIPMI {
		for _, n := range c.NodeNames() {
			if p := c.Fencing.IPMI[n].PasswordFile; p != "" {
				add(p, FencePasswordsKey, n, n+"'s BMC", s.FencePasswords)
			}
		}
	}
	if c.Compute != nil {
		for _, h := range c.Compute.Hosts {
			if h.Fence.PasswordFile != "" {
				add(h.Fence.PasswordFile, ComputeFencePasswordsKey, h.Name, "compute host "+h.Name+"'s fence agent", s.ComputeFencePasswords)
			}
		}
	}
	for _, m := range []struct {
		key, wants string
		pws        map[string]string
	}{
		{FencePasswordsKey, "fencing.ipmi.<node>.password_file", s.FencePasswords},
		{ComputeFencePasswordsKey, "compute.hosts[].fence.password_file", s.ComputeFencePasswords},
	} {
		for _, name := range slices.Sorted(maps.Keys(m.pws)) {
			if !used[m.key+"."+name] {
				problems = append(problems, fmt.Errorf("%s: %s.%s: haconf.yaml has no %s for %s: remove it, or fix the name", secretsName(s), m.key, name, m.wants, name))
			}
		}
	}
	return files, errors.Join(problems...)
}

// secretsName names the secrets file in messages.
func secretsName(s *Secrets) string {
	if s == nil || s.File == "" {
		return "the secrets file"
	}
	return s.File
}

// keyList is "fence_passwords.ctl1" or "compute_fence_passwords.cmp1 or
// compute_fence_passwords.cmp2".
func (f fencePasswordFile) keyList() string { return strings.Join(f.Keys, " or ") }
