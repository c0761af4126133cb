package drbd

import (
	"context"
	"errors"
	"fmt"
)

// Runner runs one command on a node and returns its standard output
// (internal/runner.Exec locally, an SSH runner in the lab, a fake in tests).
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// Node is one controller's DRBD, reached through its runner.
type Node struct {
	Name   string
	Run    Runner
	Config Config // the drbd: section
}

// ErrUnknownResource: the resource is not configured on the node.
var ErrUnknownResource = errors.New("unknown DRBD resource")

// Status reads the DRBD state of every resource on the node. On 8.4 the
// configured resource's minor is named after it.
func (n *Node) Status(ctx context.Context) (Status, error) {
	proc, err := n.Run.Run(ctx, "cat", "/proc/drbd")
	if err != nil {
		return Status{}, fmt.Errorf("%s: DRBD is not loaded: %w", n.Name, err)
	}
	st, err := ParseProcDRBD(proc)
	if err != nil {
		return Status{}, fmt.Errorf("%s: %w", n.Name, err)
	}
	if Is84(st.Version) {
		for i := range st.Resources {
			if st.Resources[i].Minor == n.Config.Minor() {
				st.Resources[i].Name = n.Config.Resource
			}
		}
		return st, nil
	}
	out, err := n.Run.Run(ctx, "drbdsetup", "status", "--json")
	if err != nil {
		return Status{}, fmt.Errorf("%s: %w", n.Name, err)
	}
	st9, err := ParseStatusJSON(out)
	if err != nil {
		return Status{}, fmt.Errorf("%s: %w", n.Name, err)
	}
	st9.Version = st.Version
	return st9, nil
}

// State returns the state of one configured resource (volume 0).
func (n *Node) State(ctx context.Context, resource string) (Resource, error) {
	r, _, err := n.StateVersion(ctx, resource)
	return r, err
}

// StateVersion is State with the DRBD version the node runs (8.4.11, 9.2.x).
func (n *Node) StateVersion(ctx context.Context, resource string) (Resource, string, error) {
	if resource != n.Config.Resource {
		return Resource{}, "", fmt.Errorf("%w: %q (haconf.yaml configures %q)", ErrUnknownResource, resource, n.Config.Resource)
	}
	st, err := n.Status(ctx)
	if err != nil {
		return Resource{}, "", err
	}
	r, ok := st.ByName(resource, 0)
	if !ok || r.Connection == ConnUnconfigured {
		return Resource{}, st.Version, fmt.Errorf("%w: %s is not up on %s", ErrUnknownResource, resource, n.Name)
	}
	return r, st.Version, nil
}
