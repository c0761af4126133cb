package drbd

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// MySQLBinlog reads the binary log position with the mysql client
// (`SHOW MASTER STATUS`); MariaDB not answering means it does not run here.
type MySQLBinlog struct {
	Run Runner
	// CredentialsFile is a client option file ([client] user=, password=).
	CredentialsFile string
}

// Binlog implements BinlogProbe.
func (m MySQLBinlog) Binlog(ctx context.Context) (MySQLEvidence, error) {
	out, err := m.Run.Run(ctx, "mysql", "--defaults-extra-file="+m.CredentialsFile, "--batch", "--skip-column-names", "--execute", "SHOW MASTER STATUS")
	if err != nil {
		return MySQLEvidence{}, err
	}
	return ParseMasterStatus(out)
}

// ParseMasterStatus parses `SHOW MASTER STATUS` in batch mode without
// column names: File, Position, Binlog_Do_DB, Binlog_Ignore_DB.
func ParseMasterStatus(out []byte) (MySQLEvidence, error) {
	line := strings.TrimSpace(string(out))
	if line == "" {
		return MySQLEvidence{Running: true}, nil // binary log disabled
	}
	f := strings.Split(strings.SplitN(line, "\n", 2)[0], "\t")
	if len(f) < 2 {
		return MySQLEvidence{}, fmt.Errorf("SHOW MASTER STATUS: unexpected %q", truncate(line, 120))
	}
	pos, err := strconv.ParseInt(strings.TrimSpace(f[1]), 10, 64)
	if err != nil {
		return MySQLEvidence{}, fmt.Errorf("SHOW MASTER STATUS: position %q: %w", f[1], err)
	}
	return MySQLEvidence{Running: true, File: f[0], Position: pos}, nil
}
