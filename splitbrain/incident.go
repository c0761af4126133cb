package splitbrain

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/haconf/haconf/internal/atomicfile"
)

// Incident results.
const (
	ResultDetected = "detected" // the split-brain handler ran
	ResultReported = "reported" // manual policy: nothing changed
	ResultRefused  = "refused"  // no safe decision: nothing changed
	ResultResolved = "resolved"
	ResultFailed   = "failed"
)

// Incident is the record of one split brain as one node saw and handled it.
type Incident struct {
	ID       string    `json:"id"`
	Resource string    `json:"resource"`
	Node     string    `json:"node"` // the node that wrote this record
	Role     string    `json:"role"` // handler, actor, peer
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Result   string    `json:"result"`
	Error    string    `json:"error,omitempty"`

	Victim    string          `json:"victim,omitempty"`
	Survivor  string          `json:"survivor,omitempty"`
	Preserved *Preserved      `json:"preserved,omitempty"`
	Evidence  *Evidence       `json:"evidence,omitempty"`
	Decision  *Decision       `json:"decision,omitempty"`
	Plan      []Step          `json:"plan,omitempty"`
	Timeline  []TimelineEntry `json:"timeline"`
	// Handler is the environment the split-brain handler was called with.
	Handler map[string]string `json:"handler,omitempty"`
}

// TimelineEntry is one thing that happened during an incident.
type TimelineEntry struct {
	Time   time.Time `json:"time"`
	Node   string    `json:"node"`
	What   string    `json:"what"`
	Argv   []string  `json:"argv,omitempty"`
	Output string    `json:"output,omitempty"`
	Err    string    `json:"error,omitempty"`
}

// IncidentStore keeps incident records as JSON files in a directory
// (one file per incident and node, written atomically).
type IncidentStore struct {
	Dir string
}

// IncidentID names an incident from its start time and resource.
func IncidentID(t time.Time, resource string) string {
	return t.UTC().Format("20060102T150405Z") + "-" + resource
}

// Save writes inc and returns the file's path.
func (s *IncidentStore) Save(inc *Incident) (string, error) {
	data, err := json.MarshalIndent(inc, "", "  ")
	if err != nil {
		return "", err
	}
	name := inc.ID + "-" + inc.Node + "-" + inc.Role + ".json"
	path := filepath.Join(s.Dir, name)
	if err := os.MkdirAll(s.Dir, 0o750); err != nil {
		return "", fmt.Errorf("incident dir: %w", err)
	}
	if err := atomicfile.Write(path, append(data, '\n'), 0o640); err != nil {
		return "", fmt.Errorf("write incident: %w", err)
	}
	return path, nil
}

// List returns every incident, oldest first. A missing directory is an
// empty list; an unreadable record is an error.
func (s *IncidentStore) List() ([]Incident, error) {
	entries, err := os.ReadDir(s.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Incident
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(s.Dir, e.Name()))
		if err != nil {
			return nil, err
		}
		var inc Incident
		if err := json.Unmarshal(data, &inc); err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		out = append(out, inc)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Started.Before(out[j].Started) })
	return out, nil
}

// LastDetected returns when the split-brain handler last ran on node for
// resource, or the zero time when it never ran or when this node recorded
// the split brain as resolved or reported after that: a handled split
// brain is not evidence about the next one.
func (s *IncidentStore) LastDetected(resource, node string) time.Time {
	list, err := s.List()
	if err != nil {
		return time.Time{}
	}
	var last, handled time.Time
	for _, inc := range list {
		if inc.Resource != resource || inc.Node != node {
			continue
		}
		switch inc.Result {
		case ResultDetected:
			if inc.Started.After(last) {
				last = inc.Started
			}
		case ResultResolved, ResultReported:
			if inc.Started.After(handled) {
				handled = inc.Started
			}
		}
	}
	if !handled.Before(last) {
		return time.Time{}
	}
	return last
}

// RecordHandler records that DRBD's split-brain handler ran on node with
// the given environment (DRBD_RESOURCE, DRBD_MINOR, ...).
func (s *IncidentStore) RecordHandler(node string, env map[string]string, now time.Time) (*Incident, string, error) {
	res := env["DRBD_RESOURCE"]
	if res == "" {
		return nil, "", fmt.Errorf("split-brain handler: DRBD_RESOURCE is not set (run by DRBD's split-brain handler)")
	}
	inc := &Incident{ID: IncidentID(now, res), Resource: res, Node: node, Role: "handler", Started: now, Finished: now,
		Result: ResultDetected, Handler: env,
		Timeline: []TimelineEntry{{Time: now, Node: node, What: "DRBD split-brain handler ran"}}}
	path, err := s.Save(inc)
	return inc, path, err
}
