package postgres_test

import (
	"os"
	"testing"

	"gantry/internal/store/storetest"
	"gantry/internal/testenv"
)

func TestConformance(t *testing.T) {
	if testenv.PostgresURL() == "" {
		if os.Getenv("GANTRY_TEST_REQUIRE_POSTGRES") == "1" {
			t.Fatal("GANTRY_TEST_REQUIRE_POSTGRES=1 but GANTRY_TEST_DATABASE_URL is unset")
		}
		t.Skip("PostgreSQL half not run: GANTRY_TEST_DATABASE_URL is unset (scripts/test sets it)")
	}
	storetest.Run(t, testenv.OpenPostgres)
}
