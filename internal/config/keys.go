package config

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/haconf/haconf/internal/validate"
)

var (
	typeOfConfig   = reflect.TypeOf(Config{})
	typeOfDuration = reflect.TypeOf(time.Duration(0))
)

// checkKeys walks the YAML tree against the Go type and reports every key
// the type does not have. It records the line of every key path it sees.
func checkKeys(n *yaml.Node, t reflect.Type, path string, lines map[string]int) []error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	var errs []error
	switch {
	case t.Kind() == reflect.Struct && t != typeOfDuration:
		if n.Kind != yaml.MappingNode {
			return nil // the decoder reports the type error
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key := join(path, k.Value)
			lines[key] = k.Line
			ft, ok := fields[k.Value]
			if !ok {
				msg := "unknown key"
				if s := suggest(k.Value, fields); s != "" {
					msg += fmt.Sprintf(" (did you mean %s?)", s)
				}
				errs = append(errs, &validate.Error{Key: key, Msg: msg, Line: k.Line})
				continue
			}
			errs = append(errs, checkKeys(val, ft, key, lines)...)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, e := range n.Content {
			key := path + validate.Index(i)
			lines[key] = e.Line
			errs = append(errs, checkKeys(e, t.Elem(), key, lines)...)
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := join(path, n.Content[i].Value)
			lines[key] = n.Content[i].Line
			errs = append(errs, checkKeys(n.Content[i+1], t.Elem(), key, lines)...)
		}
	}
	return errs
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
		if tag == "-" || !f.IsExported() {
			continue
		}
		if tag == "" {
			tag = strings.ToLower(f.Name)
		}
		out[tag] = f.Type
	}
	return out
}

// suggest returns the known key closest to k, if it is close.
func suggest(k string, fields map[string]reflect.Type) string {
	best, bestD := "", 3
	for f := range fields {
		if d := distance(k, f); d < bestD {
			best, bestD = f, d
		}
	}
	return best
}

func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

var typeErrLine = regexp.MustCompile(`^line ([0-9]+): (.*)$`)

// typeErrors turns the decoder's type errors into validate.Errors with lines.
func typeErrors(err error) []error {
	te, ok := err.(*yaml.TypeError)
	if !ok {
		return []error{&validate.Error{Key: "(document)", Msg: err.Error()}}
	}
	var out []error
	for _, m := range te.Errors {
		e := &validate.Error{Key: "(value)", Msg: m}
		if sm := typeErrLine.FindStringSubmatch(m); sm != nil {
			e.Line, _ = strconv.Atoi(sm[1])
			e.Msg = sm[2]
		}
		out = append(out, e)
	}
	return out
}
