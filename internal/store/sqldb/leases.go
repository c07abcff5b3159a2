package sqldb

import (
	"context"
	"time"
)

// ClaimLease is one upsert: it inserts a missing lease, or takes over the
// row only when it is expired or already the claimant's, so two nodes
// claiming at once cannot both succeed.
func (db *DB) ClaimLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error) {
	res, err := db.exec(ctx, `INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.holder = excluded.holder OR leases.expires_at <= ?`, name, holder, tm(until), tm(now))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

func (db *DB) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := db.exec(ctx, `UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ?`, name, holder)
	return err
}
