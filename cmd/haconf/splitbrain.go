package main

import "github.com/spf13/cobra"

// newSplitBrainCmd is a placeholder until its command group lands.
func newSplitBrainCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "splitbrain", Short: "(not yet implemented)", Hidden: true}
}
