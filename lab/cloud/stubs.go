package cloud

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// The Neutron and Glance stand-ins. Servers in the lab boot with
// networks "none" (compute microversion >= 2.37), so Nova never creates a
// port, but it still lists a server's ports when it boots, heals its info
// cache and evacuates it; and it reads one image from the image API when
// it boots a server. These stand-ins answer exactly that, and nothing
// checks tokens.

// NeutronHandler answers the network API: version discovery, every
// collection GET an empty list, anything else 404.
func NeutronHandler(log *slog.Logger) http.Handler {
	collection := regexp.MustCompile(`^/v2\.0/([a-z_-]+?)(\.json)?$`)
	return logRequests(log, "neutron", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimRight(r.URL.Path, "/")
		switch {
		case r.Method == http.MethodGet && (p == "" || p == "/v2.0"):
			writeJSON(w, http.StatusOK, map[string]any{"versions": []any{map[string]any{
				"id": "v2.0", "status": "CURRENT",
				"links": []any{map[string]string{"rel": "self", "href": "http://" + r.Host + "/v2.0/"}}}}})
		case r.Method == http.MethodGet && collection.MatchString(p):
			name := collection.FindStringSubmatch(p)[1]
			writeJSON(w, http.StatusOK, map[string]any{strings.ReplaceAll(name, "-", "_"): []any{}})
		default:
			writeJSON(w, http.StatusNotFound, map[string]any{"NeutronError": map[string]string{
				"type": "NotFound", "message": "the lab's network stand-in has no " + r.Method + " " + p, "detail": ""}})
		}
	}))
}

// image is the Glance v2 representation of the one image.
func image() map[string]any {
	return map[string]any{
		"id": ImageID, "name": ImageName, "status": "active", "visibility": "public",
		"disk_format": "raw", "container_format": "bare", "size": 1024, "virtual_size": 1024,
		"min_ram": 0, "min_disk": 0, "protected": false, "os_hidden": false, "tags": []string{},
		"checksum": "0f343b0931126a20f133d67c2b018a3b", "owner": nil,
		"created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
		"self": "/v2/images/" + ImageID, "file": "/v2/images/" + ImageID + "/file", "schema": "/v2/schemas/image",
	}
}

// GlanceHandler answers the image API: version discovery, the image schema
// (permissive: glanceclient's warlock checks only what it names), the image
// list (filtered by name and id) and the one image.
func GlanceHandler(log *slog.Logger) http.Handler {
	return logRequests(log, "glance", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimRight(r.URL.Path, "/")
		if r.Method != http.MethodGet {
			writeJSON(w, http.StatusForbidden, map[string]string{"message": "the lab's image stand-in is read-only"})
			return
		}
		switch {
		case p == "" || p == "/versions" || p == "/v2":
			code := http.StatusOK
			if p == "" {
				code = http.StatusMultipleChoices
			}
			writeJSON(w, code, map[string]any{"versions": []any{map[string]any{
				"id": "v2.9", "status": "CURRENT",
				"links": []any{map[string]string{"rel": "self", "href": "http://" + r.Host + "/v2/"}}}}})
		case p == "/v2/schemas/image":
			writeJSON(w, http.StatusOK, map[string]any{"name": "image", "additionalProperties": true,
				"properties": map[string]any{"id": map[string]string{"type": "string"},
					"name": map[string]any{"type": []string{"null", "string"}}, "status": map[string]string{"type": "string"}}})
		case p == "/v2/images":
			q := r.URL.Query()
			images := []any{}
			if (q.Get("name") == "" || q.Get("name") == ImageName) && (q.Get("id") == "" || q.Get("id") == ImageID) {
				images = append(images, image())
			}
			writeJSON(w, http.StatusOK, map[string]any{"images": images, "first": "/v2/images", "schema": "/v2/schemas/images"})
		case p == "/v2/images/"+ImageID:
			writeJSON(w, http.StatusOK, image())
		default:
			writeJSON(w, http.StatusNotFound, map[string]string{"message": "no image at " + p})
		}
	}))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func logRequests(log *slog.Logger, api string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		log.Debug("request", "api", api, "method", r.Method, "path", r.URL.RequestURI())
		h.ServeHTTP(w, r)
	})
}

// ServeStubs serves the Neutron and Glance stand-ins on the control
// address until ctx ends (haconf-lab compute stubs).
func ServeStubs(ctx context.Context, log *slog.Logger) error {
	servers := []*http.Server{
		{Addr: net.JoinHostPort(ControlAddr.String(), fmt.Sprint(NeutronPort)), Handler: NeutronHandler(log), ReadHeaderTimeout: 10 * time.Second},
		{Addr: net.JoinHostPort(ControlAddr.String(), fmt.Sprint(GlancePort)), Handler: GlanceHandler(log), ReadHeaderTimeout: 10 * time.Second},
	}
	errc := make(chan error, len(servers))
	for _, s := range servers {
		l, err := net.Listen("tcp", s.Addr)
		if err != nil {
			for _, s := range servers {
				s.Close()
			}
			return err
		}
		log.Info("serving", "addr", s.Addr)
		go func() { errc <- s.Serve(l) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	for _, s := range servers {
		s.Close()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}
