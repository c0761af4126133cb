package nova

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/pagination"
)

// Flavor is a server's flavor as embedded in the server (microversion
// 2.47 and later): what it was booted with, even if the flavor was
// deleted or changed since.
type Flavor struct {
	Name       string // the flavor's name at boot (original_name)
	VCPUs      int
	RAM        int // MiB
	Disk       int // GiB, root disk
	Ephemeral  int // GiB
	Swap       int // MiB
	ExtraSpecs map[string]string
}

// Server is a server (instance) as an admin sees it.
type Server struct {
	ID, Name         string
	Status           string // ACTIVE, SHUTOFF, ERROR, REBUILD, ...
	TaskState        string // "" when no task runs (rebuilding, rebuild_spawning, ...)
	VMState          string // active, stopped, error, ...
	Host             string // the compute host it is on (OS-EXT-SRV-ATTR:host)
	HostStatus       string // that host's nova-compute: UP, DOWN, MAINTENANCE (disabled), UNKNOWN, or ""
	ProjectID        string
	AvailabilityZone string
	Flavor           Flavor
	Metadata         map[string]string
	Tags             []string
	ImageID          string // "" when booted from a volume
	Updated          time.Time
	Fault            string // for ERROR: the fault's message
}

// Stopped reports whether the server is shut off (status SHUTOFF). An
// evacuation keeps it so.
func (s Server) Stopped() bool { return s.Status == "SHUTOFF" }

// Settled reports how an evacuation away from host source ended, for a
// server read after Evacuate was accepted (Nova sets task_state
// "rebuilding" before it answers):
//
//   - done: status ACTIVE or SHUTOFF, no task_state, on a host other than
//     source. The server runs (or stays stopped, as it was) on its new host.
//   - failed: status ERROR (the scheduler found no host, or the rebuild
//     failed on the target; Fault says why), or the server is back to no
//     task on source without having moved.
//   - neither: the evacuation is still under way (a task_state is set).
func (s Server) Settled(source string) (done, failed bool) {
	switch {
	case s.Status == "ERROR":
		return false, true
	case s.TaskState != "":
		return false, false
	case s.Host == source:
		return false, true
	case s.Status == "ACTIVE" || s.Status == "SHUTOFF":
		return true, false
	}
	return false, false
}

type serverJSON struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Status    string  `json:"status"`
	TaskState *string `json:"OS-EXT-STS:task_state"`
	VMState   string  `json:"OS-EXT-STS:vm_state"`
	Host      *string `json:"OS-EXT-SRV-ATTR:host"`
	HostStat  string  `json:"host_status"`
	TenantID  string  `json:"tenant_id"`
	AZ        string  `json:"OS-EXT-AZ:availability_zone"`
	Flavor    struct {
		OriginalName string            `json:"original_name"`
		VCPUs        int               `json:"vcpus"`
		RAM          int               `json:"ram"`
		Disk         int               `json:"disk"`
		Ephemeral    int               `json:"ephemeral"`
		Swap         swapMiB           `json:"swap"`
		ExtraSpecs   map[string]string `json:"extra_specs"`
	} `json:"flavor"`
	Metadata map[string]string `json:"metadata"`
	Tags     []string          `json:"tags"`
	Image    json.RawMessage   `json:"image"` // {"id": ...}, or "" when booted from a volume
	Updated  string            `json:"updated"`
	Fault    *struct {
		Message string `json:"message"`
	} `json:"fault"`
}

// swapMiB is a flavor's swap: a number, or "" for none in flavors before
// microversion 2.75.
type swapMiB int

func (s *swapMiB) UnmarshalJSON(b []byte) error {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case float64:
		*s = swapMiB(v)
	case string:
		if v == "" {
			*s = 0
			return nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("swap %q: %w", v, err)
		}
		*s = swapMiB(n)
	case nil:
		*s = 0
	default:
		return fmt.Errorf("swap: unexpected %s", b)
	}
	return nil
}

func (j serverJSON) server() (Server, error) {
	s := Server{
		ID: j.ID, Name: j.Name, Status: j.Status, VMState: j.VMState, HostStatus: j.HostStat, ProjectID: j.TenantID, AvailabilityZone: j.AZ,
		Flavor: Flavor{Name: j.Flavor.OriginalName, VCPUs: j.Flavor.VCPUs, RAM: j.Flavor.RAM, Disk: j.Flavor.Disk,
			Ephemeral: j.Flavor.Ephemeral, Swap: int(j.Flavor.Swap), ExtraSpecs: j.Flavor.ExtraSpecs},
		Metadata: j.Metadata, Tags: j.Tags,
	}
	if j.TaskState != nil {
		s.TaskState = *j.TaskState
	}
	if j.Host != nil {
		s.Host = *j.Host
	}
	if j.Fault != nil {
		s.Fault = j.Fault.Message
	}
	var image struct {
		ID string `json:"id"`
	}
	if len(j.Image) > 0 && j.Image[0] == '{' {
		if err := json.Unmarshal(j.Image, &image); err != nil {
			return s, fmt.Errorf("server %s: image: %w", j.ID, err)
		}
		s.ImageID = image.ID
	}
	t, err := parseTime(j.Updated)
	if err != nil {
		return s, fmt.Errorf("server %s: updated: %w", j.ID, err)
	}
	s.Updated = t
	return s, nil
}

// serverPage is one page of GET /servers/detail; the next page's link is
// in servers_links.
type serverPage struct{ pagination.LinkedPageBase }

func (p serverPage) servers() ([]serverJSON, error) {
	var out []serverJSON
	err := p.ExtractIntoSlicePtr(&out, "servers")
	return out, err
}

func (p serverPage) NextPageURL() (string, error) {
	var links struct {
		Links []gophercloud.Link `json:"servers_links"`
	}
	if err := p.ExtractInto(&links); err != nil {
		return "", err
	}
	return gophercloud.ExtractNextURL(links.Links)
}

func (p serverPage) IsEmpty() (bool, error) {
	s, err := p.servers()
	return len(s) == 0, err
}

// ServersOnHost lists the servers of every project on host, every page of
// them. Deleted servers are left out (Nova's default), and so are
// soft-deleted ones (status SOFT_DELETED), which cannot be evacuated.
func (c *Client) ServersOnHost(ctx context.Context, host string) ([]Server, error) {
	op := "list servers on " + host
	if host == "" {
		return nil, fmt.Errorf("%s: no host", op)
	}
	u := c.compute.ServiceURL("servers", "detail") + "?" + url.Values{"all_tenants": {"1"}, "host": {host}}.Encode()
	pager := pagination.NewPager(c.compute, u, func(r pagination.PageResult) pagination.Page {
		return serverPage{pagination.LinkedPageBase{PageResult: r}}
	})
	var all []Server
	err := pager.EachPage(ctx, func(_ context.Context, p pagination.Page) (bool, error) {
		page, err := p.(serverPage).servers()
		if err != nil {
			return false, err
		}
		for _, j := range page {
			s, err := j.server()
			if err != nil {
				return false, err
			}
			if s.Status == "SOFT_DELETED" || s.Status == "DELETED" {
				continue
			}
			all = append(all, s)
		}
		return true, nil
	})
	if err != nil {
		return nil, apiError(op, err)
	}
	return all, nil
}

// Server reads one server. A server that does not exist (any more) is an
// error for which IsNotFound is true.
func (c *Client) Server(ctx context.Context, id string) (Server, error) {
	op := "get server " + id
	if id == "" {
		return Server{}, fmt.Errorf("%s: no server id", op)
	}
	var out struct {
		Server serverJSON `json:"server"`
	}
	if err := request(ctx, c.compute, op, http.MethodGet, c.compute.ServiceURL("servers", url.PathEscape(id)), nil, &out, http.StatusOK); err != nil {
		return Server{}, err
	}
	return out.Server.server()
}

// ErrServerBusy is Evacuate's refusal to evacuate a server that already
// has a task (an evacuation under way, most likely).
var ErrServerBusy = errors.New("server is busy with a task")

// Evacuate asks Nova to rebuild the server on another host: host, which
// the scheduler still checks (capacity, affinity), or, when host is "",
// one the scheduler picks. Nova accepts at once and works on; follow the
// server with Server and Settled. Nova refuses (400) while it thinks the
// server's host is up (IsServiceInUse), and answers 404 when the server or
// the target host is unknown.
//
// Nova does not refuse an evacuation of a server that is being evacuated:
// its evacuate checks no task_state, and the two rebuilds race (seen with
// Nova 26: the first ended in UnexpectedTaskStateError, the second left
// the server in REBUILD for good). So Evacuate reads the server first and
// returns ErrServerBusy, without asking Nova, when a task is set: a
// retried call after an answer that got lost cannot start a second one.
//
// The body is {"evacuate": {}} or {"evacuate": {"host": host}}: never
// onSharedStorage (refused from microversion 2.14 on) nor adminPass.
func (c *Client) Evacuate(ctx context.Context, serverID, host string) error {
	op := "evacuate server " + serverID
	if host != "" {
		op += " to " + host
	}
	if serverID == "" {
		return fmt.Errorf("%s: no server id", op)
	}
	s, err := c.Server(ctx, serverID)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if s.TaskState != "" {
		return fmt.Errorf("%s: %w: task_state %s (status %s on %s)", op, ErrServerBusy, s.TaskState, s.Status, s.Host)
	}
	body := map[string]any{}
	if host != "" {
		body["host"] = host
	}
	// Nova answers 200 with no body from 2.14 on; 202 would be as good.
	return request(ctx, c.compute, op, http.MethodPost, c.compute.ServiceURL("servers", url.PathEscape(serverID), "action"),
		map[string]any{"evacuate": body}, nil, http.StatusOK, http.StatusAccepted)
}

// Stop shuts the server off (os-stop). Nova answers 202 and stops it
// soon after; 409 when it is already stopped or busy with a task.
func (c *Client) Stop(ctx context.Context, serverID string) error {
	op := "stop server " + serverID
	if serverID == "" {
		return fmt.Errorf("%s: no server id", op)
	}
	return request(ctx, c.compute, op, http.MethodPost, c.compute.ServiceURL("servers", url.PathEscape(serverID), "action"),
		map[string]any{"os-stop": nil}, nil, http.StatusAccepted)
}
