package pacemaker

import (
	"bytes"
	"encoding/xml"
	"io"
)

// CIBFile is where Pacemaker keeps a node's copy of the CIB between runs
// (Pacemaker 2.1, Debian's layout): it is there after the node first joined
// a configured cluster, whether the cluster stack runs or not.
const CIBFile = "/var/lib/pacemaker/cib/cib.xml"

// HasResource reports whether the CIB document cib (a whole CIB or its
// configuration section) configures a resource with id: a primitive, a
// group or a clone.
func HasResource(cib []byte, id string) bool {
	dec := xml.NewDecoder(bytes.NewReader(cib))
	for {
		tok, err := dec.Token()
		if err == io.EOF || err != nil {
			return false
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		switch se.Name.Local {
		case "primitive", "group", "clone", "master":
			for _, a := range se.Attr {
				if a.Name.Local == "id" && a.Value == id {
					return true
				}
			}
		}
	}
}
