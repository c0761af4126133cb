package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/internal/atomicfile"
	"github.com/haconf/haconf/internal/bootstrap"
	"github.com/haconf/haconf/internal/runner"
)

func newSecretsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "Create the shared secrets file (corosync authkey, Erlang cookie, MySQL password)",
		Example: `  haconf secrets generate -o secrets.yaml
  ansible-playbook -i inventory.ini playbooks/site.yml -e haconf_secrets=secrets.yaml ...`,
	}
	var out string
	var force bool
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Write fresh random secrets to a new file (mode 0600)",
		Long: `Writes the secrets both controllers share into one file, mode 0600. Copy it to
/etc/haconf/secrets.yaml on both controllers (the playbook does); bootstrap
installs each value into its own root-only file. The values never appear in
argv or logs. An existing file is kept unless --force.`,
		Example: "  haconf secrets generate -o /etc/haconf/secrets.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return &usageError{errors.New("--output is required (the secrets are never printed)")}
			}
			if _, err := os.Stat(out); err == nil && !force {
				return fmt.Errorf("%s exists; keep it (both controllers must share the same secrets) or pass --force to replace it", out)
			}
			s, err := bootstrap.GenerateSecrets()
			if err != nil {
				return err
			}
			if err := atomicfile.Write(out, s.Marshal(), 0o600); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (mode 0600)\n", out)
			return nil
		},
	}
	gen.Flags().StringVarP(&out, "output", "o", "", "file to create")
	gen.Flags().BoolVar(&force, "force", false, "replace an existing file")
	cmd.AddCommand(gen)
	return cmd
}

func newPreflightCmd(g *globals) *cobra.Command {
	var node, output string
	cmd := &cobra.Command{
		Use:   "preflight",
		Short: "Check that this controller is ready for bootstrap; changes nothing",
		Long: `Checks hostname, packages (installed or installable), the DRBD module, the
backing disk, both cluster networks, the peer on both links and multipathd.
Every failed check is listed with its fix. Exits 0 when all pass, 1 otherwise.`,
		Example: `  haconf preflight -c /etc/haconf/haconf.yaml
  haconf preflight -c haconf.yaml --node ctl2 -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.loadConfig()
			if err != nil {
				return err
			}
			// bootstrap.Preflight names an unknown node itself.
			checks, perr := bootstrap.Preflight(cmd.Context(), bootstrap.LocalHost{R: runner.Exec{}}, c, thisNode(node))
			if checks == nil && perr != nil {
				return perr
			}
			w := cmd.OutOrStdout()
			switch output {
			case "json":
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				if err := enc.Encode(checks); err != nil {
					return err
				}
			case "text", "":
				for _, ch := range checks {
					mark := "ok  "
					if !ch.OK {
						mark = "FAIL"
					}
					fmt.Fprintf(w, "%s %-18s %s\n", mark, ch.Name, ch.Detail)
					if !ch.OK {
						fmt.Fprintf(w, "     %-18s fix: %s\n", "", ch.Fix)
					}
				}
			default:
				return &usageError{fmt.Errorf("-o %q: must be text or json", output)}
			}
			if perr != nil {
				return withCode(exitFailure, perr)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "controller to check as (default: this host's name)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}
