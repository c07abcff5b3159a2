package storetest

import (
	"context"
	"errors"
	"testing"

	"gantry/internal/ci"
	"gantry/internal/store"
)

func init() { extra["ProtectedRefs"] = testProtectedRefs }

func testProtectedRefs(t *testing.T, st store.Store) {
	ctx := context.Background()
	_, p, _ := seedProject(t, st)
	main := ok[*ci.ProtectedRef](t)(st.CreateProtectedRef(ctx, ci.ProtectedRef{ProjectID: p.ID, Kind: ci.RefBranch, Name: "main", AllowForcePush: true, CreatedAt: t0,
		Access: []ci.ProtectedAccess{{Action: ci.ActionPush, AccessLevel: ci.NoAccess}, {Action: ci.ActionMerge, AccessLevel: ci.Developer}}}))
	if main.ID == 0 || main.Access[0].ID == 0 || main.Access[1].ID <= main.Access[0].ID {
		t.Fatalf("created %+v", main)
	}
	if _, err := st.CreateProtectedRef(ctx, ci.ProtectedRef{ProjectID: p.ID, Kind: ci.RefBranch, Name: "main", CreatedAt: t0}); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("duplicate: %v", err)
	}
	// The same name as a tag is a different protection.
	ok[*ci.ProtectedRef](t)(st.CreateProtectedRef(ctx, ci.ProtectedRef{ProjectID: p.ID, Kind: ci.RefTag, Name: "main", CreatedAt: t0,
		Access: []ci.ProtectedAccess{{Action: ci.ActionCreate, AccessLevel: ci.Maintainer}}}))
	got := ok[*ci.ProtectedRef](t)(st.ProtectedRefByName(ctx, p.ID, ci.RefBranch, "main"))
	if !got.AllowForcePush || len(got.Access) != 2 || got.Levels(ci.ActionMerge)[0] != ci.Developer || got.Levels(ci.ActionPush)[0] != ci.NoAccess {
		t.Fatalf("read back %+v", got)
	}
	if list := ok[ci.RefProtection](t)(st.ProtectedRefs(ctx, p.ID, ci.RefTag)); len(list) != 1 || list[0].Levels(ci.ActionCreate)[0] != ci.Maintainer {
		t.Fatalf("tags %+v", list)
	}
	if err := st.DeleteProtectedRef(ctx, p.ID, main.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ProtectedRefByName(ctx, p.ID, ci.RefBranch, "main"); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := st.DeleteProtectedRef(ctx, p.ID, main.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	// Pipelines keep whether their ref was protected.
	pl := ok[*ci.Pipeline](t)(st.InsertPipeline(ctx, ci.Pipeline{ProjectID: p.ID, SHA: "abc", Ref: "main", Status: ci.StatusCreated, Source: ci.SourcePush, CreatedAt: t0, UpdatedAt: t0, Protected: true}))
	if back := ok[*ci.Pipeline](t)(st.PipelineByID(ctx, p.ID, pl.ID)); !back.Protected {
		t.Fatal("pipeline lost its protected flag")
	}
}
