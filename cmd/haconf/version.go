package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"

	"github.com/haconf/haconf/internal/cli"
)

// Set at build time by make build and make deb:
//
//	-ldflags "-X main.version=... -X main.commit=... -X main.date=..."
var (
	version = "dev"
	commit  = ""
	date    = ""
)

// versionInfo is what haconf version prints.
type versionInfo struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	BuildDate string `json:"build_date"`
	GoVersion string `json:"go_version"`
}

// buildVersion is the stamped version, commit and date; for a binary built
// without them (go build, go install) what the Go toolchain recorded.
func buildVersion() versionInfo {
	v := versionInfo{Version: version, Commit: commit, BuildDate: date, GoVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return v
	}
	if v.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v.Version = bi.Main.Version
	}
	for _, s := range bi.Settings {
		switch {
		case s.Key == "vcs.revision" && v.Commit == "":
			v.Commit = s.Value
		case s.Key == "vcs.time" && v.BuildDate == "":
			// The commit's time: the best date an unstamped build has.
			v.BuildDate = s.Value
		}
	}
	return v
}

func newVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print haconf's version, commit and build date",
		Example: `  haconf version
  haconf version -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cli.Output(cmd.OutOrStdout(), output, "haconf.version/v1", buildVersion(), writeVersion)
		},
	}
	cli.OutputFlag(cmd, &output, "text", "json")
	return cmd
}

func writeVersion(w io.Writer, v versionInfo) {
	fmt.Fprintln(w, "haconf", v.Version)
	fmt.Fprintln(w, "commit:", orUnknown(v.Commit))
	fmt.Fprintln(w, "built: ", orUnknown(v.BuildDate))
	fmt.Fprintln(w, "go:    ", v.GoVersion)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
