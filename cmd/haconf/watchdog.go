package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/haconf/haconf/backup"
	"github.com/haconf/haconf/compute"
	"github.com/haconf/haconf/drbd"
	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/watchdog"
)

type watchdogOptions struct {
	node   string
	dryRun bool
}

func newWatchdogCmd(g *globals) *cobra.Command {
	o := &watchdogOptions{}
	cmd := &cobra.Command{
		Use:   "watchdog",
		Short: "Run the daemon: follow DRBD, resolve split brain automatically, serve /status and /metrics",
		Long: `Runs on both controllers (systemd unit haconf-watchdog.service). It follows
DRBD state, runs its checks on watchdog.interval, and serves (on this node's
management address, port 9750, unless watchdog.listen says otherwise):
/healthz, /status (JSON), /metrics (Prometheus) and the peer API the
split-brain engine uses. Peer API requests (/v1/) must be signed with a key
derived from watchdog.peer_key_file (default /etc/corosync/authkey, which
haconf bootstrap installs on both controllers), stamped within 30 s of
this node's clock and after this watchdog started (a request captured
before a restart is not accepted again after it); a split-brain decision is
also accepted only from the peer's addresses. The watchdog does not start
without that file. With watchdog.token_file set, /status and /metrics need its
token (Authorization: Bearer TOKEN); /healthz never does.

Split brain: both watchdogs gather the same evidence from both nodes and reach
the same decision; only the survivor acts, at the first check that finds it,
and the victim verifies the decision itself before it preserves and discards
its data. With policy manual it only records and reports. --dry-run plans and
logs without changing anything.`,
		Example: `  haconf watchdog -c /etc/haconf/haconf.yaml
  haconf watchdog -c /etc/haconf/haconf.yaml --dry-run
  curl -s http://ctl1:9750/status | jq .split_brain`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			env, err := newPairEnv(g, o.node, nil)
			if err != nil {
				return err
			}
			cfg, ctx := env.cfg, cmd.Context()
			var token []byte
			if cfg.Watchdog.TokenFile != "" {
				if token, err = watchdog.LoadToken(cfg.Watchdog.TokenFile); err != nil {
					return err
				}
			}
			res := cfg.DRBD.Resource
			sb := &watchdog.SplitBrainCheck{Engine: env.engine, Local: env.local, Resource: res, Policy: env.engine.Policy, DryRun: o.dryRun, Log: g.logger}
			wd := &watchdog.Watchdog{Log: g.logger, Specs: []watchdog.Spec{{
				Check: sb, Interval: cfg.Watchdog.Interval, Timeout: 60 * time.Second,
				// One failure is enough: the check fails only while DRBD is
				// disconnected with something to decide (a StandAlone split
				// brain never clears by itself), and Resolve gathers the
				// evidence again before acting.
				FailuresBeforeAction: 1, SuccessesBeforeClear: 2, Cooldown: 2 * time.Minute, RemediationTimeout: 12 * time.Hour,
			}}}
			state := &watchdog.DRBDState{}
			bv := buildVersion()
			srv := &watchdog.Server{Watchdog: wd, Node: env.local, Applier: env.engine, SplitBrain: sb, DRBD: state,
				Incidents: env.store, Key: env.peer.Key, Token: token, Log: g.logger,
				Build: watchdog.BuildInfo{Version: bv.Version, Commit: bv.Commit},
				Extra: []prometheus.Collector{backup.Metrics{Repo: backup.Repository{Dir: cfg.Backup.Repository}, Config: cfg.Backup}}}
			if cfg.Compute != nil {
				// The compute controller's status is in MariaDB, which both
				// watchdogs reach; the one beside the controller exports it.
				// Without it the watchdog still does its own work.
				if store, closeStore, err := computeStore(cfg); err != nil {
					g.logger.Warn("compute metrics not exported", "err", err)
				} else {
					defer closeStore()
					srv.Extra = append(srv.Extra, compute.Metrics{Store: store, Controller: env.local.Name})
				}
			}
			if peer, ok := cfg.Peer(env.local.Name); ok {
				for _, a := range []string{peer.Management, peer.Storage} {
					if ip, err := netip.ParseAddr(a); err == nil {
						srv.ApplyFrom = append(srv.ApplyFrom, ip)
					}
				}
			}
			// DRBD 9: follow drbdsetup events2 as it happens; 8.4: poll /proc/drbd.
			watcher := &drbd.Watcher{Run: runner.Exec{Timeout: 10 * time.Second}, Stream: runner.Exec{}, Resource: res, Minor: cfg.DRBD.Minor(), Log: g.logger}
			ln, err := net.Listen("tcp", cfg.WatchdogListen(env.local.Name))
			if err != nil {
				return err
			}
			hs := srv.HTTPServer()
			ctx, cancel := context.WithCancel(ctx)
			defer cancel()
			errc := make(chan error, 3)
			go func() { errc <- hs.Serve(ln) }()
			go func() {
				errc <- watcher.Watch(ctx, func(st drbd.Status) {
					state.Set(st)
					wd.Trigger(sb.Name())
				})
			}()
			go func() { errc <- wd.Run(ctx) }()
			if sched, err := backupScheduler(cfg, g.logger); err != nil {
				g.logger.Warn("backups not scheduled", "err", err)
			} else if sched != nil && !o.dryRun {
				sched.Start(ctx)
				defer sched.Stop()
				g.logger.Info("backups scheduled", "full", cfg.Backup.Full, "differential", cfg.Backup.Differential, "drill", cfg.Backup.Drill, "next", sched.Next(), "copies", len(cfg.Backup.Copies))
			}
			g.logger.Info("watchdog running", "node", env.local.Name, "listen", ln.Addr().String(), "policy", env.engine.Policy.Name, "dry_run", o.dryRun)
			err = <-errc
			cancel()
			sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer scancel()
			_ = hs.Shutdown(sctx)
			if errors.Is(err, context.Canceled) || errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return err
		},
	}
	cmd.Flags().StringVar(&o.node, "node", "", "this controller's name (default: the short hostname)")
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "observe and plan, never change anything")
	return cmd
}

// backupScheduler runs the backup.full/differential/drill schedules; a job
// runs only on the node where MariaDB's filesystem is mounted (the active
// node), never overlapping, and records its last success in the repository.
// After each full or differential job the backups are copied to the
// backup.copies targets.
func backupScheduler(cfg *config.Config, log *slog.Logger) (*backup.Scheduler, error) {
	if cfg.Backup.Full == "" && cfg.Backup.Differential == "" && cfg.Backup.Drill == "" {
		return nil, nil
	}
	db, err := backup.ResolveDSN("", backup.Credentials{File: cfg.MySQL.CredentialsFile})
	if err != nil {
		return nil, err
	}
	mnt := cfg.MySQL.MountPoint
	activeHere := func() bool {
		b, err := os.ReadFile("/proc/mounts")
		if err != nil {
			return false
		}
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) > 1 && f[1] == mnt {
				return true
			}
		}
		return false
	}
	jobs := backup.Jobs(cfg.Backup.Options(db, log), cfg.Backup.DrillOptions(runner.Exec{Timeout: time.Hour}, log))
	if len(cfg.Backup.Copies) > 0 {
		jobs[backup.JobCopy] = backup.CopyJob(cfg.Backup.CopyOptions(log))
	}
	return backup.NewScheduler(cfg.Backup, jobs, activeHere, log)
}
