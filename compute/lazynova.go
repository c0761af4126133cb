package compute

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/haconf/haconf/compute/nova"
)

// LazyNova is a Nova that logs in on first use and again after a failed
// login, at most once per Retry: a controller that starts while Keystone
// or Nova is down still judges hosts and fences them (nothing of which
// needs Nova), and its incidents wait, open and visible, until Nova
// answers.
type LazyNova struct {
	Connect func(ctx context.Context) (Nova, error)
	Retry   time.Duration // 5 s when 0

	mu      sync.Mutex
	client  Nova
	lastTry time.Time
	lastErr error
}

func (l *LazyNova) get(ctx context.Context) (Nova, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.client != nil {
		return l.client, nil
	}
	retry := l.Retry
	if retry == 0 {
		retry = 5 * time.Second
	}
	if l.lastErr != nil && time.Since(l.lastTry) < retry {
		return nil, l.lastErr
	}
	l.lastTry = time.Now()
	c, err := l.Connect(ctx)
	if err != nil {
		// Retryable: the callers back off and try again.
		l.lastErr = &nova.Error{Op: "log in to Keystone", Status: 503, Message: fmt.Sprintf("not logged in yet: %v", err)}
		return nil, l.lastErr
	}
	l.client, l.lastErr = c, nil
	return c, nil
}

func (l *LazyNova) ComputeServices(ctx context.Context) ([]nova.Service, error) {
	c, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return c.ComputeServices(ctx)
}

func (l *LazyNova) ForceDown(ctx context.Context, id string, down bool) error {
	c, err := l.get(ctx)
	if err != nil {
		return err
	}
	return c.ForceDown(ctx, id, down)
}

func (l *LazyNova) Disable(ctx context.Context, id, reason string) error {
	c, err := l.get(ctx)
	if err != nil {
		return err
	}
	return c.Disable(ctx, id, reason)
}

func (l *LazyNova) Enable(ctx context.Context, id string) error {
	c, err := l.get(ctx)
	if err != nil {
		return err
	}
	return c.Enable(ctx, id)
}

func (l *LazyNova) ServersOnHost(ctx context.Context, host string) ([]nova.Server, error) {
	c, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return c.ServersOnHost(ctx, host)
}

func (l *LazyNova) Server(ctx context.Context, id string) (nova.Server, error) {
	c, err := l.get(ctx)
	if err != nil {
		return nova.Server{}, err
	}
	return c.Server(ctx, id)
}

func (l *LazyNova) Evacuate(ctx context.Context, id, host string) error {
	c, err := l.get(ctx)
	if err != nil {
		return err
	}
	return c.Evacuate(ctx, id, host)
}

func (l *LazyNova) Stop(ctx context.Context, id string) error {
	c, err := l.get(ctx)
	if err != nil {
		return err
	}
	return c.Stop(ctx, id)
}

func (l *LazyNova) ServerGroups(ctx context.Context) ([]nova.ServerGroup, error) {
	c, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return c.ServerGroups(ctx)
}

func (l *LazyNova) Providers(ctx context.Context) ([]nova.Provider, error) {
	c, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return c.Providers(ctx)
}
