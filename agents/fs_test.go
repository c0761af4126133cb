package agents

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/proc"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/testenv"
	"github.com/haconf/haconf/pacemaker"
)

// The mount tables captured for internal/proc (see its testdata/README.md).
var (
	fsMountinfoShared  = readFixture("../internal/proc/testdata/mountinfo-shared.txt")
	fsMountinfoStacked = readFixture("../internal/proc/testdata/mountinfo-stacked.txt")
)

func readFixture(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestFSMonitorState(t *testing.T) {
	loop0 := fsDevNum{7, 0, true}
	for _, tc := range []struct {
		name, mountinfo, dir, device string
		dev                          fsDevNum
		want                         string // "" mounted, "7" not running, else the error
	}{
		{"mounted, propagated copy and a submount", strings.ReplaceAll(fsMountinfoShared, "69 44 7:0", "69 44 7:1"),
			"/tmp/fscap/a/my data", "/dev/loop0", loop0, ""},
		{"mounted, matched by name when the node is missing", strings.ReplaceAll(fsMountinfoShared, "69 44 7:0 / /tmp/fscap/other rw,relatime - ext4 /dev/loop0", "69 44 7:1 / /tmp/fscap/other rw,relatime - ext4 /dev/loop1"),
			"/tmp/fscap/a/my data", "/dev/loop0", fsDevNum{}, ""},
		{"mounted under another name (by-res symlink)", fsMountinfoStacked[:strings.Index(fsMountinfoStacked, "66 65")],
			"/tmp/fscap/srv", "/dev/drbd/by-res/r0/0", loop0, ""},
		{"also mounted elsewhere", fsMountinfoShared,
			"/tmp/fscap/a/my data", "/dev/loop0", loop0, "/dev/loop0 is mounted at /tmp/fscap/a/my data and also at /tmp/fscap/other"},
		{"only mounted elsewhere", fsMountinfoShared,
			"/srv/haconf", "/dev/loop0", loop0, "/dev/loop0 is mounted at /tmp/fscap/a/my data, /tmp/fscap/b/my data, /tmp/fscap/other, not at /srv/haconf"},
		{"not mounted", fsMountinfoStacked,
			"/srv/haconf", "/dev/drbd0", fsDevNum{147, 0, true}, "7"},
		{"something else at the directory", fsMountinfoStacked,
			"/dev/shm", "/dev/drbd0", fsDevNum{147, 0, true}, "tmpfs (tmpfs) is mounted at /dev/shm, not /dev/drbd0"},
		{"something else over it", fsMountinfoStacked,
			"/tmp/fscap/srv", "/dev/loop0", loop0, "over (tmpfs) is mounted over /dev/loop0 at /tmp/fscap/srv"},
		{"stacked below, ours on top", "65 44 0:39 / /srv/haconf rw - tmpfs under rw\n66 65 7:0 / /srv/haconf rw - ext4 /dev/loop0 rw\n",
			"/srv/haconf", "/dev/loop0", loop0, ""},
		{"a bind mount of a directory in it", "65 44 7:0 /mysql /srv/haconf rw - ext4 /dev/loop0 rw\n",
			"/srv/haconf", "/dev/loop0", loop0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ms, err := proc.ParseMountinfo([]byte(tc.mountinfo))
			if err != nil {
				t.Fatal(err)
			}
			a := &FS{Device: tc.device, Directory: tc.dir}
			err = fsMatch(ms, tc.dir, tc.device, tc.dev).state(a)
			got := ""
			switch {
			case errors.Is(err, pacemaker.ErrNotRunning):
				got = "7"
			case err != nil:
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFSUnmountOrder(t *testing.T) {
	ms, _ := proc.ParseMountinfo([]byte(fsMountinfoShared))
	got := fsMatch(ms, "/tmp/fscap/a/my data", "/dev/loop0", fsDevNum{7, 0, true}).unmountOrder()
	want := []string{"/tmp/fscap/a/my data/sub", "/tmp/fscap/b/my data/sub", "/tmp/fscap/a/my data", "/tmp/fscap/b/my data", "/tmp/fscap/other"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	ms, _ = proc.ParseMountinfo([]byte(fsMountinfoStacked))
	if got := fsMatch(ms, "/srv/haconf", "/dev/drbd0", fsDevNum{147, 0, true}).unmountOrder(); got != nil {
		t.Errorf("not mounted: %q", got)
	}
}

func TestFSParameters(t *testing.T) {
	env := func(kv ...string) pacemaker.OCFEnv {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m["OCF_RESKEY_"+kv[i]] = kv[i+1]
		}
		return pacemaker.OCFEnv{Getenv: func(k string) string { return m[k] }}
	}
	for _, tc := range []struct {
		env  pacemaker.OCFEnv
		want string
	}{
		{env("device", "/dev/drbd0", "directory", "/srv/haconf", "fstype", "ext4"), ""},
		{env("device", "/dev/drbd/by-res/r0/0", "directory", "/srv/haconf/", "fstype", "xfs", "options", "noatime,nodiratime"), ""},
		{env("directory", "/srv/haconf", "fstype", "ext4"), `parameter device="": must be an absolute path`},
		{env("device", "drbd0", "directory", "/srv/haconf", "fstype", "ext4"), `parameter device="drbd0": must be an absolute path`},
		{env("device", "/dev/drbd0", "directory", "srv", "fstype", "ext4"), `parameter directory="srv": must be an absolute path`},
		{env("device", "/dev/drbd0", "directory", "//", "fstype", "ext4"), `parameter directory="//": cannot mount over /`},
		{env("device", "/dev/drbd0", "directory", "/srv/haconf"), `parameter fstype="": must be one of ext4, xfs`},
		{env("device", "/dev/drbd0", "directory", "/srv/haconf", "fstype", "btrfs"), `parameter fstype="btrfs": must be one of ext4, xfs`},
		{env("device", "/dev/drbd0", "directory", "/srv/haconf", "fstype", "ext4", "options", "noatime, ro"), `parameter options="noatime, ro": mount options are comma-separated, without spaces`},
	} {
		a := FSFromEnv(tc.env, nil)
		err := a.Validate()
		got := ""
		if err != nil {
			got = err.Error()
			if pacemaker.OCFCode(err) != pacemaker.OCFErrConfigured {
				t.Errorf("%+v: code %d, want %d", a, pacemaker.OCFCode(err), pacemaker.OCFErrConfigured)
			}
		}
		if got != tc.want {
			t.Errorf("%+v: %q, want %q", a, got, tc.want)
		}
	}
	for _, tc := range []struct {
		kv   map[string]string
		want int
	}{
		{map[string]string{}, 0},
		{map[string]string{"OCF_CHECK_LEVEL": "20"}, 20},
		{map[string]string{"OCF_RESKEY_OCF_CHECK_LEVEL": "10"}, 10},
		{map[string]string{"OCF_CHECK_LEVEL": "deep"}, 0},
	} {
		if got := FSFromEnv(pacemaker.OCFEnv{Getenv: func(k string) string { return tc.kv[k] }}, nil).CheckLevel; got != tc.want {
			t.Errorf("%v: check level %d, want %d", tc.kv, got, tc.want)
		}
	}
}

func fsEnv(kv ...string) pacemaker.OCFEnv {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return pacemaker.OCFEnv{Getenv: func(k string) string { return m[k] }}
}

// TestFSRunAgentCodes runs the agent the way Pacemaker does, on this
// machine's real mount table, for a directory nothing is mounted at.
func TestFSRunAgentCodes(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	dir := filepath.Join(t.TempDir(), "not", "there")
	good := fsEnv("OCF_RESKEY_device", "/dev/drbd-haconf-test", "OCF_RESKEY_directory", dir, "OCF_RESKEY_fstype", "ext4")
	run := func(env pacemaker.OCFEnv, action string) (int, string, string) {
		var out, errb bytes.Buffer
		c := pacemaker.RunAgent(context.Background(), FSFromEnv(env, runner.Exec{}), action, env, &out, &errb, log)
		return c, out.String(), errb.String()
	}
	md := metaData(t, FSFromEnv(good, runner.Exec{}), good)
	if md.Name != "fs" || len(md.Params) != 4 || md.Params[0].Name != "device" || md.Params[0].Required != 1 ||
		md.Params[3].Name != "options" || md.Params[3].Required != 0 || len(md.Actions) != 5 {
		t.Fatalf("meta-data: %+v", md)
	}
	// The standby: the directory does not even exist.
	for _, action := range []string{"monitor", "probe", "status"} {
		if c, _, errs := run(good, action); c != pacemaker.OCFNotRunning {
			t.Errorf("%s: %d, want 7 (%s)", action, c, errs)
		}
	}
	if c, _, errs := run(good, "stop"); c != 0 {
		t.Errorf("stop when not mounted: %d (%s)", c, errs)
	}
	if c, _, _ := run(good, "validate-all"); c != 0 {
		t.Errorf("validate-all: %d", c)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("monitor, stop or validate touched the directory: %v", err)
	}
	bad := fsEnv("OCF_RESKEY_device", "/dev/drbd0", "OCF_RESKEY_directory", "srv/haconf", "OCF_RESKEY_fstype", "ext4")
	if c, _, errs := run(bad, "start"); c != pacemaker.OCFErrConfigured || !strings.Contains(errs, `ocf-exit-reason:parameter directory="srv/haconf": must be an absolute path`) {
		t.Errorf("start with a relative directory: %d %q", c, errs)
	}
	if c, _, _ := run(bad, "validate-all"); c != pacemaker.OCFErrConfigured {
		t.Errorf("validate-all with a relative directory: %d", c)
	}
	if c, _, _ := run(bad, "monitor"); c != pacemaker.OCFNotRunning {
		t.Errorf("probe with bad parameters: %d, want 7", c)
	}
	if c, _, _ := run(bad, "stop"); c != 0 {
		t.Errorf("stop with bad parameters: %d, want 0", c)
	}
	if c, _, _ := run(good, "reload-agent"); c != pacemaker.OCFErrUnimplemented {
		t.Errorf("unknown action: %d", c)
	}
}

// fsFakeHost is a stateful fake of what Stop touches: a mount table in a
// fixture procfs, processes holding files (symlinked cwd), umount(2) that
// fails with EBUSY while one of them holds the mount, and kill(2).
type fsFakeHost struct {
	t    *testing.T
	proc string
	mu   sync.Mutex
	// mounts are mountinfo lines, in order.
	mounts []string
	// procs: pid -> how it reacts: "term" exits on SIGTERM, "kill" only
	// on SIGKILL, "stuck" never (D state).
	procs    map[int]string
	signals  []string
	unmounts []string
}

func newFSFakeHost(t *testing.T, mounts ...string) *fsFakeHost {
	h := &fsFakeHost{t: t, proc: t.TempDir(), mounts: mounts, procs: map[int]string{}}
	h.write()
	return h
}

func (h *fsFakeHost) write() {
	if err := os.MkdirAll(filepath.Join(h.proc, "self"), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.proc, "self", "mountinfo"), []byte(strings.Join(h.mounts, "")), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// hold starts a process with its working directory at cwd.
func (h *fsFakeHost) hold(pid int, cwd, behaviour string) {
	d := filepath.Join(h.proc, strconv.Itoa(pid))
	if err := os.MkdirAll(filepath.Join(d, "fd"), 0o755); err != nil {
		h.t.Fatal(err)
	}
	os.Symlink(cwd, filepath.Join(d, "cwd"))
	os.WriteFile(filepath.Join(d, "comm"), []byte(behaviour+"\n"), 0o644)
	h.procs[pid] = behaviour
}

func (h *fsFakeHost) Unmount(target string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.unmounts = append(h.unmounts, target)
	for i := len(h.mounts) - 1; i >= 0; i-- {
		ms, _ := proc.ParseMountinfo([]byte(h.mounts[i]))
		if ms[0].MountPoint != target {
			continue
		}
		if hs, _ := proc.Holders(h.proc, []string{target}); len(hs) > 0 {
			return syscall.EBUSY
		}
		h.mounts = append(h.mounts[:i], h.mounts[i+1:]...)
		h.write()
		return nil
	}
	return syscall.EINVAL
}

func (h *fsFakeHost) Signal(pid int, sig syscall.Signal) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.procs[pid]
	if !ok {
		return syscall.ESRCH
	}
	h.signals = append(h.signals, fmt.Sprintf("%d %s", pid, map[syscall.Signal]string{syscall.SIGTERM: "TERM", syscall.SIGKILL: "KILL"}[sig]))
	if (b == "term" && sig == syscall.SIGTERM) || (b != "stuck" && sig == syscall.SIGKILL) {
		delete(h.procs, pid)
		os.RemoveAll(filepath.Join(h.proc, strconv.Itoa(pid)))
	}
	return nil
}

func (h *fsFakeHost) agent(dir string) *FS {
	return &FS{
		Device: "/dev/drbd-haconf-test", Directory: dir, FSType: "ext4",
		Log: slog.New(slog.DiscardHandler), Proc: h.proc,
		Unmount: h.Unmount, Signal: h.Signal, KillAfter: 200 * time.Millisecond,
	}
}

func TestFSStopEscalates(t *testing.T) {
	const dir = "/srv/haconf-test"
	ours := "90 44 147:0 / /srv/haconf-test rw - ext4 /dev/drbd-haconf-test rw\n"
	sub := "91 90 0:50 / /srv/haconf-test/tmp rw - tmpfs tmp rw\n"
	over := "92 90 0:51 / /srv/haconf-test rw - tmpfs over rw\n"
	elsewhere := "93 44 147:0 / /mnt rw - ext4 /dev/drbd-haconf-test rw\n"
	for _, tc := range []struct {
		name    string
		mounts  []string
		procs   map[int][2]string // pid -> cwd, behaviour
		signals []string
		err     string
		left    string // mountinfo after stop
		minTime time.Duration
	}{
		{name: "not busy", mounts: []string{ours}},
		{name: "stacked and below, then elsewhere", mounts: []string{ours, sub, over, elsewhere}},
		{name: "a holder that exits on SIGTERM", mounts: []string{ours},
			procs: map[int][2]string{200: {dir + "/mysql", "term"}}, signals: []string{"200 TERM"}},
		{name: "a holder that needs SIGKILL", mounts: []string{ours, sub},
			procs:   map[int][2]string{200: {dir, "term"}, 201: {dir + "/tmp/x", "kill"}},
			signals: []string{"200 TERM", "201 TERM", "201 KILL"}, minTime: 200 * time.Millisecond},
		{name: "a holder that does not die", mounts: []string{ours},
			procs: map[int][2]string{202: {dir, "stuck"}}, err: "/dev/drbd-haconf-test is still mounted at /srv/haconf-test after"},
		{name: "a foreign filesystem at the directory is left alone", mounts: []string{over}, left: over},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newFSFakeHost(t, tc.mounts...)
			for pid, p := range tc.procs {
				h.hold(pid, p[0], p[1])
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			t0 := time.Now()
			err := h.agent(dir).Stop(ctx)
			took := time.Since(t0)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("stop: %v, want %q", err, tc.err)
			}
			if took >= 2*time.Second || took < tc.minTime {
				t.Errorf("stop took %s", took)
			}
			if tc.err != "" {
				// Gave up before the deadline, having tried SIGKILL.
				if took < 1*time.Second || !strings.Contains(strings.Join(h.signals, ","), "202 KILL") {
					t.Errorf("gave up after %s, signals %v", took, h.signals)
				}
				return
			}
			if tc.signals != nil && !reflect.DeepEqual(h.signals, tc.signals) {
				t.Errorf("signals %v, want %v", h.signals, tc.signals)
			}
			if left := strings.Join(h.mounts, ""); left != tc.left {
				t.Errorf("left mounted:\n%s", left)
			}
		})
	}
	// Deepest first; the overmount comes off before the device.
	h := newFSFakeHost(t, ours, sub, over, elsewhere)
	if err := h.agent(dir).Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if want := []string{"/srv/haconf-test/tmp", "/srv/haconf-test", "/mnt", "/srv/haconf-test"}; !reflect.DeepEqual(h.unmounts, want) {
		t.Errorf("unmounts %q, want %q", h.unmounts, want)
	}
}

// TestFSAgentLoopDevice drives ocf:haconf:fs for real, through RunAgent
// as Pacemaker calls it: an ext4 image on a loop device, mounted at a
// directory with a space in its name, held by two processes (one ignores
// SIGTERM) when it is stopped.
func TestFSAgentLoopDevice(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommands(t, "mkfs.ext4", "losetup", "mount", "sh", "sleep")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	run := runner.Exec{}
	tmp := t.TempDir()
	img := filepath.Join(tmp, "fs.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	if _, err := run.Run(ctx, "mkfs.ext4", "-q", "-F", img); err != nil {
		t.Fatal(err)
	}
	out, err := run.Run(ctx, "losetup", "--find", "--show", img)
	if err != nil {
		testenv.Missing(t, "no loop device: "+err.Error())
	}
	dev := strings.TrimSpace(string(out))
	dir := filepath.Join(tmp, "mnt point")
	other := filepath.Join(tmp, "other")
	// Cleanups run last-registered first: unmount everything of dev,
	// then detach it, whatever happened.
	t.Cleanup(func() {
		if _, err := run.Run(context.Background(), "losetup", "-d", dev); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	t.Cleanup(func() {
		for i := 0; i < 10; i++ {
			b, _ := os.ReadFile("/proc/self/mountinfo")
			ms, _ := proc.ParseMountinfo(b)
			n := 0
			for _, m := range ms {
				if m.Source == dev || proc.Under(m.MountPoint, tmp) {
					n++
					syscall.Unmount(m.MountPoint, syscall.MNT_DETACH)
				}
			}
			if n == 0 {
				return
			}
		}
		t.Errorf("cleanup: %s still mounted", dev)
	})

	var logs bytes.Buffer
	var logMu sync.Mutex
	env := fsEnv("OCF_RESKEY_device", dev, "OCF_RESKEY_directory", dir, "OCF_RESKEY_fstype", "ext4",
		"OCF_RESKEY_options", "noatime", "OCF_RESKEY_CRM_meta_timeout", "20000")
	action := func(action string, env pacemaker.OCFEnv) (int, string, time.Duration) {
		t.Helper()
		a := FSFromEnv(env, run)
		a.KillAfter = time.Second
		logMu.Lock()
		defer logMu.Unlock()
		a.Log = slog.New(slog.NewTextHandler(&logs, nil))
		var errb bytes.Buffer
		t0 := time.Now()
		c := pacemaker.RunAgent(ctx, a, action, env, io.Discard, &errb, slog.New(slog.DiscardHandler))
		took := time.Since(t0)
		t.Logf("%s: code %d in %s %s", action, c, took.Round(100*time.Microsecond), strings.TrimSpace(errb.String()))
		return c, errb.String(), took
	}
	expect := func(name string, want int) {
		t.Helper()
		if c, errs, _ := action(name, env); c != want {
			t.Fatalf("%s: code %d, want %d: %s", name, c, want, errs)
		}
	}

	expect("monitor", pacemaker.OCFNotRunning) // the directory does not exist yet
	expect("start", 0)
	expect("monitor", 0)
	expect("start", 0) // a no-op
	if c, errs, _ := action("monitor", fsEnv(append(fsEnvPairs(env), "OCF_CHECK_LEVEL", "20")...)); c != 0 {
		t.Fatalf("monitor at depth 20: %d %s", c, errs)
	}
	if _, err := os.Stat(filepath.Join(dir, fsCheckFile)); err != nil {
		t.Errorf("depth 20 wrote no file: %v", err)
	}

	// Two processes hold the filesystem: sleep with its working directory
	// in it (exits on SIGTERM), and one that ignores SIGTERM with a file
	// in it open.
	if err := os.MkdirAll(filepath.Join(dir, "work"), 0o755); err != nil {
		t.Fatal(err)
	}
	cwdHolder := exec.Command("sleep", "300")
	cwdHolder.Dir = filepath.Join(dir, "work")
	f, err := os.Create(filepath.Join(dir, "work", "held"))
	if err != nil {
		t.Fatal(err)
	}
	fdHolder := exec.Command("sh", "-c", `trap "" TERM; exec sleep 300`)
	fdHolder.ExtraFiles = []*os.File{f}
	exited := map[string]chan error{}
	for name, c := range map[string]*exec.Cmd{"cwd": cwdHolder, "fd": fdHolder} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Process.Kill() })
		done := make(chan error, 1)
		go func() { done <- c.Wait() }()
		exited[name] = done
	}
	f.Close() // only the child holds it now
	// Wait until sh has set its trap and exec'd sleep.
	for deadline := time.Now().Add(5 * time.Second); ; {
		hs, err := proc.Holders("/proc", []string{dir})
		if err == nil && len(hs) == 2 && hs[0].Comm == "sleep" && hs[1].Comm == "sleep" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("holders before stop: %v %v", hs, err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	c, errs, took := action("stop", env)
	if c != 0 {
		t.Fatalf("stop with holders: code %d: %s\n%s", c, errs, logs.String())
	}
	if took < time.Second || took > 10*time.Second {
		t.Errorf("stop took %s; want the 1 s SIGTERM grace, then SIGKILL", took)
	}
	for name, done := range exited {
		select {
		case err := <-done:
			t.Logf("%s holder: %v", name, err)
		case <-time.After(2 * time.Second):
			t.Errorf("%s holder still running after stop", name)
		}
	}
	log := logs.String()
	t.Logf("agent log:\n%s", log)
	cwdPid, fdPid := cwdHolder.Process.Pid, fdHolder.Process.Pid
	term := fmt.Sprintf(`signal=SIGTERM device=%s directory=%q pids=`, dev, dir)
	if !strings.Contains(log, term+fmt.Sprintf(`"[%d %d]"`, cwdPid, fdPid)) && !strings.Contains(log, term+fmt.Sprintf(`"[%d %d]"`, fdPid, cwdPid)) {
		t.Errorf("log lacks SIGTERM to %d and %d", cwdPid, fdPid)
	}
	if want := fmt.Sprintf(`signal=SIGKILL device=%s directory=%q pids=[%d]`, dev, dir, fdPid); !strings.Contains(log, want) {
		t.Errorf("log lacks %q", want)
	}
	if !strings.Contains(log, "msg=unmounted") {
		t.Error(`log lacks "unmounted"`)
	}
	expect("monitor", pacemaker.OCFNotRunning)
	expect("stop", 0) // a no-op

	// The device mounted somewhere else: an error, start refuses, stop
	// unmounts it.
	if err := os.MkdirAll(other, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := run.Run(ctx, "mount", "-t", "ext4", dev, other); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"monitor", "start"} {
		if c, errs, _ := action(name, env); c != pacemaker.OCFErrGeneric || !strings.Contains(errs, fmt.Sprintf("%s is mounted at %s, not at %s", dev, other, dir)) {
			t.Errorf("%s with %s at %s: code %d, %q", name, dev, other, c, errs)
		}
	}
	expect("stop", 0)
	expect("monitor", pacemaker.OCFNotRunning)

	// Something else at the directory: an error; stop leaves it alone.
	if _, err := run.Run(ctx, "mount", "-t", "tmpfs", "haconf-test", dir); err != nil {
		t.Fatal(err)
	}
	if c, errs, _ := action("monitor", env); c != pacemaker.OCFErrGeneric || !strings.Contains(errs, "haconf-test (tmpfs) is mounted at "+dir) {
		t.Errorf("monitor with a tmpfs at the directory: code %d, %q", c, errs)
	}
	expect("stop", 0)
	if err := syscall.Unmount(dir, 0); err != nil {
		t.Errorf("the tmpfs is gone: %v", err)
	}

	// A device that is not there: start fails naming device and directory.
	bad := fsEnv(append(fsEnvPairs(env), "OCF_RESKEY_device", "/dev/haconf-test-missing")...)
	if c, errs, _ := action("start", bad); c != pacemaker.OCFErrGeneric || !strings.Contains(errs, "mount /dev/haconf-test-missing (ext4) on "+dir) {
		t.Errorf("start with a missing device: code %d, %q", c, errs)
	}

	// Timings: start and stop without holders.
	for i := 0; i < 3; i++ {
		_, _, start := action("start", env)
		_, _, mon := action("monitor", env)
		_, _, stop := action("stop", env)
		t.Logf("start %s, monitor %s, stop %s", start.Round(100*time.Microsecond), mon.Round(10*time.Microsecond), stop.Round(100*time.Microsecond))
	}
}

// fsEnvPairs lists the OCF variables an fsEnv made by this file's tests
// answers, as key, value pairs (for deriving a variant).
func fsEnvPairs(env pacemaker.OCFEnv) []string {
	var kv []string
	for _, k := range []string{"OCF_RESKEY_device", "OCF_RESKEY_directory", "OCF_RESKEY_fstype", "OCF_RESKEY_options", "OCF_RESKEY_CRM_meta_timeout"} {
		if v := env.Getenv(k); v != "" {
			kv = append(kv, k, v)
		}
	}
	return kv
}
