package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

func init() { extra["PasswordsAndSessions"] = testPasswordsAndSessions }

func testPasswordsAndSessions(t *testing.T, st store.Store) {
	ctx := context.Background()
	u, _, _ := seedProject(t, st)
	if d := ok[string](t)(st.UserPasswordDigest(ctx, u.ID)); d != "" {
		t.Fatalf("new user's password digest %q", d)
	}
	if err := st.SetUserPassword(ctx, u.ID, "digest-1"); err != nil {
		t.Fatal(err)
	}
	if d := ok[string](t)(st.UserPasswordDigest(ctx, u.ID)); d != "digest-1" {
		t.Fatalf("password digest %q", d)
	}
	if err := st.SetUserPassword(ctx, u.ID+1000, "x"); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("password of no user: %v", err)
	}
	if _, err := st.UserPasswordDigest(ctx, u.ID+1000); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("digest of no user: %v", err)
	}

	live := store.Session{Digest: "live", UserID: u.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	old := store.Session{Digest: "old", UserID: u.ID, CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
	for _, s := range []store.Session{live, old} {
		if err := st.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.CreateSession(ctx, live); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("duplicate session: %v", err)
	}
	now := t0.Add(2 * time.Minute)
	s, su, err := st.SessionByDigest(ctx, "live", now)
	if err != nil || su.ID != u.ID || su.Username != u.Username || !s.ExpiresAt.Equal(live.ExpiresAt.Truncate(time.Microsecond)) {
		t.Fatalf("session %+v user %+v err %v", s, su, err)
	}
	if _, _, err := st.SessionByDigest(ctx, "old", now); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("expired session: %v", err)
	}
	if n := ok[int64](t)(st.DeleteExpiredSessions(ctx, now)); n != 1 {
		t.Fatalf("deleted %d expired sessions", n)
	}
	if err := st.DeleteSession(ctx, "live"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.SessionByDigest(ctx, "live", t0); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("signed-out session: %v", err)
	}
	if err := st.DeleteSession(ctx, "live"); err != nil {
		t.Fatalf("second sign-out: %v", err)
	}
}
