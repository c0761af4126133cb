package proc

import (
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

func TestParseStat(t *testing.T) {
	// Captured from a lab node (mariadbd) and a comm with ") " in it.
	s, err := ParseStat([]byte("1187 (mariadbd) S 1 1186 1186 0 -1 4194560 2817 0 0 0 12 9 0 0 20 0 9 0 1520 1013911552 23447\n"))
	if err != nil || s.PID != 1187 || s.Comm != "mariadbd" || s.State != 'S' || s.PPID != 1 || s.PGRP != 1186 || !s.Live() {
		t.Fatalf("%+v %v", s, err)
	}
	s, err = ParseStat([]byte("42 (a) b (c) Z 7 42 42 0"))
	if err != nil || s.Comm != "a) b (c" || s.State != 'Z' || s.Live() || s.PPID != 7 {
		t.Fatalf("%+v %v", s, err)
	}
	for _, bad := range []string{"", "42 mariadbd S 1 1", "42 (x) S", "x (y) S 1 2"} {
		if _, err := ParseStat([]byte(bad)); err == nil {
			t.Errorf("ParseStat(%q) accepted", bad)
		}
	}
}

func TestSelfAndPidFile(t *testing.T) {
	s, err := ReadStat(os.Getpid())
	if err != nil || !s.Live() || s.PID != os.Getpid() || s.PPID != os.Getppid() {
		t.Fatalf("%+v %v", s, err)
	}
	if !Alive(os.Getpid()) || Alive(0) {
		t.Error("Alive")
	}
	p := filepath.Join(t.TempDir(), "pid")
	os.WriteFile(p, []byte("1234\n"), 0o644)
	if pid, err := ReadPidFile(p); err != nil || pid != 1234 {
		t.Errorf("ReadPidFile = %d, %v", pid, err)
	}
	os.WriteFile(p, []byte("-3\n"), 0o644)
	if _, err := ReadPidFile(p); err == nil {
		t.Error("negative pid accepted")
	}
	if len(Pids()) == 0 {
		t.Error("no pids in /proc")
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1187 (mariadbd) S 1 1186 1186 0"))
	f.Add([]byte("1 ()) R 0 0"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseStat(b)
		if err == nil && s.State == 0 {
			t.Fatalf("parsed %q without a state", b)
		}
	})
}

func TestGroupAndSession(t *testing.T) {
	sid, err := ownSession()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(Group(syscall.Getpgrp()), os.Getpid()) {
		t.Errorf("this process is not in its own process group %d", syscall.Getpgrp())
	}
	if !slices.Contains(Session(sid), os.Getpid()) {
		t.Errorf("this process is not in its own session %d", sid)
	}
}

func ownSession() (int, error) {
	st, err := ReadStat(os.Getpid())
	return st.Session, err
}
