package main

import "github.com/spf13/cobra"

// newBackupCmd is a placeholder until its command group lands.
func newBackupCmd(g *globals) *cobra.Command {
	return &cobra.Command{Use: "backup", Short: "(not yet implemented)", Hidden: true}
}
