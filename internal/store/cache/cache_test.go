package cache_test

import (
	"context"
	"testing"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
	"gantry/internal/store/cache"
	"gantry/internal/testenv"
)

func TestCacheStalenessAndPurge(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			raw := b.Open(t)
			fx := testenv.Seed(t, raw)
			now := testenv.T0
			st := cache.New(raw, time.Second, func() time.Time { return now })
			ctx := context.Background()
			digest := ci.HashToken(fx.Tokens["developer"])
			tok, _, err := st.TokenByDigest(ctx, digest)
			if err != nil || tok.Revoked {
				t.Fatal(err)
			}
			// Revoking through the cache is seen at once.
			if err := st.RevokeToken(ctx, tok.ID); err != nil {
				t.Fatal(err)
			}
			if tok, _, _ := st.TokenByDigest(ctx, digest); !tok.Revoked {
				t.Fatal("revocation hidden by the cache")
			}
			// A change made behind the cache's back shows after the TTL.
			l, _ := st.ProjectAccess(ctx, fx.Outsider.ID, fx.Project)
			if l != ci.NoAccess {
				t.Fatal("outsider has access")
			}
			if err := raw.AddMember(ctx, store.AddMemberParams{Source: store.MemberOfProject, SourceID: fx.Project.ID, UserID: fx.Outsider.ID, AccessLevel: ci.Reporter, Now: now}); err != nil {
				t.Fatal(err)
			}
			if l, _ := st.ProjectAccess(ctx, fx.Outsider.ID, fx.Project); l != ci.NoAccess {
				t.Fatal("expected the cached value within the TTL")
			}
			now = now.Add(1500 * time.Millisecond)
			if l, _ := st.ProjectAccess(ctx, fx.Outsider.ID, fx.Project); l != ci.Reporter {
				t.Fatalf("stale after TTL: %d", l)
			}
			// Batch lookups mix cached and loaded entries.
			users, err := st.UsersByIDs(ctx, []int64{fx.Alice.ID})
			if err != nil || users[fx.Alice.ID] == nil {
				t.Fatal(err)
			}
			users, err = st.UsersByIDs(ctx, []int64{fx.Alice.ID, fx.Bob.ID, 9999})
			if err != nil || len(users) != 2 || users[fx.Bob.ID].Username != "bob" {
				t.Fatalf("users %v %v", users, err)
			}
			// A pipeline's variables are read through and then kept.
			pl, err := raw.CreatePipeline(ctx, store.NewPipeline{Pipeline: ci.Pipeline{ProjectID: fx.Project.ID, SHA: "abc", Ref: "main",
				Status: ci.StatusCreated, Source: ci.SourceAPI, CreatedAt: now, UpdatedAt: now}, Variables: []store.Variable{{Key: "K", Value: "v"}}})
			if err != nil {
				t.Fatal(err)
			}
			for range 2 {
				vars, err := st.PipelineVariables(ctx, pl.ID)
				if err != nil || len(vars) != 1 || vars[0].Key != "K" || vars[0].Value != "v" {
					t.Fatalf("pipeline variables %v %v", vars, err)
				}
			}
		})
	}
}
