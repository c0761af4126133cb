package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/internal/atomicfile"
	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/templates"
)

type renderOptions struct {
	node        string
	root        string
	drbdVersion string
	dryRun      bool
}

func (o *renderOptions) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.node, "node", "", "controller to render for (default: this host's name)")
	cmd.Flags().StringVar(&o.root, "root", "/", "directory the files are rendered under (e.g. a scratch dir to inspect)")
	cmd.Flags().StringVar(&o.drbdVersion, "drbd-version", "", "render DRBD syntax for 8.4 or 9, overriding drbd.version and detection")
}

// files loads the config and renders the files for the chosen node.
func (o *renderOptions) files(ctx context.Context, g *globals, stderr io.Writer) (*config.Config, []templates.File, error) {
	c, err := g.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	node := o.node // an explicit --node is checked by templates.Render
	if node == "" {
		if node, err = controllerName(c, ""); err != nil {
			return nil, nil, err
		}
	}
	ver, source := o.drbdVersion, "--drbd-version"
	if ver == "" {
		ver, source = resolveDRBDVersion(ctx, c.DRBD.Version)
	}
	if ver != drbd.Version84 && ver != drbd.Version9 {
		return nil, nil, cli.UsageError(fmt.Errorf("--drbd-version %q: must be 8.4 or 9", ver))
	}
	if g.logger != nil {
		g.logger.Debug("drbd syntax", "version", ver, "source", source)
	}
	if !c.Fencing.Safe() {
		fmt.Fprintln(stderr, "WARNING: fencing.type is none: the pair is UNSAFE (a partition can run MariaDB on both controllers)")
	}
	files, err := templates.Render(c, node, templates.Options{DRBDVersion: ver})
	return c, files, err
}

var drbdVersionLine = regexp.MustCompile(`(?m)^version: ([0-9]+)\.([0-9]+)`)

// resolveDRBDVersion turns "auto" into 8.4 or 9 by asking the loaded kernel
// module (/proc/drbd), then the installed one (modinfo); with neither, it
// renders 8.4, what a stock Debian/Ubuntu kernel ships.
func resolveDRBDVersion(ctx context.Context, configured string) (version, source string) {
	if configured != drbd.VersionAuto {
		return configured, "drbd.version"
	}
	fromVersion := func(major string) string {
		if major == "8" {
			return drbd.Version84
		}
		return drbd.Version9
	}
	if b, err := os.ReadFile("/proc/drbd"); err == nil {
		if m := drbdVersionLine.FindSubmatch(b); m != nil {
			return fromVersion(string(m[1])), "/proc/drbd"
		}
	}
	if out, err := (runner.Exec{}).Run(ctx, "modinfo", "-F", "version", "drbd"); err == nil {
		if v := strings.TrimSpace(string(out)); v != "" {
			return fromVersion(strings.SplitN(v, ".", 2)[0]), "modinfo drbd"
		}
	}
	return drbd.Version84, "default (no DRBD module found)"
}

func newRenderCmd(g *globals) *cobra.Command {
	o := &renderOptions{}
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Write every file a controller needs (DRBD, Corosync, CIB, haproxy, MariaDB, RabbitMQ, watchdog unit)",
		Long: `Renders the files for one controller from haconf.yaml and writes them under
--root, atomically and only when their content changes (unchanged files keep
their modification time). --dry-run shows what would change, like plan.`,
		Example: `  haconf render -c haconf.yaml --node ctl1 --root /tmp/ctl1
  haconf render -c /etc/haconf/haconf.yaml            # this host, under /
  haconf render -c haconf.yaml --node ctl2 --root / --dry-run`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, files, err := o.files(cmd.Context(), g, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if o.dryRun {
				plan, err := templates.Plan(o.root, files)
				if err != nil {
					return err
				}
				printPlan(w, o.root, plan)
				return nil
			}
			changes, err := templates.Write(o.root, files)
			for _, c := range changes {
				fmt.Fprintf(w, "%-9s %s\n", c.Action, displayPath(o.root, c.File.Path))
			}
			return err
		},
	}
	o.addFlags(cmd)
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "show the diff and write nothing")
	return cmd
}

func newPlanCmd(g *globals) *cobra.Command {
	o := &renderOptions{}
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show a unified diff of every file render would change; changes nothing",
		Example: `  haconf plan -c haconf.yaml --node ctl1
  haconf plan -c haconf.yaml --node ctl1 --root /tmp/ctl1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, files, err := o.files(cmd.Context(), g, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			plan, err := templates.Plan(o.root, files)
			if err != nil {
				return err
			}
			printPlan(cmd.OutOrStdout(), o.root, plan)
			return nil
		},
	}
	o.addFlags(cmd)
	return cmd
}

func displayPath(root, rel string) string {
	p, _ := templates.Under(root, rel)
	return p
}

func printPlan(w io.Writer, root string, plan []templates.Change) {
	var created, updated, same int
	for _, c := range plan {
		switch c.Action {
		case atomicfile.Created:
			created++
		case atomicfile.Updated:
			updated++
		default:
			same++
			continue
		}
		if c.ModeOnly {
			fmt.Fprintf(w, "mode %s: %v -> %v\n", displayPath(root, c.File.Path), c.OldMode, c.File.Mode.Perm())
			continue
		}
		fmt.Fprint(w, c.Diff)
		if !strings.HasSuffix(c.Diff, "\n") {
			fmt.Fprintln(w)
		}
	}
	if created+updated == 0 {
		fmt.Fprintf(w, "No changes: %d files under %s are up to date.\n", same, root)
		return
	}
	fmt.Fprintf(w, "Plan: %d to create, %d to change, %d unchanged (under %s).\n", created, updated, same, root)
}
