/* A SQLite VFS for fault tests: it wraps the process's default VFS (unix) and is registered as
 * the default in its place, so every connection opened without naming a VFS (the library's)
 * goes through it. When armed, a sync of a WAL file does the real fsync and then reports
 * SQLITE_IOERR_FSYNC: the frames SQLite wrote, the commit marker included, are on disk while
 * the COMMIT that wrote them fails (as after a real fsync error whose writes reached the
 * disk). SQLite then rolls the transaction back in memory and the file recovers it at its
 * next open. State is atomic: the library's threads sync through it. */
#ifndef FDN_TEST_SQLITE_FAULT_H
#define FDN_TEST_SQLITE_FAULT_H

#include <stdbool.h>

/* Register the wrapper as the default VFS (once per process; later calls do nothing).
 * 0, or a SQLite error code. */
int test_sqlite_fault_install(void);

/* Arm (true) or disarm (false) the failure of every sync of a WAL file. */
void test_sqlite_fault_wal_sync(bool on);

/* Syncs failed on purpose since the process started. */
long test_sqlite_fault_count(void);

#endif
