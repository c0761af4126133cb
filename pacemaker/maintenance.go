package pacemaker

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"
)

// Cluster-wide maintenance mode that ends by itself.
//
// haconf sets maintenance-mode=true in a property set of its own whose rule
// holds only until a date (date_expression operation="lt" end=...). The
// scheduler evaluates the rule on every run and, since Pacemaker 2.0.3,
// schedules a recheck at the rule's end (the transition graph's recheck-by),
// so maintenance ends at that time with no daemon involved; the template's
// cluster-recheck-interval (1min) bounds it on older versions.
//
// The set is not cib-bootstrap-options: that set always wins over every
// other set, whatever their scores or rules (Pacemaker Explained, "Using
// Rules to Control Cluster Options"), so a maintenance-mode nvpair there
// (pcs property set, crm_attribute -n maintenance-mode) would hide haconf's,
// and is removed when haconf turns maintenance on.

// MaintenanceSetID is the id of haconf's maintenance property set.
const MaintenanceSetID = "haconf-maintenance"

// BootstrapSetID is the property set Pacemaker's tools write by default.
const BootstrapSetID = "cib-bootstrap-options"

const maintenanceMode = "maintenance-mode"

// MaintenanceSet returns haconf's maintenance property set: maintenance
// mode while the time is before until, or with no end when until is zero.
func MaintenanceSet(until time.Time) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `<cluster_property_set id="%s" score="1000">`, MaintenanceSetID)
	if !until.IsZero() {
		fmt.Fprintf(&b, `<rule id="%[1]s-rule" score="INFINITY" boolean-op="and"><date_expression id="%[1]s-until" operation="lt" end="%[2]s"/></rule>`,
			MaintenanceSetID, FormatCIBTime(until))
	}
	fmt.Fprintf(&b, `<nvpair id="%s-mode" name="%s" value="true"/></cluster_property_set>`, MaintenanceSetID, maintenanceMode)
	return []byte(b.String())
}

// MaintenanceConfig is what the crm_config section says about
// maintenance-mode.
type MaintenanceConfig struct {
	// Bootstrap is maintenance-mode in cib-bootstrap-options ("" when not
	// set there), BootstrapID its nvpair's id.
	Bootstrap   string `json:"bootstrap,omitempty"`
	BootstrapID string `json:"bootstrap_id,omitempty"`
	// Haconf is haconf's property set; nil when there is none.
	Haconf *MaintenanceWindow `json:"haconf,omitempty"`
	// Others are the ids of other property sets that set maintenance-mode.
	Others []string `json:"others,omitempty"`
}

// MaintenanceWindow is haconf's maintenance property set.
type MaintenanceWindow struct {
	Value string `json:"value"`
	// Until is the end of its rule; zero when it has no rule
	// (haconf maintenance on --no-expiry).
	Until time.Time `json:"until,omitzero"`
	// Unrecognized is set when the set has a rule haconf did not write:
	// its end is then unknown.
	Unrecognized bool `json:"unrecognized_rule"`
}

// ParseMaintenanceConfig reads maintenance-mode from the crm_config
// section (cibadmin --query --scope crm_config, or a whole CIB).
func ParseMaintenanceConfig(doc []byte) (MaintenanceConfig, error) {
	var m MaintenanceConfig
	err := eachElement(doc, "cluster_property_set", func(dec *xml.Decoder, start xml.StartElement) error {
		var x struct {
			ID     string    `xml:"id,attr"`
			Rules  []xmlRule `xml:"rule"`
			NVPair []struct {
				ID    string `xml:"id,attr"`
				Name  string `xml:"name,attr"`
				Value string `xml:"value,attr"`
			} `xml:"nvpair"`
		}
		if err := dec.DecodeElement(&x, &start); err != nil {
			return err
		}
		for _, nv := range x.NVPair {
			if nv.Name != maintenanceMode {
				continue
			}
			switch x.ID {
			case BootstrapSetID:
				m.Bootstrap, m.BootstrapID = nv.Value, nv.ID
			case MaintenanceSetID:
				w := &MaintenanceWindow{Value: nv.Value}
				switch {
				case len(x.Rules) == 0:
				case len(x.Rules) == 1 && len(x.Rules[0].Expressions) == 0 && len(x.Rules[0].Dates) == 1 && x.Rules[0].Dates[0].Operation == "lt":
					t, err := ParseCIBTime(x.Rules[0].Dates[0].End)
					if err != nil {
						w.Unrecognized = true
					}
					w.Until = t
				default:
					w.Unrecognized = true
				}
				m.Haconf = w
			default:
				m.Others = append(m.Others, x.ID)
			}
		}
		return nil
	})
	if err != nil {
		return MaintenanceConfig{}, fmt.Errorf("crm_config xml: %w", err)
	}
	return m, nil
}

// Maintenance sources.
const (
	SourceHaconf    = "haconf"    // haconf maintenance on
	SourceBootstrap = "bootstrap" // maintenance-mode in cib-bootstrap-options: no end
	SourceOther     = "other"     // another property set
)

// MaintenanceState is whether the cluster is in maintenance mode, why and
// until when.
type MaintenanceState struct {
	On bool `json:"on"`
	// Source says where maintenance-mode=true comes from (when On).
	Source string `json:"source,omitempty"`
	// SetID is the property set it comes from.
	SetID string `json:"set_id,omitempty"`
	// Until is when it ends by itself; zero when it does not.
	Until time.Time `json:"until,omitzero"`
	// Ended is when haconf's last maintenance window ended (when off and
	// its expired set is still in the CIB).
	Ended time.Time `json:"ended,omitzero"`
}

// State explains on, the cluster's maintenance mode as crm_mon evaluated
// it (the scheduler's view, rules included), with the configuration.
func (m MaintenanceConfig) State(on bool, now time.Time) MaintenanceState {
	s := MaintenanceState{On: on}
	w := m.Haconf
	if !on {
		if w != nil && !w.Until.IsZero() && !now.Before(w.Until) {
			s.Ended = w.Until
		}
		return s
	}
	switch {
	case m.Bootstrap != "":
		s.Source, s.SetID = SourceBootstrap, BootstrapSetID
	case w != nil && w.Value == "true" && (w.Until.IsZero() || now.Before(w.Until)):
		s.Source, s.SetID, s.Until = SourceHaconf, MaintenanceSetID, w.Until
	case len(m.Others) > 0:
		s.Source, s.SetID = SourceOther, m.Others[0]
	}
	return s
}

// OnChanges are the cibadmin commands that put the cluster in maintenance
// until the given time (zero: no end): haconf's set is created or replaced
// first, then a maintenance-mode in cib-bootstrap-options, which would
// override it, is removed (so there is no moment without maintenance when
// it was already on).
func (m MaintenanceConfig) OnChanges(until time.Time) []Command {
	set := string(MaintenanceSet(until))
	why := "maintenance-mode=true until " + FormatCIBTime(until) + "; Pacemaker ends it by itself"
	if until.IsZero() {
		why = "maintenance-mode=true with no end (--no-expiry): only haconf maintenance off ends it"
	}
	op := "--create"
	if m.Haconf != nil {
		op = "--replace"
	}
	out := []Command{{Argv: []string{cibadmin, op, "--scope", "crm_config", "--xml-text", set}, Why: why}}
	if m.BootstrapID != "" {
		out = append(out, Command{
			Argv: deleteNVPair(m.BootstrapID),
			Why:  fmt.Sprintf("cib-bootstrap-options sets maintenance-mode=%s, which would override haconf's set", m.Bootstrap),
		})
	}
	return out
}

// OffChanges are the cibadmin commands that end maintenance mode now:
// haconf's set and a maintenance-mode=true in cib-bootstrap-options are
// removed. Other property sets are left alone (they are someone's
// configuration, e.g. a scheduled window).
func (m MaintenanceConfig) OffChanges() []Command {
	var out []Command
	if m.Haconf != nil {
		out = append(out, Command{
			Argv: []string{cibadmin, "--delete", "--xml-text", fmt.Sprintf(`<cluster_property_set id="%s"/>`, MaintenanceSetID)},
			Why:  "remove haconf's maintenance property set",
		})
	}
	if m.Bootstrap == "true" {
		out = append(out, Command{Argv: deleteNVPair(m.BootstrapID), Why: "remove maintenance-mode=true from cib-bootstrap-options"})
	}
	return out
}

func deleteNVPair(id string) []string {
	return []string{cibadmin, "--delete", "--xml-text", fmt.Sprintf(`<nvpair id="%s"/>`, xmlAttr(id))}
}

func xmlAttr(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}
