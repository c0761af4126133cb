package cloud

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// api is a small client of the cloud's own APIs (Keystone, Nova,
// Placement), for setting the cloud up and reporting its state. Tests and
// users talk to the cloud with gophercloud or the openstack CLI.
type api struct {
	http    *http.Client
	token   string
	project string // the admin project's id
}

// ComputeMicroversion is the compute API microversion the lab speaks.
const ComputeMicroversion = "2.53"

func keystoneURL() string  { return fmt.Sprintf("http://%s:%d/v3", ControlAddr, KeystonePort) }
func novaURL() string      { return fmt.Sprintf("http://%s:%d/v2.1", ControlAddr, NovaPort) }
func placementURL() string { return fmt.Sprintf("http://%s:%d", ControlAddr, PlacementPort) }

// HTTPError is an API's answer other than the expected ones.
type HTTPError struct {
	Method, URL string
	Status      int
	Body        string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, e.Body)
}

// HTTPClient is a client for the cloud's APIs. Its connections start from
// ControlAddr, so that when the lab's management bridge is gone (the
// address with it) a request fails at once instead of leaving the machine
// by its default route. uwsgi closes each connection after its answer, so
// none is kept for reuse.
func HTTPClient() *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: ControlAddr.AsSlice()}}
	return &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// login gets a token for user admin, scoped to project admin.
func login(ctx context.Context, password string) (*api, error) {
	a := &api{http: HTTPClient()}
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"}, "password": map[string]any{
			"user": map[string]any{"name": "admin", "domain": map[string]string{"name": "Default"}, "password": password}}},
		"scope": map[string]any{"project": map[string]any{"name": "admin", "domain": map[string]string{"name": "Default"}}},
	}}
	var out struct {
		Token struct {
			Project struct {
				ID string `json:"id"`
			} `json:"project"`
		} `json:"token"`
	}
	h, err := a.call(ctx, http.MethodPost, keystoneURL()+"/auth/tokens", "", body, &out)
	if err != nil {
		return nil, fmt.Errorf("keystone login: %w", err)
	}
	a.token, a.project = h.Get("X-Subject-Token"), out.Token.Project.ID
	return a, nil
}

// call sends body (JSON, when not nil) and decodes a 2xx answer into out
// (when not nil). mv is the compute microversion to ask for, if any.
func (a *api) call(ctx context.Context, method, u, mv string, body, out any) (http.Header, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("X-Auth-Token", a.token)
	}
	if mv != "" {
		req.Header.Set("OpenStack-API-Version", "compute "+mv)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		if len(b) > 500 {
			b = b[:500]
		}
		return nil, &HTTPError{Method: method, URL: u, Status: resp.StatusCode, Body: string(b)}
	}
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("%s %s: decode answer: %w", method, u, err)
		}
	}
	return resp.Header, nil
}

// catalogEntry is one service of the catalog and its URL.
type catalogEntry struct {
	User, Type, URL string
}

// catalog is every service the cloud registers in Keystone, each with a
// service user of the same name in project service.
func catalog() []catalogEntry {
	base := func(port int) string { return fmt.Sprintf("http://%s:%d", ControlAddr, port) }
	return []catalogEntry{
		{"nova", "compute", base(NovaPort) + "/v2.1"},
		{"placement", "placement", base(PlacementPort)},
		{"glance", "image", base(GlancePort)},
		{"neutron", "network", base(NeutronPort)},
		{"masakari", "instance-ha", base(MasakariPort) + "/v1/%(tenant_id)s"},
	}
}

// setupKeystone creates project service, the service users (admin there)
// and the catalog. What exists is left as it is.
func (a *api) setupKeystone(ctx context.Context, servicePassword string) error {
	ks := keystoneURL()
	var projects struct {
		Projects []struct{ ID string } `json:"projects"`
	}
	if _, err := a.call(ctx, http.MethodGet, ks+"/projects?name=service", "", nil, &projects); err != nil {
		return err
	}
	var project string
	if len(projects.Projects) > 0 {
		project = projects.Projects[0].ID
	} else {
		var p struct{ Project struct{ ID string } }
		if _, err := a.call(ctx, http.MethodPost, ks+"/projects", "", map[string]any{"project": map[string]any{"name": "service", "domain_id": "default"}}, &p); err != nil {
			return err
		}
		project = p.Project.ID
	}
	var roles struct{ Roles []struct{ ID string } }
	if _, err := a.call(ctx, http.MethodGet, ks+"/roles?name=admin", "", nil, &roles); err != nil {
		return err
	}
	if len(roles.Roles) == 0 {
		return fmt.Errorf("keystone has no admin role (was it bootstrapped?)")
	}
	for _, e := range catalog() {
		var users struct{ Users []struct{ ID string } }
		if _, err := a.call(ctx, http.MethodGet, ks+"/users?name="+e.User, "", nil, &users); err != nil {
			return err
		}
		var user string
		if len(users.Users) > 0 {
			user = users.Users[0].ID
		} else {
			var u struct{ User struct{ ID string } }
			if _, err := a.call(ctx, http.MethodPost, ks+"/users", "", map[string]any{"user": map[string]any{
				"name": e.User, "password": servicePassword, "domain_id": "default", "default_project_id": project}}, &u); err != nil {
				return err
			}
			user = u.User.ID
		}
		if _, err := a.call(ctx, http.MethodPut, fmt.Sprintf("%s/projects/%s/users/%s/roles/%s", ks, project, user, roles.Roles[0].ID), "", nil, nil); err != nil {
			return err
		}
		var svcs struct{ Services []struct{ ID string } }
		if _, err := a.call(ctx, http.MethodGet, ks+"/services?type="+e.Type, "", nil, &svcs); err != nil {
			return err
		}
		var svc string
		if len(svcs.Services) > 0 {
			svc = svcs.Services[0].ID
		} else {
			var s struct{ Service struct{ ID string } }
			if _, err := a.call(ctx, http.MethodPost, ks+"/services", "", map[string]any{"service": map[string]any{"name": e.User, "type": e.Type}}, &s); err != nil {
				return err
			}
			svc = s.Service.ID
		}
		var eps struct{ Endpoints []struct{ ID string } }
		if _, err := a.call(ctx, http.MethodGet, ks+"/endpoints?service_id="+url.QueryEscape(svc), "", nil, &eps); err != nil {
			return err
		}
		if len(eps.Endpoints) > 0 {
			continue
		}
		for _, iface := range []string{"public", "internal", "admin"} {
			if _, err := a.call(ctx, http.MethodPost, ks+"/endpoints", "", map[string]any{"endpoint": map[string]any{
				"service_id": svc, "url": e.URL, "interface": iface, "region_id": Region}}, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// ComputeService is a nova-compute service as the compute API reports it.
type ComputeService struct {
	ID         string `json:"id"`
	Host       string `json:"host"`
	State      string `json:"state"`  // up or down
	Status     string `json:"status"` // enabled or disabled
	ForcedDown bool   `json:"forced_down"`
}

func (a *api) computeServices(ctx context.Context) ([]ComputeService, error) {
	var out struct {
		Services []ComputeService `json:"services"`
	}
	_, err := a.call(ctx, http.MethodGet, novaURL()+"/os-services?binary=nova-compute", ComputeMicroversion, nil, &out)
	return out.Services, err
}

// setForcedDown sets a compute service's forced_down flag. Nova refuses
// false while the host has evacuations its nova-compute has not cleaned up.
func (a *api) setForcedDown(ctx context.Context, id string, down bool) error {
	_, err := a.call(ctx, http.MethodPut, novaURL()+"/os-services/"+id, ComputeMicroversion, map[string]any{"forced_down": down}, nil)
	return err
}

// setupFlavor creates the lab flavor and lifts the admin project's quota so
// that dozens of servers fit.
func (a *api) setupFlavor(ctx context.Context) error {
	var fl struct {
		Flavors []struct{ Name string } `json:"flavors"`
	}
	if _, err := a.call(ctx, http.MethodGet, novaURL()+"/flavors", ComputeMicroversion, nil, &fl); err != nil {
		return err
	}
	found := false
	for _, f := range fl.Flavors {
		found = found || f.Name == FlavorName
	}
	if !found {
		if _, err := a.call(ctx, http.MethodPost, novaURL()+"/flavors", ComputeMicroversion, map[string]any{"flavor": map[string]any{
			"name": FlavorName, "vcpus": FlavorCPUs, "ram": FlavorRAM, "disk": FlavorDisk}}, nil); err != nil {
			return err
		}
	}
	_, err := a.call(ctx, http.MethodPut, novaURL()+"/os-quota-sets/"+a.project, "2.1", map[string]any{"quota_set": map[string]any{
		"instances": 500, "cores": 1000, "ram": 1024000}}, nil)
	return err
}

// resourceProviders lists placement's resource provider names.
func (a *api) resourceProviders(ctx context.Context) ([]string, error) {
	var out struct {
		RPs []struct{ Name string } `json:"resource_providers"`
	}
	if _, err := a.call(ctx, http.MethodGet, placementURL()+"/resource_providers", "", nil, &out); err != nil {
		return nil, err
	}
	var names []string
	for _, r := range out.RPs {
		names = append(names, r.Name)
	}
	return names, nil
}

// answers reports whether something answers HTTP at u (any status).
func answers(ctx context.Context, u string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false
	}
	resp, err := HTTPClient().Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}
