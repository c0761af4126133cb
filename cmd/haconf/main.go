// Command haconf makes a pair of OpenStack controllers highly available on
// DRBD, Corosync and Pacemaker, and keeps the pair healthy.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}
