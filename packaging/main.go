// Command packaging builds haconf's Debian packages (make deb):
//
//	dist/haconf_VERSION_amd64.deb           the binaries, the resource agent
//	                                        wrappers and DRBD handler, the
//	                                        watchdog's systemd unit, man pages,
//	                                        completions, an example haconf.yaml
//	dist/haconf-controller_VERSION_all.deb  what a controller needs besides:
//	                                        the cluster stack (Depends only)
//
// A compute host installs haconf alone; a controller installs both. The
// version comes from git describe (see DebianVersion). The packages are
// written with nfpm (github.com/goreleaser/nfpm/v2), from files rendered
// by the same code haconf renders them with (templates.PackageFiles) and
// documentation generated from haconf's own command tree
// (go run -tags gendocs ./cmd/haconf). It is a build tool: nothing here
// ships in the binaries.
//
//	go run ./packaging [-o dist] [-version V] [-go go]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	var o Options
	fs := flag.NewFlagSet("packaging", flag.ExitOnError)
	fs.StringVar(&o.OutDir, "o", "dist", "directory the .deb files are written to")
	fs.StringVar(&o.Version, "version", "", "the Debian version (default: from git describe)")
	fs.StringVar(&o.Go, "go", "go", "the go command")
	fs.StringVar(&o.Source, "C", ".", "haconf's source tree (the module root)")
	fs.Parse(os.Args[1:])
	if fs.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: go run ./packaging [-o DIR] [-version V] [-go GO] [-C SRC]")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	debs, err := Build(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "packaging:", err)
		os.Exit(1)
	}
	for _, d := range debs {
		fmt.Println(d)
	}
}
