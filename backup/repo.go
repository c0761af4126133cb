package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Kind is the type of a backup.
type Kind string

const (
	Full         Kind = "full"
	Differential Kind = "differential"
)

// FormatVersion is the repository format written by this package.
const FormatVersion = 1

// Manifest describes one complete backup. It is written last; a backup
// directory without it, or still under its temporary name, does not exist.
type Manifest struct {
	Format   int       `json:"format"`
	ID       string    `json:"id"`
	Type     Kind      `json:"type"`
	Base     string    `json:"base,omitempty"` // the full a differential applies to
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Server   Server    `json:"server"`
	// Binlog is the binary log position matching the snapshot (nil when
	// log_bin is off). A differential holds the events from its base's
	// position up to its own.
	Binlog    *BinlogPos `json:"binlog,omitempty"`
	Databases []string   `json:"databases"`
	// Tables are every base table at the snapshot, with the row count and
	// the checksum the server computed inside the snapshot.
	Tables []TableInfo `json:"tables"`
	Users  bool        `json:"users,omitempty"`
	// BinlogFiles are the binary logs of a differential, in replay order;
	// replay starts at Base's position in the first one.
	BinlogFiles []string `json:"binlog_files,omitempty"`
	// ConfigFiles are the cluster configuration paths archived in config.tar.zst.
	ConfigFiles []string   `json:"config_files,omitempty"`
	Files       []FileInfo `json:"files"`

	// sum is the SHA-256 of the manifest's bytes, checked against
	// manifest.json.sha256 when it was read: two intact manifests with the
	// same sum are the same (a copy target's against the local one).
	sum string
}

// Server describes the server a backup was taken from. Hostname is for
// people only: after a failover the same database (its datadir and binary
// logs on the DRBD volume) runs on the other node under another hostname,
// so nothing is decided by it. What moves with the data identifies the
// source: the binary log (its basename, file sequence and the GTID state at
// the snapshot, BinlogPos.GTID), with ServerID and GTIDDomainID (the
// rendered configuration gives both nodes the same). MariaDB 10.11 has no
// server_uuid.
type Server struct {
	Version        string `json:"version"`
	Hostname       string `json:"hostname"`
	ServerID       uint64 `json:"server_id"`
	GTIDDomainID   uint64 `json:"gtid_domain_id"`
	LogBinBasename string `json:"log_bin_basename,omitempty"`
}

// BinlogPos is a binary log position.
type BinlogPos struct {
	File     string `json:"file"`
	Position uint64 `json:"position"`
	// GTID is the server's GTID state at this position
	// (BINLOG_GTID_POS(File, Position), e.g. "0-1-1234"; "" before the
	// first transaction). Recorded by fulls since haconf wrote it; a
	// differential uses it to prove that the binary log it reads is the
	// one the full was taken from.
	GTID string `json:"gtid,omitempty"`
}

func (p *BinlogPos) String() string {
	if p == nil {
		return "-"
	}
	return p.File + ":" + strconv.FormatUint(p.Position, 10)
}

// TableInfo is one base table in a backup.
type TableInfo struct {
	DB       string   `json:"db"`
	Name     string   `json:"name"`
	Columns  []string `json:"columns"`
	Rows     int64    `json:"rows"`
	Checksum string   `json:"checksum"`
	Files    []string `json:"files,omitempty"` // data chunks (full only)
}

// FileInfo is one file of a backup with its SHA-256.
type FileInfo struct {
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Rows   int64  `json:"rows,omitempty"`
	// RawSize is the uncompressed size of a data file or binary log (0 in
	// backups taken before haconf recorded it): what a restore's
	// free-space check estimates from.
	RawSize int64 `json:"raw_size,omitempty"`
}

// Size is the total size of the backup's files.
func (m *Manifest) Size() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// Duration is how long the backup took.
func (m *Manifest) Duration() time.Duration { return m.Finished.Sub(m.Started) }

// ErrLocked means another backup run holds the repository lock.
var ErrLocked = errors.New("another haconf backup is running on this repository")

// ErrNotFound means no backup matched.
var ErrNotFound = errors.New("no such backup")

// Repository is a directory of backups:
//
//	<dir>/<id>/manifest.json         complete backups (the manifest is written last)
//	<dir>/<id>/manifest.json.sha256
//	<dir>/.tmp-<id>/                 a backup being written, or left by a crash
//	<dir>/.lock                      held (flock) by the running backup
//	<dir>/state.json                 last success of each scheduled job
//	<dir>/scheduled.json             when a scheduler first ran the schedules here
//	<dir>/.copy.lock                 held (flock) by the running copy to off-host targets
//	<dir>/copies.json                last copy to each off-host target (Copy)
//
// A copy target's directory has the same layout (backups and .tmp-
// directories only).
type Repository struct {
	Dir string
}

const (
	manifestName = "manifest.json"
	tmpPrefix    = ".tmp-"
)

// newID returns a sortable, unique-enough backup id for kind at t.
func newID(kind Kind, t time.Time) string {
	suffix := "full"
	if kind == Differential {
		suffix = "diff"
	}
	return t.UTC().Format("20060102T150405.000Z") + "-" + suffix
}

// Lock takes the repository lock without waiting. The lock is an flock on
// <dir>/.lock, so it is released if the process dies.
func (r Repository) Lock() (unlock func(), err error) { return r.lock(".lock", ErrLocked) }

// lock takes the flock on <dir>/name without waiting; busy is the error
// when another process holds it.
func (r Repository) lock(name string, busy error) (unlock func(), err error) {
	if err := os.MkdirAll(r.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("create repository: %w", err)
	}
	path := filepath.Join(r.Dir, name)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w (%s, pid %s)", busy, path, strings.TrimSpace(string(holder)))
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		_ = f.Truncate(0)
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// List returns the complete, intact backups, oldest first. Directories
// without a readable manifest, or whose manifest does not match
// manifest.json.sha256, are left out (Scan lists them as damaged); the
// temporary directories of interrupted runs are never backups.
func (r Repository) List() ([]*Manifest, error) {
	entries, err := r.Scan()
	if err != nil {
		return nil, err
	}
	var out []*Manifest
	for _, e := range entries {
		if e.Damage == nil {
			out = append(out, e.Manifest)
		}
	}
	return out, nil
}

// Entry is one backup directory of the repository: its manifest, or why
// it cannot be read (Damage wraps ErrCorrupt).
type Entry struct {
	ID       string
	Manifest *Manifest // nil when Damage is set
	Damage   error
}

// Scan returns every backup directory, oldest first, each with its
// manifest or the reason it is damaged (a truncated or unparsable manifest,
// one that does not match manifest.json.sha256, or none at all). It reads
// only the manifests; Verify reads the files.
func (r Repository) Scan() ([]Entry, error) {
	ids, err := r.ids()
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(ids))
	for _, id := range ids {
		m, err := r.Load(id)
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if errors.Is(err, ErrNotFound) {
			err = fmt.Errorf("%w: %s has no %s", ErrCorrupt, id, manifestName)
		}
		out = append(out, Entry{ID: id, Manifest: m, Damage: err})
	}
	return out, nil
}

// ids are the names of the repository's backup directories, oldest first
// (an id starts with its time; Load checks that the manifest agrees).
func (r Repository) ids() ([]string, error) {
	entries, err := os.ReadDir(r.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read repository: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Load reads the manifest of backup id and checks it against
// manifest.json.sha256, which the run wrote after it. A manifest that is
// missing its checksum, does not match it or does not parse is an error
// wrapping ErrCorrupt; a backup directory without a manifest is ErrNotFound.
func (r Repository) Load(id string) (*Manifest, error) {
	if id == "" || strings.ContainsAny(id, "/\\") || strings.HasPrefix(id, ".") {
		return nil, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	return loadDir(filepath.Join(r.Dir, id), id)
}

// loadDir is Load of backup id in the directory dir.
func loadDir(dir, id string) (*Manifest, error) {
	path := filepath.Join(dir, manifestName)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest of %s: %w", id, err)
	}
	sum, err := os.ReadFile(path + ".sha256")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read manifest checksum of %s: %w", id, err)
	}
	return decodeManifest(id, data, sum)
}

// decodeManifest checks a manifest's bytes against the SHA-256 recorded in
// manifest.json.sha256 (sum, nil when that file is missing) and decodes
// them. Every problem wraps ErrCorrupt.
func decodeManifest(id string, data, sum []byte) (*Manifest, error) {
	if sum == nil {
		return nil, fmt.Errorf("%w: %s: %s.sha256 is missing", ErrCorrupt, id, manifestName)
	}
	want, _, _ := strings.Cut(strings.TrimSpace(string(sum)), " ")
	if got := sha256hex(data); got != want {
		return nil, fmt.Errorf("%w: %s: %s does not match %s.sha256 (truncated or edited): sha256 %s, recorded %s", ErrCorrupt, id, manifestName, manifestName, got, want)
	}
	m := Manifest{sum: want}
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: manifest does not parse: %v", ErrCorrupt, id, err)
	}
	if m.ID != id {
		return nil, fmt.Errorf("%w: manifest of %s names backup %q", ErrCorrupt, id, m.ID)
	}
	for _, f := range m.Files {
		// A manifest names files inside its own directory only; one from
		// another machine (a copy target) is not trusted to.
		if !filepath.IsLocal(filepath.FromSlash(f.Path)) || f.Path == manifestName || f.Path == manifestName+".sha256" {
			return nil, fmt.Errorf("%w: manifest of %s names the file %q, outside the backup's own files", ErrCorrupt, id, f.Path)
		}
	}
	return &m, nil
}

// Latest returns the newest complete backup of kind ("" for any). It
// reads manifests from the newest down to the first that matches (the
// watchdog's metrics call it at every scrape).
func (r Repository) Latest(kind Kind) (*Manifest, error) {
	ids, err := r.ids()
	if err != nil {
		return nil, err
	}
	for i := len(ids) - 1; i >= 0; i-- {
		m, err := r.Load(ids[i])
		if err == nil && (kind == "" || m.Type == kind) {
			return m, nil
		}
	}
	if kind == "" {
		return nil, fmt.Errorf("%w in %s", ErrNotFound, r.Dir)
	}
	return nil, fmt.Errorf("%w: no %s backup in %s", ErrNotFound, kind, r.Dir)
}

// Chain returns what restoring id needs: the full, then the differential
// (if id is one). An empty id means the newest backup.
func (r Repository) Chain(id string) ([]*Manifest, error) {
	var m *Manifest
	var err error
	if id == "" {
		m, err = r.Latest("")
	} else {
		m, err = r.Load(id)
	}
	if err != nil {
		return nil, err
	}
	if m.Type == Full {
		return []*Manifest{m}, nil
	}
	base, err := r.Load(m.Base)
	if err != nil {
		return nil, fmt.Errorf("base of differential %s: %w", m.ID, err)
	}
	return []*Manifest{base, m}, nil
}

// Path returns the absolute path of a file of backup id.
func (r Repository) Path(id, rel string) string {
	return filepath.Join(r.Dir, id, filepath.FromSlash(rel))
}

// RetentionPlan returns the ids to delete so that only the newest keep fulls
// remain, each with its differentials. Differentials whose full is gone go
// too. backups must be sorted oldest first.
func RetentionPlan(backups []*Manifest, keep int) []string {
	if keep < 1 {
		keep = 1
	}
	kept := map[string]bool{}
	n := 0
	for i := len(backups) - 1; i >= 0; i-- {
		if backups[i].Type == Full && n < keep {
			kept[backups[i].ID] = true
			n++
		}
	}
	var drop []string
	for _, m := range backups {
		switch {
		case m.Type == Full && !kept[m.ID]:
			drop = append(drop, m.ID)
		case m.Type == Differential && !kept[m.Base]:
			drop = append(drop, m.ID)
		}
	}
	return drop
}

// Prune applies RetentionPlan and removes leftovers of interrupted runs.
// Call it while holding the lock.
func (r Repository) Prune(keep int) ([]string, error) {
	all, err := r.List()
	if err != nil {
		return nil, err
	}
	drop := RetentionPlan(all, keep)
	var errs []error
	for _, id := range drop {
		if err := os.RemoveAll(filepath.Join(r.Dir, id)); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", id, err))
		}
	}
	return drop, errors.Join(errs...)
}

// removeStale deletes the temporary directories of interrupted runs. Call it
// while holding the lock.
func (r Repository) removeStale() error {
	entries, err := os.ReadDir(r.Dir)
	if err != nil {
		return fmt.Errorf("read repository: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), tmpPrefix) {
			if err := os.RemoveAll(filepath.Join(r.Dir, e.Name())); err != nil {
				return fmt.Errorf("remove interrupted backup %s: %w", e.Name(), err)
			}
		}
	}
	return nil
}

// txn writes one backup under a temporary name; commit makes it visible.
type txn struct {
	repo  Repository
	id    string
	dir   string
	mu    sync.Mutex
	files []FileInfo
	dirs  map[string]bool
	done  bool // committed
}

func (r Repository) begin(id string) (*txn, error) {
	dir := filepath.Join(r.Dir, tmpPrefix+id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	return &txn{repo: r, id: id, dir: dir, dirs: map[string]bool{dir: true}}, nil
}

// abort removes everything written so far, unless the backup was
// committed: defer it after begin.
func (t *txn) abort() {
	if !t.done {
		_ = os.RemoveAll(t.dir)
	}
}

// hashedFile is a file being written whose SHA-256 and size are recorded in
// the manifest when it is closed.
type hashedFile struct {
	t    *txn
	rel  string
	f    *os.File
	h    hash.Hash
	n    int64
	Rows int64
	Raw  int64 // uncompressed bytes, set by the writer
}

func (h *hashedFile) Write(p []byte) (int, error) {
	n, err := h.f.Write(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

// Close syncs the file and records it.
func (h *hashedFile) Close() error {
	if err := h.f.Sync(); err != nil {
		h.f.Close()
		return fmt.Errorf("sync %s: %w", h.rel, err)
	}
	if err := h.f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", h.rel, err)
	}
	h.t.mu.Lock()
	h.t.files = append(h.t.files, FileInfo{Path: h.rel, Size: h.n, SHA256: hex.EncodeToString(h.h.Sum(nil)), Rows: h.Rows, RawSize: h.Raw})
	h.t.mu.Unlock()
	return nil
}

// create opens rel (slash-separated) for writing, mode 0600.
func (t *txn) create(rel string) (*hashedFile, error) {
	path := filepath.Join(t.dir, filepath.FromSlash(rel))
	dir := filepath.Dir(path)
	t.mu.Lock()
	if !t.dirs[dir] {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.mu.Unlock()
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
		t.dirs[dir] = true
	}
	t.mu.Unlock()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", rel, err)
	}
	return &hashedFile{t: t, rel: rel, f: f, h: sha256.New()}, nil
}

// writeFile writes a whole small file.
func (t *txn) writeFile(rel string, data []byte) error {
	f, err := t.create(rel)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.f.Close()
		return fmt.Errorf("write %s: %w", rel, err)
	}
	return f.Close()
}

// commit writes the manifest, syncs every directory and renames the
// temporary directory to its final name: the one step that makes the
// backup exist.
func (t *txn) commit(m *Manifest) error {
	t.mu.Lock()
	m.Files = append([]FileInfo(nil), t.files...)
	t.mu.Unlock()
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	data = append(data, '\n')
	sum := sha256.Sum256(data)
	for _, f := range []struct {
		name string
		data []byte
	}{{manifestName, data}, {manifestName + ".sha256", []byte(hex.EncodeToString(sum[:]) + "  " + manifestName + "\n")}} {
		if err := writeSynced(filepath.Join(t.dir, f.name), f.data); err != nil {
			return err
		}
	}
	dirs := make([]string, 0, len(t.dirs))
	for d := range t.dirs {
		dirs = append(dirs, d)
	}
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, d := range dirs {
		if err := syncDir(d); err != nil {
			return err
		}
	}
	final := filepath.Join(t.repo.Dir, t.id)
	if err := os.Rename(t.dir, final); err != nil {
		return fmt.Errorf("publish backup %s: %w", t.id, err)
	}
	t.done = true
	return syncDir(t.repo.Dir)
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
