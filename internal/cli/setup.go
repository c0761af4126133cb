package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// Setup makes every way of calling a command wrongly a usage error (exit 64)
// in the command tree under root: unknown commands (also under a command
// group, where cobra would print the group's help and exit 0), unknown
// flags, flag values a flag refuses, wrong arguments (each command's Args
// validator is wrapped) and missing required or conflicting flags. Errors
// are left to ExitCode to print: cobra prints neither them nor the usage.
// Call it once, after the last AddCommand.
func Setup(root *cobra.Command) {
	root.SilenceErrors = true
	root.SilenceUsage = true
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	walk(root, func(c *cobra.Command) {
		flagErr := c.FlagErrorFunc()
		c.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
			var ee *EnumError
			if errors.As(err, &ee) {
				return UsageError(ee)
			}
			return UsageError(flagErr(c, err))
		})
		if c.HasSubCommands() && !c.Runnable() {
			c.Args = noSubcommand
			c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
		}
		if args := c.Args; args != nil {
			c.Args = func(c *cobra.Command, a []string) error { return UsageError(args(c, a)) }
		}
		if c.Runnable() {
			preRunE, preRun := c.PreRunE, c.PreRun
			c.PreRun = nil
			c.PreRunE = func(c *cobra.Command, a []string) error {
				// cobra checks these after PreRun, untyped; check them first.
				if err := c.ValidateRequiredFlags(); err != nil {
					return UsageError(err)
				}
				if err := c.ValidateFlagGroups(); err != nil {
					return UsageError(err)
				}
				if preRunE != nil {
					return preRunE(c, a)
				}
				if preRun != nil {
					preRun(c, a)
				}
				return nil
			}
		}
	})
}

func walk(c *cobra.Command, f func(*cobra.Command)) {
	f(c)
	for _, sub := range c.Commands() {
		walk(sub, f)
	}
}

// noSubcommand is a command group's Args: any argument is an unknown
// command, with cobra's suggestions.
func noSubcommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if !c.DisableSuggestions {
		if c.SuggestionsMinimumDistance <= 0 {
			c.SuggestionsMinimumDistance = 2 // cobra's default
		}
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
		}
	}
	return errors.New(msg)
}
