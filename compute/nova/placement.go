package nova

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"sync"
)

// Inventory is one resource class of a provider (VCPU, MEMORY_MB, DISK_GB, ...).
type Inventory struct {
	Total, Reserved, MinUnit, MaxUnit, StepSize int
	AllocationRatio                             float64
}

// Capacity is what the scheduler may allocate in all: (Total - Reserved) x
// AllocationRatio, floored as Placement itself computes it; 0 if Reserved
// exceeds Total.
func (inv Inventory) Capacity() int {
	c := int(math.Floor(float64(inv.Total-inv.Reserved) * inv.AllocationRatio))
	return max(c, 0)
}

// Provider is a Placement resource provider: a compute node (named after
// its hypervisor host, cmp1), or a provider nested under one (RootUUID is
// then the compute node's).
type Provider struct {
	UUID, Name string
	ParentUUID string // "" for a root provider
	RootUUID   string
	// Capacity is what the scheduler may allocate of each resource class
	// in all (Inventory.Capacity), Usages what allocations use of it.
	Capacity map[string]int
	Usages   map[string]int
	// Inventories are the provider's inventories as Placement keeps them;
	// only read from a Placement older than SummariesMicroversion.
	Inventories map[string]Inventory
}

// Free is what is left of resource class rc: Capacity minus usage; 0 if
// the provider has none of it.
func (p Provider) Free(rc string) int {
	c, ok := p.Capacity[rc]
	if !ok {
		return 0
	}
	return c - p.Usages[rc]
}

// SummariesMicroversion is the Placement microversion Providers asks
// GET /allocation_candidates for: provider_summaries carry each
// provider's capacity and usage of every resource class from 1.27 on (of
// the requested classes only before), and its parent and root from 1.29.
const SummariesMicroversion = "1.29"

// providerConcurrency is how many providers' inventories and usages are
// read at once from a Placement older than SummariesMicroversion: 2
// calls per provider add up on a large cloud.
const providerConcurrency = 4

// Providers lists the resource providers with their capacity and usage.
// Two calls: GET /resource_providers (names, parents), then GET
// /allocation_candidates?resources=VCPU:1 at SummariesMicroversion, whose
// provider_summaries give every provider's capacity and usage at once. A
// provider tree without one VCPU free is not a candidate and is left out:
// it can take no instance. Against a Placement older than
// SummariesMicroversion (before Train), each provider's inventories and
// usages are read instead (2 calls per provider; 2,000 calls and 22 s at
// 1,000 hosts in bench/compute-scale). A provider deleted meanwhile is
// left out.
func (c *Client) Providers(ctx context.Context) ([]Provider, error) {
	var out struct {
		Providers []struct {
			UUID       string  `json:"uuid"`
			Name       string  `json:"name"`
			ParentUUID *string `json:"parent_provider_uuid"`
			RootUUID   string  `json:"root_provider_uuid"`
		} `json:"resource_providers"`
	}
	if err := request(ctx, c.placement, "list resource providers", http.MethodGet, c.placement.ServiceURL("resource_providers"), nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	providers := make([]Provider, len(out.Providers))
	for i, rp := range out.Providers {
		providers[i] = Provider{UUID: rp.UUID, Name: rp.Name, RootUUID: rp.RootUUID}
		if rp.ParentUUID != nil {
			providers[i].ParentUUID = *rp.ParentUUID
		}
	}
	if c.summaries != nil {
		return c.fromSummaries(ctx, providers)
	}
	return c.readProviders(ctx, providers)
}

// fromSummaries fills providers' capacity and usage from one
// GET /allocation_candidates and keeps those it reports.
func (c *Client) fromSummaries(ctx context.Context, providers []Provider) ([]Provider, error) {
	var out struct {
		Summaries map[string]struct {
			Resources map[string]struct {
				Capacity int `json:"capacity"`
				Used     int `json:"used"`
			} `json:"resources"`
		} `json:"provider_summaries"`
	}
	u := c.summaries.ServiceURL("allocation_candidates") + "?" + url.Values{"resources": {"VCPU:1"}}.Encode()
	if err := request(ctx, c.summaries, "allocation candidates (capacity and usage of every provider)", http.MethodGet, u, nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	var kept []Provider
	for _, p := range providers {
		s, ok := out.Summaries[p.UUID]
		if !ok {
			continue
		}
		p.Capacity, p.Usages = make(map[string]int, len(s.Resources)), make(map[string]int, len(s.Resources))
		for rc, r := range s.Resources {
			p.Capacity[rc], p.Usages[rc] = r.Capacity, r.Used
		}
		kept = append(kept, p)
	}
	return kept, nil
}

// readProviders reads each provider's inventories and usages.
func (c *Client) readProviders(ctx context.Context, providers []Provider) ([]Provider, error) {
	gone := make([]bool, len(providers))
	errs := make([]error, len(providers))
	sem := make(chan struct{}, providerConcurrency)
	var wg sync.WaitGroup
	for i := range providers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			err := c.readProvider(ctx, &providers[i])
			gone[i], errs[i] = IsNotFound(err), err
		}()
	}
	wg.Wait()
	var kept []Provider
	for i, p := range providers {
		switch {
		case gone[i]:
		case errs[i] != nil:
			return nil, errs[i]
		default:
			kept = append(kept, p)
		}
	}
	return kept, nil
}

// readProvider fills p's inventories and usages.
func (c *Client) readProvider(ctx context.Context, p *Provider) error {
	base := c.placement.ServiceURL("resource_providers", url.PathEscape(p.UUID))
	var inv struct {
		Inventories map[string]struct {
			Total           int     `json:"total"`
			Reserved        int     `json:"reserved"`
			MinUnit         int     `json:"min_unit"`
			MaxUnit         int     `json:"max_unit"`
			StepSize        int     `json:"step_size"`
			AllocationRatio float64 `json:"allocation_ratio"`
		} `json:"inventories"`
	}
	if err := request(ctx, c.placement, "inventories of resource provider "+p.Name, http.MethodGet, base+"/inventories", nil, &inv, http.StatusOK); err != nil {
		return err
	}
	p.Inventories = make(map[string]Inventory, len(inv.Inventories))
	p.Capacity = make(map[string]int, len(inv.Inventories))
	for rc, i := range inv.Inventories {
		p.Inventories[rc] = Inventory{Total: i.Total, Reserved: i.Reserved, MinUnit: i.MinUnit, MaxUnit: i.MaxUnit, StepSize: i.StepSize, AllocationRatio: i.AllocationRatio}
		p.Capacity[rc] = p.Inventories[rc].Capacity()
	}
	var use struct {
		Usages map[string]int `json:"usages"`
	}
	if err := request(ctx, c.placement, "usages of resource provider "+p.Name, http.MethodGet, base+"/usages", nil, &use, http.StatusOK); err != nil {
		return err
	}
	p.Usages = use.Usages
	if p.Usages == nil {
		p.Usages = map[string]int{}
	}
	return nil
}
