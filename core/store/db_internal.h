/* Helpers shared by the files of core/store only.  Nothing outside
 * core/store includes this: SQL and sqlite3 types stay here. */
#ifndef O2C_STORE_DB_INTERNAL_H
#define O2C_STORE_DB_INTERNAL_H
#include <sqlite3.h>
#include "store/db.h"
#include "store/query.h"

/* The cached prepared statement for SQL (a string literal: the cache is keyed
 * by its address), reset with bindings cleared.  NULL on failure, with the
 * error recorded.  Call db_stmt_done() when finished reading, so no read
 * snapshot stays open. */
sqlite3_stmt *db_stmt(struct db *db, const char *sql);
void db_stmt_done(sqlite3_stmt *st);

/* Steps ST expecting no rows (INSERT/UPDATE/DELETE), then resets it.
 * STORE_OK, or the mapped error with WHAT in the message. */
int db_step_done(struct db *db, sqlite3_stmt *st, const char *what);

/* Records the connection's SQLite error while doing WHAT; returns the mapped
 * code (STORE_BUSY, STORE_EXISTS for unique violations, else STORE_ERROR). */
int db_sqlite_fail(struct db *db, const char *what);

sqlite3 *db_conn(struct db *db);

/* Steps ST (bound) to its end, copying every row into RS (rowset.h), then
 * db_stmt_done.  STORE_OK, or the error while doing WHAT (STORE_ERROR when
 * out of memory or past RS's budget). */
struct rowset;
int rowset_capture_sqlite(struct db *db, sqlite3_stmt *st, struct rowset *rs, const char *what);

/* Binds S, or NULL when S is NULL. */
int db_bind_text(sqlite3_stmt *st, int idx, const char *s);
/* Copies column COL as text into BUF of CAP bytes ("" for NULL; truncates). */
void db_col_copy(sqlite3_stmt *st, int col, char *buf, size_t cap);
/* Column COL as text, NULL for SQL NULL. Valid until the next step/reset. */
const char *db_col_text(sqlite3_stmt *st, int col);

/* Joins DIR and NAME into BUF; -1 when it does not fit. */
int db_join_path(char *buf, size_t cap, const char *dir, const char *name);
/* fsyncs the directory DIR (after a rename into it); -1 with errno. */
int db_fsync_dir(const char *dir);

#endif
