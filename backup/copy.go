package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pkg/sftp"

	"github.com/haconf/haconf/internal/atomicfile"
)

// Copy errors.
var (
	// ErrCopyBusy means another copy from this repository is running.
	ErrCopyBusy = errors.New("another haconf backup copy is running from this repository")
	// ErrNoTarget means no configured copy target has the name asked for.
	ErrNoTarget = errors.New("no such copy target")
)

// CopyOptions configure Copy.
type CopyOptions struct {
	Repo Repository
	// Targets are every configured target (backup.copies); the state of
	// targets no longer configured is dropped from copies.json.
	Targets []CopyTarget
	// Only copies to the target of this name ("": to every target).
	Only string
	// Retention is how many fulls the target keeps, each with its
	// differentials (backup.retention.fulls).
	Retention int
	// DryRun connects and lists the target, and says what would be copied
	// and removed; it changes nothing, here or there.
	DryRun bool
	// Verify re-reads every file of every backup already on the target
	// and compares its SHA-256 with the manifest (by default only the
	// manifest and each file's size are compared); a damaged backup is
	// copied again.
	Verify bool
	Logger *slog.Logger

	dial        func(ctx context.Context, t CopyTarget) (*sftp.Client, func(), error) // test hook (default dialTarget)
	afterUpload func(t CopyTarget, tmp string) error                                  // test hook: runs before the upload is verified
	now         func() time.Time                                                      // test hook
}

// CopyResult is what one copy run did to one target (DryRun: would do).
type CopyResult struct {
	Target  string `json:"target"`
	Address string `json:"address"` // user@host:port:path
	// Copied are the backups copied (or, replacing a damaged copy, copied
	// again) and verified on the target.
	Copied []string `json:"copied"`
	// Replaced are those of Copied that the target held damaged or
	// different (a truncated file, an edited manifest).
	Replaced []string `json:"replaced,omitempty"`
	// Present are the backups the target already held intact.
	Present []string `json:"present"`
	// Removed are the target's backups its retention removed.
	Removed []string `json:"removed,omitempty"`
	// Skipped are backups of this repository that the target's retention
	// would remove at once (the target holds newer fulls): not copied.
	Skipped []string `json:"skipped,omitempty"`
	// Failed are backups that could not be copied (Error says why); they
	// are tried again at the next run.
	Failed []string `json:"failed,omitempty"`
	// LocalDamaged are backups of this repository whose manifest cannot be
	// trusted: never copied (haconf backup list says why).
	LocalDamaged []string `json:"local_damaged,omitempty"`
	// Damaged are backup directories on the target whose manifest cannot
	// be trusted and which this repository cannot replace (it does not
	// hold them): left alone, for someone to look at.
	Damaged []string `json:"damaged,omitempty"`
	// UpTo is the newest backup of this repository up to which the target
	// holds everything it should (its retention considered).
	UpTo     string        `json:"up_to,omitempty"`
	Bytes    int64         `json:"bytes"`
	Duration time.Duration `json:"duration_ns"`
	DryRun   bool          `json:"dry_run"`
	Error    string        `json:"error,omitempty"`

	listed bool // the target was listed: UpTo is known
}

// Copy copies every complete backup of the repository that a target lacks
// to each target (or to Only), oldest first:
//
//  1. The repository's backups and the target's are listed; a backup the
//     target holds under its final name with the same manifest (its
//     SHA-256) and files of the manifest's sizes (Verify: of the
//     manifest's SHA-256) is there already. Retention is applied to the
//     union of both, so a backup the target would drop at once is not
//     copied.
//  2. Each missing backup is written into .tmp-<id> on the target (files
//     0600, directories 0700, each file fsynced where the server supports
//     fsync@openssh.com), its files hashed while they are read here (a
//     local file that no longer matches the manifest is not copied), then
//     every file is read back from the target and compared with the
//     manifest's SHA-256, and the manifest with its .sha256. Only then is
//     the directory renamed to <id>: a half-copied backup never looks
//     complete on the target, and a listing of the target (it is laid out
//     as a repository) never shows it. A differential is copied only once
//     its full is on the target.
//  3. Retention (the newest Retention fulls with their differentials) is
//     applied to what the target then holds; the temporary directories
//     of this repository's earlier, interrupted copies are removed.
//
// A failure is per backup and per target: the local repository is never
// changed, the rest goes on, and the next run copies what is missing.
// Each target's outcome is recorded in the repository's copies.json (not
// with DryRun) for status and metrics. Copies from one repository never
// overlap (ErrCopyBusy); they never take the repository's own lock, so a
// long copy does not hold up the next backup.
func Copy(ctx context.Context, o CopyOptions) ([]CopyResult, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.dial == nil {
		o.dial = dialTarget
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.Retention < 1 {
		return nil, fmt.Errorf("backup copy: retention %d: must be at least 1", o.Retention)
	}
	targets, err := SelectTargets(o.Targets, o.Only)
	if err != nil {
		return nil, err
	}
	if !o.DryRun {
		unlock, err := o.Repo.lock(copyLockName, ErrCopyBusy)
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	var results []CopyResult
	var errs []error
	for _, t := range targets {
		started := o.now()
		res, err := copyTo(ctx, o, t)
		res.Duration = o.now().Sub(started)
		if err != nil {
			res.Error = err.Error()
			errs = append(errs, fmt.Errorf("copy to %s: %w", t.Name, err))
			o.Logger.Error("backup copy failed", "target", t.Name, "address", t.String(), "err", err, "copied", res.Copied, "failed", res.Failed)
		} else if !o.DryRun {
			o.Logger.Info("backup copy done", "target", t.Name, "address", t.String(), "copied", res.Copied, "removed", res.Removed,
				"bytes", res.Bytes, "duration", res.Duration.Round(time.Millisecond))
		}
		if !o.DryRun {
			if serr := recordCopy(o.Repo, o.Targets, res, started, o.now(), err); serr != nil {
				o.Logger.Error("cannot record backup copy state", "target", t.Name, "err", serr)
			}
		}
		results = append(results, *res)
	}
	return results, errors.Join(errs...)
}

// SelectTargets returns the target named only, or all of them.
func SelectTargets(all []CopyTarget, only string) ([]CopyTarget, error) {
	if only == "" {
		if len(all) == 0 {
			return nil, fmt.Errorf("%w: backup.copies lists no target", ErrNoTarget)
		}
		return all, nil
	}
	var names []string
	for _, t := range all {
		if t.Name == only {
			return []CopyTarget{t}, nil
		}
		names = append(names, t.Name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: %q: backup.copies lists no target", ErrNoTarget, only)
	}
	return nil, fmt.Errorf("%w: %q (backup.copies lists %s)", ErrNoTarget, only, strings.Join(names, ", "))
}

const copyLockName = ".copy.lock"

// copyPlan is what a copy does to one target, decided from the two
// listings alone (planCopy).
type copyPlan struct {
	Copy    []*Manifest // missing on the target
	Replace []*Manifest // on the target with a damaged or different manifest
	Present []*Manifest // on the target with the same manifest (files to check)
	Skip    []string    // the target's retention would drop them at once
	// LocalDamaged are local backups without a trusted manifest; Damaged
	// are target directories without one that this repository does not
	// hold.
	LocalDamaged []string
	Damaged      []string
}

// planCopy decides what to copy from the local entries to a target holding
// the remote ones, keeping keep fulls there. Both lists are oldest first.
func planCopy(local, remote []Entry, keep int) copyPlan {
	var p copyPlan
	onTarget := map[string]Entry{}
	for _, e := range remote {
		onTarget[e.ID] = e
	}
	union := map[string]*Manifest{}
	for _, e := range remote {
		if e.Damage == nil {
			union[e.ID] = e.Manifest
		}
	}
	localIDs := map[string]bool{}
	for _, e := range local {
		localIDs[e.ID] = true
		if e.Damage != nil {
			p.LocalDamaged = append(p.LocalDamaged, e.ID)
			continue
		}
		union[e.ID] = e.Manifest
	}
	all := make([]*Manifest, 0, len(union))
	for _, m := range union {
		all = append(all, m)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].ID < all[j].ID })
	drop := map[string]bool{}
	for _, id := range RetentionPlan(all, keep) {
		drop[id] = true
	}
	for _, e := range local {
		if e.Damage != nil {
			continue
		}
		r, there := onTarget[e.ID]
		switch {
		case drop[e.ID]:
			if !there {
				p.Skip = append(p.Skip, e.ID)
			}
		case !there:
			p.Copy = append(p.Copy, e.Manifest)
		case r.Damage != nil || r.Manifest.sum != e.Manifest.sum:
			p.Replace = append(p.Replace, e.Manifest)
		default:
			p.Present = append(p.Present, e.Manifest)
		}
	}
	for _, e := range remote {
		if e.Damage != nil && !localIDs[e.ID] {
			p.Damaged = append(p.Damaged, e.ID)
		}
	}
	return p
}

// copyTo runs one target's copy.
func copyTo(ctx context.Context, o CopyOptions, t CopyTarget) (*CopyResult, error) {
	res := &CopyResult{Target: t.Name, Address: t.String(), DryRun: o.DryRun, Copied: []string{}, Present: []string{}}
	local, err := o.Repo.Scan()
	if err != nil {
		return res, err
	}
	c, closeConn, err := o.dial(ctx, t)
	if err != nil {
		return res, err
	}
	defer closeConn()
	rt := remoteRepo{c: c, dir: t.Path}
	if !o.DryRun {
		if err := rt.ensureDir(); err != nil {
			return res, err
		}
	}
	remote, tmps, err := rt.scan(ctx)
	if err != nil {
		return res, err
	}
	plan := planCopy(local, remote, o.Retention)
	res.listed = true
	res.LocalDamaged, res.Damaged, res.Skipped = plan.LocalDamaged, plan.Damaged, plan.Skip
	replace := map[string]bool{}
	for _, m := range plan.Replace {
		replace[m.ID] = true
	}
	todo := slices.Concat(plan.Copy, plan.Replace)
	for _, m := range plan.Present {
		problems, err := rt.check(ctx, m, o.Verify)
		if err != nil {
			return res, err
		}
		if len(problems) > 0 {
			o.Logger.Warn("backup on the copy target is damaged: copying it again", "target", t.Name, "backup", m.ID, "problems", problemList(problems))
			replace[m.ID] = true
			todo = append(todo, m)
			continue
		}
		res.Present = append(res.Present, m.ID)
	}
	sort.Slice(todo, func(i, j int) bool { return todo[i].ID < todo[j].ID })
	held := map[string]*Manifest{} // intact on the target, by id
	for _, e := range remote {
		if e.Damage == nil && !replace[e.ID] {
			held[e.ID] = e.Manifest
		}
	}
	if o.DryRun {
		for _, m := range todo {
			res.Copied = append(res.Copied, m.ID)
			if replace[m.ID] {
				res.Replaced = append(res.Replaced, m.ID)
			}
			held[m.ID] = m
		}
		res.Removed = RetentionPlan(sortedManifests(held), o.Retention)
		return res, nil
	}
	var errs []error
	for _, m := range todo {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		if m.Type == Differential && held[m.Base] == nil {
			res.Failed = append(res.Failed, m.ID)
			errs = append(errs, fmt.Errorf("%s: not copied: its full %s is not on the target", m.ID, m.Base))
			continue
		}
		n, err := rt.put(ctx, o.Repo, m, replace[m.ID], func(tmp string) error {
			if o.afterUpload == nil {
				return nil
			}
			return o.afterUpload(t, tmp)
		})
		res.Bytes += n
		if err != nil {
			res.Failed = append(res.Failed, m.ID)
			errs = append(errs, fmt.Errorf("%s: %w", m.ID, err))
			if replace[m.ID] {
				delete(held, m.ID) // put may have removed the damaged copy
			}
			continue
		}
		held[m.ID] = m
		res.Copied = append(res.Copied, m.ID)
		if replace[m.ID] {
			res.Replaced = append(res.Replaced, m.ID)
		}
	}
	// Retention on what the target holds now: a full that failed to copy
	// never costs the target one of its older fulls.
	for _, id := range RetentionPlan(sortedManifests(held), o.Retention) {
		if err := rt.removeAll(rt.path(id)); err != nil {
			errs = append(errs, fmt.Errorf("retention: remove %s: %w", id, err))
			continue
		}
		delete(held, id)
		res.Removed = append(res.Removed, id)
	}
	// Leftovers of this repository's interrupted copies (put removed those
	// it retried). Other repositories' may be copies in progress.
	for _, name := range tmps {
		id := strings.TrimPrefix(name, tmpPrefix)
		if slices.ContainsFunc(local, func(e Entry) bool { return e.ID == id }) && !slices.ContainsFunc(todo, func(m *Manifest) bool { return m.ID == id }) {
			if err := rt.removeAll(rt.path(name)); err != nil {
				errs = append(errs, fmt.Errorf("remove interrupted copy %s: %w", name, err))
			}
		}
	}
	res.UpTo = upTo(local, func(id string) bool {
		return held[id] != nil || slices.Contains(plan.Skip, id) || slices.Contains(res.Removed, id)
	})
	return res, errors.Join(errs...)
}

// upTo is the newest intact local backup up to which every intact local
// backup is done: on the target, or left out by the target's retention.
func upTo(local []Entry, done func(id string) bool) string {
	last := ""
	for _, e := range local {
		if e.Damage != nil {
			continue
		}
		if !done(e.ID) {
			break
		}
		last = e.ID
	}
	return last
}

func sortedManifests(byID map[string]*Manifest) []*Manifest {
	out := make([]*Manifest, 0, len(byID))
	for _, m := range byID {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

func problemList(ps []Problem) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, "; ")
}

// CopyState is the last copy run to one target, kept in the repository's
// copies.json for status and metrics.
type CopyState struct {
	LastSuccess time.Time `json:"last_success,omitzero"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	// UpTo is CopyResult.UpTo of the last run that got as far as listing
	// the target: every backup of the repository up to it is there, or
	// left out by the target's retention.
	UpTo string `json:"up_to,omitempty"`
}

const copiesName = "copies.json"

// ReadCopyState reads the copy targets' last outcomes from the repository
// (empty when no copy ran yet).
func ReadCopyState(repo Repository) (map[string]CopyState, error) {
	data, err := os.ReadFile(filepath.Join(repo.Dir, copiesName))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]CopyState{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read backup copy state: %w", err)
	}
	st := map[string]CopyState{}
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("backup copy state %s: %w", filepath.Join(repo.Dir, copiesName), err)
	}
	return st, nil
}

// recordCopy writes res's outcome into copies.json, dropping targets that
// are no longer configured.
func recordCopy(repo Repository, targets []CopyTarget, res *CopyResult, started, now time.Time, err error) error {
	st, rerr := ReadCopyState(repo)
	if rerr != nil {
		st = map[string]CopyState{}
	}
	for name := range st {
		if !slices.ContainsFunc(targets, func(t CopyTarget) bool { return t.Name == name }) {
			delete(st, name)
		}
	}
	cs := st[res.Target]
	cs.LastAttempt = started.UTC()
	if err != nil {
		cs.LastError = err.Error()
	} else {
		cs.LastSuccess, cs.LastError = now.UTC(), ""
	}
	if res.listed {
		cs.UpTo = res.UpTo
	}
	st[res.Target] = cs
	data, merr := json.MarshalIndent(st, "", "  ")
	if merr != nil {
		return merr
	}
	return atomicfile.Write(filepath.Join(repo.Dir, copiesName), append(data, '\n'), 0o600)
}

// Uncopied is when the oldest complete backup of repo that a target is
// not known to hold (newer than its state's UpTo) finished: zero when
// there is none. Its age is the target's copy lag. It reads only the
// manifests of those backups.
func Uncopied(repo Repository, st CopyState) (time.Time, error) {
	ids, err := repo.ids()
	if err != nil {
		return time.Time{}, err
	}
	for _, id := range ids {
		if id <= st.UpTo {
			continue
		}
		if m, err := repo.Load(id); err == nil { // a damaged one is never copied; status and list report it
			return m.Finished, nil
		}
	}
	return time.Time{}, nil
}
