// Command haconf-agent runs haconf's OCF resource agents and DRBD's
// fence-peer handler, and nothing else: Pacemaker and DRBD start it on
// every action, so it is kept small to start fast (see package agents).
// haconf ocf and haconf drbd fence-peer run the same code.
//
//	haconf-agent ocf AGENT ACTION
//	haconf-agent drbd fence-peer --clone CLONE [--timeout 90s]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/haconf/haconf/agents"
)

const usage = `usage:
  haconf-agent ocf AGENT ACTION          (AGENT: %s)
  haconf-agent drbd fence-peer --clone CLONE [--timeout DURATION]
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 3 && args[0] == "ocf":
		return agents.RunOCF(ctx, args[1], args[2], getenv, stdout, stderr)
	case len(args) >= 2 && args[0] == "drbd" && args[1] == "fence-peer":
		fs := flag.NewFlagSet("fence-peer", flag.ContinueOnError)
		fs.SetOutput(stderr)
		clone := fs.String("clone", "", "the promotable clone's id in the CIB")
		timeout := fs.Duration("timeout", 90*time.Second, "how long to wait for Pacemaker to fence an unreachable peer")
		if err := fs.Parse(args[2:]); err != nil || *clone == "" || fs.NArg() > 0 {
			if err == nil {
				fmt.Fprintln(stderr, "fence-peer: --clone is required, and takes no arguments")
			}
			return 1
		}
		return agents.FencePeer(ctx, getenv, *clone, *timeout, stderr)
	}
	fmt.Fprintf(stderr, usage, strings.Join(agents.Names(), ", "))
	return 2
}
