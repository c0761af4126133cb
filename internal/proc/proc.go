// Package proc reads what haconf needs from /proc: a process's state,
// parent and group, pid files, the mount table and the processes holding
// a filesystem. Resource agents and the lab use it to tell a live process
// from a dead one, a zombie or a reused pid, and the fs agent to find
// what keeps a filesystem from being unmounted.
package proc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Stat is the start of /proc/PID/stat.
type Stat struct {
	PID     int
	Comm    string // the executable's name, at most 15 bytes
	State   byte   // R, S, D, Z, X, ...
	PPID    int
	PGRP    int
	Session int // the session id (a daemon started with setsid leads its own)
	// Start is when the process started, in clock ticks after boot: with
	// the pid it names one process (a pid is reused, a start time after
	// a reboot or reuse differs).
	Start uint64
}

// Live reports whether the process runs (it is not a zombie or dead).
func (s Stat) Live() bool { return s.State != 'Z' && s.State != 'X' }

// ReadStat reads /proc/PID/stat.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(b)
}

// ParseStat parses a /proc/PID/stat line: "pid (comm) state ppid pgrp ...".
// comm may hold spaces and parentheses: it ends at the last ')'.
func ParseStat(b []byte) (Stat, error) {
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 1 || end < open {
		return Stat{}, fmt.Errorf("proc stat %q: no (comm)", b)
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 3 || len(f[0]) != 1 {
		return Stat{}, fmt.Errorf("proc stat %q: too short", b)
	}
	s := Stat{Comm: string(b[open+1 : end]), State: f[0][0]}
	var err error
	if s.PID, err = strconv.Atoi(strings.TrimSpace(string(b[:open]))); err != nil {
		return Stat{}, fmt.Errorf("proc stat %q: pid: %w", b, err)
	}
	if s.PPID, err = strconv.Atoi(f[1]); err != nil {
		return Stat{}, fmt.Errorf("proc stat %q: ppid: %w", b, err)
	}
	if s.PGRP, err = strconv.Atoi(f[2]); err != nil {
		return Stat{}, fmt.Errorf("proc stat %q: pgrp: %w", b, err)
	}
	if len(f) > 3 {
		if s.Session, err = strconv.Atoi(f[3]); err != nil {
			return Stat{}, fmt.Errorf("proc stat %q: session: %w", b, err)
		}
	}
	if len(f) > 19 {
		if s.Start, err = strconv.ParseUint(f[19], 10, 64); err != nil {
			return Stat{}, fmt.Errorf("proc stat %q: starttime: %w", b, err)
		}
	}
	return s, nil
}

// Alive reports whether pid is a live process.
func Alive(pid int) bool {
	s, err := ReadStat(pid)
	return err == nil && s.Live()
}

// ReadPidFile reads a pid file: one positive number.
func ReadPidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s: %q is not a pid", path, bytes.TrimSpace(b))
	}
	return pid, nil
}

// Pids lists every process id in /proc.
func Pids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// Group lists the live (not zombie) processes of process group pgid.
func Group(pgid int) []int { return matching(func(s Stat) bool { return s.PGRP == pgid }) }

// Session lists the live processes of session sid.
func Session(sid int) []int { return matching(func(s Stat) bool { return s.Session == sid }) }

func matching(ok func(Stat) bool) []int {
	var out []int
	for _, pid := range Pids() {
		if st, err := ReadStat(pid); err == nil && st.Live() && ok(st) {
			out = append(out, pid)
		}
	}
	return out
}
