package proc

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// procTree writes a fixture procfs: links maps "PID/NAME" to symlink
// targets, files "PID/NAME" to contents.
func procTree(t *testing.T, links, files map[string]string) string {
	t.Helper()
	proc := t.TempDir()
	for name, target := range links {
		p := filepath.Join(proc, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, p); err != nil {
			t.Fatal(err)
		}
	}
	for name, content := range files {
		p := filepath.Join(proc, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return proc
}

func TestHolders(t *testing.T) {
	proc := procTree(t, map[string]string{
		"self":     "100",
		"100/cwd":  "/srv/haconf",
		"100/exe":  "/usr/bin/bash",
		"101/cwd":  "/",
		"101/fd/0": "/dev/null",
		"101/fd/1": "socket:[4242]",
		"101/fd/7": "/srv/haconf/mysql/ibtmp1 (deleted)",
		"102/cwd":  "/",
		"102/exe":  "/usr/sbin/mariadbd",
		"103/cwd":  "/srv/haconfother/x", // a sibling sharing the prefix
		"103/fd/3": "/srv/haconf-old/log",
		"104/root": "/srv/haconf/chroot",
		"105/exe":  "/srv/haconf/bin/tool",
		"106/cwd":  "/tmp",
	}, map[string]string{
		"100/comm": "bash\n",
		"101/comm": "mariadbd\n",
		"102/comm": "mariadbd\n",
		"102/maps": "55d0c0a00000-55d0c0a2c000 r--p 00000000 fd:00 1310 /usr/sbin/mariadbd\n" +
			"7f1c2c000000-7f1c2c021000 rw-p 00000000 00:00 0 \n" +
			"7f1c30000000-7f1c34000000 rw-s 00000000 93:00 12                         /srv/haconf/mysql/ib_logfile0\n" +
			"7ffd5c6f6000-7ffd5c717000 rw-p 00000000 00:00 0                          [stack]\n",
		"103/maps": "7f1c30000000-7f1c34000000 r--p 00000000 93:00 12   /srv/haconfother/lib.so\n",
		"106/maps": "7f1c30000000-7f1c34000000 r--p 00000000 93:00 12   /srv/haconf/with space (deleted)\n",
		"version":  "not a pid\n",
	})
	hs, err := Holders(proc, []string{"/srv/haconf"})
	if err != nil {
		t.Fatal(err)
	}
	want := []Holder{
		{100, "bash", "cwd", "/srv/haconf"},
		{101, "mariadbd", "fd 7", "/srv/haconf/mysql/ibtmp1"},
		{102, "mariadbd", "maps", "/srv/haconf/mysql/ib_logfile0"},
		{104, "", "root", "/srv/haconf/chroot"},
		{105, "", "exe", "/srv/haconf/bin/tool"},
		{106, "", "maps", "/srv/haconf/with space"},
	}
	if !reflect.DeepEqual(hs, want) {
		t.Errorf("got  %v\nwant %v", hs, want)
	}
	if _, err := Holders(filepath.Join(proc, "missing"), []string{"/srv/haconf"}); err == nil {
		t.Error("no error for a missing procfs")
	}
}
