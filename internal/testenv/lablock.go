package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// LabLockPath is the machine-wide lock that every lab test holds while it
// runs: the controller pair's UML nodes and the compute lab's cloud each
// need the machine's cores, and go test runs packages in parallel. Hand
// runs take it too: flock /run/lock/haconf-lab.lock CMD.
const LabLockPath = "/run/lock/haconf-lab.lock"

// LockLab blocks until t holds the machine's lab lock and releases it when
// t ends. A wait longer than a second is logged, so a slow test says why.
func LockLab(t testing.TB) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(LabLockPath), 0o755); err != nil {
		t.Fatalf("lab lock: %v", err)
	}
	f, err := os.OpenFile(LabLockPath, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatalf("lab lock: %v", err)
	}
	start := time.Now()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		fmt.Fprintf(os.Stderr, "%s: waiting for %s (another lab test runs)\n", t.Name(), LabLockPath)
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			t.Fatalf("lab lock %s: %v", LabLockPath, err)
		}
		t.Logf("waited %s for the lab lock %s", time.Since(start).Round(time.Second), LabLockPath)
	}
	t.Cleanup(func() { f.Close() })
}
