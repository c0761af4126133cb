package main

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// cpuTime is the CPU (user and system) this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rss is the process's resident set size in bytes (/proc/self/status).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func heapInuse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func goroutines() int { return runtime.NumGoroutine() }

// machine describes where the run happened.
type machine struct {
	CPUs               int
	CPUModel           string
	MemoryMiB          int64
	Kernel, OS, Go     string
	LoadStart, LoadEnd string
	LabBusy            bool // another process held the lab's lock when the run started
	LabHeld            bool // this run held the lab's lock
	Started, Ended     time.Time
	Commit             string
}

func describeMachine() machine {
	m := machine{CPUs: runtime.NumCPU(), Go: runtime.Version(), Started: time.Now().UTC(), LoadStart: loadavg(), Commit: os.Getenv("HACONF_COMMIT")}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPUModel = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
				m.MemoryMiB = kb >> 10
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/etc/os-release"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				m.OS = strings.Trim(v, `"`)
			}
		}
	}
	m.LabBusy = labBusy()
	return m
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := bytes.Fields(b)
	if len(f) < 3 {
		return "?"
	}
	return string(bytes.Join(f[:3], []byte(" ")))
}

// labLock is the machine's lab lock (internal/testenv.LabLockPath): held
// while a lab test runs beside this one.
const labLock = "/run/lock/haconf-lab.lock"

// holdLabLock waits for the lab lock and returns the file that holds it:
// the lock lasts while the file is open (keep it: a file no longer
// referenced is closed by its finalizer, and the lock goes with it).
func holdLabLock() (*os.File, error) {
	f, err := os.OpenFile(labLock, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// labBusy reports whether another process holds the lab lock.
func labBusy() bool {
	f, err := os.Open(labLock)
	if err != nil {
		return false
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return true
	}
	syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
	return false
}

// machineBusy is the CPU every process on the machine used so far
// (/proc/stat: all but idle and iowait).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 5 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return time.Duration(busy) * 10 * time.Millisecond // USER_HZ 100
}

// lateness samples how late a 50 ms sleep wakes up: the scheduling delay
// every member's timers see. Beyond about 100 ms the members' probe
// timeouts (500 ms with lan, 200 ms with local) are at risk: the machine is
// short, whatever haconf does.
type lateness struct {
	mu      sync.Mutex
	at      []time.Time
	samples []time.Duration
}

const latenessTick = 50 * time.Millisecond

func watchLateness(ctx context.Context) *lateness {
	l := &lateness{}
	go func() {
		for ctx.Err() == nil {
			start := time.Now()
			time.Sleep(latenessTick)
			late := time.Since(start) - latenessTick
			l.mu.Lock()
			l.at, l.samples = append(l.at, start), append(l.samples, late)
			l.mu.Unlock()
		}
	}()
	return l
}

// between returns the median, p99 and max delay of the samples from a to b.
func (l *lateness) between(a, b time.Time) (p50, p99, worst time.Duration) {
	l.mu.Lock()
	var s []time.Duration
	for i, t := range l.at {
		if !t.Before(a) && t.Before(b) {
			s = append(s, l.samples[i])
		}
	}
	l.mu.Unlock()
	if len(s) == 0 {
		return 0, 0, 0
	}
	slices.Sort(s)
	return s[len(s)/2], s[min(len(s)-1, len(s)*99/100)], s[len(s)-1]
}
