package pacemaker

import (
	"encoding/xml"
	"fmt"
)

// Graph is a scheduler transition graph (crm_simulate -G, or a
// pe-input's graph): which actions run and what each waits for. It
// answers whether one action can only start after another, which is what
// decides how long a failover takes.
type Graph struct {
	keys   map[string]string   // action id -> operation key ("vip_start_0")
	inputs map[string][]string // action id -> ids of the actions it waits for
	byKey  map[string][]string // operation key -> action ids (one per node)
}

// ParseGraph reads a transition graph document.
func ParseGraph(b []byte) (*Graph, error) {
	type event struct {
		ID  string `xml:"id,attr"`
		Key string `xml:"operation_key,attr"`
		Op  string `xml:"operation,attr"`
	}
	type actions struct {
		Ops []event `xml:",any"`
	}
	var doc struct {
		XMLName  xml.Name `xml:"transition_graph"`
		Synapses []struct {
			Actions actions `xml:"action_set"`
			Inputs  []struct {
				Triggers []actions `xml:"trigger"`
			} `xml:"inputs"`
		} `xml:"synapse"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("transition graph: %w", err)
	}
	g := &Graph{keys: map[string]string{}, inputs: map[string][]string{}, byKey: map[string][]string{}}
	for _, s := range doc.Synapses {
		for _, a := range s.Actions.Ops {
			key := a.Key
			if key == "" {
				key = a.Op
			}
			g.keys[a.ID] = key
			g.byKey[key] = append(g.byKey[key], a.ID)
			for _, in := range s.Inputs {
				for _, t := range in.Triggers {
					for _, e := range t.Ops {
						g.inputs[a.ID] = append(g.inputs[a.ID], e.ID)
					}
				}
			}
		}
	}
	return g, nil
}

// Has reports whether the graph contains an action with this operation key.
func (g *Graph) Has(key string) bool { return len(g.byKey[key]) > 0 }

// Waits reports whether the action key can start only after the action
// first has completed, directly or through other actions.
func (g *Graph) Waits(key, first string) bool {
	seen := map[string]bool{}
	stack := append([]string(nil), g.byKey[key]...)
	for len(stack) > 0 {
		id := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for _, in := range g.inputs[id] {
			if seen[in] {
				continue
			}
			seen[in] = true
			if g.keys[in] == first {
				return true
			}
			stack = append(stack, in)
		}
	}
	return false
}
