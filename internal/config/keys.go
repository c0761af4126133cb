package config

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/haconf/haconf/internal/validate"
)

var (
	typeOfConfig   = reflect.TypeOf(Config{})
	typeOfDuration = reflect.TypeOf(time.Duration(0))
)

// keyIndex is what checkKeys learns of the file: the line of every key
// path, and for every line the values that start on it with the Go type
// each must decode to, to name the key of a decoder's type error (which
// gives a line only).
type keyIndex struct {
	lines  map[string]int
	values map[int][]valueAt
}

// valueAt is the value of key in the file, and the type it decodes to.
type valueAt struct {
	key  string
	typ  reflect.Type
	node *yaml.Node
}

func newKeyIndex() *keyIndex {
	return &keyIndex{lines: map[string]int{}, values: map[int][]valueAt{}}
}

func (x *keyIndex) add(key string, line int, t reflect.Type, val *yaml.Node) {
	x.lines[key] = line
	x.values[val.Line] = append(x.values[val.Line], valueAt{key: key, typ: t, node: val})
}

// checkKeys walks the YAML tree against the Go type and reports every key
// the type does not have. It records every key path it sees in x.
func checkKeys(n *yaml.Node, t reflect.Type, path string, x *keyIndex) []error {
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
			ft, ok := fields[k.Value]
			if !ok {
				x.lines[key] = k.Line
				msg := "unknown key"
				if s := suggest(k.Value, fields); s != "" {
					msg += fmt.Sprintf(" (did you mean %s?)", s)
				}
				errs = append(errs, &validate.Error{Key: key, Msg: msg, Line: k.Line})
				continue
			}
			x.add(key, k.Line, ft, val)
			errs = append(errs, checkKeys(val, ft, key, x)...)
		}
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		for i, e := range n.Content {
			key := path + validate.Index(i)
			x.add(key, e.Line, t.Elem(), e)
			errs = append(errs, checkKeys(e, t.Elem(), key, x)...)
		}
	case t.Kind() == reflect.Map:
		if n.Kind != yaml.MappingNode {
			return nil
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := join(path, n.Content[i].Value)
			x.add(key, n.Content[i].Line, t.Elem(), n.Content[i+1])
			errs = append(errs, checkKeys(n.Content[i+1], t.Elem(), key, x)...)
		}
	}
	return errs
}

// dropDuplicateKeys reports every key a mapping repeats, at the repeat's
// line, and removes the repeats from the tree. The decoder would refuse
// the whole mapping instead, leaving every key in it unset, and each
// would then be reported as required too.
func dropDuplicateKeys(n *yaml.Node, path string) []error {
	var errs []error
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			errs = append(errs, dropDuplicateKeys(c, path)...)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			errs = append(errs, dropDuplicateKeys(c, path+validate.Index(i))...)
		}
	case yaml.MappingNode:
		first := map[string]int{}
		var kept []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key := join(path, k.Value)
			if line, dup := first[k.Value]; dup && k.Kind == yaml.ScalarNode {
				errs = append(errs, &validate.Error{Key: key, Line: k.Line, Msg: fmt.Sprintf("is already set at line %d: keep one of the two", line)})
				continue
			}
			first[k.Value] = k.Line
			kept = append(kept, k, val)
			errs = append(errs, dropDuplicateKeys(val, key)...)
		}
		n.Content = kept
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

var typeErrMsg = regexp.MustCompile("^line ([0-9]+): cannot unmarshal !!([a-z]+)(?: `(.*)`)? into (.+)$")

// typeErrors turns the decoder's type errors into validate.Errors naming
// the key, the type its value must have and, when the example file sets
// the key, an example: "drbd.port: "seventy": must be a whole number,
// e.g. 7789" rather than "cannot unmarshal !!str `seventy` into int".
func (x *keyIndex) typeErrors(err error) []error {
	te, ok := err.(*yaml.TypeError)
	if !ok {
		return []error{&validate.Error{Key: "(document)", Msg: err.Error()}}
	}
	var out []error
	for _, m := range te.Errors {
		sm := typeErrMsg.FindStringSubmatch(m)
		if sm == nil {
			out = append(out, &validate.Error{Key: "(value)", Msg: m})
			continue
		}
		line, _ := strconv.Atoi(sm[1])
		e := &validate.Error{Key: "(value)", Line: line, Msg: "must be " + goTypeName(sm[4])}
		if v, ok := x.valueFor(line, sm[2], sm[3], sm[4]); ok {
			e.Key, e.Msg = v.key, "must be "+expected(v.typ)
			if v.node.Kind == yaml.ScalarNode {
				e.Value = v.node.Value
			}
			if ex := exampleOf(v.key); ex != "" {
				e.Msg += ", e.g. " + ex
			}
		}
		out = append(out, e)
	}
	return out
}

// valueFor finds the value a type error on line is about: the one there
// whose YAML tag (seq, map, str ...), value as the decoder quotes it and
// Go type match the message; several values share a line in a flow
// mapping such as {ip: 192.0.2.201, username: admin}.
func (x *keyIndex) valueFor(line int, tag, quoted, goType string) (valueAt, bool) {
	for _, v := range x.values[line] {
		t := v.typ
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		n := v.node
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		}
		var same bool
		switch tag {
		case "seq":
			same = n.Kind == yaml.SequenceNode
		case "map":
			same = n.Kind == yaml.MappingNode
		default:
			same = n.Kind == yaml.ScalarNode && decoderQuote(n.Value) == quoted
		}
		if same && t.String() == goType {
			return v, true
		}
	}
	return valueAt{}, false
}

// decoderQuote is a value as yaml.v3 shows it in a type error.
func decoderQuote(v string) string {
	if len(v) > 10 {
		return v[:7] + "..."
	}
	return v
}

// expected says what a value of type t looks like in YAML.
func expected(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == typeOfDuration:
		return "a duration such as 500ms, 30s, 5m or 1h30m"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.String:
		return "a single value (a string)"
	case t.Kind() == reflect.Slice:
		return "a list (- item lines, or [a, b])"
	}
	return "a mapping (key: value lines)"
}

// goTypeName is expected for a type the index does not know, by its name
// in the decoder's message.
func goTypeName(name string) string {
	switch {
	case name == "time.Duration":
		return expected(typeOfDuration)
	case name == "bool":
		return "true or false"
	case strings.HasPrefix(name, "int") || strings.HasPrefix(name, "uint"):
		return "a whole number"
	case strings.HasPrefix(name, "float"):
		return "a number"
	case name == "string":
		return "a single value (a string)"
	case strings.HasPrefix(name, "[]"):
		return "a list"
	}
	return "a mapping (key: value lines)"
}

var listIndex = regexp.MustCompile(`\[[0-9]+\]`)

// exampleOf is key's value in the example file (haconf config example),
// written as in YAML, when it is a scalar or a short list of scalars.
// Lists are matched on their first element: nodes[1].port -> nodes[0].port.
func exampleOf(key string) string {
	v, ok := exampleValues()[listIndex.ReplaceAllString(key, "[0]")]
	if !ok {
		return ""
	}
	switch v.Kind {
	case yaml.ScalarNode:
		return v.Value
	case yaml.SequenceNode:
		var items []string
		for _, e := range v.Content {
			if e.Kind != yaml.ScalarNode {
				return ""
			}
			items = append(items, e.Value)
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	return ""
}

// exampleValues indexes the example file's values by key path.
var exampleValues = sync.OnceValue(func() map[string]*yaml.Node {
	out := map[string]*yaml.Node{}
	var root yaml.Node
	if yaml.Unmarshal(Example(), &root) != nil || len(root.Content) == 0 {
		return out
	}
	x := newKeyIndex()
	checkKeys(root.Content[0], typeOfConfig, "", x)
	for _, vs := range x.values {
		for _, v := range vs {
			out[v.key] = v.node
		}
	}
	return out
})
