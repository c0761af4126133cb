package proc

import (
	"context"
	"os/exec"
	"testing"
	"time"
)

func TestStop(t *testing.T) {
	for _, tc := range []struct {
		name   string
		script string
		killed bool
	}{
		{"exits on SIGTERM", "exec sleep 60", false},
		{"ignores SIGTERM", "trap '' TERM; sleep 60 & wait; sleep 60", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("sh", "-c", tc.script)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			time.Sleep(100 * time.Millisecond) // let the shell set its trap
			alive := func(int) bool {
				select {
				case <-done:
					return false
				default:
					return true
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			sawKill := false
			killed, err := Stop(ctx, cmd.Process.Pid, StopOptions{Alive: alive, KillBefore: 2500 * time.Millisecond, Poll: 10 * time.Millisecond, Killed: func() { sawKill = true }})
			if err != nil || killed != tc.killed || sawKill != tc.killed {
				t.Fatalf("Stop: killed %v (heard %v), %v; want killed %v", killed, sawKill, err, tc.killed)
			}
		})
	}
}
