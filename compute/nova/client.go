package nova

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/utils"
)

// Microversions asked for; see the package comment for why these.
const (
	ComputeMicroversion   = "2.53"
	PlacementMicroversion = "1.14"
)

// Auth is how to log in: Keystone v3 password authentication, scoped to a
// project. The password is never logged: Auth's String, GoString and
// LogValue leave it out.
type Auth struct {
	AuthURL           string // Keystone, e.g. https://keystone.example:5000/v3 (with or without /v3)
	Username          string
	Password          string
	ProjectName       string
	UserDomainName    string // default "Default"
	ProjectDomainName string // default "Default"
	Region            string // empty: the catalog's only region
	Interface         string // "public", "internal" or "admin" endpoints; default "public"
}

// Interfaces are the endpoint interfaces Auth.Interface may name.
var Interfaces = []string{"public", "internal", "admin"}

func (a Auth) withDefaults() Auth {
	if a.UserDomainName == "" {
		a.UserDomainName = "Default"
	}
	if a.ProjectDomainName == "" {
		a.ProjectDomainName = "Default"
	}
	if a.Interface == "" {
		a.Interface = "public"
	}
	return a
}

// Validate reports every missing or wrong field at once.
func (a Auth) Validate() error {
	var errs []error
	for _, f := range []struct{ name, value string }{
		{"auth_url", a.AuthURL}, {"username", a.Username}, {"password", a.Password}, {"project_name", a.ProjectName},
	} {
		if f.value == "" {
			errs = append(errs, fmt.Errorf("%s: missing", f.name))
		}
	}
	switch a.Interface {
	case "", "public", "internal", "admin":
	default:
		errs = append(errs, fmt.Errorf("interface: %q: want one of %v", a.Interface, Interfaces))
	}
	return errors.Join(errs...)
}

// String describes a without its password.
func (a Auth) String() string {
	a = a.withDefaults()
	pw := ""
	if a.Password != "" {
		pw = "(set)"
	}
	return fmt.Sprintf("%s user %s@%s project %s@%s region %q interface %s password %s",
		a.AuthURL, a.Username, a.UserDomainName, a.ProjectName, a.ProjectDomainName, a.Region, a.Interface, pw)
}

// GoString is String, so that %#v does not print the password either.
func (a Auth) GoString() string { return "nova.Auth{" + a.String() + "}" }

// LogValue logs a without its password.
func (a Auth) LogValue() slog.Value {
	a = a.withDefaults()
	return slog.GroupValue(slog.String("auth_url", a.AuthURL), slog.String("username", a.Username),
		slog.String("project", a.ProjectName), slog.String("region", a.Region), slog.String("interface", a.Interface))
}

// Client talks to one cloud's Nova and Placement with one Keystone
// session. It is safe for concurrent use.
type Client struct {
	provider  *gophercloud.ProviderClient
	compute   *gophercloud.ServiceClient
	placement *gophercloud.ServiceClient
	// summaries is placement at SummariesMicroversion; nil when the
	// Placement is older.
	summaries *gophercloud.ServiceClient
}

// renewBefore is how long before its expiry a token is renewed, so that
// calls do not run into a 401 first.
const renewBefore = time.Minute

// New logs in once, finds the compute and placement endpoints in the
// catalog and checks that both APIs support the microversions asked for
// (their version documents). hc nil is DefaultHTTPClient(). The Client keeps the token,
// renews it before it expires and logs in again when an API answers 401
// (a revoked token, Keystone's keys rotated), then retries that call once.
func New(ctx context.Context, a Auth, hc *http.Client) (*Client, error) {
	if err := a.Validate(); err != nil {
		return nil, fmt.Errorf("openstack auth: %w", err)
	}
	a = a.withDefaults()
	if hc == nil {
		hc = DefaultHTTPClient()
	}
	provider, err := openstack.NewClient(a.AuthURL)
	if err != nil {
		return nil, fmt.Errorf("auth_url %q: %w", a.AuthURL, err)
	}
	provider.HTTPClient = *hc
	provider.UserAgent.Prepend("haconf")
	provider.ReauthBeforeTokenExpiration = renewBefore
	opts := gophercloud.AuthOptions{
		IdentityEndpoint: a.AuthURL,
		Username:         a.Username,
		Password:         a.Password,
		DomainName:       a.UserDomainName,
		AllowReauth:      true,
		Scope:            &gophercloud.AuthScope{ProjectName: a.ProjectName, DomainName: a.ProjectDomainName},
	}
	if err := openstack.AuthenticateV3(ctx, provider, &opts, gophercloud.EndpointOpts{}); err != nil {
		return nil, apiError("keystone login as "+a.Username, err)
	}
	eo := gophercloud.EndpointOpts{Region: a.Region, Availability: gophercloud.Availability(a.Interface)}
	compute, err := openstack.NewComputeV2(provider, eo)
	if err != nil {
		return nil, fmt.Errorf("compute endpoint (%s, region %q) in the catalog: %w", a.Interface, a.Region, err)
	}
	compute.Microversion = ComputeMicroversion
	placement, err := openstack.NewPlacementV1(provider, eo)
	if err != nil {
		return nil, fmt.Errorf("placement endpoint (%s, region %q) in the catalog: %w", a.Interface, a.Region, err)
	}
	placement.Microversion = PlacementMicroversion
	if _, err := checkMicroversion(ctx, compute); err != nil {
		return nil, err
	}
	pmv, err := checkMicroversion(ctx, placement)
	if err != nil {
		return nil, err
	}
	c := &Client{provider: provider, compute: compute, placement: placement}
	if ok, _ := pmv.IsSupported(SummariesMicroversion); ok {
		summaries := *placement
		summaries.Microversion = SummariesMicroversion
		c.summaries = &summaries
	}
	return c, nil
}

// checkMicroversion asks the API's version document whether it supports
// the microversion sc asks for, so that an API too old is told at once.
func checkMicroversion(ctx context.Context, sc *gophercloud.ServiceClient) (utils.SupportedMicroversions, error) {
	mv, err := utils.GetSupportedMicroversions(ctx, sc)
	if err != nil {
		return mv, apiError(fmt.Sprintf("%s API version at %s", sc.Type, sc.Endpoint), err)
	}
	ok, err := mv.IsSupported(sc.Microversion)
	if err != nil {
		return mv, fmt.Errorf("%s API version at %s: %w", sc.Type, sc.Endpoint, err)
	}
	if !ok {
		return mv, fmt.Errorf("%s API at %s supports microversions %d.%d to %d.%d; haconf needs %s",
			sc.Type, sc.Endpoint, mv.MinMajor, mv.MinMinor, mv.MaxMajor, mv.MaxMinor, sc.Microversion)
	}
	return mv, nil
}

// DefaultConcurrency is the number of calls at once DefaultHTTPClient
// keeps connections for.
const DefaultConcurrency = 64

// DefaultHTTPClient is the HTTP client New uses when given none:
// HTTPClient(DefaultConcurrency).
func DefaultHTTPClient() *http.Client { return HTTPClient(DefaultConcurrency) }

// HTTPClient is an HTTP client for a caller that makes up to concurrency
// calls at once: it keeps that many idle connections per endpoint (host
// and port: Keystone, Nova and Placement each), so that a connection is
// reused rather than closed after its call. With net/http's default of 2
// (haconf set 4), every call beyond those at once opened a connection and
// left it in TIME_WAIT: 1,118 connections for 109,422 calls in
// bench/compute-scale. Its overall timeout is long because Nova answers a
// disable of a compute service it still thinks up only after an RPC
// timeout (60 s by default); give calls a context with a deadline to
// bound them tighter.
func HTTPClient(concurrency int) *http.Client {
	concurrency = max(concurrency, 1)
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = 10 * time.Second
	t.ResponseHeaderTimeout = 90 * time.Second
	t.MaxIdleConnsPerHost = concurrency
	t.MaxIdleConns = 3 * concurrency // Keystone, Nova, Placement
	return &http.Client{Timeout: 2 * time.Minute, Transport: t}
}

// ComputeEndpoint and PlacementEndpoint are the endpoints New found in the
// catalog.
func (c *Client) ComputeEndpoint() string   { return c.compute.Endpoint }
func (c *Client) PlacementEndpoint() string { return c.placement.Endpoint }

// request sends one call and decodes a JSON answer into out (when not nil).
// ok lists the statuses that are success; none means gophercloud's
// defaults for the method.
func request(ctx context.Context, sc *gophercloud.ServiceClient, op, method, url string, body, out any, ok ...int) error {
	_, err := sc.Request(ctx, method, url, &gophercloud.RequestOpts{JSONBody: body, JSONResponse: out, OkCodes: ok})
	return apiError(op, err)
}
