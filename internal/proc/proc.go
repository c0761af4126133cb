// Package proc reads what haconf needs from /proc: a process's state,
// parent and group, and pid files. Resource agents and the lab use it to
// tell a live process from a dead one, a zombie or a reused pid.
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
	PID   int
	Comm  string // the executable's name, at most 15 bytes
	State byte   // R, S, D, Z, X, ...
	PPID  int
	PGRP  int
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
