//go:build !gendocs

// Command haconf makes a pair of OpenStack controllers highly available on
// DRBD, Corosync and Pacemaker, and keeps the pair healthy.
package main

import (
	"os"

	"github.com/haconf/haconf/internal/cli"
)

func main() { cli.Main(newRootCmd(os.Stdout, os.Stderr), exitCode) }
