package nova

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
)

// ServerGroup is a server group: its members must (affinity) or must not
// (anti-affinity) share a host, strictly or softly.
type ServerGroup struct {
	ID, Name  string
	ProjectID string
	Policies  []string // one of affinity, anti-affinity, soft-affinity, soft-anti-affinity
	Members   []string // server ids
}

// groupPageSize is how many server groups one call asks for. Nova caps it
// at its own max_limit (1000 by default) and pages by offset.
const groupPageSize = 1000

// ServerGroups lists the server groups of every project. Nova pages them
// by limit and offset without a next link, and may return fewer than
// asked for per page (its max_limit): pages are read until one is empty.
func (c *Client) ServerGroups(ctx context.Context) ([]ServerGroup, error) {
	var all []ServerGroup
	for offset := 0; ; {
		var out struct {
			Groups []struct {
				ID        string   `json:"id"`
				Name      string   `json:"name"`
				ProjectID string   `json:"project_id"`
				Policies  []string `json:"policies"`
				Members   []string `json:"members"`
			} `json:"server_groups"`
		}
		q := url.Values{"all_projects": {"True"}, "limit": {strconv.Itoa(groupPageSize)}, "offset": {strconv.Itoa(offset)}}
		u := c.compute.ServiceURL("os-server-groups") + "?" + q.Encode()
		if err := request(ctx, c.compute, "list server groups", http.MethodGet, u, nil, &out, http.StatusOK); err != nil {
			return nil, err
		}
		if len(out.Groups) == 0 {
			return all, nil
		}
		for _, g := range out.Groups {
			all = append(all, ServerGroup{ID: g.ID, Name: g.Name, ProjectID: g.ProjectID, Policies: g.Policies, Members: g.Members})
		}
		offset += len(out.Groups)
	}
}

// Aggregate is a host aggregate.
type Aggregate struct {
	Name             string
	UUID             string
	AvailabilityZone string // "" when the aggregate sets none
	Hosts            []string
	Metadata         map[string]string
}

// Aggregates lists the host aggregates (GET /os-aggregates, which does
// not page).
func (c *Client) Aggregates(ctx context.Context) ([]Aggregate, error) {
	var out struct {
		Aggregates []struct {
			Name     string            `json:"name"`
			UUID     string            `json:"uuid"`
			AZ       *string           `json:"availability_zone"`
			Hosts    []string          `json:"hosts"`
			Metadata map[string]string `json:"metadata"`
		} `json:"aggregates"`
	}
	if err := request(ctx, c.compute, "list aggregates", http.MethodGet, c.compute.ServiceURL("os-aggregates"), nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	aggs := make([]Aggregate, 0, len(out.Aggregates))
	for _, a := range out.Aggregates {
		agg := Aggregate{Name: a.Name, UUID: a.UUID, Hosts: a.Hosts, Metadata: a.Metadata}
		if a.AZ != nil {
			agg.AvailabilityZone = *a.AZ
		}
		aggs = append(aggs, agg)
	}
	return aggs, nil
}
