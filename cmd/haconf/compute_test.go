package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/haconf/haconf/compute"
	"github.com/haconf/haconf/compute/gossip"
	"github.com/haconf/haconf/internal/cli"
	"github.com/haconf/haconf/internal/config"
	"github.com/haconf/haconf/internal/testenv"
)

func computeConfig(t *testing.T) (path, stateDir string) {
	stateDir = t.TempDir()
	return writeConfig(t, `version: 1
compute:
  nova: {auth_url: http://192.0.2.10:5000/v3, username: admin, project: admin, password_file: /etc/haconf/nova-password}
  gossip: {key_file: /etc/haconf/gossip.key}
  controller: {name: lab, management: 192.0.2.1, storage: 198.51.100.1}
  hosts:
    - {name: cmp1, management: 192.0.2.101, storage: 198.51.100.101, fence: {agent: /usr/sbin/fence_ipmilan}}
    - {name: cmp2, management: 192.0.2.102, storage: 198.51.100.102, fence: {agent: /usr/sbin/fence_ipmilan}}
  state_dir: `+stateDir+`
`), stateDir
}

func TestComputeStatus(t *testing.T) {
	cfg, dir := computeConfig(t)
	if _, errOut, code := haconf(t, "compute", "status", "-c", cfg); code != cli.ExitFailure || !strings.Contains(errOut, "no compute controller has run") {
		t.Fatalf("without a controller: exit %d: %s", code, errOut)
	}
	up := compute.LinkView{Seen: true, Alive: true}
	st := compute.Status{At: time.Now(), Controller: "lab", Hosts: []compute.HostStatus{
		{Name: "cmp1", Domain: "default", Condition: compute.Healthy, Links: map[gossip.Link]compute.LinkView{gossip.Management: up, gossip.Storage: up}, NovaCompute: true},
		{Name: "cmp2", Domain: "default", Condition: compute.LinkDown, Detail: "storage network unreachable since 10:00:00, management network alive: no action",
			Links: map[gossip.Link]compute.LinkView{gossip.Management: up, gossip.Storage: {Seen: true}}, NovaCompute: true},
	}}
	data, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(dir, "status.json"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, code := haconf(t, "compute", "status", "-c", cfg)
	if code != 1 || !strings.Contains(out, "cmp2  default  link-down  up    DOWN") || !strings.Contains(out, "no action") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	out, _, _ = haconf(t, "compute", "status", "-c", cfg, "-o", "json")
	var back compute.Status
	if err := json.Unmarshal([]byte(out), &back); err != nil || len(back.Hosts) != 2 || !strings.Contains(out, `"schema": "haconf.compute.status/v1"`) {
		t.Fatalf("json: %v\n%s", err, out)
	}
}

func TestComputeMaintenanceAndResume(t *testing.T) {
	cfg, dir := computeConfig(t)
	if out, _, code := haconf(t, "compute", "maintenance", "cmp1", "on", "--ttl", "2h", "--reason", "BIOS", "-c", cfg); code != 0 || !strings.Contains(out, "in maintenance until") {
		t.Fatalf("maintenance on: exit %d %s", code, out)
	}
	if _, errOut, code := haconf(t, "compute", "maintenance", "cmp9", "on", "-c", cfg); code != cli.ExitUsage || !strings.Contains(errOut, "cmp9 is not in compute.hosts") {
		t.Fatalf("unknown host: exit %d %s", code, errOut)
	}
	if _, _, code := haconf(t, "compute", "resume", "-c", cfg); code != 0 {
		t.Fatalf("resume: exit %d", code)
	}
	h, err := (&compute.FileStore{Dir: dir}).Holds(context.Background())
	if err != nil || h.Maintenance["cmp1"].Reason != "BIOS" || time.Until(h.Maintenance["cmp1"].Until) < time.Hour || time.Since(h.Resumed) > time.Minute {
		t.Fatalf("holds %+v %v", h, err)
	}
	if out, _, code := haconf(t, "compute", "incidents", "-c", cfg); code != 0 || !strings.Contains(out, "no incidents") {
		t.Fatalf("incidents: exit %d %s", code, out)
	}
}

func TestPairCommandsRefuseAComputeOnlyConfig(t *testing.T) {
	cfg, _ := computeConfig(t)
	if _, errOut, code := haconf(t, "status", "-c", cfg); code != cli.ExitConfig || !strings.Contains(errOut, "compute failover only") {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if out, _, code := haconf(t, "config", "validate", "-c", cfg); code != 0 || !strings.Contains(out, "compute failover only: 2 compute hosts") {
		t.Fatalf("validate: exit %d %s", code, out)
	}
}

// TestComputeCommandsUseMariaDBWithThePair: with the pair the commands
// read and write the controller's state in MariaDB through the VIP, as the
// user of mysql.credentials_file (here a private server on 127.0.0.10).
func TestComputeCommandsUseMariaDBWithThePair(t *testing.T) {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	srv := testenv.StartMariaDB(t, "--skip-networking=0", "--bind-address=127.0.0.10", "--port="+strconv.Itoa(port))
	cnf := filepath.Join(t.TempDir(), "mysql.cnf")
	if err := os.WriteFile(cnf, []byte("[client]\nuser="+srv.User+"\npassword="+srv.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The example on loopback networks (the gateway to ping is not there).
	cfg := writeConfig(t, strings.NewReplacer("  ping_hosts: [192.0.2.1]\n", "", "192.0.2.", "127.0.0.", "198.51.100.", "127.0.1.",
		"credentials_file: /etc/haconf/mysql.cnf", "credentials_file: "+cnf, "  port: 3306\n", "  port: "+strconv.Itoa(port)+"\n",
	).Replace(string(config.Example())))

	if _, errOut, code := haconf(t, "compute", "status", "-c", cfg); code != cli.ExitFailure || !strings.Contains(errOut, "no compute controller has run with MariaDB database haconf") {
		t.Fatalf("without a controller: exit %d: %s", code, errOut)
	}
	if out, errOut, code := haconf(t, "compute", "maintenance", "cmp1", "on", "--reason", "BIOS", "-c", cfg); code != 0 {
		t.Fatalf("maintenance on: exit %d %s %s", code, out, errOut)
	}
	if _, errOut, code := haconf(t, "compute", "resume", "-c", cfg); code != 0 {
		t.Fatalf("resume: exit %d %s", code, errOut)
	}

	// The controller, on either node, finds them, and publishes.
	mc := mysql.NewConfig()
	mc.User, mc.Passwd, mc.Net, mc.Addr = srv.User, srv.Password, "unix", srv.Socket
	conn, err := mysql.NewConnector(mc)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx := context.Background()
	store := &compute.SQLStore{DB: db}
	h, err := store.Holds(ctx)
	if err != nil || h.Maintenance["cmp1"].Reason != "BIOS" || time.Since(h.Resumed) > time.Minute {
		t.Fatalf("holds %+v %v", h, err)
	}
	in := &compute.Incident{ID: "cmp2-20261206T100000", Host: "cmp2", State: compute.StateEvacuating, Opened: time.Now(), Updated: time.Now()}
	if err := store.Save(ctx, in); err != nil {
		t.Fatal(err)
	}
	up := compute.LinkView{Seen: true, Alive: true}
	st := compute.Status{At: time.Now(), Started: time.Now(), Controller: "ctl2", Hosts: []compute.HostStatus{
		{Name: "cmp1", Domain: "rack1", Condition: compute.Healthy, Links: map[gossip.Link]compute.LinkView{gossip.Management: up, gossip.Storage: up}, NovaCompute: true},
	}}
	if err := store.SaveStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := haconf(t, "compute", "status", "-c", cfg)
	if code != 2 || !strings.Contains(out, "controller ctl2") || !strings.Contains(out, "cmp2-20261206T100000 cmp2 evacuating") {
		t.Fatalf("status: exit %d\n%s%s", code, out, errOut)
	}
	out, _, code = haconf(t, "compute", "incidents", "-c", cfg, "-o", "json")
	var list struct {
		Schema    string              `json:"schema"`
		Incidents []*compute.Incident `json:"incidents"`
	}
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || list.Schema != "haconf.compute.incidents/v1" || len(list.Incidents) != 1 || list.Incidents[0].ID != "cmp2-20261206T100000" {
		t.Fatalf("incidents: exit %d, %v\n%s", code, err, out)
	}
}

// The gossip key and the Nova password are refused when group or others
// can read their files, and the gossip key file has its own default, never
// the corosync authkey.
func TestComputeSecretFiles(t *testing.T) {
	var c compute.Config
	c.SetDefaults()
	if c.Gossip.KeyFile != "/etc/haconf/gossip.key" {
		t.Errorf("default compute.gossip.key_file %q, want /etc/haconf/gossip.key", c.Gossip.KeyFile)
	}
	dir := t.TempDir()
	write := func(name string, b []byte, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
		return p
	}
	key := []byte("0123456789abcdef0123456789abcdef")
	c.Gossip.KeyFile = write("gossip.key", key, 0o400)
	if _, err := gossipKey(&c); err != nil {
		t.Errorf("gossip key 0400: %v", err)
	}
	c.Gossip.KeyFile = write("gossip-open.key", key, 0o644)
	if _, err := gossipKey(&c); err == nil || !strings.Contains(err.Error(), "readable by group or others (chmod 400 ") {
		t.Errorf("gossip key 0644: %v", err)
	}
	c.Gossip.KeyFile = filepath.Join(dir, "missing.key")
	if _, err := gossipKey(&c); err == nil || !strings.Contains(err.Error(), "compute.gossip.key_file") || !strings.Contains(err.Error(), "head -c 32 /dev/urandom") {
		t.Errorf("gossip key missing: %v", err)
	}
	c.Nova.PasswordFile = write("nova-password", []byte("nova-secret\n"), 0o640)
	_, err := novaClient(context.Background(), &c)
	if err == nil || !strings.Contains(err.Error(), "compute.nova.password_file") || !strings.Contains(err.Error(), "readable by group or others (chmod 600 ") || strings.Contains(err.Error(), "nova-secret") {
		t.Errorf("nova password 0640: %v", err)
	}
}
