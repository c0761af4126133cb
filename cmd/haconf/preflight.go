package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/bootstrap"
	"github.com/haconf/haconf/internal/atomicfile"
	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/runner"
)

func newSecretsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets",
		Short: "The shared secrets file: create it (corosync authkey, Erlang cookie, MySQL password; fence passwords added by hand), install its values",
		Example: `  haconf secrets generate -o secrets.yaml
  ansible-playbook -i inventory.ini playbooks/site.yml -e haconf_secrets=secrets.yaml ...
  haconf secrets install -c /etc/haconf/haconf.yaml --dry-run`,
	}
	var out string
	var force bool
	gen := &cobra.Command{
		Use:   "generate",
		Short: "Write fresh random secrets to a new file (mode 0600)",
		Long: `Writes the secrets both controllers share into one file, mode 0600. Add the fence
devices' passwords to it (fence_passwords: the controllers' BMCs by node name;
compute_fence_passwords: the compute hosts' by host name; the file says how).
Copy it to /etc/haconf/secrets.yaml on both controllers (the playbook does);
bootstrap installs each value into its own root-only file. The values never
appear in argv or logs. An existing file is kept unless --force.`,
		Example: "  haconf secrets generate -o /etc/haconf/secrets.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return cli.UsageError(errors.New("--output is required (the secrets are never printed)"))
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
	cmd.AddCommand(gen, newSecretsInstallCmd(g))
	return cmd
}

func newSecretsInstallCmd(g *globals) *cobra.Command {
	var node, secretsFile, root, output string
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "install",
		Short: "Install each secret in its own root-only file (bootstrap's secrets step alone)",
		Long: `Installs each value of the secrets file where it is used, atomically and only
when it changed, as bootstrap's secrets step does: the corosync authkey, the
Erlang cookie, the MySQL option file, and each fence password (mode 0600) in
the password file haconf.yaml names for it (fencing.ipmi.<node>.password_file,
compute.hosts[].fence.password_file). A fence password file already on the
node is kept when the secrets file has no password for it. The playbook runs it
after placing the secrets file, so a changed BMC password is installed without
a bootstrap. Values never appear in argv, output or logs.`,
		Example: `  haconf secrets install -c /etc/haconf/haconf.yaml --dry-run
  haconf secrets install -c /etc/haconf/haconf.yaml --secrets /etc/haconf/secrets.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := g.loadController(node)
			if err != nil {
				return err
			}
			secrets, err := bootstrap.LoadSecrets(secretsFile)
			if err != nil {
				return err
			}
			b := &bootstrap.Bootstrap{Cfg: c, Node: name, Secrets: secrets, R: runner.Exec{}, Log: g.logger, DryRun: dryRun, Root: root}
			r, err := b.InstallSecrets(cmd.Context())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if output == "json" {
				return cli.WriteJSON(w, "haconf.secrets.install/v1", map[string]any{"node": name, "dry_run": dryRun, "changed": r.Changed, "detail": r.Detail})
			}
			mark := "ok     "
			if r.Changed {
				mark = "changed"
			}
			fmt.Fprintf(w, "%s %-14s %s\n", mark, r.Step, r.Detail)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&node, "node", "", "controller to install on (default: this host's name)")
	f.StringVar(&secretsFile, "secrets", defaultSecrets, "secrets file (mode 0600)")
	f.StringVar(&root, "root", "/", "directory the files are installed under (e.g. a scratch dir to inspect)")
	f.BoolVar(&dryRun, "dry-run", false, "say what would be installed and change nothing")
	cli.OutputFlag(cmd, &output, "text", "json")
	return cmd
}

// defaultSecrets is where the playbook puts the secrets file.
const defaultSecrets = "/etc/haconf/secrets.yaml"

// loadSecretsIfAny reads the secrets file at path; when path is the
// default and there is no file there, it returns nil: preflight then
// finds the fence passwords on the node, or says where they are missing.
func loadSecretsIfAny(path string) (*bootstrap.Secrets, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && path == defaultSecrets {
		return nil, nil
	}
	return bootstrap.LoadSecrets(path)
}

// checkMark is a preflight check's mark in text output.
func checkMark(ch bootstrap.Check) string {
	switch {
	case ch.OK:
		return "ok  "
	case ch.Unknown:
		return "??  "
	}
	return "FAIL"
}

func newPreflightCmd(g *globals) *cobra.Command {
	var node, output, secretsFile string
	cmd := &cobra.Command{
		Use:   "preflight",
		Short: "Check that this controller is ready for bootstrap; changes nothing",
		Long: `Checks hostname, packages (installed or installable), the DRBD module, the
backing disk, both cluster networks, the peer on both links, multipathd, that
the clock is synchronised (timedatectl, chronyc) and within 1s of the peer's
(clockdiff), and asks each controller's fence device for its power state
through its fence agent (options and password on the agent's stdin: with the
password the secrets file holds for it, else the password file on this node).
Every failed check is listed with its fix; a check that cannot be made here
(a tool missing that bootstrap installs) is unknown ("??") and does not fail.
Exits 0 when none failed, 1 otherwise.`,
		Example: `  haconf preflight -c /etc/haconf/haconf.yaml
  haconf preflight -c haconf.yaml --node ctl2 --secrets secrets.yaml -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.loadConfig()
			if err != nil {
				return err
			}
			secrets, err := loadSecretsIfAny(secretsFile)
			if err != nil {
				return err
			}
			// bootstrap.Preflight names an unknown node itself.
			host := bootstrap.ThisHost(runner.Exec{}) // its name read once
			name := node
			if name == "" {
				name = bootstrap.ShortName(host.Name)
			}
			checks, perr := bootstrap.Preflight(cmd.Context(), host, c, name, secrets)
			if checks == nil && perr != nil {
				return perr
			}
			w := cmd.OutOrStdout()
			switch output {
			case "json":
				if err := cli.WriteJSON(w, "haconf.preflight/v1", map[string]any{"node": name, "checks": checks}); err != nil {
					return err
				}
			case "text":
				for _, ch := range checks {
					fmt.Fprintf(w, "%s %-18s %s\n", checkMark(ch), ch.Name, ch.Detail)
					if !ch.OK {
						fmt.Fprintf(w, "     %-18s fix: %s\n", "", ch.Fix)
					}
				}
			}
			if perr != nil {
				return cli.WithCode(cli.ExitFailure, perr)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&node, "node", "", "controller to check as (default: this host's name)")
	cmd.Flags().StringVar(&secretsFile, "secrets", defaultSecrets, "secrets file with the fence passwords bootstrap will install (the default may be missing)")
	cli.OutputFlag(cmd, &output, "text", "json")
	return cmd
}
