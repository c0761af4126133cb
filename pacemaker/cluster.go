package pacemaker

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The command-line tools of Pacemaker 2.1 and Corosync 3.1 that haconf runs.
// This package is the only one that names them.
const (
	crmMon       = "crm_mon"
	cibadmin     = "cibadmin"
	crmResource  = "crm_resource"
	crmAttribute = "crm_attribute"
	crmSimulate  = "crm_simulate"
	crmVerify    = "crm_verify"
	cfgtool      = "corosync-cfgtool"
	quorumtool   = "corosync-quorumtool"

	// CorosyncDaemon and PacemakerDaemon are the daemons a node without
	// an init for the cluster stack (a lab node) starts in this order.
	CorosyncDaemon  = "corosync"
	PacemakerDaemon = "pacemakerd"
)

// tools are the programs Cluster.Do accepts.
var tools = []string{crmMon, cibadmin, crmResource, crmAttribute, crmSimulate, crmVerify, cfgtool, quorumtool}

// Runner runs one command on a node and returns its standard output:
// runner.Exec on this machine, a lab node, or a test's fake.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// Cluster drives one node's Pacemaker and Corosync through their
// command-line tools. It holds no state: every call asks the cluster.
type Cluster struct {
	Run Runner
}

// StatusXML is `crm_mon --output-as=xml --inactive`: the whole cluster's
// state as this node sees it, stopped resources included.
func (c Cluster) StatusXML(ctx context.Context) ([]byte, error) {
	return c.Run.Run(ctx, crmMon, "--output-as=xml", "--inactive")
}

// Status reads and parses the cluster's state (see StatusXML).
func (c Cluster) Status(ctx context.Context) (CrmMon, error) {
	out, err := c.StatusXML(ctx)
	if err != nil {
		return CrmMon{}, err
	}
	return ParseCrmMon(out)
}

// History reads the cluster's state with the node attributes and the
// operation history (crm_mon --show-node-attributes --operations).
func (c Cluster) History(ctx context.Context) (CrmMon, error) {
	out, err := c.Run.Run(ctx, crmMon, "--output-as=xml", "--show-node-attributes", "--operations")
	if err != nil {
		return CrmMon{}, err
	}
	return ParseCrmMon(out)
}

// StatusText is crm_mon's one-shot text view with inactive resources, for
// people.
func (c Cluster) StatusText(ctx context.Context) ([]byte, error) {
	return c.Run.Run(ctx, crmMon, "-1", "-r")
}

// CIB scopes (cibadmin --scope).
const (
	ScopeConfiguration = "configuration"
	ScopeConstraints   = "constraints"
	ScopeCrmConfig     = "crm_config"
	ScopeResources     = "resources"
	ScopeNodes         = "nodes"
)

// Query returns a section of the live CIB (scope ""): the whole CIB).
func (c Cluster) Query(ctx context.Context, scope string) ([]byte, error) {
	args := []string{"--query"}
	if scope != "" {
		args = append(args, "--scope", scope)
	}
	return c.Run.Run(ctx, cibadmin, args...)
}

// QueryXPath returns the elements of scope matching xpath; an error
// (cibadmin exits 105) when there is none.
func (c Cluster) QueryXPath(ctx context.Context, scope, xpath string) ([]byte, error) {
	return c.Run.Run(ctx, cibadmin, "--query", "--scope", scope, "--xpath", xpath)
}

// Create adds element xml to scope; it fails when the id exists.
func (c Cluster) Create(ctx context.Context, scope, xml string) error {
	_, err := c.Run.Run(ctx, cibadmin, CreateArgv(scope, xml)[1:]...)
	return err
}

// Delete removes the element xml names by tag and id from scope.
func (c Cluster) Delete(ctx context.Context, scope, xml string) error {
	_, err := c.Run.Run(ctx, cibadmin, "--delete", "--scope", scope, "--xml-text", xml)
	return err
}

// CreateArgv is the cibadmin command that adds xml to scope.
func CreateArgv(scope, xml string) []string {
	return []string{cibadmin, "--create", "--scope", scope, "--xml-text", xml}
}

// HasConstraint reports whether a constraint with id exists; false when
// the CIB cannot be read.
func (c Cluster) HasConstraint(ctx context.Context, id string) bool {
	_, err := c.QueryXPath(ctx, ScopeConstraints, "//rsc_location[@id='"+id+"']")
	return err == nil
}

// DeleteConstraint removes the location constraint id.
func (c Cluster) DeleteConstraint(ctx context.Context, id string) error {
	return c.Delete(ctx, ScopeConstraints, "<rsc_location id='"+id+"'/>")
}

// ApplyUpdate replaces or creates one CIB section from file (see
// ConfigurationUpdates).
func (c Cluster) ApplyUpdate(ctx context.Context, u SectionUpdate, file string) error {
	_, err := c.Run.Run(ctx, cibadmin, u.Args(file)...)
	return err
}

// Lifetimes of node attributes (crm_attribute -l).
const (
	Forever = "forever" // kept in the CIB's nodes section
	Reboot  = "reboot"  // transient: gone when the node leaves the cluster
)

// NodeAttribute reads node's attribute name with the given lifetime.
func (c Cluster) NodeAttribute(ctx context.Context, node, name, lifetime string) (string, error) {
	out, err := c.Run.Run(ctx, crmAttribute, "-N", node, "-n", name, "-l", lifetime, "-G", "-q")
	return strings.TrimSpace(string(out)), err
}

// SetNodeAttribute sets node's attribute name.
func (c Cluster) SetNodeAttribute(ctx context.Context, node, name, lifetime, value string) error {
	_, err := c.Run.Run(ctx, crmAttribute, "-N", node, "-n", name, "-l", lifetime, "-v", value)
	return err
}

// DeleteNodeAttribute removes node's attribute name.
func (c Cluster) DeleteNodeAttribute(ctx context.Context, node, name, lifetime string) error {
	_, err := c.Run.Run(ctx, crmAttribute, "-N", node, "-n", name, "-l", lifetime, "-D")
	return err
}

// SetPromotionScore sets (score >= 0) or removes (score < 0) node's
// promotion score for a promotable clone's primitive, as crm_master does.
func (c Cluster) SetPromotionScore(ctx context.Context, node, attr string, score int) error {
	if score < 0 {
		return c.DeleteNodeAttribute(ctx, node, attr, Reboot)
	}
	return c.SetNodeAttribute(ctx, node, attr, Reboot, strconv.Itoa(score))
}

// Links is corosync-cfgtool -s: this node's view of every knet link.
func (c Cluster) Links(ctx context.Context) ([]byte, error) {
	return c.Run.Run(ctx, cfgtool, "-s")
}

// Quorum is corosync-quorumtool -s: votes, quorum and members.
func (c Cluster) Quorum(ctx context.Context) ([]byte, error) {
	return c.Run.Run(ctx, quorumtool, "-s")
}

// Command is one command of a plan shown before it runs (a switchover, a
// split-brain resolution, maintenance mode), with the reason for it.
type Command struct {
	Argv []string `json:"argv"`
	Why  string   `json:"why"`
}

// Do runs argv, a command built by this package (MoveArgv, ClearArgv,
// ...). It refuses any other program.
func (c Cluster) Do(ctx context.Context, argv []string) ([]byte, error) {
	if len(argv) == 0 || !slices.Contains(tools, argv[0]) {
		return nil, fmt.Errorf("not a Pacemaker or Corosync command: %q", argv)
	}
	return c.Run.Run(ctx, argv[0], argv[1:]...)
}

// MoveArgv moves clone's promoted instance to node with a constraint that
// expires after lifetime (crm_resource --move --promoted).
func MoveArgv(clone, node string, lifetime time.Duration) []string {
	return []string{crmResource, "--move", "--promoted", "-r", clone, "-N", node, "--lifetime", fmt.Sprintf("PT%dS", int(lifetime.Seconds()))}
}

// ClearArgv removes the constraints MoveArgv and crm_resource --ban placed
// for rsc.
func ClearArgv(rsc string) []string { return []string{crmResource, "--clear", "-r", rsc} }

// WaitArgv waits until the cluster has nothing left to do, at most timeout.
func WaitArgv(timeout time.Duration) []string {
	return []string{crmResource, "--wait", "--timeout", fmt.Sprintf("%ds", int(timeout.Seconds()))}
}

// SetManagedArgv hands rsc to Pacemaker (true) or takes it away (false).
func SetManagedArgv(rsc string, managed bool) []string {
	return []string{crmResource, "--resource", rsc, "--meta", "--set-parameter", "is-managed", "--parameter-value", strconv.FormatBool(managed)}
}

// CleanupArgv clears rsc's failures and re-probes it.
func CleanupArgv(rsc string) []string { return []string{crmResource, "--cleanup", "--resource", rsc} }

// IsSetManaged reports whether argv is SetManagedArgv(_, managed).
func IsSetManaged(argv []string, managed bool) bool {
	return len(argv) == 8 && argv[0] == crmResource && argv[3] == "--meta" && argv[5] == "is-managed" && argv[7] == strconv.FormatBool(managed)
}

// IsResourceCommand reports whether argv runs crm_resource.
func IsResourceCommand(argv []string) bool { return len(argv) > 0 && argv[0] == crmResource }
