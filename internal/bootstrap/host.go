package bootstrap

import (
	"context"
	"io/fs"
	"os"

	"github.com/haconf/haconf/internal/runner"
)

// LocalHost is this machine.
type LocalHost struct{ R runner.Runner }

func (l LocalHost) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	return l.R.Run(ctx, name, args...)
}
func (LocalHost) ReadFile(p string) ([]byte, error)  { return os.ReadFile(p) }
func (LocalHost) Stat(p string) (fs.FileInfo, error) { return os.Stat(p) }
func (LocalHost) Hostname() (string, error)          { return os.Hostname() }
