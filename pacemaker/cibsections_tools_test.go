package pacemaker_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/runner"
	"github.com/haconf/haconf/internal/testenv"
	"github.com/haconf/haconf/pacemaker"
	"github.com/haconf/haconf/templates"
)

// TestConfigurationUpdatesWithCibadmin pushes the rendered CIB section by
// section into a CIB file with the real cibadmin, lets an agent add a
// permanent node attribute (as rabbitmq-cluster does), and checks that a
// re-apply finds nothing to push.
func TestConfigurationUpdatesWithCibadmin(t *testing.T) {
	testenv.RequireCommands(t, "cibadmin", "crm_attribute")
	c, err := config.Parse("example.yaml", config.Example())
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := templates.RenderCIB(c, "ctl1", templates.Options{DRBDVersion: "9"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	cib := filepath.Join(dir, "cib.xml")
	env := []string{"CIB_file=" + cib}
	run := func(name string, args ...string) []byte {
		t.Helper()
		out, err := runner.Exec{}.RunCmd(ctx, runner.Cmd{Name: name, Args: args, Env: env})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	os.WriteFile(cib, run("cibadmin", "--empty"), 0o600)

	apply := func() []string {
		var scopes []string
		for _, u := range pacemaker.ConfigurationUpdates(rendered, run("cibadmin", "--query", "--scope", "configuration")) {
			f := filepath.Join(dir, u.Scope+".xml")
			os.WriteFile(f, u.XML, 0o600)
			run("cibadmin", u.Args(f)...)
			scopes = append(scopes, u.Scope)
		}
		return scopes
	}
	if got := apply(); len(got) != 1 || got[0] != "configuration" {
		t.Fatalf("first apply pushed %v, want the whole configuration", got)
	}
	run("crm_attribute", "-N", "ctl1", "-l", "forever", "-n", "rmq-node-attr-last-known-rabbitmq", "-v", "rabbit@ctl1")
	if got := apply(); len(got) != 0 {
		t.Fatalf("re-apply pushed %v; it must change nothing", got)
	}
}
