/* Helpers shared by the files of core/store only.  Nothing outside
 * core/store includes this: SQL and sqlite3 types stay here. */
#ifndef O2C_STORE_DB_INTERNAL_H
#define O2C_STORE_DB_INTERNAL_H
#include <sqlite3.h>
#include "store/db.h"
#include "store/query.h"

/* The cached prepared statement for SQL (a string literal: the cache is keyed
 * by its address), reset with bindings cleared.  NULL on failure, with the
 * error recorded.  Reset it when finished reading, so no read snapshot stays
 * open. */
sqlite3_stmt *db_stmt(struct db *db, const char *sql);

/* Records the connection's SQLite error while doing WHAT; returns the mapped
 * code (STORE_BUSY, STORE_EXISTS for unique violations, else STORE_ERROR). */
int db_sqlite_fail(struct db *db, const char *what);

sqlite3 *db_conn(struct db *db);

#endif
