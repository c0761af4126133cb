package status

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/haconf/haconf/backup"
	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/pacemaker"
)

// ExpectFrom derives the expected shape of the pair from haconf.yaml.
func ExpectFrom(cfg *config.Config, now time.Time) Expect {
	e := Expect{Nodes: cfg.NodeNames(), DRBDResource: cfg.DRBD.Resource, FencingType: cfg.Fencing.Type,
		RabbitMQMode: cfg.RabbitMQ.Mode, BackupMaxAge: BackupMaxAge(now, cfg.Backup.Full, cfg.Backup.Differential), BackupFull: cfg.Backup.Full}
	if e.RabbitMQMode == "mirrored" {
		e.RabbitMQPolicy = cfg.RabbitMQ.Policy.Name
	}
	if p, ok := cfg.VIP.Prefix(); ok {
		e.VIP = p.Addr().String()
	}
	return e
}

// BackupMaxAge is how old the last backup may get with these cron
// schedules: the longest gap between two scheduled runs in the coming two
// weeks, plus two hours for the backup itself. Zero when nothing is
// scheduled.
func BackupMaxAge(now time.Time, schedules ...string) time.Duration {
	var runs []time.Time
	for _, expr := range schedules {
		if expr == "" {
			continue
		}
		sched, err := backup.CronParser.Parse(expr)
		if err != nil {
			continue
		}
		for t := sched.Next(now); !t.IsZero() && t.Before(now.Add(14*24*time.Hour)); t = sched.Next(t) {
			runs = append(runs, t)
		}
	}
	if len(runs) < 2 {
		return 0
	}
	slices.SortFunc(runs, time.Time.Compare)
	var gap time.Duration
	for i := 1; i < len(runs); i++ {
		if d := runs[i].Sub(runs[i-1]); d > gap {
			gap = d
		}
	}
	return gap + 2*time.Hour
}

// MySQLProbe connects to MariaDB at Addr with the [client] credentials of
// CredentialsFile (the password never leaves the driver configuration) and
// asks whether it is read-only.
type MySQLProbe struct {
	Addr            string // host:port, normally the VIP
	CredentialsFile string
}

type nopLogger struct{}

func (nopLogger) Print(...any) {}

// Probe implements MySQLProber.
func (p MySQLProbe) Probe(ctx context.Context) MySQLFacts {
	f := MySQLFacts{Address: p.Addr}
	cfg, err := backup.ResolveDSN("", backup.Credentials{File: p.CredentialsFile})
	if err != nil {
		f.Error = err.Error()
		return f
	}
	cfg.Net, cfg.Addr = "tcp", p.Addr
	cfg.Logger = nopLogger{}
	if dl, ok := ctx.Deadline(); ok {
		cfg.Timeout = time.Until(dl)
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		f.Error = fmt.Sprintf("mysql %s: %v", backup.Where(cfg), err)
		return f
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	var readOnly int
	err = db.QueryRowContext(ctx, "SELECT @@global.read_only, VERSION()").Scan(&readOnly, &f.Version)
	var me *mysql.MySQLError
	switch {
	case err == nil:
		f.Reachable, f.ReadOnly = true, readOnly != 0
	case errors.As(err, &me):
		// The server answered: it is up, but the check failed (e.g.
		// access denied), so its state is unknown.
		f.Reachable = true
		f.Error = fmt.Sprintf("mysql %s: %v", backup.Where(cfg), err)
	default:
		f.Problem = err.Error()
	}
	return f
}

// MySQLAddr returns host:port of MariaDB behind the VIP.
func MySQLAddr(vip string, port int) string { return net.JoinHostPort(vip, strconv.Itoa(port)) }

// BackupRepo reads a haconf backup repository read-only: the scheduler's
// state.json, the newest complete backup, and the copies to Copies.
type BackupRepo struct {
	Dir string
	// Copies are the names of the off-host copy targets (backup.copies).
	Copies []string
}

// LastBackup implements BackupReader.
func (b BackupRepo) LastBackup(ctx context.Context) (BackupFacts, error) {
	f := BackupFacts{Repository: b.Dir}
	repo := backup.Repository{Dir: b.Dir}
	st, err := backup.ReadState(repo)
	if err != nil {
		return f, err
	}
	if f.ScheduledSince, err = backup.ScheduledSince(repo); err != nil {
		return f, err
	}
	var failedAt time.Time
	for _, job := range []backup.Job{backup.JobFull, backup.JobDifferential} {
		js := st[job]
		if js.LastSuccess.After(f.LastSuccess) {
			f.LastSuccess = js.LastSuccess
		}
		if js.LastAttempt.After(f.LastAttempt) {
			f.LastAttempt = js.LastAttempt
		}
		if js.LastError != "" && js.LastAttempt.After(js.LastSuccess) && js.LastAttempt.After(failedAt) {
			failedAt, f.LastError = js.LastAttempt, fmt.Sprintf("%s: %s", job, js.LastError)
		}
	}
	f.LastNote = st[backup.JobDifferential].LastNote
	entries, err := repo.Scan()
	if err != nil {
		return f, err
	}
	var newest *backup.Manifest
	for _, e := range entries {
		if e.Damage != nil {
			f.Damaged = append(f.Damaged, e.ID)
			continue
		}
		m := e.Manifest
		newest = m
		switch {
		case m.Type == backup.Full:
			f.Chain = &BackupChain{Full: m.ID, FullFinished: m.Finished}
		case f.Chain != nil && m.Base == f.Chain.Full:
			f.Chain.Differentials++
			f.Chain.LastDifferential = m.ID
		}
	}
	if newest != nil {
		f.LastID, f.LastType = newest.ID, string(newest.Type)
		if newest.Finished.After(f.LastSuccess) {
			f.LastSuccess = newest.Finished // a manual `haconf backup run` counts too
		}
	}
	if !failedAt.After(f.LastSuccess) {
		f.LastError = ""
	}
	if len(b.Copies) == 0 {
		return f, nil
	}
	copies, err := backup.ReadCopyState(repo)
	if err != nil {
		return f, err
	}
	for _, name := range b.Copies {
		cs := copies[name]
		c := BackupCopy{Target: name, LastSuccess: cs.LastSuccess, LastAttempt: cs.LastAttempt, LastError: cs.LastError}
		if c.Uncopied, err = backup.Uncopied(repo, cs); err != nil {
			return f, err
		}
		f.Copies = append(f.Copies, c)
	}
	return f, nil
}

// firstFullDue is when the first full backup is late: the first run of
// schedule after since, plus two hours for the backup itself. Zero when
// the schedule does not parse.
func firstFullDue(schedule string, since time.Time) time.Time {
	sched, err := backup.CronParser.Parse(schedule)
	if err != nil {
		return time.Time{}
	}
	next := sched.Next(since)
	if next.IsZero() {
		return next
	}
	return next.Add(2 * time.Hour)
}

// FenceProbe asks each controller's fence device for its power state
// through its fence agent, as Pacemaker's fencer does (options on stdin,
// the password through the device's password file), all at once.
type FenceProbe struct {
	Devices []pacemaker.StonithDevice
	Run     pacemaker.CmdRunner
	// Stat checks the password files (os.Stat when nil).
	Stat func(string) (fs.FileInfo, error)
}

// Probe implements FenceProber.
func (p FenceProbe) Probe(ctx context.Context) FencingFacts {
	stat := p.Stat
	if stat == nil {
		stat = os.Stat
	}
	f := FencingFacts{Devices: make([]pacemaker.FenceStatus, len(p.Devices))}
	var wg sync.WaitGroup
	for i, d := range p.Devices {
		if d.PasswordFile != "" {
			// The agent would only fail to log in: say why.
			st, err := stat(d.PasswordFile)
			switch {
			case err != nil:
				f.Devices[i] = pacemaker.FenceStatus{Device: d.ID, Target: d.Target, Agent: d.Agent,
					Error: fmt.Sprintf("its password file %s is missing (haconf bootstrap installs it from fence_passwords.%s in the secrets file)", d.PasswordFile, d.Target)}
				continue
			case st.Mode().Perm()&0o077 != 0:
				f.Devices[i] = pacemaker.FenceStatus{Device: d.ID, Target: d.Target, Agent: d.Agent,
					Error: fmt.Sprintf("its password file %s is readable by group or others (mode %v): chmod 600 it", d.PasswordFile, st.Mode().Perm())}
				continue
			}
		}
		wg.Go(func() { f.Devices[i] = d.Status(ctx, p.Run, "") })
	}
	wg.Wait()
	return f
}
