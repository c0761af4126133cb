package workload

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/haconf/haconf/internal/testenv"
)

func TestVerify(t *testing.T) {
	r := Result{RunID: "r1", Confirmed: []uint64{1, 2, 3, 5}, Unconfirmed: []uint64{4, 6}}
	ids := func(pairs ...any) Drained {
		d := Drained{IDs: map[string]int{}}
		for i := 0; i < len(pairs); i += 2 {
			d.IDs[pairs[i].(string)] += pairs[i+1].(int)
			d.Messages += pairs[i+1].(int)
		}
		return d
	}
	for _, tc := range []struct {
		name string
		d    Drained
		want Verification
	}{
		{"all there", ids("r1-1", 1, "r1-2", 1, "r1-3", 1, "r1-5", 1), Verification{Confirmed: 4}},
		{"in doubt kept, foreign", ids("r1-1", 1, "r1-2", 1, "r1-3", 1, "r1-5", 1, "r1-4", 1, "r0-1", 1, "", 2),
			Verification{Confirmed: 4, InDoubtKept: 1, Foreign: 3}},
		{"lost and duplicated", ids("r1-1", 2, "r1-3", 1), Verification{Confirmed: 4, Missing: []uint64{2, 5}, Duplicated: []uint64{1}}},
		{"empty queue", ids(), Verification{Confirmed: 4, Missing: []uint64{1, 2, 3, 5}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Verify(r, tc.d)
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if (got.Err() == nil) != (len(tc.want.Missing) == 0) {
				t.Fatalf("Err() = %v", got.Err())
			}
		})
	}
	if err := Verify(r, ids()).Err(); err == nil || err.Error() != "4 of 4 confirmed messages missing: [1 2 3 5]" {
		t.Fatalf("Err() = %v", err)
	}
}

// The password reaches the broker in the SASL exchange only.
func TestEndpointHidesPassword(t *testing.T) {
	const pw = "s3cret-Pa55word?#@"
	closed, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	e := Endpoint{Addrs: []string{net.JoinHostPort("127.0.0.1", fmt.Sprint(closed))}, User: "u", Password: pw, DialTimeout: 200 * time.Millisecond}
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	log.Info("endpoint", "endpoint", e)
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("endpoint", "endpoint", e)
	_, _, derr := e.Dial(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	p := &Publisher{Endpoint: e, Queue: "q", Log: log, RetryInterval: 50 * time.Millisecond}
	_, _ = p.Run(ctx)
	_, drainErr := Drain(context.Background(), e, "q")
	for what, s := range map[string]string{
		"%v": fmt.Sprintf("%v", e), "%+v": fmt.Sprintf("%+v", e), "%#v": fmt.Sprintf("%#v", e), "publisher %+v": fmt.Sprintf("%+v", p),
		"log": logged.String(), "dial error": fmt.Sprint(derr), "drain error": fmt.Sprint(drainErr),
	} {
		if strings.Contains(s, pw) || strings.Contains(s, "Pa55word") {
			t.Errorf("%s shows the password: %s", what, s)
		}
	}
	if got := fmt.Sprintf("%#v", e); !strings.HasPrefix(got, "workload.Endpoint{Addrs:") || !strings.Contains(got, `Password:"REDACTED"`) {
		t.Errorf("%%#v = %s", got)
	}
	if derr == nil || !strings.Contains(derr.Error(), "connection refused") {
		t.Errorf("dial error = %v", derr)
	}
}
