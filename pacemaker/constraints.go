package pacemaker

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
	"time"
)

// Location is one rsc_location constraint of the CIB (cibadmin --query
// --scope constraints), in the forms crm_resource writes: a node and a
// score as attributes, or a rule on #uname with an optional lifetime
// (crm_resource --move/--ban --lifetime, --promoted).
type Location struct {
	ID       string `json:"id"`
	Resource string `json:"resource"`
	// Role is Promoted, Unpromoted or Started when the constraint (or its
	// rule) is limited to a role; "" otherwise.
	Role string `json:"role,omitempty"`
	// Node is set when the constraint names one node (node attribute, or
	// a rule with #uname eq NODE); "" for other rules.
	Node  string `json:"node,omitempty"`
	Score string `json:"score"`
	// Expires is the end of the lifetime (a date_expression lt END in the
	// rule); zero when the constraint never expires.
	Expires time.Time `json:"expires,omitzero"`
}

// CLI reports whether crm_resource --move or --ban created l (ids
// cli-prefer-RSC and cli-ban-RSC-on-NODE); crm_resource --clear removes
// these.
func (l Location) CLI() bool {
	return strings.HasPrefix(l.ID, "cli-prefer-") || strings.HasPrefix(l.ID, "cli-ban-")
}

// Expired reports whether l has a lifetime that ended before now: the
// constraint is still in the CIB but has no effect.
func (l Location) Expired(now time.Time) bool {
	return !l.Expires.IsZero() && !now.Before(l.Expires)
}

type xmlLocation struct {
	ID    string    `xml:"id,attr"`
	Rsc   string    `xml:"rsc,attr"`
	Role  string    `xml:"role,attr"`
	Node  string    `xml:"node,attr"`
	Score string    `xml:"score,attr"`
	Rules []xmlRule `xml:"rule"`
}

type xmlRule struct {
	ID          string `xml:"id,attr"`
	Role        string `xml:"role,attr"`
	Score       string `xml:"score,attr"`
	BooleanOp   string `xml:"boolean-op,attr"`
	Expressions []struct {
		Attribute string `xml:"attribute,attr"`
		Operation string `xml:"operation,attr"`
		Value     string `xml:"value,attr"`
	} `xml:"expression"`
	Dates []xmlDate `xml:"date_expression"`
}

type xmlDate struct {
	ID        string `xml:"id,attr"`
	Operation string `xml:"operation,attr"`
	Start     string `xml:"start,attr"`
	End       string `xml:"end,attr"`
}

// ParseLocations returns every rsc_location in doc (the constraints
// section, a configuration or a whole CIB).
func ParseLocations(doc []byte) ([]Location, error) {
	var out []Location
	err := eachElement(doc, "rsc_location", func(dec *xml.Decoder, start xml.StartElement) error {
		var x xmlLocation
		if err := dec.DecodeElement(&x, &start); err != nil {
			return err
		}
		l := Location{ID: x.ID, Resource: x.Rsc, Role: normalizeRole(x.Role), Node: x.Node, Score: x.Score}
		if len(x.Rules) == 1 {
			r := x.Rules[0]
			l.Score = r.Score
			if r.Role != "" {
				l.Role = normalizeRole(r.Role)
			}
			if r.BooleanOp == "" || r.BooleanOp == "and" {
				for _, e := range r.Expressions {
					if e.Attribute == "#uname" && e.Operation == "eq" && len(r.Expressions) == 1 {
						l.Node = e.Value
					}
				}
				for _, d := range r.Dates {
					if d.Operation == "lt" {
						if t, err := ParseCIBTime(d.End); err == nil {
							l.Expires = t
						}
					}
				}
			}
		}
		out = append(out, l)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("constraints xml: %w", err)
	}
	return out, nil
}

// eachElement calls f for every element named name in doc, at any depth;
// f must consume the element (DecodeElement).
func eachElement(doc []byte, name string, f func(*xml.Decoder, xml.StartElement) error) error {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == name {
			if err := f(dec, se); err != nil {
				return err
			}
		}
	}
}

// CIBTimeLayout is how haconf writes a date into a rule, as crm_resource
// --lifetime does: "2026-11-21 14:00:00Z" (UTC).
const CIBTimeLayout = "2006-01-02 15:04:05Z07:00"

// ParseCIBTime parses a date of a date_expression in the forms Pacemaker
// writes and documents: "2026-11-21 14:00:00Z", with a numeric offset
// ("2026-11-21 14:00:00 -05:00", "+0100"), or ISO 8601 with a T.
func ParseCIBTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range []string{CIBTimeLayout, "2006-01-02 15:04:05 Z07:00", "2006-01-02 15:04:05 -0700", "2006-01-02 15:04:05-0700", time.RFC3339, "2006-01-02T15:04:05Z0700"} {
		if t, err := time.Parse(l, s); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("date %q: not a date haconf understands", s)
}

// FormatCIBTime writes t as Pacemaker dates are written (UTC, seconds).
func FormatCIBTime(t time.Time) string { return t.UTC().Truncate(time.Second).Format(CIBTimeLayout) }
