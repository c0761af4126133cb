package main

import "github.com/spf13/cobra"

// newDRBDCmd is a placeholder until its command group lands.
func newDRBDCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "drbd", Short: "(not yet implemented)", Hidden: true}
}
