/* The PostgreSQL engine behind query.h: the store's sequential C run on a
 * fiber (host/fiber.h) that suspends while libpq answers on the loop.
 *
 * One `struct db_pg` per process holds the pool (pg_pool.h) and the
 * translated statements.  Each store operation is a `struct db_pg_op`: a
 * lease of one connection and a fiber.  db_pg_op_start leases a
 * connection, then runs FN on the fiber; every statement FN sends
 * suspends the fiber until its reply, so the loop goes on serving others;
 * DONE runs on the loop once FN has returned and the connection is back.
 *
 * Statements are the store's SQLite-dialect text with ? placeholders,
 * rewritten once to $1..$N and prepared per connection.  Transactions take
 * one advisory lock, so writers run one at a time across every instance,
 * as SQLite's BEGIN IMMEDIATE makes them on one machine: the store's
 * revision checks hold unchanged and no transaction has to be retried. */
#ifndef O2C_STORE_DB_PG_H
#define O2C_STORE_DB_PG_H
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "store/pg_pool.h"
#include "store/query.h"

struct db_pg;
struct db_pg_op;
typedef void (*db_pg_op_fn)(struct db_pg_op *op, void *arg);
typedef void (*db_pg_done_fn)(struct db_pg_op *op, void *ud);

struct db_pg_config {
    const char *url; /* libpq URL or key=value string */
    unsigned pool_size;
    unsigned query_timeout_ms, connect_timeout_ms; /* 0: pg_conn.h's defaults */
};

/* NULL only when out of memory.  Connecting happens on the loop. */
struct db_pg *db_pg_new(uv_loop_t *loop, const struct db_pg_config *config);
/* Closes the pool (CLOSED(UD), may be NULL, runs from the loop once it is
 * gone); no operation may be running. */
void db_pg_free(struct db_pg *pg, void (*closed)(void *ud), void *ud);
struct pg_pool *db_pg_pool(struct db_pg *pg);
uv_loop_t *db_pg_loop(struct db_pg *pg);

/* The per-operation state, owned by the caller, valid until DONE ran. */
struct db_pg_op {
    struct db_pg *pg;
    struct pg_lease *lease;
    struct fiber *fiber;
    db_pg_op_fn fn;
    void *arg;
    db_pg_done_fn done;
    void *ud;
    int tx_depth;
    int blocking;    /* waits by running the loop, not on a fiber */
    int waiting;     /* for a reply (or, blocking, for the lease) */
    int64_t changes; /* rows the last statement changed */
    /* The reply being waited for. */
    enum pg_error error;
    PGresult *result;
    char sqlstate[6];
    /* 1 when FN never ran (no connection could be had); ERR says why. */
    int not_started;
    char err[512];
};

/* Leases a connection and runs FN(OP, ARG) on a fiber; DONE(OP, UD) runs
 * once from the loop afterwards (also when no connection could be had:
 * then OP->not_started is 1 and OP->err says why).  0, or -1 when it was
 * refused at once (the database is down, too many waiting, out of memory):
 * then DONE will not run and OP->err says why. */
int db_pg_op_start(struct db_pg *pg, struct db_pg_op *op, db_pg_op_fn fn, void *arg,
                   db_pg_done_fn done, void *ud);

/* A blocking operation: no fiber, each statement runs the loop until its
 * reply.  For the CLI, start-up and tests, never from a loop callback.
 * Begin leases a connection (running the loop): 0, or -1 with OP->err
 * saying why; end gives it back. */
int db_pg_blocking_begin(struct db_pg *pg, struct db_pg_op *op);
void db_pg_blocking_end(struct db_pg_op *op);

/* Inside FN (or a blocking operation), query.h's functions for this operation.  Each returns a
 * STORE_* code; the message goes to OP->err. */
int db_pg_exec(struct db_pg_op *op, const char *sql, const char *what, const struct db_arg *args,
               size_t n);
int db_pg_query(struct db_pg_op *op, const char *sql, const char *what, struct rowset *rs,
                const struct db_arg *args, size_t n);
int db_pg_query_first(struct db_pg_op *op, const char *sql, const char *what, int64_t *out,
                      char *text, size_t cap, int *found, const struct db_arg *args, size_t n);
int db_pg_tx_begin(struct db_pg_op *op);
int db_pg_tx_commit(struct db_pg_op *op);
void db_pg_tx_rollback(struct db_pg_op *op);

/* The operation running now (inside its FN), or NULL. */
struct db_pg_op *db_pg_running(void);

/* Inside FN: brings the schema to db_schema_latest (db_schema.h), in one
 * transaction under the writer lock.  *VERSION: the version after;
 * *APPLIED: steps run.  Refuses a database newer than this build. */
int db_pg_migrate(struct db_pg_op *op, int *version, int *applied);
/* Inside FN: the schema version (0 for an empty database). */
int db_pg_schema_version(struct db_pg_op *op, int *version);

/* SQL with ? placeholders rewritten to $1..$N (outside quotes) into OUT
 * of CAP bytes; the count of parameters, or -1 when it does not fit. */
int db_pg_translate(const char *sql, char *out, size_t cap);

#endif
