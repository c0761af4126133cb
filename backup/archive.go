package backup

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"
)

// archiveConfig stores the cluster's configuration files and directories
// in config.tar.zst so that a lost pair can be rebuilt from the backup. A
// missing path is logged and skipped: the database backup matters more.
func archiveConfig(tx *txn, paths []string, log *slog.Logger) ([]string, error) {
	var present []string
	for _, p := range paths {
		if _, err := os.Lstat(p); err != nil {
			log.Warn("configuration path not archived", "path", p, "err", err)
			continue
		}
		present = append(present, p)
	}
	if len(present) == 0 {
		return nil, nil
	}
	f, err := tx.create("config.tar.zst")
	if err != nil {
		return nil, err
	}
	enc, err := zstd.NewWriter(f)
	if err != nil {
		f.f.Close()
		return nil, fmt.Errorf("zstd: %w", err)
	}
	tw := tar.NewWriter(enc)
	for _, root := range present {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			link := ""
			if info.Mode()&fs.ModeSymlink != 0 {
				if link, err = os.Readlink(path); err != nil {
					return err
				}
			}
			hdr, err := tar.FileInfoHeader(info, link)
			if err != nil {
				return err
			}
			abs, _ := filepath.Abs(path)
			hdr.Name = filepath.ToSlash(abs[1:])
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			if info.Mode().IsRegular() {
				src, err := os.Open(path)
				if err != nil {
					return err
				}
				_, err = io.Copy(tw, src)
				src.Close()
				return err
			}
			return nil
		})
		if err != nil {
			f.f.Close()
			return nil, fmt.Errorf("archive %s: %w", root, err)
		}
	}
	if err := errors.Join(tw.Close(), enc.Close()); err != nil {
		f.f.Close()
		return nil, fmt.Errorf("archive configuration: %w", err)
	}
	return present, f.Close()
}
