/* The PostgreSQL side of db.h and query.h: every call finds the operation
 * running on this fiber (db_pg.h) and runs there. */
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "store/db_internal.h"
#include "store/db_pg.h"
#include "store/db_schema.h"

/* The running operation, or NULL with the failure recorded: a store call
 * on PostgreSQL outside db_run is a bug in the caller, said plainly. */
static struct db_pg_op *running(struct db *db)
{
    struct db_pg_op *op = db_pg_current(db);
    if (op == NULL)
        db_fail(db, STORE_ERROR,
                "a PostgreSQL statement outside a store operation (a bug: "
                "call the store inside db_run)");
    return op;
}

int db_pg_call_exec(struct db *db, const char *sql, const char *what, const struct db_arg *args,
                    size_t n)
{
    struct db_pg_op *op = running(db);
    return op ? db_pg_exec(op, sql, what, args, n) : STORE_ERROR;
}

int db_pg_call_query(struct db *db, const char *sql, const char *what, struct rowset *rs,
                     const struct db_arg *args, size_t n)
{
    struct db_pg_op *op = running(db);
    return op ? db_pg_query(op, sql, what, rs, args, n) : STORE_ERROR;
}

int db_pg_call_query_first(struct db *db, const char *sql, const char *what, int64_t *out,
                           char *text, size_t cap, int *found, const struct db_arg *args, size_t n)
{
    struct db_pg_op *op = running(db);
    return op ? db_pg_query_first(op, sql, what, out, text, cap, found, args, n) : STORE_ERROR;
}

int db_pg_call_tx_begin(struct db *db)
{
    struct db_pg_op *op = running(db);
    return op ? db_pg_tx_begin(op) : STORE_ERROR;
}

int db_pg_call_tx_commit(struct db *db)
{
    struct db_pg_op *op = running(db);
    return op ? db_pg_tx_commit(op) : STORE_ERROR;
}

void db_pg_call_tx_rollback(struct db *db)
{
    struct db_pg_op *op = running(db);
    if (op)
        db_pg_tx_rollback(op);
}

int64_t db_pg_call_changes(struct db *db)
{
    struct db_pg_op *op = running(db);
    return op ? op->changes : 0;
}

/* ------------------------------------------------------------ operations */

struct pg_run {
    struct db_pg_op op;
    struct db *db;
    db_op_fn fn;
    void *arg;
    db_done_fn done;
    void *ud;
    int finished;
};

static void run_entry(struct db_pg_op *op, void *arg)
{
    (void)op;
    struct pg_run *r = arg;
    r->fn(r->db, r->arg);
}

static void run_done(struct db_pg_op *op, void *ud)
{
    struct pg_run *r = ud;
    r->done(r->ud, op->not_started ? op->err : NULL);
    free(r);
}

int db_pg_call_run(struct db *db, db_op_fn fn, void *arg, db_done_fn done, void *ud)
{
    struct pg_run *r = calloc(1, sizeof *r);
    if (r == NULL)
        return db_fail(db, STORE_ERROR, "out of memory starting a database operation"), -1;
    *r = (struct pg_run){.db = db, .fn = fn, .arg = arg, .done = done, .ud = ud};
    if (db_pg_op_start(db_pg_engine(db), &r->op, run_entry, r, run_done, r) != 0) {
        db_fail(db, STORE_UNAVAILABLE, "%s", r->op.err);
        free(r);
        return -1;
    }
    return 0;
}

static void wait_done(struct db_pg_op *op, void *ud)
{
    (void)op;
    ((struct pg_run *)ud)->finished = 1;
}

int db_pg_call_run_wait(struct db *db, db_op_fn fn, void *arg)
{
    uv_loop_t *loop = db_pg_loop(db_pg_engine(db));
    struct pg_run r = {.db = db, .fn = fn, .arg = arg};
    if (db_pg_op_start(db_pg_engine(db), &r.op, run_entry, &r, wait_done, &r) != 0)
        return db_fail(db, STORE_UNAVAILABLE, "%s", r.op.err);
    while (!r.finished)
        uv_run(loop, UV_RUN_ONCE);
    /* FN's last failure, for db_errmsg once it is over. */
    return db_fail(db, r.op.not_started ? STORE_UNAVAILABLE : STORE_OK, "%s", r.op.err);
}

/* ------------------------------------------------------------ schema */

struct schema_call {
    int rc, version, applied;
};

static void schema_version_fn(struct db *db, void *arg)
{
    struct schema_call *c = arg;
    c->rc = db_pg_schema_version(db_pg_current(db), &c->version);
}

static void migrate_fn(struct db *db, void *arg)
{
    struct schema_call *c = arg;
    c->rc = db_pg_migrate(db_pg_current(db), &c->version, &c->applied);
}

/* Runs FN inside the running operation, or in one of its own. */
static int in_operation(struct db *db, db_op_fn fn, struct schema_call *c)
{
    if (db_pg_current(db)) {
        fn(db, c);
        return c->rc;
    }
    int rc = db_pg_call_run_wait(db, fn, c);
    return rc != STORE_OK ? rc : c->rc;
}

int db_pg_call_schema_version(struct db *db)
{
    struct schema_call c = {0};
    return in_operation(db, schema_version_fn, &c) == STORE_OK ? c.version : -1;
}

int db_pg_call_migrate(struct db *db, int *applied)
{
    struct schema_call c = {0};
    int rc = in_operation(db, migrate_fn, &c);
    if (applied)
        *applied = c.applied;
    return rc;
}

static void on_engine_closed(void *ud)
{
    *(int *)ud = 1;
}

void db_pg_close_engine(struct db_pg *pg, void *loop)
{
    if (pg == NULL)
        return;
    int closed = 0;
    db_pg_free(pg, on_engine_closed, &closed);
    while (!closed)
        uv_run(loop, UV_RUN_ONCE);
}

static const char SQL_UNVALIDATED[] =
    "SELECT count(*) FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace"
    " WHERE n.nspname = current_schema() AND NOT c.convalidated";

int db_pg_call_check(struct db *db)
{
    int version = db_pg_call_schema_version(db);
    if (version < 0)
        return STORE_ERROR;
    if (version != db_schema_latest)
        return db_fail(db, STORE_ERROR,
                       "check failed: schema version %d, expected %d (run `o2c db migrate`)",
                       version, db_schema_latest);
    int64_t unvalidated = 0;
    int rc = db_query_first(db, SQL_UNVALIDATED, "checking constraints", &unvalidated, NULL, 0,
                            NULL, DB_NO_ARGS);
    if (rc != STORE_OK)
        return rc;
    if (unvalidated > 0)
        return db_fail(db, STORE_ERROR,
                       "check failed: %lld constraints are not validated (ALTER TABLE ... "
                       "VALIDATE CONSTRAINT)",
                       (long long)unvalidated);
    return db_fail(db, STORE_OK, "%s", "");
}
