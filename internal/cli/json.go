package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteJSON writes v as the JSON document of a command: an object whose
// first field, "schema", names the document and its version
// ("haconf.status/v1"), so that a script can tell what it reads and notice
// when it changes. The version goes up only when a field is removed or
// changes meaning; fields may be added within a version. v must encode to
// an object without a "schema" field of its own.
//
// The document is indented by two spaces, ends in one newline, and keeps
// <, > and & as they are (not \u003c): it is read by people and jq, never
// embedded in HTML. Field names are part of the contract: snake_case, and
// stable.
func WriteJSON(w io.Writer, schema string, v any) error {
	if !strings.Contains(schema, "/v") {
		return InternalError(fmt.Errorf("JSON schema %q: want name/vN", schema))
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	obj := bytes.TrimSpace(body.Bytes())
	if len(obj) < 2 || obj[0] != '{' {
		return InternalError(fmt.Errorf("JSON output %s: %T is not an object", schema, v))
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(obj, &keys); err != nil {
		return err
	}
	if _, ok := keys["schema"]; ok {
		return InternalError(fmt.Errorf("JSON output %s: %T has a schema field of its own", schema, v))
	}
	head, _ := json.Marshal(schema)
	doc := append([]byte(`{"schema":`), head...)
	if rest := bytes.TrimSpace(obj[1:]); len(rest) > 1 { // more than the closing brace
		doc = append(doc, ',')
	}
	doc = append(doc, obj[1:]...)
	var out bytes.Buffer
	if err := json.Indent(&out, doc, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err := w.Write(out.Bytes())
	return err
}

// Output writes v in the format -o chose (OutputFlag): the JSON document
// schema through WriteJSON for "json", else the command's text rendering.
func Output[T any](w io.Writer, format, schema string, v T, text func(io.Writer, T)) error {
	if format == "json" {
		return WriteJSON(w, schema, v)
	}
	text(w, v)
	return nil
}
