package backup

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/pkg/sftp"
)

// ListTarget lists the backup directories on a copy target, oldest first,
// each with its manifest or why it is damaged (as Repository.Scan does).
func ListTarget(ctx context.Context, t CopyTarget) ([]Entry, error) {
	c, closeConn, err := dialTarget(ctx, t)
	if err != nil {
		return nil, err
	}
	defer closeConn()
	entries, _, err := remoteRepo{c: c, dir: t.Path}.scan(ctx)
	return entries, err
}

// FetchOptions configure Fetch.
type FetchOptions struct {
	Target CopyTarget
	// ID is the backup to fetch (default: the newest on the target); a
	// differential brings its full along.
	ID string
	// Dir is the local directory the chain is fetched into, laid out as a
	// repository; it is created.
	Dir    string
	Logger *slog.Logger

	dial      func(ctx context.Context, t CopyTarget) (*sftp.Client, func(), error) // test hook
	freeSpace func(dir string) (int64, error)                                       // test hook
}

// Fetch copies a backup chain from a copy target into a local directory,
// for a restore when the local repository has lost it. Each manifest is
// checked against its .sha256 and each file against the manifest's size
// and SHA-256 while it is read; a backup is renamed into place in Dir
// only once all of it matched, so a damaged copy is found before anything
// is restored. The free space in Dir is checked first. It returns the
// repository in Dir and the chain's ids, full first.
func Fetch(ctx context.Context, o FetchOptions) (Repository, []string, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.dial == nil {
		o.dial = dialTarget
	}
	dst := Repository{Dir: o.Dir}
	c, closeConn, err := o.dial(ctx, o.Target)
	if err != nil {
		return dst, nil, err
	}
	defer closeConn()
	rt := remoteRepo{c: c, dir: o.Target.Path}
	chain, err := rt.chain(ctx, o.ID)
	if err != nil {
		return dst, nil, err
	}
	var ids []string
	var need int64
	for _, m := range chain {
		ids = append(ids, m.ID)
		need += m.Size()
	}
	if err := checkSpace(o.freeSpace, o.Dir, need, fmt.Sprintf("fetching %s from %s", strings.Join(ids, " + "), o.Target.Name)); err != nil {
		return dst, ids, err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return dst, ids, fmt.Errorf("create %s: %w", o.Dir, err)
	}
	for _, m := range chain {
		if err := rt.get(ctx, dst, m); err != nil {
			return dst, ids, fmt.Errorf("fetch %s from %s: %w", m.ID, o.Target.Name, err)
		}
		o.Logger.Info("backup fetched and verified", "target", o.Target.Name, "backup", m.ID, "bytes", m.Size())
	}
	return dst, ids, nil
}
