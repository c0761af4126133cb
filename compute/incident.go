package compute

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// State is where an incident is.
type State string

// Incident states, in order. An incident ends Done (every instance moved
// or left as the policy says), Partial (some could not be moved: see
// their errors), or Cancelled (the host came back before it was fenced).
const (
	StateHeld        State = "held"         // a guard holds it until haconf compute resume
	StateFencing     State = "fencing"      // powering the host off
	StateFenceFailed State = "fence-failed" // the fence failed; retried with backoff, nothing moves
	StateFenced      State = "fenced"       // confirmed off
	StateIsolated    State = "isolated"     // nova-compute forced down and disabled
	StateEvacuating  State = "evacuating"
	StateDone        State = "done"
	StatePartial     State = "partial"
	StateCancelled   State = "cancelled"
)

// Closed reports whether the incident has ended.
func (s State) Closed() bool { return s == StateDone || s == StatePartial || s == StateCancelled }

// Step is one recorded action of an incident.
type Step struct {
	At     time.Time     `json:"at"`
	Name   string        `json:"name"`
	Took   time.Duration `json:"took,omitempty"`
	Error  string        `json:"error,omitempty"`
	Detail string        `json:"detail,omitempty"`
}

// EvacState is where one instance is.
type EvacState string

// Instance states.
const (
	EvacPending    EvacState = "pending"
	EvacRunning    EvacState = "evacuating"
	EvacDone       EvacState = "done"
	EvacFailed     EvacState = "failed"
	EvacSkipped    EvacState = "skipped" // not evacuable by the policy
	EvacNoCapacity EvacState = "no-capacity"
)

// Instance is one server of the failed host and its move.
type Instance struct {
	ID         string    `json:"id"`
	Name       string    `json:"name,omitempty"`
	WasStatus  string    `json:"was_status"` // ACTIVE, SHUTOFF ... before the failure
	State      EvacState `json:"state"`
	Target     string    `json:"target,omitempty"`
	Tried      []string  `json:"tried,omitempty"` // targets that refused or failed it
	Attempts   int       `json:"attempts"`
	Error      string    `json:"error,omitempty"`
	Note       string    `json:"note,omitempty"` // what haconf did beyond the move
	Started    time.Time `json:"started,omitzero"`
	Finished   time.Time `json:"finished,omitzero"`
	FinalHost  string    `json:"final_host,omitempty"`
	FinalState string    `json:"final_status,omitempty"`
}

// Incident is one host failure and everything haconf did about it.
type Incident struct {
	ID       string    `json:"id"`
	Host     string    `json:"host"`
	Domain   string    `json:"domain"`
	State    State     `json:"state"`
	FailedAt time.Time `json:"failed_at"` // when its second link died
	Opened   time.Time `json:"opened"`
	Updated  time.Time `json:"updated"`
	Closed   time.Time `json:"closed,omitzero"`
	Hold     string    `json:"hold,omitempty"`
	// FenceAttempts and NextFence pace retries of a failed fence.
	FenceAttempts int        `json:"fence_attempts"`
	NextFence     time.Time  `json:"next_fence,omitzero"`
	ServiceID     string     `json:"service_id,omitempty"`
	Instances     []Instance `json:"instances,omitempty"`
	Steps         []Step     `json:"steps"`
	// Recovered is when the host, back and healthy, was given back to
	// Nova (forced_down lifted, enabled); zero while it is not.
	Recovered time.Time `json:"recovered,omitzero"`
}

// clone is a deep copy of in.
func (in *Incident) clone() *Incident {
	out := *in
	out.Steps = slices.Clone(in.Steps)
	out.Instances = slices.Clone(in.Instances)
	for i := range out.Instances {
		out.Instances[i].Tried = slices.Clone(in.Instances[i].Tried)
	}
	return &out
}

// Record appends a step.
func (in *Incident) Record(at time.Time, name string, took time.Duration, err error, detail string) {
	s := Step{At: at, Name: name, Took: took, Detail: detail}
	if err != nil {
		s.Error = err.Error()
	}
	in.Steps = append(in.Steps, s)
	in.Updated = at
}

// Summary is one line about the incident.
func (in *Incident) Summary() string {
	counts := map[EvacState]int{}
	for _, i := range in.Instances {
		counts[i.State]++
	}
	var parts []string
	for _, s := range []EvacState{EvacDone, EvacRunning, EvacPending, EvacFailed, EvacNoCapacity, EvacSkipped} {
		if counts[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[s], s))
		}
	}
	s := fmt.Sprintf("%s %s %s", in.ID, in.Host, in.State)
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, ", ")
	}
	if in.Hold != "" {
		s += " (" + in.Hold + ")"
	}
	return s
}

// Holds is what the operator said: hosts in maintenance (until a time)
// and the last resume.
type Holds struct {
	Maintenance map[string]Maintenance `json:"maintenance,omitempty"`
	Resumed     time.Time              `json:"resumed,omitzero"`
}

// Maintenance takes a host out of haconf's hands until Until.
type Maintenance struct {
	Until  time.Time `json:"until"`
	Reason string    `json:"reason,omitempty"`
}
