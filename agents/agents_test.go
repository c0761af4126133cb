package agents

import (
	"bytes"
	"context"
	"encoding/xml"
	"io"
	"log/slog"
	"testing"

	"github.com/haconf/haconf/pacemaker"
)

func ocfEnv(kv map[string]string) pacemaker.OCFEnv {
	return pacemaker.OCFEnv{Getenv: func(k string) string { return kv[k] }}
}

// metaDataDoc is what the tests read of an agent's meta-data.
type metaDataDoc struct {
	Name   string `xml:"name,attr"`
	Params []struct {
		Name     string `xml:"name,attr"`
		Required int    `xml:"required,attr"`
	} `xml:"parameters>parameter"`
	Actions []struct {
		Name     string `xml:"name,attr"`
		Timeout  string `xml:"timeout,attr"`
		Interval string `xml:"interval,attr"`
	} `xml:"actions>action"`
}

// metaData runs a's meta-data action as Pacemaker does and parses it.
func metaData(t *testing.T, a pacemaker.Agent, env pacemaker.OCFEnv) metaDataDoc {
	t.Helper()
	var out bytes.Buffer
	if c := pacemaker.RunAgent(context.Background(), a, "meta-data", env, &out, io.Discard, slog.New(slog.DiscardHandler)); c != 0 {
		t.Fatalf("meta-data: exit %d", c)
	}
	var md metaDataDoc
	if err := xml.Unmarshal(out.Bytes(), &md); err != nil {
		t.Fatalf("meta-data: %v\n%s", err, out.String())
	}
	return md
}
