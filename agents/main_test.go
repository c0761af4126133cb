package agents

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// testLaunchEnv makes the test binary run the rabbitmq agent's launcher
// (what Start leaves behind runs Self + "launch"; in tests Self is this
// binary).
const testLaunchEnv = "HACONF_AGENTS_TEST_LAUNCHER"

func TestMain(m *testing.M) {
	if os.Getenv(testLaunchEnv) == "1" && len(os.Args) > 1 && os.Args[len(os.Args)-1] == LaunchAction {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		code := RunOCF(ctx, "rabbitmq", LaunchAction, os.Getenv, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// launchFromTest makes this test binary a's launcher.
func launchFromTest(a *RabbitMQ) {
	a.Self = []string{os.Args[0]}
	a.Env = append(a.Env, testLaunchEnv+"=1")
}
