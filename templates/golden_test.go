package templates

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/haconf/haconf/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// renderCase is one config file, one node and one DRBD syntax.
type renderCase struct {
	name, config, node, drbd string
}

var cases = []renderCase{
	{"example-ctl1-drbd84", "example.yaml", "ctl1", "8.4"},
	{"example-ctl1-drbd9", "example.yaml", "ctl1", "9"},
	{"example-ctl2-drbd9", "example.yaml", "ctl2", "9"},
	{"lab-active-passive-ctl2", "lab-active-passive.yaml", "ctl2", "8.4"},
	{"nofence-quorum-alpha", "sbd-quorum-nofence.yaml", "alpha", "9"},
	{"sbd-ctl1", "sbd.yaml", "ctl1", "9"},
}

func loadCase(t *testing.T, c renderCase) (*config.Config, []File) {
	t.Helper()
	cfg, err := config.Load(filepath.Join("testdata", "configs", c.config))
	if err != nil {
		t.Fatalf("config %s: %v", c.config, err)
	}
	files, err := Render(cfg, c.node, Options{DRBDVersion: c.drbd})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	return cfg, files
}

func TestGolden(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, files := loadCase(t, c)
			dir := filepath.Join("testdata", "golden", c.name)
			if *update {
				os.RemoveAll(dir)
			}
			seen := map[string]bool{}
			for _, f := range files {
				p := filepath.Join(dir, f.Path)
				seen[p] = true
				if *update {
					if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(p, f.Content, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				want, err := os.ReadFile(p)
				if err != nil {
					t.Fatalf("%v (run go test ./templates -update to create golden files)", err)
				}
				if string(want) != string(f.Content) {
					t.Errorf("%s differs from golden file %s (go test ./templates -update, then review the diff)", f.Path, p)
				}
				if !strings.Contains(string(f.Content), Header) {
					t.Errorf("%s lacks the generated-by header", f.Path)
				}
			}
			// No stale golden files for files that are no longer rendered.
			filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
				if err == nil && !info.IsDir() && !seen[p] {
					t.Errorf("golden file %s is no longer rendered", p)
				}
				return nil
			})
		})
	}
}

func TestRenderUnknownNode(t *testing.T) {
	cfg, err := config.Parse("example.yaml", config.Example())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Render(cfg, "ctl9", Options{DRBDVersion: "9"}); err == nil || !strings.Contains(err.Error(), `"ctl9"`) {
		t.Fatalf("err = %v, want one naming ctl9", err)
	}
	if _, err := Render(cfg, "ctl1", Options{DRBDVersion: "auto"}); err == nil {
		t.Fatal("unresolved DRBD version accepted")
	}
}

func TestWriteTwiceKeepsModTimes(t *testing.T) {
	_, files := loadCase(t, cases[0])
	root := t.TempDir()
	if _, err := Write(root, files); err != nil {
		t.Fatal(err)
	}
	before := map[string]os.FileInfo{}
	for _, f := range files {
		st, err := os.Stat(filepath.Join(root, f.Path))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != f.Mode {
			t.Errorf("%s mode %v, want %v", f.Path, st.Mode().Perm(), f.Mode)
		}
		before[f.Path] = st
	}
	changes, err := Write(root, files)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range changes {
		if c.Action.String() != "unchanged" {
			t.Errorf("second write %s: %v", c.File.Path, c.Action)
		}
		st, _ := os.Stat(filepath.Join(root, c.File.Path))
		if !st.ModTime().Equal(before[c.File.Path].ModTime()) {
			t.Errorf("%s: modification time changed on an identical re-render", c.File.Path)
		}
	}
	plan, err := Plan(root, files)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range plan {
		if c.Diff != "" {
			t.Errorf("plan after write shows a diff for %s", c.File.Path)
		}
	}
}

func TestPlanShowsDiffAndChangesNothing(t *testing.T) {
	_, files := loadCase(t, cases[0])
	root := t.TempDir()
	if _, err := Write(root, files); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "etc/corosync/corosync.conf")
	edited := strings.Replace(string(files[1].Content), "token: 3000", "token: 9000", 1)
	if err := os.WriteFile(p, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := Plan(root, files)
	if err != nil {
		t.Fatal(err)
	}
	var diff string
	for _, c := range plan {
		diff += c.Diff
	}
	if !strings.Contains(diff, "-\ttoken: 9000") || !strings.Contains(diff, "+\ttoken: 3000") {
		t.Fatalf("plan diff does not show the token change:\n%s", diff)
	}
	got, _ := os.ReadFile(p)
	if string(got) != edited {
		t.Fatal("plan modified a file")
	}
	if _, err := Plan(root, []File{{Path: "../escape", Content: nil}}); err == nil {
		t.Fatal("a path escaping the root was accepted")
	}
}

// With compute: configured the CIB runs haconf compute controller beside
// the services (crm_verify checks the example's CIB in tools_test.go);
// without it, no such resource.
func TestCIBComputeController(t *testing.T) {
	cfg, err := config.Parse("example.yaml", config.Example())
	if err != nil {
		t.Fatal(err)
	}
	cib, err := RenderCIB(cfg, "ctl1", Options{DRBDVersion: "9"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<primitive id="compute-controller" class="ocf" provider="haconf" type="daemon">`,
		`value="compute controller -c /etc/haconf/haconf.yaml"`,
		`<rsc_colocation id="col-compute-controller-with-services" score="INFINITY" rsc="compute-controller" with-rsc="g-services"/>`} {
		if !strings.Contains(string(cib), want) {
			t.Errorf("CIB lacks %s", want)
		}
	}
	cfg.Compute = nil
	cib, err = RenderCIB(cfg, "ctl1", Options{DRBDVersion: "9"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cib), "compute-controller") {
		t.Error("a CIB without compute: runs a compute controller")
	}
}
