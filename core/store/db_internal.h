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

struct rowset;

/* 1 when DB is a PostgreSQL database. */
int db_is_pg(const struct db *db);

#ifdef O2C_HAVE_PQ
/* The PostgreSQL side of db.h and query.h (query_pg.c): each finds the
 * operation running on this fiber (db_pg.h) and fails, saying so, outside
 * one. */
struct db_pg *db_pg_engine(struct db *db);
/* The operation running on this fiber, else DB's blocking one, or NULL. */
struct db_pg_op *db_pg_current(struct db *db);
int db_pg_call_exec(struct db *db, const char *sql, const char *what, const struct db_arg *args,
                    size_t n);
int db_pg_call_query(struct db *db, const char *sql, const char *what, struct rowset *rs,
                     const struct db_arg *args, size_t n);
int db_pg_call_query_first(struct db *db, const char *sql, const char *what, int64_t *out,
                           char *text, size_t cap, int *found, const struct db_arg *args, size_t n);
int db_pg_call_tx_begin(struct db *db);
int db_pg_call_tx_commit(struct db *db);
void db_pg_call_tx_rollback(struct db *db);
int64_t db_pg_call_changes(struct db *db);
int db_pg_call_schema_version(struct db *db);
int db_pg_call_migrate(struct db *db, int *applied);
/* db_check on PostgreSQL: the schema version and no constraint left
 * unvalidated (the server enforces the rest). */
int db_pg_call_check(struct db *db);
int db_pg_call_run(struct db *db, db_op_fn fn, void *arg, db_done_fn done, void *ud);
int db_pg_call_run_wait(struct db *db, db_op_fn fn, void *arg);
/* Closes the engine and runs LOOP until its connections are gone. */
void db_pg_close_engine(struct db_pg *pg, void *loop);
#endif

#endif
