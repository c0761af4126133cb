package main

import "github.com/spf13/cobra"

// newWatchdogCmd is a placeholder until its command group lands.
func newWatchdogCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "watchdog", Short: "(not yet implemented)", Hidden: true}
}
