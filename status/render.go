package status

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Headline is the verdict line: HEALTHY, DEGRADED: reasons, or DOWN:
// reasons.
func (r Report) Headline() string {
	if r.Verdict == Healthy || len(r.Reasons) == 0 {
		return string(r.Verdict)
	}
	return string(r.Verdict) + ": " + strings.Join(r.Reasons, "; ")
}

// WriteText writes the report for people: the verdict line first, then
// one line per layer, where each resource runs, and every finding.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintln(&b, r.Headline())
	fmt.Fprintf(&b, "\nseen from %s at %s", r.Node, r.Time.UTC().Format("2006-01-02 15:04:05Z"))
	if r.Active != "" {
		fmt.Fprintf(&b, ", active node %s", r.Active)
	}
	fmt.Fprintln(&b)
	fmt.Fprintln(&b)
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAYER\tSTATE\tSUMMARY")
	for _, l := range r.Layers {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Name, l.State, l.Summary)
	}
	tw.Flush()
	if len(r.Resources) > 0 {
		fmt.Fprintln(&b)
		tw = tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "RESOURCE\tROLE\tNODES\tWHY")
		for _, p := range r.Resources {
			nodes := strings.Join(p.Nodes, ",")
			if nodes == "" {
				nodes = "-"
			}
			why := p.Why
			if why == "" {
				why = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", p.Resource, p.Role, nodes, why)
		}
		tw.Flush()
	}
	var findings []Finding
	for _, l := range r.Layers {
		findings = append(findings, l.Findings...)
	}
	if len(findings) > 0 {
		fmt.Fprintln(&b)
		for _, f := range findings {
			fmt.Fprintf(&b, "%-8s %s: %s\n", strings.ToUpper(string(f.Severity)), f.Layer, f.Message)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}
