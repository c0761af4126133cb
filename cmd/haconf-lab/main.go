// Command haconf-lab runs a real two-controller cluster, ctl1 and ctl2, on
// this machine (package lab): User-Mode Linux nodes, the fence daemon, and
// in the nodes the exec agent and the fence agent. It is for demos and
// end-to-end tests and never ships to a controller; it installs haconf and
// haconf-agent from beside it into the nodes.
//
// Exit codes are haconf's (internal/cli): 0 ok, 1 failure, 2 the lab is not
// (completely) up (status), 64 usage, 70 internal error.
package main

import (
	"io"
	"log/slog"
	"os"

	"github.com/haconf/haconf/internal/cli"
)

func main() { cli.Main(newRootCmd(os.Stdout, os.Stderr), exitCode) }

// globals are the flags every command shares.
type globals struct {
	verbose bool
	logger  *slog.Logger
}

func exitCode(err error, stderr io.Writer) int { return cli.ExitCode(err, stderr) }
