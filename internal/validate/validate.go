// Package validate collects configuration problems, each naming the key, the
// bad value and what is wrong, so that every problem is reported at once.
package validate

import (
	"errors"
	"fmt"
	"strings"
)

// Error is one configuration problem.
type Error struct {
	Key   string // dotted key path, e.g. "nodes[1].management"
	Value string // the offending value as written ("" when missing)
	Msg   string
	Line  int // 1-based line in the config file, 0 when unknown
	File  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	} else if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	b.WriteString(e.Key)
	if e.Value != "" {
		fmt.Fprintf(&b, ": %q", e.Value)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	return b.String()
}

// List accumulates problems.
type List struct {
	prefix string
	errs   *[]error
}

// New returns an empty list whose keys are prefixed with prefix (e.g. "drbd").
func New(prefix string) *List {
	return &List{prefix: prefix, errs: new([]error)}
}

// Sub returns a list that adds to l with keys under key.
func (l *List) Sub(key string) *List {
	return &List{prefix: l.join(key), errs: l.errs}
}

func (l *List) join(key string) string {
	switch {
	case l.prefix == "":
		return key
	case key == "":
		return l.prefix
	case strings.HasPrefix(key, "["):
		return l.prefix + key
	}
	return l.prefix + "." + key
}

// Addf records a problem with key (relative to the list's prefix) and value.
func (l *List) Addf(key string, value any, format string, args ...any) {
	v := ""
	if value != nil {
		v = fmt.Sprint(value)
	}
	*l.errs = append(*l.errs, &Error{Key: l.join(key), Value: v, Msg: fmt.Sprintf(format, args...)})
}

// Err returns all problems joined, or nil.
func (l *List) Err() error { return errors.Join(*l.errs...) }

// Errors returns the problems recorded so far.
func (l *List) Errors() []error { return *l.errs }

// Flatten returns the individual errors inside err (joined errors are unpacked).
func Flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Flatten(e)...)
		}
		return out
	}
	return []error{err}
}

// Index returns the key for element i of a list ("[i]").
func Index(i int) string { return fmt.Sprintf("[%d]", i) }
