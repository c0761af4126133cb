// Package pacemakertest gives tests a Pacemaker cluster without a stack: the
// CIB haconf renders for the example configuration (internal/config's
// example.yaml, DRBD 9 syntax) in a file, brought up by the real
// crm_simulate (both nodes online, services started on ctl1), and the real
// Pacemaker tools pointed at it with CIB_file. Tests of pacemaker,
// switchover and the CLI drive it instead of a cluster.
package pacemakertest

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/testenv"
	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/templates"
)

// Tools are the Pacemaker tools a simulated cluster needs.
var Tools = []string{"crm_simulate", "crm_attribute", "crm_mon", "cibadmin", "crm_resource", "crm_verify", "crm_rule"}

// Cluster is a CIB file brought to a steady state by crm_simulate.
type Cluster struct {
	T      testing.TB
	Config *config.Config
	// Rendered is the CIB haconf rendered, before the simulation.
	Rendered []byte
	// Path is the simulated cluster's CIB file.
	Path string
}

// Example renders the example configuration's CIB for ctl1.
func Example(t testing.TB) (*config.Config, []byte) {
	t.Helper()
	c, err := config.Parse("example.yaml", config.Example())
	if err != nil {
		t.Fatal(err)
	}
	cib, err := templates.RenderCIB(c, "ctl1", templates.Options{DRBDVersion: "9"})
	if err != nil {
		t.Fatal(err)
	}
	return c, cib
}

// Start renders the example CIB and lets crm_simulate bring both nodes up
// with DRBD's promotion score set on both: the services start on ctl1,
// which is reported as the DC. It skips (fails in CI) without the tools.
func Start(t testing.TB) *Cluster {
	t.Helper()
	testenv.RequireCommands(t, Tools...)
	c, rendered := Example(t)
	dir := t.TempDir()
	sim := &pacemaker.Simulator{R: runner.Exec{}, Dir: dir}
	tr, err := sim.Start(context.Background(), rendered, c.NodeNames(), []string{pacemaker.NamesFor(c.DRBD.Resource).PromotionAttr()})
	if err != nil {
		t.Fatal(err)
	}
	s := &Cluster{T: t, Config: c, Rendered: rendered, Path: filepath.Join(dir, "cluster.xml")}
	if err := os.WriteFile(s.Path, tr.CIB, 0o600); err != nil {
		t.Fatal(err)
	}
	s.Must("cibadmin", "--modify", "--xml-text", `<cib dc-uuid="1"/>`)
	return s
}

// Run runs a Pacemaker tool on the cluster's CIB.
func (s *Cluster) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return runner.Exec{}.RunCmd(ctx, runner.Cmd{Name: name, Args: args, Env: []string{"CIB_file=" + s.Path}})
}

// Must is Run that fails the test on an error.
func (s *Cluster) Must(name string, args ...string) []byte {
	s.T.Helper()
	out, err := s.Run(context.Background(), name, args...)
	if err != nil {
		s.T.Fatal(err)
	}
	return out
}

// Mon is crm_mon's view of the cluster.
func (s *Cluster) Mon() pacemaker.CrmMon {
	s.T.Helper()
	m, err := pacemaker.Cluster{Run: s}.Status(context.Background())
	if err != nil {
		s.T.Fatal(err)
	}
	return m
}

// Apply runs commands built by package pacemaker on the cluster's CIB.
func (s *Cluster) Apply(cmds []pacemaker.Command) {
	s.T.Helper()
	for _, c := range cmds {
		s.Must(c.Argv[0], c.Argv[1:]...)
	}
}
