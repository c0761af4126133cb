package nova

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Service is a nova-compute service as Nova reports it.
type Service struct {
	ID             string // a UUID (microversion 2.53)
	Host           string
	Zone           string // availability zone
	Status         string // "enabled" or "disabled"
	State          string // "up" or "down": forced down, or no heartbeat for service_down_time
	DisabledReason string
	ForcedDown     bool
	UpdatedAt      time.Time // the last heartbeat (UTC); zero if never
}

// Up reports whether Nova considers the service up.
func (s Service) Up() bool { return s.State == "up" }

// Enabled reports whether the scheduler may place servers on the host.
func (s Service) Enabled() bool { return s.Status == "enabled" }

type serviceJSON struct {
	ID             string  `json:"id"`
	Binary         string  `json:"binary"`
	Host           string  `json:"host"`
	Zone           string  `json:"zone"`
	Status         string  `json:"status"`
	State          string  `json:"state"`
	DisabledReason *string `json:"disabled_reason"`
	ForcedDown     bool    `json:"forced_down"`
	UpdatedAt      *string `json:"updated_at"`
}

func (j serviceJSON) service() (Service, error) {
	s := Service{ID: j.ID, Host: j.Host, Zone: j.Zone, Status: j.Status, State: j.State, ForcedDown: j.ForcedDown}
	if j.DisabledReason != nil {
		s.DisabledReason = *j.DisabledReason
	}
	if j.UpdatedAt != nil {
		t, err := parseTime(*j.UpdatedAt)
		if err != nil {
			return s, fmt.Errorf("service %s (%s): updated_at: %w", j.ID, j.Host, err)
		}
		s.UpdatedAt = t
	}
	return s, nil
}

// ComputeServices lists the nova-compute services (GET /os-services,
// which does not page).
func (c *Client) ComputeServices(ctx context.Context) ([]Service, error) {
	var out struct {
		Services []serviceJSON `json:"services"`
	}
	u := c.compute.ServiceURL("os-services") + "?" + url.Values{"binary": {"nova-compute"}}.Encode()
	if err := request(ctx, c.compute, "list compute services", http.MethodGet, u, nil, &out, http.StatusOK); err != nil {
		return nil, err
	}
	services := make([]Service, 0, len(out.Services))
	for _, j := range out.Services {
		if j.Binary != "" && j.Binary != "nova-compute" {
			continue
		}
		s, err := j.service()
		if err != nil {
			return nil, err
		}
		services = append(services, s)
	}
	return services, nil
}

// ForceDown sets or clears the service's forced_down flag: true makes Nova
// treat the host as down at once (evacuations allowed), as a fencing agent
// does once the host is off. Nova refuses false while evacuations from the
// host are not cleaned up by its restarted nova-compute (IsForceUpRefused).
//
// The body always carries the flag: gophercloud's services.UpdateOpts
// leaves it out when false.
func (c *Client) ForceDown(ctx context.Context, serviceID string, down bool) error {
	return c.updateService(ctx, fmt.Sprintf("force service %s down=%t", serviceID, down), serviceID, map[string]any{"forced_down": down})
}

// Disable disables the service, so that the scheduler places nothing
// there, with reason (may be empty; cut to the 255 characters Nova takes).
// Force the service down first: for a host it still thinks up, Nova asks
// the dead host over RPC and answers only after the RPC timeout (60 s).
func (c *Client) Disable(ctx context.Context, serviceID, reason string) error {
	body := map[string]any{"status": "disabled"}
	if r := []rune(reason); len(r) > maxReason {
		reason = string(r[:maxReason])
	}
	if reason != "" {
		body["disabled_reason"] = reason
	}
	return c.updateService(ctx, "disable service "+serviceID, serviceID, body)
}

// Enable enables the service again (and clears its disabled reason).
func (c *Client) Enable(ctx context.Context, serviceID string) error {
	return c.updateService(ctx, "enable service "+serviceID, serviceID, map[string]any{"status": "enabled"})
}

// maxReason is the longest disabled_reason Nova takes (its schema's maxLength).
const maxReason = 255

// updateService is PUT /os-services/{id} (microversion 2.53 and later).
func (c *Client) updateService(ctx context.Context, op, id string, body map[string]any) error {
	if id == "" {
		return fmt.Errorf("%s: no service id", op)
	}
	return request(ctx, c.compute, op, http.MethodPut, c.compute.ServiceURL("os-services", url.PathEscape(id)), body, nil, http.StatusOK)
}

// parseTime reads the API's times: RFC 3339 (servers: 2026-12-06T09:31:02Z)
// or without a zone, in UTC (services: 2026-12-06T09:31:02.000000).
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	return time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC)
}
