package mysql

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// Runner runs one command on a node and returns its standard output
// (internal/runner.Exec in production, a fake in tests).
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// MasterStatus is the binary log position (`SHOW MASTER STATUS`): File is
// "" when the binary log is disabled.
type MasterStatus struct {
	File     string
	Position int64
}

// Binlog reads the binary log position with the mysql client: the
// split-brain engine's evidence of which node's database moved on.
// MariaDB not answering means it does not run there.
type Binlog struct {
	Run Runner
	// CredentialsFile is a client option file ([client] user=, password=).
	CredentialsFile string
}

// Status runs `SHOW MASTER STATUS`.
func (b Binlog) Status(ctx context.Context) (MasterStatus, error) {
	out, err := b.Run.Run(ctx, "mysql", "--defaults-extra-file="+b.CredentialsFile, "--batch", "--skip-column-names", "--execute", "SHOW MASTER STATUS")
	if err != nil {
		return MasterStatus{}, err
	}
	return ParseMasterStatus(out)
}

// ParseMasterStatus parses `SHOW MASTER STATUS` in batch mode without
// column names: File, Position, Binlog_Do_DB, Binlog_Ignore_DB.
func ParseMasterStatus(out []byte) (MasterStatus, error) {
	line := strings.TrimSpace(string(out))
	if line == "" {
		return MasterStatus{}, nil // binary log disabled
	}
	f := strings.Split(strings.SplitN(line, "\n", 2)[0], "\t")
	if len(f) < 2 {
		if len(line) > 120 {
			line = line[:120] + "..."
		}
		return MasterStatus{}, fmt.Errorf("SHOW MASTER STATUS: unexpected %q", line)
	}
	pos, err := strconv.ParseInt(strings.TrimSpace(f[1]), 10, 64)
	if err != nil {
		return MasterStatus{}, fmt.Errorf("SHOW MASTER STATUS: position %q: %w", f[1], err)
	}
	return MasterStatus{File: f[0], Position: pos}, nil
}
