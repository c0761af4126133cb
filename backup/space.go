package backup

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"
)

// ErrNoSpace means a filesystem has too little free space for the backup
// or restore about to start; nothing was written.
var ErrNoSpace = errors.New("not enough free space")

// spaceMargin is added to every estimate: estimates are rough, and a
// filesystem filled to the last byte takes the database's own writes down
// with it when it is shared.
const spaceMargin = 64 << 20

// FreeBytes returns the bytes an unprivileged writer can still use on the
// filesystem holding path (statfs f_bavail), from the nearest existing
// parent when path does not exist yet.
func FreeBytes(path string) (int64, error) {
	for {
		var st syscall.Statfs_t
		err := syscall.Statfs(path, &st)
		if err == nil {
			return int64(st.Bavail) * st.Bsize, nil
		}
		parent := filepath.Dir(path)
		if !errors.Is(err, syscall.ENOENT) || parent == path {
			return 0, fmt.Errorf("free space of %s: %w", path, err)
		}
		path = parent
	}
}

// checkSpace fails with ErrNoSpace unless dir's filesystem has need bytes
// plus a 10% and 64 MiB margin free; what says what the estimate is of.
func checkSpace(free func(string) (int64, error), dir string, need int64, what string) error {
	if free == nil {
		free = FreeBytes
	}
	have, err := free(dir)
	if err != nil {
		return err
	}
	want := need + need/10 + spaceMargin
	if have < want {
		return fmt.Errorf("%w in %s: %s needs about %s, with the margin (10%% + 64 MiB) %s, and %s is free",
			ErrNoSpace, dir, what, FormatBytes(need), FormatBytes(want), FormatBytes(have))
	}
	return nil
}

func (o *Options) checkSpace(dir string, need int64, what string) error {
	return checkSpace(o.freeSpace, dir, need, what)
}

// FormatBytes renders n in binary units (1.5 GiB).
func FormatBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}
