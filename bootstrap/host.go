package bootstrap

import (
	"context"
	"io/fs"
	"os"
	"strings"

	"github.com/haconf/haconf/internal/runner"
)

// LocalHost is this machine. Name is its hostname when already read
// (ThisHost); when "", Hostname asks the kernel.
type LocalHost struct {
	R    runner.Exec
	Name string
}

// ThisHost is this machine with its hostname read once, for both the
// node a command acts as and preflight's hostname check.
func ThisHost(r runner.Exec) LocalHost {
	h, _ := os.Hostname()
	return LocalHost{R: r, Name: h}
}

// ShortName is hostname without its domain: the name corosync and
// Pacemaker know the node by.
func ShortName(hostname string) string { return strings.SplitN(hostname, ".", 2)[0] }

func (l LocalHost) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return l.R.Run(ctx, name, args...)
}
func (l LocalHost) RunCmd(ctx context.Context, c runner.Cmd) ([]byte, error) {
	return l.R.RunCmd(ctx, c)
}
func (LocalHost) ReadFile(p string) ([]byte, error)  { return os.ReadFile(p) }
func (LocalHost) Stat(p string) (fs.FileInfo, error) { return os.Stat(p) }
func (l LocalHost) Hostname() (string, error) {
	if l.Name != "" {
		return l.Name, nil
	}
	return os.Hostname()
}
