package agents

import (
	"fmt"
	"gantry/internal/ci"
	"strings"
	"testing"
)

func TestParseCIAccess(t *testing.T) {
	var b strings.Builder
	b.WriteString("ci_access:\n  projects:\n")
	for i := 0; i < MaxEntries+10; i++ {
		fmt.Fprintf(&b, "    - id: Group/P%d\n      default_namespace: ns%d\n", i, i)
	}
	b.WriteString("    - {}\n  groups:\n    - id: /Acme/\n      environments: [prod]\n")
	projects, groups, err := parseCIAccess([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(projects) != MaxEntries || projects[0].path != "group/p0" || string(projects[0].config) != `{"default_namespace":"ns0"}` {
		t.Fatalf("projects: %d, first %+v", len(projects), projects[0])
	}
	if len(groups) != 1 || groups[0].path != "acme" || string(groups[0].config) != `{"environments":["prod"]}` {
		t.Fatalf("groups %+v", groups)
	}
	if _, _, err := parseCIAccess([]byte("ci_access: [")); err == nil {
		t.Fatal("malformed YAML accepted")
	}
	if p, g, err := parseCIAccess(nil); err != nil || p != nil || g != nil {
		t.Fatalf("empty configuration: %v %v %v", p, g, err)
	}
}

func TestGrantFilters(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{{"production", "production", true}, {"review/*", "review/123", true}, {"review/*", "staging", false},
		{"*", "", true}, {"a*b*c", "axxbyyc", true}, {"a*b*c", "axxc", false}, {"*-prod", "eu-prod", true}} {
		if got := ci.WildcardMatch(c.pattern, c.name); got != c.want {
			t.Errorf("wildcardMatch(%q, %q) = %v", c.pattern, c.name, got)
		}
	}
	prod := "production"
	if !environmentMatches(map[string]any{}, nil) || environmentMatches(map[string]any{"environments": []any{"production"}}, nil) ||
		!environmentMatches(map[string]any{"environments": []any{"staging", "prod*"}}, &prod) {
		t.Fatal("environment filter")
	}
	for cfg, want := range map[string]bool{`absent`: true, `{}`: true, `{"agent":{}}`: true, `{"ci_job":{}}`: false, `"x"`: false} {
		m := map[string]any{}
		switch cfg {
		case "absent":
		case `{}`:
			m["access_as"] = map[string]any{}
		case `{"agent":{}}`:
			m["access_as"] = map[string]any{"agent": map[string]any{}}
		case `{"ci_job":{}}`:
			m["access_as"] = map[string]any{"ci_job": map[string]any{}}
		default:
			m["access_as"] = "x"
		}
		if got := impersonationAvailable(m); got != want {
			t.Errorf("access_as %s: %v", cfg, got)
		}
	}
}
