package compute

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FileStore writes status.json only when the status changed, the time
// aside (about 1 MB at 1,000 hosts, every round); the time of each round
// is in controller.json, and Status reads it from there.
func TestFileStoreStatusOnlyWhenChanged(t *testing.T) {
	ctx := context.Background()
	s := &FileStore{Dir: t.TempDir()}
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	st := Status{At: t0, Started: t0, Controller: "lab", Hosts: []HostStatus{{Name: "cmp1", Domain: "default", Condition: Healthy}}}
	if err := s.SaveStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(filepath.Join(s.Dir, "status.json"))
	if err != nil {
		t.Fatal(err)
	}
	st.At = t0.Add(time.Second)
	if err := s.SaveStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(filepath.Join(s.Dir, "status.json")); string(again) != string(first) {
		t.Errorf("status.json rewritten when only the time changed")
	}
	got, err := s.Status(ctx)
	if err != nil || !got.At.Equal(st.At) || got.Controller != "lab" || len(got.Hosts) != 1 {
		t.Fatalf("Status: %+v, %v; want the second round's time", got, err)
	}

	st.At, st.Hosts[0].Condition = t0.Add(2*time.Second), Failed
	if err := s.SaveStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	got, err = s.Status(ctx)
	if err != nil || !got.At.Equal(st.At) || got.Hosts[0].Condition != Failed {
		t.Fatalf("Status after a change: %+v, %v", got, err)
	}

	// A store started anew (the next controller) writes it again.
	s2 := &FileStore{Dir: s.Dir}
	st.At = t0.Add(3 * time.Second)
	if err := s2.SaveStatus(ctx, st); err != nil {
		t.Fatal(err)
	}
	if got, err := s2.Status(ctx); err != nil || !got.At.Equal(st.At) {
		t.Fatalf("Status from a new store: %+v, %v", got, err)
	}
}
