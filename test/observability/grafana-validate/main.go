// grafana-validate checks Grafana dashboard JSON (the classic dashboard model, schemaVersion 39,
// as shipped in helm/ikegate/dashboards/) against Grafana's own schema, through the types that
// github.com/grafana/grafana-foundation-sdk/go (Apache-2.0) generates from Grafana's CUE schemas,
// and against ikegate's rules for its dashboards.
//
//	grafana-validate dashboard.json [...]
//
// Per file, every problem is printed on its own line as "FAIL <file>: <problem>", or "ok <file>";
// the last line is "N passed, M failed"; the exit status is 1 when any file failed.
//
// Schema (the SDK):
//   - strict decode (Dashboard.UnmarshalJSONStrict): unknown fields, wrong JSON types and
//     missing required fields are errors, in the dashboard, in each panel's options (checked
//     against the registered panel plugin's schema) and in each target (checked against the
//     Prometheus query schema, chosen by the panel's datasource type);
//   - Dashboard.Validate: required fields and enums.
//
// ikegate's rules (the SDK accepts these, Grafana would render them wrongly or not at all):
//   - every panel has an id, unique in the dashboard (rows and their panels included), a known
//     panel type and a gridPos inside the 24-column grid;
//   - every panel and every target uses the Prometheus datasource through the ${datasource}
//     variable, which is defined as a datasource variable;
//   - every target is a Prometheus query with a non-empty expr;
//   - every variable a query uses ($name, ${name}, ${name:format}, [[name]]) is defined in the
//     dashboard's templating list, or is one of Grafana's built-in $__ variables.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
)

// The datasource reference every panel and target must carry.
const (
	datasourceType = "prometheus"
	datasourceUID  = "${datasource}"
	gridColumns    = 24
)

// The SDK returns its error list as an `error` that is non-nil but empty when nothing failed.
func realErr(err error) error {
	if err == nil || strings.TrimSpace(err.Error()) == "" {
		return nil
	}
	return err
}

func lines(prefix string, err error) []string {
	var out []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, prefix+l)
		}
	}
	return out
}

// A variable reference in a query: $name, ${name}, ${name:format} or [[name]].
var variableRef = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::[^}]*)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)(?::[^\]]*)?\]\]`)

func referencedVariables(s string) []string {
	var names []string
	for _, m := range variableRef.FindAllStringSubmatch(s, -1) {
		for _, g := range m[1:] {
			if g != "" {
				names = append(names, g)
			}
		}
	}
	return names
}

// checkVariables reports each variable used in `text` that the dashboard does not define.
func checkVariables(where, text string, defined map[string]string) []string {
	var problems []string
	for _, name := range referencedVariables(text) {
		if strings.HasPrefix(name, "__") {
			continue // Grafana's built-ins: $__rate_interval, $__interval, $__range, ...
		}
		if _, ok := defined[name]; !ok {
			problems = append(problems, fmt.Sprintf("%s: variable $%s is not defined in templating", where, name))
		}
	}
	return problems
}

func checkDatasource(where string, ref *common.DataSourceRef) []string {
	if ref == nil {
		return []string{fmt.Sprintf("%s: no datasource (want {type: %q, uid: %q})", where, datasourceType, datasourceUID)}
	}
	t, uid := "", ""
	if ref.Type != nil {
		t = *ref.Type
	}
	if ref.Uid != nil {
		uid = *ref.Uid
	}
	if t != datasourceType || uid != datasourceUID {
		return []string{fmt.Sprintf("%s: datasource {type: %q, uid: %q} does not refer to the %s variable (want {type: %q, uid: %q})",
			where, t, uid, datasourceUID, datasourceType, datasourceUID)}
	}
	return nil
}

func check(raw []byte) []string {
	var problems []string
	var strict dashboard.Dashboard
	if err := realErr(strict.UnmarshalJSONStrict(raw)); err != nil {
		return lines("schema: ", err)
	}
	// The strict decode reports errors but, in v0.0.22, leaves every element of Panels empty
	// (PanelOrRowPanel.UnmarshalJSONStrict returns the panel's empty BuildErrors, a non-nil
	// error, before storing the panel), so Validate and the rules below run on the ordinary
	// decode, which keeps the panels.
	var d dashboard.Dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		return []string{"decode: " + err.Error()}
	}
	for i, p := range d.Panels {
		if p.Panel == nil && p.RowPanel == nil {
			problems = append(problems, fmt.Sprintf("panels[%d]: not decoded (no type?)", i))
		}
	}
	if err := realErr(d.Validate()); err != nil {
		return append(problems, lines("schema validation: ", err)...)
	}

	// Variables, by name and type.
	defined := map[string]string{}
	for _, v := range d.Templating.List {
		if _, dup := defined[v.Name]; dup {
			problems = append(problems, fmt.Sprintf("templating: variable %q defined twice", v.Name))
		}
		defined[v.Name] = string(v.Type)
	}
	if defined["datasource"] != string(dashboard.VariableTypeDatasource) {
		problems = append(problems, "templating: no datasource variable named \"datasource\" (panels use ${datasource})")
	}
	for _, v := range d.Templating.List {
		if v.Definition != nil {
			problems = append(problems, checkVariables("variable "+v.Name, *v.Definition, defined)...)
		}
		if v.Query != nil {
			q, _ := json.Marshal(v.Query)
			problems = append(problems, checkVariables("variable "+v.Name, string(q), defined)...)
		}
	}

	var panels []dashboard.Panel
	ids := map[uint32]string{}
	for _, p := range d.Panels {
		if p.Panel != nil {
			panels = append(panels, *p.Panel)
		}
		if p.RowPanel != nil {
			title := ""
			if p.RowPanel.Title != nil {
				title = *p.RowPanel.Title
			}
			if prev, dup := ids[p.RowPanel.Id]; dup {
				problems = append(problems, fmt.Sprintf("row %q: duplicate panel id %d (also %q)", title, p.RowPanel.Id, prev))
			}
			ids[p.RowPanel.Id] = title
			panels = append(panels, p.RowPanel.Panels...)
		}
	}
	for _, p := range panels {
		title := ""
		if p.Title != nil {
			title = *p.Title
		}
		where := fmt.Sprintf("panel %q", title)
		if p.Id == nil {
			problems = append(problems, where+": no id")
		} else {
			if prev, dup := ids[*p.Id]; dup {
				problems = append(problems, fmt.Sprintf("%s: duplicate panel id %d (also %q)", where, *p.Id, prev))
			}
			ids[*p.Id] = title
		}
		if _, known := cog.ConfigForPanelcfgVariant(p.Type); !known {
			problems = append(problems, fmt.Sprintf("%s: unknown panel type %q", where, p.Type))
		}
		if g := p.GridPos; g == nil {
			problems = append(problems, where+": no gridPos")
		} else if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > gridColumns {
			problems = append(problems, fmt.Sprintf("%s: gridPos {x: %d, y: %d, w: %d, h: %d} outside the %d-column grid",
				where, g.X, g.Y, g.W, g.H, gridColumns))
		}
		problems = append(problems, checkDatasource(where, p.Datasource)...)
		if len(p.Targets) == 0 {
			problems = append(problems, where+": no targets")
		}
		for i, t := range p.Targets {
			tw := fmt.Sprintf("%s target %d", where, i)
			pq, ok := t.(*prometheus.Dataquery)
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: not a Prometheus query (%T)", tw, t))
				continue
			}
			if pq.RefId != nil {
				tw = fmt.Sprintf("%s target %s", where, *pq.RefId)
			}
			// Required, not only tidy: the strict decode picks a target's schema from the
			// target's own datasource type; without one the target is not checked at all.
			problems = append(problems, checkDatasource(tw, pq.Datasource)...)
			if strings.TrimSpace(pq.Expr) == "" {
				problems = append(problems, tw+": empty PromQL expr")
				continue
			}
			problems = append(problems, checkVariables(tw, pq.Expr, defined)...)
			if pq.LegendFormat != nil && strings.Contains(*pq.LegendFormat, "$") {
				problems = append(problems, checkVariables(tw+" legend", *pq.LegendFormat, defined)...)
			}
		}
	}
	return problems
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: grafana-validate dashboard.json [...]")
		os.Exit(2)
	}
	plugins.RegisterDefaultPlugins()
	pass, fail := 0, 0
	for _, f := range os.Args[1:] {
		raw, err := os.ReadFile(f)
		var problems []string
		if err != nil {
			problems = []string{err.Error()}
		} else {
			problems = check(raw)
		}
		if len(problems) == 0 {
			fmt.Printf("ok %s\n", f)
			pass++
			continue
		}
		for _, p := range problems {
			fmt.Printf("FAIL %s: %s\n", f, p)
		}
		fail++
	}
	fmt.Printf("%d passed, %d failed\n", pass, fail)
	if fail > 0 {
		os.Exit(1)
	}
}
