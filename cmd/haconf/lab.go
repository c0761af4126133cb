package main

import "github.com/spf13/cobra"

// newLabCmd is a placeholder until its command group lands.
func newLabCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "lab", Short: "(not yet implemented)", Hidden: true}
}
