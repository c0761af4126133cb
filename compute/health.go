package compute

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
)

// NovaComputeRunning reports whether a nova-compute process runs on this
// host: in this network namespace (the compute lab runs several hosts as
// namespaces of one machine), with "nova-compute" or nova.cmd.compute in
// its command line.
func NovaComputeRunning() bool {
	return novaComputeIn("/proc")
}

func novaComputeIn(procfs string) bool {
	self, _ := os.Readlink(filepath.Join(procfs, "self", "ns", "net"))
	ents, err := os.ReadDir(procfs)
	if err != nil {
		return false
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(procfs, e.Name(), "cmdline"))
		if err != nil || !(bytes.Contains(cmdline, []byte("nova-compute")) || bytes.Contains(cmdline, []byte("nova.cmd.compute"))) {
			continue
		}
		if ns, _ := os.Readlink(filepath.Join(procfs, e.Name(), "ns", "net")); ns == self {
			return true
		}
	}
	return false
}
