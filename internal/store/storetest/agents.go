package storetest

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"gantry/internal/ci"
	"gantry/internal/store"
)

func init() { extra["Agents"] = testAgents }

func testAgents(t *testing.T, st store.Store) {
	ctx := context.Background()
	u, p, _ := seedProject(t, st)
	a := ok[*ci.ClusterAgent](t)(st.CreateAgent(ctx, ci.ClusterAgent{ProjectID: p.ID, Name: "one", CreatedByUserID: &u.ID, CreatedAt: t0}))
	b := ok[*ci.ClusterAgent](t)(st.CreateAgent(ctx, ci.ClusterAgent{ProjectID: p.ID, Name: "two", CreatedAt: t0}))
	if _, err := st.CreateAgent(ctx, ci.ClusterAgent{ProjectID: p.ID, Name: "one", CreatedAt: t0}); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("duplicate agent name: %v", err)
	}
	got := ok[*ci.ClusterAgent](t)(st.AgentByID(ctx, p.ID, a.ID))
	if !reflect.DeepEqual(got, a) || *got.CreatedByUserID != u.ID || b.CreatedByUserID != nil {
		t.Fatalf("agent %+v, created %+v", got, a)
	}
	if _, err := st.AgentByID(ctx, p.ID+1, a.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("agent of another project: %v", err)
	}
	if list := ok[[]*ci.ClusterAgent](t)(st.ListAgents(ctx, p.ID, 1, 1)); len(list) != 1 || list[0].ID != b.ID {
		t.Fatalf("second page %+v", list)
	}
	if n := ok[int](t)(st.CountAgents(ctx, p.ID)); n != 2 {
		t.Fatalf("count %d", n)
	}
	if m := ok[map[int64]*ci.ClusterAgent](t)(st.AgentsByIDs(ctx, []int64{b.ID, a.ID, b.ID})); len(m) != 2 || m[b.ID].Name != "two" {
		t.Fatalf("by ids %+v", m)
	}

	ns := p.NamespaceID
	grant := func(agent, target int64, cfg string) ci.AgentGrant {
		return ci.AgentGrant{AgentID: agent, TargetID: target, Config: []byte(cfg)}
	}
	if err := st.ReplaceAgentGrants(ctx, a.ID, []ci.AgentGrant{grant(a.ID, p.ID, `{"x":1}`)}, []ci.AgentGrant{grant(a.ID, ns, `{}`)}); err != nil {
		t.Fatal(err)
	}
	if err := st.ReplaceAgentGrants(ctx, b.ID, nil, []ci.AgentGrant{grant(b.ID, ns, `{"y":"z"}`)}); err != nil {
		t.Fatal(err)
	}
	projects, groups, err := st.AgentGrantsFor(ctx, p.ID, []int64{ns})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(projects, []ci.AgentGrant{grant(a.ID, p.ID, `{"x":1}`)}) ||
		!reflect.DeepEqual(groups, []ci.AgentGrant{grant(a.ID, ns, `{}`), grant(b.ID, ns, `{"y":"z"}`)}) {
		t.Fatalf("grants %v %v", projects, groups)
	}
	// Replacing drops what the new set leaves out.
	if err := st.ReplaceAgentGrants(ctx, a.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	projects, groups, _ = st.AgentGrantsFor(ctx, p.ID, []int64{ns})
	if len(projects) != 0 || len(groups) != 1 || groups[0].AgentID != b.ID {
		t.Fatalf("after replace %v %v", projects, groups)
	}
	// Deleting an agent deletes its grants.
	if err := st.DeleteAgent(ctx, p.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteAgent(ctx, p.ID, b.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if _, groups, _ = st.AgentGrantsFor(ctx, p.ID, []int64{ns}); len(groups) != 0 {
		t.Fatalf("grants of a deleted agent %v", groups)
	}
}
