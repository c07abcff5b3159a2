package sqlite

// The driver resets a cached statement with sqlite3_clear_bindings before
// each run, and SQLite expires (and so recompiles) any statement whose
// plan it marked as depending on a bound value, which it does for every
// "col = ?" term. Every read paid a full SQL compile that way, most of the
// cost of a page of jobs. The query planner stability guarantee (QPSG)
// stops SQLite from marking statements, so a prepared statement stays
// prepared. gantry pins its plans with INDEXED BY where it matters, so
// value-dependent planning has nothing to offer it.
//
// The setting has no PRAGMA and the driver does not expose the connection
// handle, so an auto-extension (run by SQLite for every new connection in
// the process) turns it on. The sqlite3 symbols are the driver's own
// amalgamation, linked into the same binary.

/*
typedef struct sqlite3 sqlite3;
extern int sqlite3_auto_extension(void (*entry)(void));
extern int sqlite3_db_config(sqlite3 *db, int op, ...);
extern int sqlite3_config(int op, ...);

#define GANTRY_DBCONFIG_ENABLE_QPSG 1007
#define GANTRY_CONFIG_MEMSTATUS 9

static int gantry_enable_qpsg(sqlite3 *db, char **err, const void *api) {
	(void)err; (void)api;
	sqlite3_db_config(db, GANTRY_DBCONFIG_ENABLE_QPSG, 1, (int *)0);
	return 0;
}

static int gantry_register_qpsg(void) {
	// Allocation statistics take a process-wide mutex on every malloc;
	// gantry never reads them. This only works before SQLite initializes,
	// which the auto-extension registration below does, so it comes first.
	sqlite3_config(GANTRY_CONFIG_MEMSTATUS, 0);
	return sqlite3_auto_extension((void (*)(void))gantry_enable_qpsg);
}
*/
import "C"

import "fmt"

func init() {
	if rc := C.gantry_register_qpsg(); rc != 0 {
		panic(fmt.Sprintf("sqlite: registering the QPSG auto-extension failed: code %d", rc))
	}
}
