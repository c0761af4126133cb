package cloud

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/haconf/haconf/internal/atomicfile"
)

// settings are what the last up chose, kept in cloud.json so that later
// commands (start, status, down) know the hosts.
type settings struct {
	Hosts    int  `json:"hosts"`
	Masakari bool `json:"masakari"`
	HA       bool `json:"ha"`
}

func (c *Cloud) loadSettings() (settings, error) {
	var s settings
	b, err := os.ReadFile(c.settingsFile())
	if errors.Is(err, fs.ErrNotExist) {
		return s, ErrNotUp
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", c.settingsFile(), err)
	}
	return s, nil
}

func (c *Cloud) saveSettings(s settings) error {
	b, _ := json.MarshalIndent(s, "", "  ")
	return atomicfile.Write(c.settingsFile(), append(b, '\n'), 0o600)
}

// versionedPackages are the packages whose versions the warm state
// depends on: a database made by one version is not reused by another.
var versionedPackages = []string{"mariadb-server", "rabbitmq-server", "keystone", "placement-common", "nova-common", "masakari-common"}

// packageVersions is `dpkg-query -W` of versionedPackages, one
// "package version" a line.
func (c *Cloud) packageVersions(ctx context.Context) (string, error) {
	out, err := c.Run.Run(ctx, "dpkg-query", append([]string{"-W", "-f=${Package} ${Version}\n"}, versionedPackages...)...)
	if err != nil {
		return "", fmt.Errorf("package versions (make deps installs the packages): %w", err)
	}
	return string(out), nil
}

// prepareState keeps state/ when it was made with the installed packages'
// versions, and empties it otherwise.
func (c *Cloud) prepareState(ctx context.Context) (warm bool, err error) {
	versions, err := c.packageVersions(ctx)
	if err != nil {
		return false, err
	}
	file := c.path("state", "versions")
	if b, err := os.ReadFile(file); err == nil && string(b) == versions {
		return true, nil
	} else if err == nil {
		c.logger().Info("packages changed since the warm state was made: starting from nothing",
			"was", strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", ", "))
	}
	if err := os.RemoveAll(c.stateDir()); err != nil {
		return false, err
	}
	if err := os.MkdirAll(c.stateDir(), 0o700); err != nil {
		return false, err
	}
	return false, atomicfile.Write(file, []byte(versions), 0o600)
}

// secrets returns the warm state's passwords, making them the first time.
func (c *Cloud) secrets() (Secrets, error) {
	var s Secrets
	b, err := os.ReadFile(c.secretsFile())
	if err == nil {
		if err := json.Unmarshal(b, &s); err != nil {
			return s, fmt.Errorf("%s: %w", c.secretsFile(), err)
		}
		return s, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	s = Secrets{Admin: newSecret(), Service: newSecret(), Rabbit: newSecret()}
	b, _ = json.MarshalIndent(s, "", "  ")
	return s, atomicfile.Write(c.secretsFile(), append(b, '\n'), 0o600)
}

// Secrets returns the passwords of a cloud that was up at least once.
func (c *Cloud) Secrets() (Secrets, error) {
	var s Secrets
	b, err := os.ReadFile(c.secretsFile())
	if errors.Is(err, fs.ErrNotExist) {
		return s, fmt.Errorf("%w: no %s (run haconf-lab compute up)", ErrNotUp, c.secretsFile())
	}
	if err != nil {
		return s, err
	}
	return s, json.Unmarshal(b, &s)
}

func newSecret() string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return hex.EncodeToString(b)
}

// AdminProject returns the id of the admin's project, which up records.
func (c *Cloud) AdminProject() (string, error) {
	b, err := os.ReadFile(c.path("state", "admin-project"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("%w: no admin project recorded (run haconf-lab compute up)", ErrNotUp)
	}
	return strings.TrimSpace(string(b)), err
}

// Env is the environment of the cloud's admin for the openstack CLI,
// gophercloud and scripts. gophercloud's AuthOptionsFromEnv wants the
// project's id, and the user's domain in OS_DOMAIN_NAME, which is not
// set here: the openstack CLI would take it for a domain scope, so a
// gophercloud caller sets AuthOptions.DomainName = "Default".
func Env(s Secrets, project string) [][2]string {
	return [][2]string{
		{"OS_AUTH_URL", keystoneURL()},
		{"OS_USERNAME", "admin"},
		{"OS_PASSWORD", s.Admin},
		{"OS_PROJECT_ID", project},
		{"OS_PROJECT_NAME", "admin"},
		{"OS_USER_DOMAIN_NAME", "Default"},
		{"OS_PROJECT_DOMAIN_NAME", "Default"},
		{"OS_REGION_NAME", Region},
		{"OS_IDENTITY_API_VERSION", "3"},
		{"OS_COMPUTE_API_VERSION", "2.74"},
	}
}
