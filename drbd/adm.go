package drbd

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/haconf/haconf/internal/runner"
)

// The tools of drbd-utils 9.x (for DRBD 8.4 and 9 kernels) that haconf
// runs. This package is the only one that names them.
const (
	drbdadm   = "drbdadm"
	drbdsetup = "drbdsetup"
)

// Adm runs drbdadm and drbdsetup on one node for one resource's life
// cycle: what bootstrap, the resource agent and the split-brain engine do
// to DRBD goes through it.
type Adm struct {
	Run Runner
}

// AdmArgv is the drbdadm command for op on res, flags before the resource
// (drbdadm connect --discard-my-data r0). Plans show it before it runs.
func AdmArgv(op, res string, flags ...string) []string {
	argv := append([]string{drbdadm, op}, flags...)
	return append(argv, res)
}

// IsAdm reports whether argv is a drbdadm op (with flag, when given).
func IsAdm(argv []string, op string, flag string) bool {
	if len(argv) < 3 || argv[0] != drbdadm || argv[1] != op {
		return false
	}
	if flag == "" {
		return true
	}
	for _, a := range argv[2:] {
		if a == flag {
			return true
		}
	}
	return false
}

// IsAdmCommand reports whether argv runs drbdadm.
func IsAdmCommand(argv []string) bool { return len(argv) > 0 && argv[0] == drbdadm }

// Do runs argv, a drbdadm command from AdmArgv.
func (a Adm) Do(ctx context.Context, argv []string) ([]byte, error) {
	if len(argv) == 0 || argv[0] != drbdadm {
		return nil, fmt.Errorf("not a drbdadm command: %q", argv)
	}
	return a.Run.Run(ctx, argv[0], argv[1:]...)
}

func (a Adm) adm(ctx context.Context, op, res string, flags ...string) error {
	_, err := a.Do(ctx, AdmArgv(op, res, flags...))
	return err
}

// Up attaches the backing disk and connects to the peer.
func (a Adm) Up(ctx context.Context, res string) error { return a.adm(ctx, "up", res) }

// Down disconnects and detaches.
func (a Adm) Down(ctx context.Context, res string) error { return a.adm(ctx, "down", res) }

// Primary promotes this node; force promotes data that is not known to
// be UpToDate (only for the very first promotion of a new resource).
func (a Adm) Primary(ctx context.Context, res string, force bool) error {
	if force {
		return a.adm(ctx, "primary", res, "--force")
	}
	return a.adm(ctx, "primary", res)
}

// Secondary demotes this node.
func (a Adm) Secondary(ctx context.Context, res string) error { return a.adm(ctx, "secondary", res) }

// Connect connects to the peer.
func (a Adm) Connect(ctx context.Context, res string) error { return a.adm(ctx, "connect", res) }

// Disconnect drops the connection to the peer.
func (a Adm) Disconnect(ctx context.Context, res string) error { return a.adm(ctx, "disconnect", res) }

// GI reads the generation identifiers (drbdadm get-gi).
func (a Adm) GI(ctx context.Context, res string) (GI, error) {
	out, err := a.Run.Run(ctx, drbdadm, "get-gi", res)
	if err != nil {
		return GI{}, err
	}
	return ParseGI(out)
}

// Minor is the configured minor of res (drbdadm sh-minor).
func (a Adm) Minor(ctx context.Context, res string) (int, error) {
	out, err := a.Run.Run(ctx, drbdadm, "sh-minor", res)
	if err != nil {
		return 0, err
	}
	m, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return 0, fmt.Errorf("drbdadm sh-minor %s: %q", res, out)
	}
	return m, nil
}

// StatusJSON is DRBD 9's `drbdsetup status --json` for res, or for every
// resource when res is "".
func (a Adm) StatusJSON(ctx context.Context, res string) ([]byte, error) {
	args := []string{"status", "--json"}
	if res != "" {
		args = append(args, res)
	}
	return a.Run.Run(ctx, drbdsetup, args...)
}

// CmdRunner runs a command with standard input (runner.Exec does).
type CmdRunner interface {
	RunCmd(ctx context.Context, c runner.Cmd) ([]byte, error)
}

// CreateMD writes fresh metadata on res's backing disk; drbdadm asks for
// confirmation on stdin, which r answers.
func (a Adm) CreateMD(ctx context.Context, r CmdRunner, res string) error {
	_, err := r.RunCmd(ctx, runner.Cmd{Name: drbdadm, Args: []string{"create-md", "--force", res}, Stdin: []byte("yes\n")})
	return err
}

// State is res's state on this node. proc is /proc/drbd as the caller
// read it (from under its root): DRBD 8.4 reports res there by its minor;
// DRBD 9 only has its version there, and the state comes from drbdsetup.
// up is false while res is not configured.
func (a Adm) State(ctx context.Context, proc []byte, res string, minor int) (r Resource, up bool, err error) {
	st, err := ParseProcDRBD(proc)
	if err != nil {
		return Resource{}, false, err
	}
	if Is84(st.Version) {
		r, ok := st.ByMinor(minor)
		if !ok || r.Connection == ConnUnconfigured {
			return Resource{}, false, nil
		}
		r.Name = res
		return r, true, nil
	}
	out, err := a.StatusJSON(ctx, "")
	if err != nil {
		return Resource{}, false, err
	}
	if st, err = ParseStatusJSON(out); err != nil {
		return Resource{}, false, err
	}
	r, ok := st.ByName(res, 0)
	return r, ok && r.Connection != ConnUnconfigured, nil
}
