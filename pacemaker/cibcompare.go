package pacemaker

import (
	"bytes"
	"encoding/xml"
	"io"
	"sort"
	"strings"
)

// SameConfiguration reports whether two CIB XML fragments say the same
// thing: comments, whitespace between elements and attribute order are
// ignored. It is how haconf decides that a re-apply has nothing to push,
// so the CIB epoch does not move.
func SameConfiguration(a, b []byte) bool {
	ca, errA := Canonical(a)
	cb, errB := Canonical(b)
	return errA == nil && errB == nil && bytes.Equal(ca, cb)
}

// Canonical re-serializes XML without comments, processing instructions
// and whitespace-only text, with attributes sorted by name.
func Canonical(doc []byte) ([]byte, error) {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var out bytes.Buffer
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			attrs := append([]xml.Attr(nil), t.Attr...)
			sort.Slice(attrs, func(i, j int) bool { return attrs[i].Name.Local < attrs[j].Name.Local })
			out.WriteString("<" + t.Name.Local)
			for _, a := range attrs {
				out.WriteString(" " + a.Name.Local + "=\"")
				xml.EscapeText(&out, []byte(a.Value))
				out.WriteString("\"")
			}
			out.WriteString(">")
		case xml.EndElement:
			out.WriteString("</" + t.Name.Local + ">")
		case xml.CharData:
			if s := strings.TrimSpace(string(t)); s != "" {
				xml.EscapeText(&out, []byte(s))
			}
		}
	}
}
