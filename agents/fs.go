package agents

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/haconf/haconf/internal/proc"
	"github.com/haconf/haconf/pacemaker"
)

// FS is the OCF resource agent for the filesystem on the DRBD device
// (ocf:haconf:fs). It takes the parameters of ocf:heartbeat:Filesystem
// (device, directory, fstype, options) for the one case haconf needs: an
// ext4 or xfs filesystem on a local block device. Monitor reads
// /proc/self/mountinfo once; start is one mount(8); stop is umount(2),
// and when the filesystem is busy it finds the processes holding it by
// scanning /proc itself (no fuser), sends them SIGTERM, then SIGKILL, and
// retries until shortly before the action's deadline. The shell agent
// made hundreds of forks per action, seconds on a loaded node.
type FS struct {
	Device    string
	Directory string
	FSType    string // ext4 or xfs
	Options   string // mount -o; empty for none
	// CheckLevel is the monitor's OCF_CHECK_LEVEL: from 10 it also reads
	// the device's first block past the page cache, from 20 it also
	// writes and fsyncs a small file in Directory.
	CheckLevel int

	Run Runner // mount(8)
	Log *slog.Logger
	// Proc is where procfs is mounted; tests point it at a fixture tree.
	Proc string
	// Unmount detaches the filesystem mounted at target (umount(2)).
	Unmount func(target string) error
	// Signal sends sig to pid.
	Signal func(pid int, sig syscall.Signal) error
	// KillAfter is how long processes holding the filesystem get between
	// SIGTERM and SIGKILL on stop.
	KillAfter time.Duration
}

// fsTypes are the filesystems the agent mounts.
var fsTypes = []string{"ext4", "xfs"}

// fsCheckFile is the file a depth-20 monitor writes in the directory.
const fsCheckFile = ".haconf-fs-check"

// FSFromEnv reads the agent's parameters from Pacemaker's
// environment: device, directory, fstype, options (the names
// ocf:heartbeat:Filesystem uses) and the monitor's OCF_CHECK_LEVEL.
func FSFromEnv(env pacemaker.OCFEnv, run Runner) *FS {
	level := env.Getenv("OCF_CHECK_LEVEL")
	if level == "" {
		level = env.Param("OCF_CHECK_LEVEL", "0")
	}
	depth, _ := strconv.Atoi(level) // anything else is the default, 0
	return &FS{
		Device:     env.Param("device", ""),
		Directory:  env.Param("directory", ""),
		FSType:     env.Param("fstype", ""),
		Options:    env.Param("options", ""),
		CheckLevel: depth,
		Run:        run,
		Log:        slog.New(slog.DiscardHandler),
		Proc:       "/proc",
		Unmount:    func(target string) error { return unix.Unmount(target, unix.UMOUNT_NOFOLLOW) },
		Signal:     syscall.Kill,
		KillAfter:  3 * time.Second,
	}
}

// MetaData implements pacemaker.Agent.
func (a *FS) MetaData() string {
	return pacemaker.OCFMetaData{
		Name:  "fs",
		Short: "Filesystem on the DRBD device (haconf)",
		Long: "Mounts an ext4 or xfs filesystem with one mount(8) and checks it by reading /proc/self/mountinfo. " +
			"Stop unmounts it, killing the processes that hold files in it (SIGTERM, then SIGKILL) until shortly before the stop timeout. " +
			"OCF_CHECK_LEVEL 10 reads from the device, 20 also writes and syncs a file in the directory.",
		Params: []pacemaker.OCFParam{
			{Name: "device", Short: "block device (the DRBD device)", Required: true},
			{Name: "directory", Short: "mount point (created on start)", Required: true},
			{Name: "fstype", Short: "filesystem type: ext4 or xfs", Required: true},
			{Name: "options", Short: "mount options (mount -o)"},
		},
		Start: 60 * time.Second, Stop: 60 * time.Second,
		Monitor: 40 * time.Second, MonitorInterval: 20 * time.Second,
	}.String()
}

// Validate implements pacemaker.Agent: parameters only, nothing on disk
// (the device is not usable on the standby, where probes must still work).
func (a *FS) Validate() error {
	for _, p := range []struct{ name, v string }{{"device", a.Device}, {"directory", a.Directory}} {
		if !filepath.IsAbs(p.v) {
			return pacemaker.OCFFail(pacemaker.OCFErrConfigured, "parameter %s=%q: must be an absolute path", p.name, p.v)
		}
	}
	if filepath.Clean(a.Directory) == "/" {
		return pacemaker.OCFFail(pacemaker.OCFErrConfigured, "parameter directory=%q: cannot mount over /", a.Directory)
	}
	if !slices.Contains(fsTypes, a.FSType) {
		return pacemaker.OCFFail(pacemaker.OCFErrConfigured, "parameter fstype=%q: must be one of %s", a.FSType, strings.Join(fsTypes, ", "))
	}
	if strings.ContainsAny(a.Options, " \t\n") {
		return pacemaker.OCFFail(pacemaker.OCFErrConfigured, "parameter options=%q: mount options are comma-separated, without spaces", a.Options)
	}
	return nil
}

// Monitor implements pacemaker.Agent: nil when Device is mounted at
// Directory, ErrNotRunning when neither is mounted (also when Directory
// does not exist, as on a standby), an error when the device is mounted
// somewhere else or something else is mounted at Directory.
func (a *FS) Monitor(ctx context.Context) error {
	v, err := a.look()
	if err != nil {
		return err
	}
	if err := v.state(a); err != nil {
		return err
	}
	return a.check(ctx)
}

// Start implements pacemaker.Agent. It does not run fsck: after a crash
// the kernel replays the ext4 or xfs journal on mount.
func (a *FS) Start(ctx context.Context) error {
	v, err := a.look()
	if err != nil {
		return err
	}
	if err := v.state(a); !errors.Is(err, pacemaker.ErrNotRunning) {
		return err // mounted (nil), or mounted wrongly: never mount twice
	}
	if err := os.MkdirAll(a.Directory, 0o755); err != nil {
		return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "create mount point for %s: %v", a.Device, err)
	}
	args := []string{"-t", a.FSType}
	if a.Options != "" {
		args = append(args, "-o", a.Options)
	}
	args = append(args, a.Device, a.Directory)
	t0 := time.Now()
	if _, err := a.Run.Run(ctx, "mount", args...); err != nil {
		return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "mount %s (%s) on %s: %v", a.Device, a.FSType, a.Directory, err)
	}
	a.log().Info("mounted", "device", a.Device, "directory", a.Directory, "fstype", a.FSType, "took", time.Since(t0).Round(time.Millisecond))
	if v, err = a.look(); err != nil {
		return err
	}
	if err := v.state(a); err != nil {
		return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "mount %s on %s succeeded, but: %v", a.Device, a.Directory, err)
	}
	return nil
}

// Stop implements pacemaker.Agent. It unmounts the device wherever it is
// mounted (and whatever is mounted below it first), and returns nil only
// once nothing of it is mounted: the DRBD device can only be demoted then,
// and a failed stop makes Pacemaker fence the node, the right escalation
// for a filesystem that cannot be released. A busy filesystem's holders
// get SIGTERM, then SIGKILL after KillAfter; unmounting is retried until
// shortly before ctx's deadline.
func (a *FS) Stop(ctx context.Context) error {
	t0 := time.Now()
	stopBy := fsStopBy(ctx, t0)
	termed := map[int]time.Time{} // pid -> when it got SIGTERM
	var holders []proc.Holder
	warned := false
	for attempt := 1; ; attempt++ {
		v, err := a.look()
		if err != nil {
			return err
		}
		targets := v.unmountOrder()
		if len(targets) == 0 {
			if attempt > 1 {
				a.log().Info("unmounted", "device", a.Device, "directory", a.Directory, "attempts", attempt-1, "took", time.Since(t0).Round(time.Millisecond))
			}
			return nil
		}
		if attempt > 1 && (!time.Now().Before(stopBy) || ctx.Err() != nil) {
			return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "%s is still mounted at %s after %d attempts in %s; busy: held by %s",
				a.Device, strings.Join(targets, ", "), attempt-1, time.Since(t0).Round(time.Millisecond), fsHoldersString(holders))
		}
		busy, err := a.unmount(targets)
		if err != nil {
			return err
		}
		if len(busy) == 0 {
			// Look again: stacked mounts come off one per round.
			if attempt > 1 {
				fsSleep(ctx, 20*time.Millisecond)
			}
			continue
		}
		if holders, err = proc.Holders(a.Proc, busy); err != nil {
			return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "%s is busy at %s; looking for the processes holding it: %v", a.Device, strings.Join(busy, ", "), err)
		}
		if holders = a.killable(holders); len(holders) == 0 {
			// Held by the kernel (a loop device, swap, an NFS export)
			// or from another mount namespace: nothing to kill, retry.
			if !warned {
				a.log().Warn("filesystem busy without a process holding it", "device", a.Device, "directory", strings.Join(busy, ","))
				warned = true
			}
			fsSleep(ctx, min(500*time.Millisecond, time.Until(stopBy)))
			continue
		}
		// A holder gets SIGTERM and KillAfter to exit, then SIGKILL; at
		// once SIGKILL when it had its SIGTERM in an earlier round, or
		// when waiting would leave no time to unmount before stopBy.
		now := time.Now()
		killBy := stopBy.Add(-time.Second)
		var term, kill []proc.Holder
		for _, h := range holders {
			if _, ok := termed[h.PID]; !ok && now.Add(a.KillAfter).Before(killBy) {
				term = append(term, h)
				termed[h.PID] = now
			} else {
				kill = append(kill, h)
			}
		}
		a.signal(term, syscall.SIGTERM)
		a.signal(kill, syscall.SIGKILL)
		if len(term) > 0 {
			fsWait(ctx, a.Proc, term, busy, now.Add(a.KillAfter))
			late := fsStillHolding(a.Proc, term, busy)
			a.signal(late, syscall.SIGKILL)
			kill = append(kill, late...)
		}
		fsWait(ctx, a.Proc, kill, busy, fsEarlier(time.Now().Add(2*time.Second), stopBy)) // time to die
	}
}

// fsWait returns when none of hs holds anything under mountPoints any
// more, at until, or when ctx is done.
func fsWait(ctx context.Context, procRoot string, hs []proc.Holder, mountPoints []string, until time.Time) {
	for time.Now().Before(until) && ctx.Err() == nil && fsAnyHolds(procRoot, hs, mountPoints) {
		fsSleep(ctx, min(50*time.Millisecond, time.Until(until)))
	}
}

func (a *FS) log() *slog.Logger {
	if a.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Log
}

// signal sends sig to the holders and logs them.
func (a *FS) signal(hs []proc.Holder, sig syscall.Signal) {
	if len(hs) == 0 {
		return
	}
	pids := make([]int, 0, len(hs))
	for _, h := range hs {
		if err := a.Signal(h.PID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
			a.log().Warn("cannot signal a process holding the filesystem", "pid", h.PID, "signal", unix.SignalName(sig), "err", err)
			continue
		}
		pids = append(pids, h.PID)
	}
	a.log().Warn("signalled processes holding the filesystem", "signal", unix.SignalName(sig), "device", a.Device, "directory", a.Directory,
		"pids", pids, "holders", fsHoldersString(hs))
}

// killable drops this process and init from hs (logging them): killing
// either is never the way to release a filesystem.
func (a *FS) killable(hs []proc.Holder) []proc.Holder {
	self := os.Getpid()
	return slices.DeleteFunc(hs, func(h proc.Holder) bool {
		if h.PID == self || h.PID == 1 {
			a.log().Warn("not killing a process holding the filesystem", "pid", h.PID, "holder", h.String())
			return true
		}
		return false
	})
}

// unmount detaches each target once, in order, and returns the ones that
// were busy.
func (a *FS) unmount(targets []string) (busy []string, err error) {
	for _, t := range targets {
		switch err := a.Unmount(t); {
		case err == nil:
		case errors.Is(err, syscall.EBUSY):
			busy = append(busy, t)
		case errors.Is(err, syscall.EINVAL), errors.Is(err, syscall.ENOENT):
			// Already gone (with its parent, or by someone else).
		default:
			return nil, pacemaker.OCFFail(pacemaker.OCFErrGeneric, "unmount %s (%s): %v", t, a.Device, err)
		}
	}
	return busy, nil
}

// check is the monitor's OCF_CHECK_LEVEL test, bounded by ctx: a device
// that stopped answering (DRBD without a disk and without a peer) hangs
// the I/O, which must show as a failed monitor, not a timed-out one.
func (a *FS) check(ctx context.Context) error {
	if a.CheckLevel < 10 {
		return nil
	}
	done := make(chan error, 1)
	go func() { done <- a.checkIO() }()
	select {
	case err := <-done:
		if err != nil {
			return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "%s mounted at %s: check level %d: %v", a.Device, a.Directory, a.CheckLevel, err)
		}
		return nil
	case <-ctx.Done():
		return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "%s mounted at %s: check level %d: I/O does not complete: %v", a.Device, a.Directory, a.CheckLevel, ctx.Err())
	}
}

func (a *FS) checkIO() error {
	// Read the first 4 KiB past the page cache: the device answers.
	f, err := os.OpenFile(a.Device, os.O_RDONLY|syscall.O_DIRECT, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	buf, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE) // page-aligned for O_DIRECT
	if err != nil {
		return err
	}
	defer unix.Munmap(buf)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return fmt.Errorf("read %s: %w", a.Device, err)
	}
	if a.CheckLevel < 20 {
		return nil
	}
	// Write a small file and sync it: the filesystem takes writes.
	p := filepath.Join(a.Directory, fsCheckFile)
	w, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "haconf fs monitor %s\n", time.Now().UTC().Format(time.RFC3339Nano))
	if err == nil {
		err = w.Sync()
	}
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", p, err)
	}
	return nil
}

// fsView is what mountinfo says about the agent's device and directory.
type fsView struct {
	mounts  []proc.Mount
	dir     string      // Directory with symlinks resolved, as mountinfo shows it
	top     *proc.Mount // the topmost mount at dir, nil for none
	topOurs bool
	ours    []proc.Mount // mounts of Device, anywhere
}

// look reads /proc/self/mountinfo and finds the agent's mounts in it.
func (a *FS) look() (fsView, error) {
	b, err := os.ReadFile(filepath.Join(a.Proc, "self", "mountinfo"))
	if err != nil {
		return fsView{}, pacemaker.OCFFail(pacemaker.OCFErrGeneric, "read mount table: %v", err)
	}
	mounts, err := proc.ParseMountinfo(b)
	if err != nil {
		return fsView{}, pacemaker.OCFFail(pacemaker.OCFErrGeneric, "read mount table: %v", err)
	}
	dir := filepath.Clean(a.Directory)
	if r, err := filepath.EvalSymlinks(dir); err == nil {
		dir = r
	}
	return fsMatch(mounts, dir, a.Device, fsDeviceNumber(a.Device)), nil
}

// fsDevNum is a block device's number; ok is false when unknown.
type fsDevNum struct {
	major, minor uint32
	ok           bool
}

// fsDeviceNumber stats the device node. A missing node (DRBD down) is no
// error: then nothing can be mounted from it, and matching falls back to
// the mount source's name.
func fsDeviceNumber(dev string) fsDevNum {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return fsDevNum{}
	}
	return fsDevNum{unix.Major(st.Rdev), unix.Minor(st.Rdev), true}
}

// fsMatch finds the device's mounts (by device number, which holds
// whatever name mount(8) recorded, or else by name) and the topmost mount
// at dir.
func fsMatch(mounts []proc.Mount, dir, device string, dev fsDevNum) fsView {
	v := fsView{mounts: mounts, dir: dir}
	isOurs := func(m proc.Mount) bool {
		if dev.ok {
			return m.Major == dev.major && m.Minor == dev.minor
		}
		return m.Source == filepath.Clean(device)
	}
	var atDir []proc.Mount
	for _, m := range mounts {
		if isOurs(m) {
			v.ours = append(v.ours, m)
		}
		if m.MountPoint == dir {
			atDir = append(atDir, m)
		}
	}
	// Stacked mounts at one path: the top one has no other mount at the
	// path mounted on it.
	for i, m := range atDir {
		if !slices.ContainsFunc(atDir, func(o proc.Mount) bool { return o.Parent == m.ID }) {
			v.top = &atDir[i]
		}
	}
	v.topOurs = v.top != nil && isOurs(*v.top)
	return v
}

// state is the monitor result for the view: nil (mounted), ErrNotRunning,
// or an error saying what is mounted where.
func (v fsView) state(a *FS) error {
	var here *proc.Mount
	for i, m := range v.ours {
		if m.MountPoint == v.dir {
			here = &v.ours[i]
		}
	}
	var elsewhere []string
	for _, m := range v.ours {
		if m.MountPoint == v.dir {
			continue
		}
		// A copy propagated from the mount at dir (same peer group, or a
		// slave of it) is that mount seen through a shared bind mount,
		// not a second mount.
		if here != nil {
			if g := here.PeerGroup("shared"); g != 0 && (m.PeerGroup("shared") == g || m.PeerGroup("master") == g) {
				continue
			}
		}
		elsewhere = append(elsewhere, m.MountPoint)
	}
	switch {
	case here == nil && len(elsewhere) > 0:
		return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "%s is mounted at %s, not at %s", a.Device, strings.Join(elsewhere, ", "), a.Directory)
	case len(elsewhere) > 0:
		return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "%s is mounted at %s and also at %s", a.Device, a.Directory, strings.Join(elsewhere, ", "))
	case v.top != nil && !v.topOurs && here != nil:
		return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "%s (%s) is mounted over %s at %s", v.top.Source, v.top.FSType, a.Device, a.Directory)
	case v.top != nil && !v.topOurs:
		return pacemaker.OCFFail(pacemaker.OCFErrGeneric, "%s (%s) is mounted at %s, not %s", v.top.Source, v.top.FSType, a.Directory, a.Device)
	case here != nil:
		return nil
	}
	return pacemaker.ErrNotRunning
}

// unmountOrder is what stop unmounts: every mount point of the device and
// everything mounted at or below them, deepest first. Unmounting a path
// detaches its top mount, so stacked mounts come off one per round.
func (v fsView) unmountOrder() []string {
	roots := map[string]bool{}
	for _, m := range v.ours {
		roots[m.MountPoint] = true
	}
	var out []string
	seen := map[string]bool{}
	for _, m := range v.mounts {
		if seen[m.MountPoint] {
			continue
		}
		for r := range roots {
			if proc.Under(m.MountPoint, r) {
				out = append(out, m.MountPoint)
				seen[m.MountPoint] = true
				break
			}
		}
	}
	slices.SortStableFunc(out, func(x, y string) int { return strings.Count(y, "/") - strings.Count(x, "/") })
	return out
}

func fsHoldersString(hs []proc.Holder) string {
	if len(hs) == 0 {
		return "no process (the kernel or another mount namespace)"
	}
	s := make([]string, len(hs))
	for i, h := range hs {
		s[i] = h.String()
	}
	return strings.Join(s, ", ")
}

// fsAnyHolds reports whether one of hs still holds something under
// mountPoints (a process that exited, even as a zombie, holds nothing).
func fsAnyHolds(procRoot string, hs []proc.Holder, mountPoints []string) bool {
	return slices.ContainsFunc(hs, func(h proc.Holder) bool {
		_, ok := proc.Holds(procRoot, h.PID, mountPoints)
		return ok
	})
}

// fsStillHolding returns the ones of hs that still hold something under
// mountPoints.
func fsStillHolding(procRoot string, hs []proc.Holder, mountPoints []string) []proc.Holder {
	var out []proc.Holder
	for _, h := range hs {
		if _, ok := proc.Holds(procRoot, h.PID, mountPoints); ok {
			out = append(out, h)
		}
	}
	return out
}

// fsStopBy is when stop gives up: shortly before ctx's deadline, leaving
// time to report the failure before Pacemaker's own timeout.
func fsStopBy(ctx context.Context, now time.Time) time.Time {
	deadline, ok := ctx.Deadline()
	if !ok {
		return now.Add(20 * time.Second)
	}
	margin := min(max(deadline.Sub(now)/10, 500*time.Millisecond), 3*time.Second)
	return deadline.Add(-margin)
}

func fsEarlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func fsSleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
