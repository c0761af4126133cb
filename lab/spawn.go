package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/haconf/haconf/internal/proc"
	"github.com/haconf/haconf/internal/runner"
)

// spawn starts a long-lived process (a UML kernel, the fence daemon) with
// runner.StartDaemonCmd: in its own session, so its process group id is its
// pid and one kill reaches all of it, stdin from /dev/null, stdout and
// stderr appended to logFile. It records the pid in pidFile. A process
// that dies while this one lives (the fence daemon, a test) is reaped;
// otherwise init inherits it.
func spawn(argv []string, env []string, logFile, pidFile string) (int, error) {
	// The lab's logs are 0600 (the runner would create one 0640).
	f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	f.Close()
	pid, err := runner.Exec{}.StartDaemonCmd(runner.Cmd{Name: argv[0], Args: argv[1:], Env: env}, logFile)
	if err != nil {
		return 0, err
	}
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return 0, err
	}
	return pid, nil
}

// alive returns the pid recorded in pidFile when that process still runs
// and its command line contains marker (so a reused pid is not mistaken for
// the lab's process).
func alive(pidFile, marker string) (int, bool) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, false
	}
	return pid, procAlive(pid, marker)
}

func procAlive(pid int, marker string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(marker)) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name; Z is a zombie.
	if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
		return false
	}
	return true
}

// killGroup sends SIGKILL to the process group pgid and waits until no
// process of that group is left.
func killGroup(pgid int, wait time.Duration) error {
	if err := syscall.Kill(-pgid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill process group %d: %w", pgid, err)
	}
	deadline := time.Now().Add(wait)
	for {
		left := proc.Group(pgid)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process group %d still has %d processes after SIGKILL", pgid, len(left))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Leftovers lists the processes whose command line mentions dir: after
// Down there must be none.
func Leftovers(dir string) []int {
	ents, _ := os.ReadDir("/proc")
	var pids []int
	self := os.Getpid()
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if procAlive(pid, dir) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// reaping is set once this process reaps orphans (the fence daemon).
var reaping atomic.Bool

const prSetChildSubreaper = 36 // linux/prctl.h

// becomeSubreaper makes orphaned descendants of this process its children
// instead of PID 1's. Some PID 1s (minimal container inits) never reap, and
// a SIGKILLed UML kernel leaves its own children orphaned.
func becomeSubreaper() error {
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", errno)
	}
	reaping.Store(true)
	return nil
}

// reapChildren collects every exited child until ctx ends.
func reapChildren(ctx context.Context) {
	sig := make(chan os.Signal, 16)
	signal.Notify(sig, syscall.SIGCHLD)
	defer signal.Stop(sig)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if pid <= 0 || err != nil {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-sig:
		case <-tick.C:
		}
	}
}

// waitReaped waits until no process of group pgid is left, zombies
// included, when this process reaps them.
func waitReaped(pgid int, wait time.Duration) {
	if !reaping.Load() {
		return
	}
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) && groupHasAny(pgid) {
		time.Sleep(20 * time.Millisecond)
	}
}

func groupHasAny(pgid int) bool {
	for _, pid := range proc.Pids() {
		if st, err := proc.ReadStat(pid); err == nil && st.PGRP == pgid {
			return true
		}
	}
	return false
}
