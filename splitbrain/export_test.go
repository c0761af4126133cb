package splitbrain

import "github.com/haconf/haconf/drbd"

// Exported for the external test package (splitbrain_test), which joins the
// fake pair with the watchdog's HTTP endpoint.

type FakeWorld = fakeWorld

var NewFakeWorld = newFakeWorld

// NodeFor returns the runner of the named fake node.
func (w *fakeWorld) NodeFor(name string) drbd.Runner { return w.nodes[name] }

// SplitBrain puts the fake pair in split brain.
func (w *fakeWorld) SplitBrain(promoted string, writes map[string][]int) {
	w.splitBrain(promoted, writes)
}

// Digest returns the digest of a node's device.
func (w *fakeWorld) Digest(name string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return digest(w.nodes[name].data)
}

// Files returns the digests of a node's preserved copies by path.
func (w *fakeWorld) Files(name string) map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]string{}
	for k, v := range w.nodes[name].files {
		out[k] = v
	}
	return out
}

// Healthy reports whether both nodes are Connected UpToDate/UpToDate.
func (w *fakeWorld) Healthy() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, n := range w.nodes {
		if n.conn != drbd.ConnConnected || n.disk != drbd.DiskUpToDate || n.repl != drbd.ReplEstablished {
			return false
		}
	}
	return true
}

// Mutations lists the state-changing commands a node ran.
func (w *fakeWorld) Mutations(name string) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.nodes[name].mutations...)
}
