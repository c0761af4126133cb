package pacemaker

import (
	"strings"
	"testing"
)

const rendered = `<cib><configuration>
  <crm_config><cluster_property_set id="o"><nvpair id="o-s" name="stonith-enabled" value="true"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="ctl1"/><node id="2" uname="ctl2"/></nodes>
  <resources><primitive id="vip" class="ocf" provider="heartbeat" type="IPaddr2"/></resources>
  <constraints><rsc_order id="o1" first="a" then="b"/></constraints>
</configuration><status/></cib>`

// live is what Pacemaker holds after running the rendered CIB: the DC's
// properties, rabbitmq-cluster's node attributes and a crm-fence-peer
// constraint were added by others.
const live = `<configuration>
  <crm_config><cluster_property_set id="o"><nvpair id="o-s" name="stonith-enabled" value="true"/><nvpair id="o-dc" name="dc-version" value="2.1.5"/></cluster_property_set></crm_config>
  <nodes><node id="1" uname="ctl1"><instance_attributes id="n1"><nvpair id="n1-r" name="rmq-node-attr-last-known-rabbitmq" value="rabbit@ctl1"/></instance_attributes></node><node id="2" uname="ctl2"/></nodes>
  <resources><primitive id="vip" class="ocf" provider="heartbeat" type="IPaddr2"/></resources>
  <constraints><rsc_order id="o1" first="a" then="b"/><rsc_location id="drbd-fence-by-handler-r0-drbd-r0-clone" rsc="drbd-r0-clone"><rule id="r" role="Promoted" score="-INFINITY"><expression id="e" attribute="#uname" operation="ne" value="ctl1"/></rule></rsc_location></constraints>
</configuration>`

func TestConfigurationUpdatesIgnoreWhatOthersOwn(t *testing.T) {
	if u := ConfigurationUpdates([]byte(rendered), []byte(live)); len(u) != 0 {
		t.Fatalf("re-apply would push %d sections: %+v", len(u), u)
	}
}

func TestConfigurationUpdatesKeepFenceConstraint(t *testing.T) {
	changed := strings.Replace(rendered, `first="a"`, `first="c"`, 1)
	u := ConfigurationUpdates([]byte(changed), []byte(live))
	if len(u) != 1 || u[0].Scope != "constraints" {
		t.Fatalf("updates = %+v, want constraints only", u)
	}
	if !strings.Contains(string(u[0].XML), `first="c"`) || !strings.Contains(string(u[0].XML), "drbd-fence-by-handler-r0-drbd-r0-clone") {
		t.Fatalf("constraints update lost the change or the fence constraint:\n%s", u[0].XML)
	}
}

func TestConfigurationUpdatesEmptyCIB(t *testing.T) {
	empty := `<configuration><crm_config/><nodes/><resources/><constraints/></configuration>`
	var scopes []string
	for _, u := range ConfigurationUpdates([]byte(rendered), []byte(empty)) {
		scopes = append(scopes, u.Scope)
	}
	if strings.Join(scopes, ",") != "nodes,resources,constraints,crm_config" {
		t.Fatalf("empty sections: scopes = %v", scopes)
	}
	// A section that does not exist yet cannot be replaced, and the schema
	// fixes the order of sections: the whole configuration is replaced.
	noConstraints := `<configuration><crm_config/><nodes/><resources/></configuration>`
	u := ConfigurationUpdates([]byte(rendered), []byte(noConstraints))
	if len(u) != 1 || u[0].Scope != "configuration" || !strings.HasPrefix(string(u[0].XML), "<configuration>") {
		t.Fatalf("missing section: updates = %+v", u)
	}
}
