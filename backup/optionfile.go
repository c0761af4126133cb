package backup

import (
	"bufio"
	"bytes"
	"strings"
)

// ParseOptionFile returns the keys of one section (e.g. "client") of a MySQL
// option file (my.cnf syntax: [section], key=value, # and ; comments,
// optional quotes). Later sections with the same name add to earlier ones;
// "!include" directives are ignored. Keys are lower-cased and "-" and "_"
// are treated alike, as the server does.
func ParseOptionFile(data []byte, section string) map[string]string {
	out := map[string]string{}
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '!' {
			continue
		}
		if line[0] == '[' {
			if end := strings.IndexByte(line, ']'); end > 0 {
				cur = strings.ToLower(strings.TrimSpace(line[1:end]))
			}
			continue
		}
		if cur != section {
			continue
		}
		key, value, _ := strings.Cut(line, "=")
		key = strings.ReplaceAll(strings.ToLower(strings.TrimSpace(key)), "_", "-")
		out[key] = unquoteOption(strings.TrimSpace(value))
	}
	return out
}

// unquoteOption strips matching quotes, or a trailing comment from an
// unquoted value, and resolves the escapes the client library knows.
func unquoteOption(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') {
		if end := strings.LastIndexByte(v, v[0]); end > 0 {
			v = v[1:end]
			return optionEscapes.Replace(v)
		}
	}
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return optionEscapes.Replace(v)
}

var optionEscapes = strings.NewReplacer(`\n`, "\n", `\t`, "\t", `\r`, "\r", `\b`, "\b", `\s`, " ", `\"`, `"`, `\'`, `'`, `\\`, `\`)
