package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestVersionStamped(t *testing.T) {
	defer func(v, c, d string) { version, commit, date = v, c, d }(version, commit, date)
	version, commit, date = "1.2.0", "0123456789ab", "2026-12-06T06:00:00Z"

	out, _, code := haconf(t, "version")
	if code != 0 || !strings.HasPrefix(out, "haconf 1.2.0\n") || !strings.Contains(out, "commit: 0123456789ab\n") || !strings.Contains(out, "2026-12-06T06:00:00Z") {
		t.Errorf("version: exit %d\n%s", code, out)
	}
	out, _, code = haconf(t, "version", "-o", "json")
	if !strings.HasPrefix(out, "{\n  \"schema\": \"haconf.version/v1\",\n") {
		t.Errorf("version -o json does not start with its schema:\n%s", out)
	}
	var v versionInfo
	if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil {
		t.Fatalf("version -o json: exit %d, %v\n%s", code, err, out)
	}
	if v.Version != "1.2.0" || v.Commit != "0123456789ab" || v.BuildDate != "2026-12-06T06:00:00Z" || !strings.HasPrefix(v.GoVersion, "go") {
		t.Errorf("version -o json: %+v", v)
	}
}
