package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/haconf/haconf/internal/proc"
)

// Disk sizes. The files are sparse: they cost only what the nodes write.
const (
	rootImageSize = 2 << 30 // ext4, the overlay's writable layer
	dataImageSize = 1 << 30 // LVM physical volume for vg0
)

func (l *Lab) rootImage(n Node) string  { return l.path(n.Name, "root.img") }
func (l *Lab) dataImage(n Node) string  { return l.path(n.Name, "disk.img") }
func (l *Lab) consoleLog(n Node) string { return l.path(n.Name, "console.log") }

// ensureDisks creates n's images when they do not exist yet.
func (l *Lab) ensureDisks(ctx context.Context, n Node) error {
	if err := os.MkdirAll(l.nodeDir(n), 0o700); err != nil {
		return err
	}
	if _, err := os.Stat(l.rootImage(n)); errors.Is(err, os.ErrNotExist) {
		tmp := l.rootImage(n) + ".new"
		if err := sparseFile(tmp, rootImageSize); err != nil {
			return err
		}
		if _, err := l.Run.Run(ctx, "mkfs.ext4", "-q", "-F", "-L", n.Name+"-root", tmp); err != nil {
			return fmt.Errorf("format %s root image: %w", n.Name, err)
		}
		if err := os.Rename(tmp, l.rootImage(n)); err != nil {
			return err
		}
		l.logger().Info("created root image", "node", n.Name, "path", l.rootImage(n))
	}
	if _, err := os.Stat(l.dataImage(n)); errors.Is(err, os.ErrNotExist) {
		// stage2.sh makes it an LVM physical volume at first boot.
		if err := sparseFile(l.dataImage(n), dataImageSize); err != nil {
			return err
		}
		l.logger().Info("created data disk", "node", n.Name, "path", l.dataImage(n))
	}
	return nil
}

func sparseFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// mac returns a stable, locally administered MAC for n's link number i.
func (n Node) mac(i int) string { return fmt.Sprintf("02:68:63:00:%02x:%02x", n.Index, i) }

func (l *Lab) umlArgv(n Node) []string {
	return []string{
		"linux.uml",
		"umid=" + l.umid(n),
		"uml_dir=" + l.umlDir(),
		"mem=" + l.memory(),
		"root=/dev/root", "rootfstype=hostfs", "rootflags=/", "ro",
		"ubd0=" + l.rootImage(n),
		"ubd1=" + l.dataImage(n),
		"eth0=tuntap," + n.Tap("mgmt") + "," + n.mac(0),
		"eth1=tuntap," + n.Tap("storage") + "," + n.mac(1),
		"eth2=tuntap," + n.Tap("control") + "," + n.mac(2),
		"init=" + l.path(n.Name, "stage1.sh"),
		"con=null", "con0=null,fd:1",
		"quiet",
	}
}

// Running reports whether node's UML kernel runs, and its pid.
func (l *Lab) Running(n Node) (int, bool) {
	return alive(l.pidFile(n), "umid="+l.umid(n))
}

// powerOn starts n's kernel as a child of this process unless it already
// runs. It does not wait for the boot.
func (l *Lab) powerOn(n Node) error {
	if pid, ok := l.Running(n); ok {
		l.logger().Debug("node already running", "node", n.Name, "pid", pid)
		return nil
	}
	if err := os.MkdirAll(l.umlDir(), 0o700); err != nil {
		return err
	}
	// The node's RAM is a file UML maps; on tmpfs it never touches the disk.
	var env []string
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		env = append(env, "TMPDIR=/dev/shm")
	}
	pid, err := spawn(l.umlArgv(n), env, l.consoleLog(n), l.pidFile(n))
	if err != nil {
		return fmt.Errorf("boot %s: %w", n.Name, err)
	}
	l.logger().Info("booted node", "node", n.Name, "pid", pid)
	return nil
}

// Start boots a stopped or crashed node, with its disks as they were, and
// waits until its agent answers. The fence daemon starts the kernel, so
// that the node is its child and it reaps the node's processes.
func (l *Lab) Start(ctx context.Context, name string) error {
	n, err := NodeByName(name)
	if err != nil {
		return err
	}
	if _, ok := l.Running(n); !ok {
		if err := l.startFenced(ctx); err != nil {
			return err
		}
		c, err := l.Client()
		if err != nil {
			return err
		}
		if _, err := c.Power(ctx, FencedURL(), n.Name, "on"); err != nil {
			return fmt.Errorf("start %s: %w", n.Name, err)
		}
	}
	return l.waitAnswer(ctx, n)
}

// Crash powers node off at once: SIGKILL to its whole UML process group,
// no shutdown, no sync, like pulling the plug. The fence daemon does it
// when it runs (it is the node's parent); otherwise this process does.
func (l *Lab) Crash(ctx context.Context, name string) error {
	n, err := NodeByName(name)
	if err != nil {
		return err
	}
	if _, ok := l.Running(n); !ok {
		l.logger().Info("node already off", "node", n.Name)
		return nil
	}
	if _, ok := l.FencedRunning(); ok {
		c, err := l.Client()
		if err != nil {
			return err
		}
		if _, err := c.Power(ctx, FencedURL(), n.Name, "off"); err != nil {
			return fmt.Errorf("crash %s: %w", n.Name, err)
		}
		l.logger().Info("crashed node", "node", n.Name)
		return nil
	}
	return l.powerOff(n)
}

// powerOff kills n's process group and waits until it is gone.
func (l *Lab) powerOff(n Node) error {
	pid, ok := l.Running(n)
	if !ok {
		return nil
	}
	if err := killGroup(pid, 20*time.Second); err != nil {
		return fmt.Errorf("power off %s: %w", n.Name, err)
	}
	waitReaped(pid, 2*time.Second)
	os.Remove(l.pidFile(n))
	l.logger().Info("powered off node", "node", n.Name, "pid", pid)
	return nil
}

// waitAnswer polls n's agent until it answers or ctx ends.
func (l *Lab) waitAnswer(ctx context.Context, n Node) error {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	c, err := l.Client()
	if err != nil {
		return err
	}
	start := time.Now()
	for {
		if _, ok := l.Running(n); !ok && l.gone(n) {
			return fmt.Errorf("%w: %s stopped while booting (see %s)", ErrNotRunning, n.Name, l.consoleLog(n))
		}
		pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
		err := c.Ping(pctx, n.Name)
		pcancel()
		if err == nil {
			l.logger().Info("node answers", "node", n.Name, "after", time.Since(start).Round(time.Millisecond))
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s does not answer on %s (see %s): %w", n.Name, n.AgentURL(), l.consoleLog(n), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// gone reports whether n's kernel process has really exited. Running
// also checks the umid marker in /proc/PID/cmdline (against PID reuse),
// which a booting node can fail for a moment; seconds after the spawn the
// PID cannot have been reused, so here only the process's existence counts.
func (l *Lab) gone(n Node) bool {
	b, err := os.ReadFile(l.pidFile(n))
	if err != nil {
		return true
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return true
	}
	st, err := proc.ReadStat(pid)
	return err != nil || st.State == 'Z'
}
