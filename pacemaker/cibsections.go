package pacemaker

import (
	"bytes"
	"encoding/xml"
	"regexp"
)

// ConfigScopes are the CIB configuration sections haconf renders, in the
// order they are pushed (cibadmin --scope): cluster properties last, so
// stonith-enabled arrives with the fence devices already defined.
var ConfigScopes = []string{"nodes", "resources", "constraints", "rsc_defaults", "op_defaults", "crm_config"}

// Section returns the element <name>...</name> that is a child of doc's
// <configuration> (or of doc itself when doc is a configuration), or nil.
func Section(doc []byte, name string) []byte {
	dec := xml.NewDecoder(bytes.NewReader(doc))
	depth, start, inConf := 0, int64(-1), false
	for {
		off := dec.InputOffset()
		tok, err := dec.RawToken()
		if err != nil {
			return nil
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if t.Name.Local == "configuration" {
				inConf = true
				depth = 0
			} else if inConf && depth == 1 && t.Name.Local == name {
				start = off
			}
		case xml.EndElement:
			if inConf && depth == 1 && t.Name.Local == name && start >= 0 {
				return doc[start:dec.InputOffset()]
			}
			depth--
		}
	}
}

var (
	// Other agents own these parts of the configuration: permanent node
	// attributes (rabbitmq-cluster keeps its cluster membership there) and
	// the location constraint DRBD's crm-fence-peer handler adds while the
	// peer's data is outdated. haconf neither compares nor removes them.
	nodeAttrs        = regexp.MustCompile(`(?s)<instance_attributes\b[^>]*/>|<instance_attributes\b[^>]*[^/]>.*?</instance_attributes>`)
	fenceConstraints = regexp.MustCompile(`(?s)<rsc_location id="drbd-fence-by-handler-[^"]*"[^>]*/>|<rsc_location id="drbd-fence-by-handler-[^"]*"[^>]*[^/]>.*?</rsc_location>`)
	// The DC maintains these cluster properties itself.
	dcOwned = regexp.MustCompile(`<nvpair\b[^>]*name="(dc-version|cluster-infrastructure|have-watchdog|last-lrm-refresh)"[^>]*/>`)
	// haconf maintenance on: an operator's maintenance window, which a
	// re-apply must neither end nor count as a difference.
	maintenanceSets = regexp.MustCompile(`(?s)<cluster_property_set\b[^>]*\bid="` + MaintenanceSetID + `"[^>]*>.*?</cluster_property_set>`)
)

// Owned strips from a live section what other components own.
func Owned(scope string, section []byte) []byte {
	switch scope {
	case "nodes":
		return nodeAttrs.ReplaceAll(section, nil)
	case "constraints":
		return fenceConstraints.ReplaceAll(section, nil)
	case "crm_config":
		return maintenanceSets.ReplaceAll(dcOwned.ReplaceAll(section, nil), nil)
	}
	return section
}

// SectionUpdate is one section that differs between the rendered and the
// live configuration, with the XML to replace it with.
type SectionUpdate struct {
	Scope string
	XML   []byte
}

// Args are cibadmin's arguments to apply u from file.
func (u SectionUpdate) Args(file string) []string {
	return []string{"--replace", "--scope", u.Scope, "--xml-file", file}
}

// ConfigurationUpdates compares a rendered CIB with the live configuration
// (cibadmin --query --scope configuration) section by section and returns
// the sections to replace: none when the live configuration already says
// what haconf renders, so a re-apply leaves the CIB epoch alone. A
// constraints update keeps live crm-fence-peer constraints, a crm_config
// update keeps haconf's maintenance property set; node attributes other
// agents keep are ignored when comparing nodes.
func ConfigurationUpdates(rendered, live []byte) []SectionUpdate {
	var out []SectionUpdate
	for _, scope := range ConfigScopes {
		want := Section(rendered, scope)
		if want == nil {
			continue
		}
		have := Section(live, scope)
		if SameConfiguration(Owned(scope, have), want) {
			continue
		}
		switch scope {
		case "constraints":
			want = keepLive(want, "</constraints>", fenceConstraints.FindAll(have, -1))
		case "crm_config":
			want = keepLive(want, "</crm_config>", maintenanceSets.FindAll(have, -1))
		}
		if have == nil {
			// A fresh CIB lacks sections, and the schema fixes their order:
			// replace the whole configuration (nothing foreign to keep yet).
			i := bytes.Index(rendered, []byte("<configuration>"))
			j := bytes.LastIndex(rendered, []byte("</configuration>"))
			return []SectionUpdate{{Scope: "configuration", XML: rendered[i : j+len("</configuration>")]}}
		}
		out = append(out, SectionUpdate{Scope: scope, XML: want})
	}
	return out
}

// keepLive inserts the live elements keep before section's closing tag.
func keepLive(section []byte, closing string, keep [][]byte) []byte {
	if len(keep) == 0 {
		return section
	}
	end := bytes.LastIndex(section, []byte(closing))
	if end < 0 {
		return section
	}
	w := append([]byte(nil), section[:end]...)
	for _, k := range keep {
		w = append(w, k...)
	}
	return append(w, section[end:]...)
}
