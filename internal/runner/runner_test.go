package runner

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRunOutputAndLocale(t *testing.T) {
	out, err := Exec{}.Run(context.Background(), "sh", "-c", "echo $LC_ALL")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != "C" {
		t.Fatalf("LC_ALL = %q, want C", got)
	}
}

func TestRunErrorCarriesArgvExitAndStderr(t *testing.T) {
	_, err := Exec{}.Run(context.Background(), "sh", "-c", "echo boom >&2; exit 3")
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v, want *Error", err)
	}
	if e.ExitCode != 3 || !strings.Contains(e.Stderr, "boom") || e.Argv[0] != "sh" {
		t.Fatalf("unexpected error fields: %+v", e)
	}
	if !strings.Contains(err.Error(), "exit status 3: boom") {
		t.Fatalf("message %q lacks exit status and stderr", err)
	}
	if ExitCode(err) != 3 {
		t.Fatalf("ExitCode = %d", ExitCode(err))
	}
}

func TestRunTimeout(t *testing.T) {
	_, err := Exec{Timeout: 100 * time.Millisecond}.Run(context.Background(), "sleep", "5")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
}

func TestRunStdin(t *testing.T) {
	out, err := Exec{}.RunCmd(context.Background(), Cmd{Name: "cat", Stdin: []byte("secret")})
	if err != nil || string(out) != "secret" {
		t.Fatalf("out=%q err=%v", out, err)
	}
}

func TestStream(t *testing.T) {
	rc, err := Exec{}.Stream(context.Background(), "sh", "-c", "echo one; echo two; exit 4")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	if string(b) != "one\ntwo\n" || ExitCode(err) != 4 {
		t.Fatalf("out=%q err=%v", b, err)
	}
	rc.Close()

	rc, err = Exec{}.Stream(context.Background(), "sleep", "60")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rc.Close() // kills the process
	if time.Since(start) > 5*time.Second {
		t.Fatal("Close did not stop the process")
	}
}

func TestStartDaemonCmd(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "daemon.log")
	pid, err := Exec{}.StartDaemonCmd(Cmd{Name: "sh", Args: []string{"-c", `echo "$HACONF_TEST_VAR $LC_ALL"; exec sleep 30`}, Env: []string{"HACONF_TEST_VAR=set"}}, logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(-pid, syscall.SIGKILL)
	if pgid, err := syscall.Getpgid(pid); err != nil || pgid != pid {
		t.Errorf("process group %d (%v), want its own (%d)", pgid, err, pid)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(logPath)
		if string(b) == "set C\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log = %q, want the added variable and LC_ALL=C", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var e *Error
	if _, err := (Exec{}).StartDaemonCmd(Cmd{Name: "/nonexistent/haconf-test"}, logPath); !errors.As(err, &e) || e.Argv[0] != "/nonexistent/haconf-test" {
		t.Errorf("err = %v, want an *Error naming the program", err)
	}
}
