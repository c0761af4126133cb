package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/pkg/sftp"
)

// remoteRepo is a copy target's directory, laid out as a Repository,
// reached over SFTP.
type remoteRepo struct {
	c   *sftp.Client
	dir string
}

func (r remoteRepo) path(elem ...string) string {
	return path.Join(append([]string{r.dir}, elem...)...)
}

// ensureDir creates the target's directory (0700) unless it exists; an
// existing one keeps the mode its administrator gave it.
func (r remoteRepo) ensureDir() error {
	st, err := r.c.Stat(r.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return r.mkdir(r.dir)
	case err != nil:
		return fmt.Errorf("%s on the target: %w", r.dir, err)
	case !st.IsDir():
		return fmt.Errorf("%s on the target is not a directory", r.dir)
	}
	return nil
}

// mkdir creates dir (and its parents) and makes it 0700.
func (r remoteRepo) mkdir(dir string) error {
	if err := r.c.MkdirAll(dir); err != nil {
		return fmt.Errorf("create %s on the target: %w", dir, err)
	}
	if err := r.c.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("chmod %s on the target: %w", dir, err)
	}
	return nil
}

func (r remoteRepo) removeAll(p string) error {
	if err := r.c.RemoveAll(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// scan lists the target's backup directories like Repository.Scan, and
// the temporary directories of copies under way or interrupted.
func (r remoteRepo) scan(ctx context.Context) (entries []Entry, tmps []string, err error) {
	infos, err := r.c.ReadDirContext(ctx, r.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("list %s on the target: %w", r.dir, err)
	}
	var ids []string
	for _, fi := range infos {
		switch name := fi.Name(); {
		case !fi.IsDir():
		case strings.HasPrefix(name, tmpPrefix):
			tmps = append(tmps, name)
		case !strings.HasPrefix(name, "."):
			ids = append(ids, name)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		m, err := r.load(id)
		if errors.Is(err, ErrNotFound) {
			err = fmt.Errorf("%w: %s has no %s", ErrCorrupt, id, manifestName)
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			return nil, nil, err
		}
		entries = append(entries, Entry{ID: id, Manifest: m, Damage: err})
	}
	return entries, tmps, nil
}

// maxManifest bounds what is read of a manifest on the target.
const maxManifest = 256 << 20

// load reads and checks the manifest of the target's backup id, as
// Repository.Load does.
func (r remoteRepo) load(id string) (*Manifest, error) {
	data, err := r.readFile(r.path(id, manifestName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest of %s on the target: %w", id, err)
	}
	sum, err := r.readFile(r.path(id, manifestName+".sha256"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read manifest checksum of %s on the target: %w", id, err)
	}
	return decodeManifest(id, data, sum)
}

func (r remoteRepo) readFile(p string) ([]byte, error) {
	f, err := r.c.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxManifest))
}

// check compares the files of the target's backup m with the manifest:
// their sizes, and with hash their SHA-256.
func (r remoteRepo) check(ctx context.Context, m *Manifest, hash bool) ([]Problem, error) {
	return r.checkDir(ctx, r.path(m.ID), m, hash)
}

func (r remoteRepo) checkDir(ctx context.Context, dir string, m *Manifest, hash bool) ([]Problem, error) {
	var problems []Problem
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return problems, err
		}
		p := path.Join(dir, f.Path)
		var why string
		if hash {
			why = r.checkFile(p, f)
		} else if st, err := r.c.Stat(p); errors.Is(err, fs.ErrNotExist) {
			why = "missing"
		} else if err != nil {
			why = err.Error()
		} else if st.Size() != f.Size {
			why = fmt.Sprintf("size %d, manifest says %d", st.Size(), f.Size)
		}
		if why != "" {
			problems = append(problems, Problem{m.ID, f.Path, why})
		}
	}
	return problems, nil
}

// checkFile is checkFile for a file on the target.
func (r remoteRepo) checkFile(p string, f FileInfo) string {
	fh, err := r.c.Open(p)
	return checkOpened(fh, err, f)
}

// compareFile says how a file of n bytes and SHA-256 sum differs from f
// ("" when it does not).
func compareFile(n int64, sum string, f FileInfo) string {
	if n != f.Size {
		return fmt.Sprintf("size %d, manifest says %d", n, f.Size)
	}
	if sum != f.SHA256 {
		return fmt.Sprintf("sha256 %s, manifest says %s", sum, f.SHA256)
	}
	return ""
}

// put copies backup m from local into .tmp-<id> on the target, verifies
// it there and renames it into place (replacing a damaged copy). It
// returns the bytes sent.
func (r remoteRepo) put(ctx context.Context, local Repository, m *Manifest, replace bool, afterUpload func(tmp string) error) (int64, error) {
	tmp := r.path(tmpPrefix + m.ID)
	if err := r.removeAll(tmp); err != nil {
		return 0, fmt.Errorf("remove an interrupted copy: %w", err)
	}
	if err := r.c.Mkdir(tmp); err != nil {
		return 0, fmt.Errorf("create %s on the target: %w", tmp, err)
	}
	published := false
	defer func() {
		if !published {
			_ = r.removeAll(tmp)
		}
	}()
	if err := r.c.Chmod(tmp, 0o700); err != nil {
		return 0, fmt.Errorf("chmod %s on the target: %w", tmp, err)
	}
	dirs := map[string]bool{tmp: true}
	var sent int64
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return sent, err
		}
		dst := path.Join(tmp, f.Path)
		if err := r.mkdirs(path.Dir(dst), dirs); err != nil {
			return sent, err
		}
		n, sum, err := r.upload(local.Path(m.ID, f.Path), dst)
		sent += n
		if err != nil {
			return sent, err
		}
		if why := compareFile(n, sum, f); why != "" {
			return sent, fmt.Errorf("%w: the local file %s/%s no longer matches its manifest (%s): not copied; haconf backup verify %s", ErrCorrupt, m.ID, f.Path, why, m.ID)
		}
	}
	// The manifest goes last, with its checksum: the copy's own order.
	for _, name := range []string{manifestName, manifestName + ".sha256"} {
		n, _, err := r.upload(local.Path(m.ID, name), path.Join(tmp, name))
		sent += n
		if err != nil {
			return sent, err
		}
	}
	if afterUpload != nil {
		if err := afterUpload(tmp); err != nil {
			return sent, err
		}
	}
	// What the target holds, read back: the manifest (against the one
	// copied) and every file (against the manifest's SHA-256).
	data, err := r.readFile(path.Join(tmp, manifestName))
	if err != nil {
		return sent, fmt.Errorf("read back the manifest: %w", err)
	}
	sum, err := r.readFile(path.Join(tmp, manifestName+".sha256"))
	if err != nil {
		return sent, fmt.Errorf("read back the manifest's checksum: %w", err)
	}
	if got, err := decodeManifest(m.ID, data, sum); err != nil {
		return sent, fmt.Errorf("read back from the target: %w: not published", err)
	} else if got.sum != m.sum {
		return sent, fmt.Errorf("%w: read back from the target, the manifest is another one (sha256 %s, copied %s): not published", ErrCorrupt, got.sum, m.sum)
	}
	problems, err := r.checkDir(ctx, tmp, m, true)
	if err != nil {
		return sent, err
	}
	if len(problems) > 0 {
		return sent, fmt.Errorf("%w: read back from the target, %s: not published", ErrCorrupt, problemList(problems))
	}
	final := r.path(m.ID)
	if replace {
		if err := r.removeAll(final); err != nil {
			return sent, fmt.Errorf("remove the damaged copy: %w", err)
		}
	}
	// SSH_FXP_RENAME never replaces an existing name: a backup of the
	// same id that appeared meanwhile is not overwritten.
	if err := r.c.Rename(tmp, final); err != nil {
		return sent, fmt.Errorf("publish %s on the target: %w", m.ID, err)
	}
	published = true
	return sent, nil
}

// mkdirs creates dir and the parents it lacks below a directory in made,
// each 0700, and adds them to made.
func (r remoteRepo) mkdirs(dir string, made map[string]bool) error {
	if made[dir] {
		return nil
	}
	if parent := path.Dir(dir); parent != dir {
		if err := r.mkdirs(parent, made); err != nil {
			return err
		}
	}
	if err := r.c.Mkdir(dir); err != nil {
		return fmt.Errorf("create %s on the target: %w", dir, err)
	}
	if err := r.c.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("chmod %s on the target: %w", dir, err)
	}
	made[dir] = true
	return nil
}

// upload copies the local file src to dst on the target (0600), hashing
// what it reads, and asks the target to fsync it where it can. It returns
// the bytes read and their SHA-256.
func (r remoteRepo) upload(src, dst string) (int64, string, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, "", fmt.Errorf("read local backup: %w", err)
	}
	defer in.Close()
	out, err := r.c.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return 0, "", fmt.Errorf("create %s on the target: %w", dst, err)
	}
	defer out.Close()
	if err := out.Chmod(0o600); err != nil {
		return 0, "", fmt.Errorf("chmod %s on the target: %w", dst, err)
	}
	h := sha256.New()
	n, err := out.ReadFromWithConcurrency(io.TeeReader(in, h), 0)
	if err != nil {
		return n, "", fmt.Errorf("write %s on the target: %w", dst, err)
	}
	if _, ok := r.c.HasExtension("fsync@openssh.com"); ok {
		if err := out.Sync(); err != nil {
			return n, "", fmt.Errorf("fsync %s on the target: %w", dst, err)
		}
	}
	if err := out.Close(); err != nil {
		return n, "", fmt.Errorf("close %s on the target: %w", dst, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// chain is Repository.Chain on the target.
func (r remoteRepo) chain(ctx context.Context, id string) ([]*Manifest, error) {
	var m *Manifest
	var err error
	if id == "" {
		entries, _, serr := r.scan(ctx)
		if serr != nil {
			return nil, serr
		}
		for i := len(entries) - 1; i >= 0 && m == nil; i-- {
			m = entries[i].Manifest
		}
		if m == nil {
			return nil, fmt.Errorf("%w on the target (%s)", ErrNotFound, r.dir)
		}
	} else if m, err = r.load(id); err != nil {
		return nil, fmt.Errorf("on the target: %w", err)
	}
	if m.Type == Full {
		return []*Manifest{m}, nil
	}
	base, err := r.load(m.Base)
	if err != nil {
		return nil, fmt.Errorf("base of differential %s on the target: %w", m.ID, err)
	}
	return []*Manifest{base, m}, nil
}

// get downloads the target's backup m into dst, verifying every file as
// it is read, under a temporary name renamed into place at the end.
func (r remoteRepo) get(ctx context.Context, dst Repository, m *Manifest) error {
	tmp := filepath.Join(dst.Dir, tmpPrefix+m.ID)
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	var problems []Problem
	for _, f := range m.Files {
		if err := ctx.Err(); err != nil {
			return err
		}
		n, sum, err := r.download(path.Join(r.dir, m.ID, f.Path), filepath.Join(tmp, filepath.FromSlash(f.Path)))
		switch {
		case errors.Is(err, fs.ErrNotExist):
			problems = append(problems, Problem{m.ID, f.Path, "missing"})
		case err != nil:
			return err
		default:
			if why := compareFile(n, sum, f); why != "" {
				problems = append(problems, Problem{m.ID, f.Path, why})
			}
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w on the target: %s", ErrCorrupt, problemList(problems))
	}
	// The manifest last, checked against the one the files were checked
	// against (read when the target was listed).
	for _, name := range []string{manifestName, manifestName + ".sha256"} {
		if _, _, err := r.download(path.Join(r.dir, m.ID, name), filepath.Join(tmp, name)); err != nil {
			return err
		}
	}
	if got, err := loadDir(tmp, m.ID); err != nil {
		return fmt.Errorf("on the target: %w", err)
	} else if got.sum != m.sum {
		return fmt.Errorf("%w: the manifest of %s changed on the target while it was fetched", ErrCorrupt, m.ID)
	}
	final := filepath.Join(dst.Dir, m.ID)
	if err := os.RemoveAll(final); err != nil {
		return err
	}
	return os.Rename(tmp, final)
}

// download copies src on the target to the local file dst (0600),
// returning the bytes and their SHA-256.
func (r remoteRepo) download(src, dst string) (int64, string, error) {
	in, err := r.c.Open(src)
	if err != nil {
		return 0, "", err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return 0, "", err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, "", err
	}
	h := sha256.New()
	n, err := in.WriteTo(io.MultiWriter(out, h))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, "", fmt.Errorf("fetch %s: %w", src, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}
