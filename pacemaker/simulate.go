package pacemaker

import (
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/haconf/haconf/internal/runner"
)

// CmdRunner runs a command with environment and stdin options.
type CmdRunner interface {
	RunCmd(ctx context.Context, c runner.Cmd) ([]byte, error)
}

// Simulator runs crm_simulate on CIB files in a scratch directory, so a CIB
// can be tried without a cluster: bring nodes up, let transitions settle,
// fail a node, and read where every resource ends up.
type Simulator struct {
	R   CmdRunner
	Dir string // scratch directory for the intermediate CIBs
	n   int
}

// Transition is one settled simulation step.
type Transition struct {
	CIB     []byte   // the CIB (configuration and status) after the step
	Summary []string // the "Transition Summary" lines of every round
	// Graph is the transition graph of the step's first round: the
	// scheduler's answer to the event, with every action's inputs.
	Graph *Graph
}

// maxRounds bounds the settle loop; a stable cluster needs two or three.
const maxRounds = 8

func (s *Simulator) next() string {
	s.n++
	return filepath.Join(s.Dir, fmt.Sprintf("sim-%02d.xml", s.n))
}

// Start brings nodes online with quorum, sets each promotable clone's
// promotion score attribute (as the DRBD agent would once UpToDate), and
// runs transitions until nothing is left to do.
func (s *Simulator) Start(ctx context.Context, cib []byte, nodes []string, promotionAttrs []string) (*Transition, error) {
	in := s.next()
	if err := os.WriteFile(in, cib, 0o600); err != nil {
		return nil, err
	}
	out := s.next()
	args := []string{"-x", in, "--quorum", "1", "-O", out}
	for _, n := range nodes {
		args = append(args, "--node-up", n)
	}
	if _, err := s.R.RunCmd(ctx, runner.Cmd{Name: "crm_simulate", Args: args}); err != nil {
		return nil, fmt.Errorf("simulate nodes up: %w", err)
	}
	for _, n := range nodes {
		for _, a := range promotionAttrs {
			_, err := s.R.RunCmd(ctx, runner.Cmd{
				Name: "crm_attribute",
				Args: []string{"-N", n, "-n", a, "-v", "10000", "-l", "reboot"},
				Env:  []string{"CIB_file=" + out},
			})
			if err != nil {
				return nil, fmt.Errorf("set %s on %s: %w", a, n, err)
			}
		}
	}
	return s.settle(ctx, out, nil)
}

// FailNode simulates node failing (power loss) in the state t and settles.
func (s *Simulator) FailNode(ctx context.Context, t *Transition, node string) (*Transition, error) {
	in := s.next()
	if err := os.WriteFile(in, t.CIB, 0o600); err != nil {
		return nil, err
	}
	return s.settle(ctx, in, []string{"--node-fail", node})
}

// SetAttributes sets transient node attributes (node -> value of name) in
// the state t, as an agent on each node would, and settles.
func (s *Simulator) SetAttributes(ctx context.Context, t *Transition, name string, values map[string]string) (*Transition, error) {
	in := s.next()
	if err := os.WriteFile(in, t.CIB, 0o600); err != nil {
		return nil, err
	}
	for node, v := range values {
		_, err := s.R.RunCmd(ctx, runner.Cmd{
			Name: "crm_attribute",
			Args: []string{"-N", node, "-n", name, "-v", v, "-l", "reboot"},
			Env:  []string{"CIB_file=" + in},
		})
		if err != nil {
			return nil, fmt.Errorf("set %s on %s: %w", name, node, err)
		}
	}
	return s.settle(ctx, in, nil)
}

var summaryLine = regexp.MustCompile(`^\s+\* (.*)$`)

func (s *Simulator) settle(ctx context.Context, in string, firstArgs []string) (*Transition, error) {
	t := &Transition{}
	cur := in
	for round := 0; round < maxRounds; round++ {
		out := s.next()
		args := append([]string{"-x", cur, "-S", "-O", out}, firstArgs...)
		firstArgs = nil
		graph := ""
		if round == 0 {
			graph = s.next()
			args = append(args, "-G", graph)
		}
		stdout, err := s.R.RunCmd(ctx, runner.Cmd{Name: "crm_simulate", Args: args})
		if err != nil {
			return nil, fmt.Errorf("simulate: %w", err)
		}
		if graph != "" {
			b, err := os.ReadFile(graph)
			if err != nil {
				return nil, err
			}
			if t.Graph, err = ParseGraph(b); err != nil {
				return nil, fmt.Errorf("%s: %w", graph, err)
			}
		}
		actions := transitionSummary(stdout)
		t.Summary = append(t.Summary, actions...)
		cur = out
		if len(actions) == 0 {
			t.CIB, err = os.ReadFile(cur)
			return t, err
		}
	}
	return nil, fmt.Errorf("simulation did not settle after %d rounds (last actions: %s)", maxRounds, strings.Join(t.Summary, "; "))
}

func transitionSummary(out []byte) []string {
	var lines []string
	in := false
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "Transition Summary:"):
			in = true
		case in && strings.TrimSpace(l) == "":
			return lines
		case in:
			if m := summaryLine.FindStringSubmatch(l); m != nil {
				lines = append(lines, strings.Join(strings.Fields(m[1]), " "))
			}
		}
	}
	return lines
}

// Placement is where a resource instance runs.
type Placement struct {
	Resource string // primitive id
	Role     string // Started, Promoted, Unpromoted, Stopped
	Node     string // "" when stopped
}

// Placements reads where every resource runs in the state t (crm_mon on the file).
func (s *Simulator) Placements(ctx context.Context, t *Transition) ([]Placement, error) {
	f := s.next()
	if err := os.WriteFile(f, t.CIB, 0o600); err != nil {
		return nil, err
	}
	out, err := s.R.RunCmd(ctx, runner.Cmd{
		Name: "crm_mon", Args: []string{"--output-as=xml", "--inactive"},
		Env: []string{"CIB_file=" + f},
	})
	if err != nil {
		return nil, fmt.Errorf("crm_mon on simulated state: %w", err)
	}
	return parsePlacements(out)
}

func parsePlacements(out []byte) ([]Placement, error) {
	dec := xml.NewDecoder(bytes.NewReader(out))
	var res []Placement
	var cur *Placement
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		switch e := tok.(type) {
		case xml.StartElement:
			switch e.Name.Local {
			case "resource":
				p := Placement{Resource: attr(e, "id"), Role: attr(e, "role")}
				res = append(res, p)
				cur = &res[len(res)-1]
			case "node":
				if cur != nil {
					cur.Node = attr(e, "name")
				}
			}
		case xml.EndElement:
			if e.Name.Local == "resource" {
				cur = nil
			}
		}
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("crm_mon listed no resources")
	}
	return res, nil
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}
