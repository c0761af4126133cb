package cloud

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/haconf/haconf/internal/proc"
	"github.com/haconf/haconf/internal/runner"
)

// A service is one long-lived process of the cloud, started in its own
// session (so its process group id is its pid and one kill reaches all of
// it), logging to log/NAME.log, its pid in run/NAME.pid.
type service struct {
	Name string
	Argv []string
	Env  []string
}

// spawn starts s detached from this process.
func (c *Cloud) spawn(s service) (int, error) {
	// The cloud's logs are 0600: services log their configuration at debug.
	f, err := os.OpenFile(c.logFile(s.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(f, "---- %s haconf-lab compute: starting %s\n", time.Now().UTC().Format(time.RFC3339), s.Name)
	f.Close()
	pid, err := runner.Exec{}.StartDaemonCmd(runner.Cmd{Name: s.Argv[0], Args: s.Argv[1:], Env: s.Env}, c.logFile(s.Name))
	if err != nil {
		return 0, fmt.Errorf("start %s: %w", s.Name, err)
	}
	if err := os.WriteFile(c.pidFile(s.Name), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		return 0, err
	}
	c.logger().Debug("started", "service", s.Name, "pid", pid)
	return pid, nil
}

// running returns the pid of service name when its process group still has
// a live process. The group is the service's own session, so a reused pid
// (a process that is not a session leader of that id) does not count.
func (c *Cloud) running(name string) (int, bool) {
	pid, err := proc.ReadPidFile(c.pidFile(name))
	if err != nil {
		return 0, false
	}
	return pid, len(proc.Group(pid)) > 0
}

// stop ends service name: SIGTERM to its process group, SIGKILL after
// grace, and waits until none of the group is left. A service that is not
// running is fine.
func (c *Cloud) stop(name string, grace time.Duration) error {
	pid, ok := c.running(name)
	defer os.Remove(c.pidFile(name))
	if !ok {
		return nil
	}
	sig := syscall.SIGTERM
	if grace == 0 {
		sig = syscall.SIGKILL
	}
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop %s: %w", name, err)
	}
	if err := waitGroupGone(pid, grace); err == nil {
		c.logger().Debug("stopped", "service", name, "pid", pid)
		return nil
	}
	c.logger().Warn("service did not stop in time: killing it", "service", name, "pid", pid, "grace", grace)
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill %s: %w", name, err)
	}
	return waitGroupGone(pid, 10*time.Second)
}

func waitGroupGone(pgid int, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		left := proc.Group(pgid)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("process group %d: %d processes left", pgid, len(left))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
