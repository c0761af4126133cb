package compute

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/haconf/haconf/internal/atomicfile"
)

// Store keeps the controller's state: the incidents (each step and each
// instance's move, so a controller started elsewhere resumes them), the
// operator's holds, and the published status. With the controller pair it
// is the pair's MariaDB (SQLStore), which either controller node reaches
// through the VIP; without the pair, a directory (FileStore).
type Store interface {
	// Save writes the incident whole, replacing its previous version.
	Save(ctx context.Context, in *Incident) error
	// Incidents returns every incident, oldest first.
	Incidents(ctx context.Context) ([]*Incident, error)
	// Holds reads the operator's holds.
	Holds(ctx context.Context) (Holds, error)
	// UpdateHolds changes the holds with f; two updates at once never
	// lose each other's change.
	UpdateHolds(ctx context.Context, f func(*Holds)) error
	// SaveStatus publishes the controller's status.
	SaveStatus(ctx context.Context, st Status) error
	// Status reads the last published status, with every incident. It
	// returns an error wrapping ErrNoStatus when no controller published
	// one.
	Status(ctx context.Context) (*Status, error)
}

// ErrNoStatus: no controller has published its status in the store.
var ErrNoStatus = errors.New("no compute controller has run")

// FileStore keeps the state as JSON files in Dir (incidents/<id>.json,
// holds.json, status.json, controller.json). It serves a controller
// without the pair's database (a plain controller, the compute lab); one
// controller writes it at a time.
type FileStore struct {
	Dir string
	mu  sync.Mutex

	statusMu   sync.Mutex
	lastStatus []byte // status.json as this store last wrote it, its "at" zero
}

func (s *FileStore) incidentsDir() string { return filepath.Join(s.Dir, "incidents") }
func (s *FileStore) holdsFile() string    { return filepath.Join(s.Dir, "holds.json") }
func (s *FileStore) statusFile() string   { return filepath.Join(s.Dir, "status.json") }
func (s *FileStore) beatFile() string     { return filepath.Join(s.Dir, "controller.json") }

// beat is controller.json: the controller's name, start and last round,
// written every round (status.json only when the rest changed).
type beat struct {
	Controller string    `json:"controller"`
	Started    time.Time `json:"started"`
	At         time.Time `json:"at"`
}

// Save writes the incident atomically.
func (s *FileStore) Save(_ context.Context, in *Incident) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, err := json.MarshalIndent(in, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.incidentsDir(), 0o750); err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(s.incidentsDir(), in.ID+".json"), append(data, '\n'), 0o640)
}

// Incidents returns every stored incident, oldest first.
func (s *FileStore) Incidents(context.Context) ([]*Incident, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ents, err := os.ReadDir(s.incidentsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []*Incident
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		p := filepath.Join(s.incidentsDir(), e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var in Incident
		if err := json.Unmarshal(data, &in); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, &in)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Opened.Before(out[b].Opened) })
	return out, nil
}

// Holds reads the operator's holds.
func (s *FileStore) Holds(context.Context) (Holds, error) {
	var h Holds
	data, err := os.ReadFile(s.holdsFile())
	if errors.Is(err, fs.ErrNotExist) {
		return h, nil
	}
	if err != nil {
		return h, err
	}
	if err := json.Unmarshal(data, &h); err != nil {
		return h, fmt.Errorf("%s: %w", s.holdsFile(), err)
	}
	return h, nil
}

// UpdateHolds changes the holds with f and writes them atomically. Only
// updates through this FileStore are serialized, not those of another
// process.
func (s *FileStore) UpdateHolds(ctx context.Context, f func(*Holds)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, err := s.Holds(ctx)
	if err != nil {
		return err
	}
	f(&h)
	data, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(s.Dir, 0o750); err != nil {
		return err
	}
	return atomicfile.Write(s.holdsFile(), append(data, '\n'), 0o640)
}

// SaveStatus publishes st: controller.json (who, since when, this
// round's time) every round, status.json (incidents included) only when
// its content changed, the time aside. At 1,000 hosts status.json is
// about 1 MB; it was rewritten and fsynced every second
// (bench/compute-scale). Both are written atomically.
func (s *FileStore) SaveStatus(_ context.Context, st Status) error {
	s.statusMu.Lock()
	defer s.statusMu.Unlock()
	if err := os.MkdirAll(s.Dir, 0o750); err != nil {
		return err
	}
	at := st.At
	st.At = time.Time{}
	same, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if !bytes.Equal(same, s.lastStatus) {
		st.At = at
		data, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			return err
		}
		if err := atomicfile.Write(s.statusFile(), append(data, '\n'), 0o640); err != nil {
			s.lastStatus = nil
			return err
		}
		s.lastStatus = same
	}
	data, err := json.Marshal(beat{Controller: st.Controller, Started: st.Started, At: at})
	if err != nil {
		return err
	}
	return atomicfile.Write(s.beatFile(), append(data, '\n'), 0o640)
}

// Status reads status.json, with the last round's time from
// controller.json.
func (s *FileStore) Status(context.Context) (*Status, error) {
	data, err := os.ReadFile(s.statusFile())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w with state_dir %s here", ErrNoStatus, s.Dir)
	}
	if err != nil {
		return nil, err
	}
	var st Status
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", s.statusFile(), err)
	}
	// The last round is in controller.json (none before this was
	// written: status.json's time is the last round then).
	data, err = os.ReadFile(s.beatFile())
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		var b beat
		if err := json.Unmarshal(data, &b); err != nil {
			return nil, fmt.Errorf("%s: %w", s.beatFile(), err)
		}
		if b.At.After(st.At) {
			st.At, st.Controller, st.Started = b.At, b.Controller, b.Started
		}
	}
	return &st, nil
}
