package sqlite_test

import (
	"testing"

	"gantry/internal/store/storetest"
	"gantry/internal/testenv"
)

func TestConformance(t *testing.T) { storetest.Run(t, testenv.OpenSQLite) }
