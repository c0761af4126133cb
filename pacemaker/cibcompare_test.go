package pacemaker

import "testing"

func TestSameConfiguration(t *testing.T) {
	a := []byte(`<configuration>
  <!-- a comment -->
  <crm_config><cluster_property_set id="x"><nvpair id="a" name="b" value="c"/></cluster_property_set></crm_config>
</configuration>`)
	b := []byte(`<configuration><crm_config>
      <cluster_property_set id="x">
        <nvpair value="c" name="b" id="a"></nvpair>
      </cluster_property_set></crm_config></configuration>`)
	if !SameConfiguration(a, b) {
		t.Fatal("equivalent configurations compared different")
	}
	c := []byte(`<configuration><crm_config><cluster_property_set id="x"><nvpair id="a" name="b" value="d"/></cluster_property_set></crm_config></configuration>`)
	if SameConfiguration(a, c) {
		t.Fatal("a changed value compared equal")
	}
	if SameConfiguration(a, []byte("<configuration>")) {
		t.Fatal("broken XML compared equal")
	}
}
