/* db_pg.h: the store's statements on PostgreSQL, one fiber per operation. */
#include "store/db_pg.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "host/fiber.h"
#include "store/db.h"
#include "store/db_schema.h"
#include "store/rowset.h"
#include "store/rowset_pg.h"

/* Every statement of core/store with room to spare, open-addressed on the
 * SQL literal's address (query.h: SQL has static storage). */
#define PG_STMT_SLOTS 512
#define PG_SQL_MAX 8192
#define PG_PARAMS_MAX 64
#define PG_SPARE_FIBERS 16
/* Any fixed number: the one lock every writing transaction takes. */
#define PG_WRITER_LOCK 0x6f3263 /* "o2c" */

struct pg_stmt {
    const char *sql; /* the key */
    char *text;      /* $N form */
    char name[16];   /* prepared statement name */
    int nparams;
};

struct db_pg {
    uv_loop_t *loop;
    struct pg_pool *pool;
    struct pg_stmt stmts[PG_STMT_SLOTS];
    unsigned nstmts;
    struct fiber *spare[PG_SPARE_FIBERS];
    int nspare;
};

static const char SQL_BEGIN[] = "BEGIN";
static const char SQL_WRITER_LOCK[] = "SELECT pg_advisory_xact_lock(?)";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SAVEPOINT[] = "SAVEPOINT o2c_nested";
static const char SQL_RELEASE[] = "RELEASE o2c_nested";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO o2c_nested";
/* SQLite keeps the schema version in PRAGMA user_version; here a table. */
static const char SQL_VERSION_TABLE[] =
    "CREATE TABLE IF NOT EXISTS o2c_schema (version INTEGER NOT NULL)";
static const char SQL_VERSION_GET[] = "SELECT max(version) FROM o2c_schema";
static const char SQL_VERSION_SET[] = "INSERT INTO o2c_schema (version) VALUES (?)";

struct db_pg *db_pg_new(uv_loop_t *loop, const struct db_pg_config *config)
{
    struct db_pg *pg = calloc(1, sizeof *pg);
    if (pg == NULL)
        return NULL;
    pg->loop = loop;
    struct pg_pool_config pc = {
        .conninfo = config->url,
        .size = config->pool_size,
        .query_timeout_ms = config->query_timeout_ms,
        .connect_timeout_ms = config->connect_timeout_ms,
    };
    if ((pg->pool = pg_pool_new(loop, &pc)) == NULL) {
        free(pg);
        return NULL;
    }
    return pg;
}

void db_pg_free(struct db_pg *pg, void (*closed)(void *ud), void *ud)
{
    if (pg == NULL)
        return;
    pg_pool_close(pg->pool, closed, ud);
    for (unsigned i = 0; i < PG_STMT_SLOTS; i++)
        free(pg->stmts[i].text);
    for (int i = 0; i < pg->nspare; i++)
        fiber_free(pg->spare[i]);
    free(pg);
}

struct pg_pool *db_pg_pool(struct db_pg *pg)
{
    return pg->pool;
}

uv_loop_t *db_pg_loop(struct db_pg *pg)
{
    return pg->loop;
}

int db_pg_translate(const char *sql, char *out, size_t cap)
{
    size_t o = 0;
    int n = 0;
    char quote = 0;
    for (const char *p = sql; *p; p++) {
        char num[16] = {*p, 0};
        if (quote) {
            quote = *p == quote ? 0 : quote;
        } else if (*p == '\'' || *p == '"') {
            quote = *p;
        } else if (*p == '?') {
            snprintf(num, sizeof num, "$%d", ++n);
        }
        size_t len = strlen(num);
        if (o + len >= cap)
            return -1;
        memcpy(out + o, num, len);
        o += len;
    }
    out[o] = '\0';
    return n;
}

/* The statement for SQL, translated on first use; NULL when the table is
 * full or out of memory. */
static struct pg_stmt *stmt_for(struct db_pg *pg, const char *sql)
{
    size_t h = ((uintptr_t)sql >> 3) % PG_STMT_SLOTS;
    for (size_t i = 0; i < PG_STMT_SLOTS; i++) {
        struct pg_stmt *s = &pg->stmts[(h + i) % PG_STMT_SLOTS];
        if (s->sql == sql)
            return s;
        if (s->sql != NULL)
            continue;
        char text[PG_SQL_MAX];
        int nparams = db_pg_translate(sql, text, sizeof text);
        if (nparams < 0 || nparams > PG_PARAMS_MAX || (s->text = strdup(text)) == NULL)
            return NULL;
        s->sql = sql;
        s->nparams = nparams;
        snprintf(s->name, sizeof s->name, "o2c_%u", pg->nstmts++);
        return s;
    }
    return NULL;
}

static int op_fail(struct db_pg_op *op, int rc, const char *what, const char *why)
{
    snprintf(op->err, sizeof op->err, "%s: %s", what, why);
    return rc;
}

/* SQLSTATE classes as the store's codes (SQLite's mapping in db.c). */
static int rc_of_sqlstate(const char *state)
{
    if (strcmp(state, "23505") == 0)
        return STORE_EXISTS; /* unique_violation */
    if (strcmp(state, "P0001") == 0)
        return STORE_REFUSED; /* raise_exception: the append-only audit trigger */
    if (strncmp(state, "23", 2) == 0 || strncmp(state, "22", 2) == 0)
        return STORE_INVALID; /* integrity constraints, data exceptions */
    if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 || strcmp(state, "55P03") == 0)
        return STORE_BUSY;
    if (strcmp(state, "53100") == 0)
        return STORE_FULL; /* disk_full */
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
        return STORE_UNAVAILABLE; /* connection exceptions, admin shutdown */
    return STORE_ERROR;
}

static void on_reply(struct pg_reply *reply, void *ud);
static int reply_rc(struct db_pg_op *op, enum pg_error e, const char *what);

/* Runs the loop until *FLAG is cleared: a blocking operation's wait. */
static void run_loop_while(struct db_pg *pg, const int *flag)
{
    while (*flag)
        uv_run(pg->loop, UV_RUN_ONCE);
}

/* Sends Q and waits for its reply: suspended on a fiber, or running the
 * loop for a blocking operation. */
static int send_and_wait(struct db_pg_op *op, const struct pg_query *q, const char *what)
{
    enum pg_error e = pg_lease_query(op->lease, q, on_reply, op);
    if (e == PG_OK) {
        op->waiting = 1;
        if (op->blocking)
            run_loop_while(op->pg, &op->waiting);
        else
            fiber_suspend(); /* on_reply resumes us */
        e = op->error;
    }
    return reply_rc(op, e, what);
}

/* Sends SQL with ARGS on the operation's connection and suspends until the
 * reply; OP->result holds it (PQclear it) when STORE_OK. */
static int run_statement(struct db_pg_op *op, const char *sql, const char *what,
                         const struct db_arg *args, size_t n)
{
    struct pg_stmt *st = stmt_for(op->pg, sql);
    if (st == NULL)
        return op_fail(op, STORE_ERROR, what, "statement too long or too many statements");
    if ((size_t)st->nparams != n)
        return op_fail(op, STORE_ERROR, what, "wrong number of arguments for the statement");
    const char *values[PG_PARAMS_MAX];
    int lengths[PG_PARAMS_MAX], formats[PG_PARAMS_MAX];
    char ints[PG_PARAMS_MAX][24];
    char *cut[PG_PARAMS_MAX] = {0}; /* copies of texts cut to a length */
    for (size_t i = 0; i < n; i++) {
        const struct db_arg *a = &args[i];
        lengths[i] = 0;
        formats[i] = 0;
        values[i] = NULL;
        if (a->type == DB_ARG_INT) {
            snprintf(ints[i], sizeof ints[i], "%" PRId64, a->integer);
            values[i] = ints[i];
        } else if (a->type == DB_ARG_BLOB) {
            values[i] = a->len ? a->bytes : "";
            lengths[i] = (int)a->len;
            formats[i] = 1;
        } else if (a->type == DB_ARG_TEXT && a->bytes && a->len) {
            values[i] = cut[i] = strndup(a->bytes, a->len);
        } else if (a->type == DB_ARG_TEXT) {
            values[i] = a->bytes;
        }
    }
    struct pg_query q = {.sql = st->text,
                         .nparams = (int)n,
                         .values = values,
                         .lengths = lengths,
                         .formats = formats,
                         .prepared = st->name};
    int oom = 0;
    for (size_t i = 0; i < n; i++)
        oom |= args[i].type == DB_ARG_TEXT && args[i].bytes && args[i].len && cut[i] == NULL;
    int rc = oom ? op_fail(op, STORE_ERROR, what, "out of memory") : send_and_wait(op, &q, what);
    for (size_t i = 0; i < n; i++)
        free(cut[i]);
    return rc;
}

/* The outcome of a reply as a store code; OP->result kept only on success. */
static int reply_rc(struct db_pg_op *op, enum pg_error e, const char *what)
{
    if (e == PG_OK)
        return STORE_OK;
    if (op->result != NULL) {
        const char *msg = PQresultErrorField(op->result, PG_DIAG_MESSAGE_PRIMARY);
        snprintf(op->err, sizeof op->err, "%s: %s (sqlstate %s)", what, msg ? msg : "error",
                 op->sqlstate);
        PQclear(op->result);
        op->result = NULL;
        return rc_of_sqlstate(op->sqlstate);
    }
    if (e == PG_ERR_NOMEM)
        return op_fail(op, STORE_ERROR, what, "out of memory");
    if (e == PG_ERR_LOST)
        return op_fail(op, STORE_UNAVAILABLE, what,
                       "the connection to PostgreSQL was lost mid-statement, so nothing was "
                       "confirmed: try again");
    if (e == PG_ERR_TIMEOUT)
        return op_fail(op, STORE_BUSY, what, "PostgreSQL did not answer in time");
    return op_fail(op, STORE_UNAVAILABLE, what, "PostgreSQL cannot be reached");
}

/* The operation whose fiber runs now: what the store's db_* calls use. */
static _Thread_local struct db_pg_op *running_op;

struct db_pg_op *db_pg_running(void)
{
    return running_op;
}

/* Switches into OP's fiber (START: its first time); 1 when FN returned. */
static int op_enter(struct db_pg_op *op, int first);

/* FN returned: the connection and the fiber go back, then DONE. */
static void op_finished(struct db_pg_op *op)
{
    struct db_pg *pg = op->pg;
    if (op->lease)
        pg_lease_release(op->lease); /* rolled back there if FN left a transaction open */
    op->lease = NULL;
    if (pg->nspare < PG_SPARE_FIBERS)
        pg->spare[pg->nspare++] = op->fiber;
    else
        fiber_free(op->fiber);
    op->fiber = NULL;
    op->done(op, op->ud);
}

static void on_reply(struct pg_reply *reply, void *ud)
{
    struct db_pg_op *op = ud;
    op->error = reply->error;
    op->result = reply->result;
    reply->result = NULL; /* ours now */
    snprintf(op->sqlstate, sizeof op->sqlstate, "%s", reply->sqlstate ? reply->sqlstate : "");
    op->waiting = 0;
    if (!op->blocking && op_enter(op, 0))
        op_finished(op);
}

int db_pg_exec(struct db_pg_op *op, const char *sql, const char *what, const struct db_arg *args,
               size_t n)
{
    int rc = run_statement(op, sql, what, args, n);
    if (rc == STORE_OK) {
        op->changes = strtoll(PQcmdTuples(op->result), NULL, 10);
        PQclear(op->result);
        op->result = NULL;
    }
    return rc;
}

int db_pg_query(struct db_pg_op *op, const char *sql, const char *what, struct rowset *rs,
                const struct db_arg *args, size_t n)
{
    int rc = run_statement(op, sql, what, args, n);
    if (rc != STORE_OK)
        return rc;
    if (rowset_capture_pg(op->result, rs) != 0)
        rc = op_fail(op, STORE_ERROR, what, "out of memory (or more than the result may hold)");
    PQclear(op->result);
    op->result = NULL;
    return rc;
}

int db_pg_query_first(struct db_pg_op *op, const char *sql, const char *what, int64_t *out,
                      char *text, size_t cap, int *found, const struct db_arg *args, size_t n)
{
    int rc = run_statement(op, sql, what, args, n);
    if (rc != STORE_OK)
        return rc;
    PGresult *res = op->result;
    int has = PQntuples(res) > 0 && PQnfields(res) > 0;
    if (found)
        *found = has;
    if (has) {
        const char *v = PQgetisnull(res, 0, 0) ? NULL : PQgetvalue(res, 0, 0);
        if (out)
            *out = v ? (v[0] == 't' ? 1 : v[0] == 'f' ? 0 : strtoll(v, NULL, 10)) : 0;
        if (text && cap)
            snprintf(text, cap, "%s", v ? v : "");
    }
    PQclear(res);
    op->result = NULL;
    return rc;
}

int db_pg_tx_begin(struct db_pg_op *op)
{
    int rc;
    if (op->tx_depth > 0) {
        rc = db_pg_exec(op, SQL_SAVEPOINT, "beginning a nested transaction", NULL, 0);
    } else if ((rc = db_pg_exec(op, SQL_BEGIN, "beginning a transaction", NULL, 0)) == STORE_OK) {
        rc = db_pg_query_first(op, SQL_WRITER_LOCK, "waiting for the writer lock", NULL, NULL, 0,
                               NULL, DB_ARGS(DB_INT(PG_WRITER_LOCK)));
        if (rc != STORE_OK)
            db_pg_exec(op, SQL_ROLLBACK, "rolling back", NULL, 0);
    }
    if (rc == STORE_OK)
        op->tx_depth++;
    return rc;
}

int db_pg_tx_commit(struct db_pg_op *op)
{
    if (op->tx_depth <= 0)
        return op_fail(op, STORE_ERROR, "committing", "no transaction is open");
    int outer = op->tx_depth == 1;
    int rc = db_pg_exec(op, outer ? SQL_COMMIT : SQL_RELEASE, "committing", NULL, 0);
    /* A failed COMMIT has ended the transaction all the same. */
    if (rc == STORE_OK || outer)
        op->tx_depth--;
    return rc;
}

void db_pg_tx_rollback(struct db_pg_op *op)
{
    if (op->tx_depth <= 0)
        return;
    char keep[sizeof op->err];
    memcpy(keep, op->err, sizeof keep); /* the failure that led here says more */
    if (op->tx_depth == 1) {
        db_pg_exec(op, SQL_ROLLBACK, "rolling back", NULL, 0);
    } else if (db_pg_exec(op, SQL_ROLLBACK_TO, "rolling back", NULL, 0) == STORE_OK) {
        db_pg_exec(op, SQL_RELEASE, "rolling back", NULL, 0);
    }
    op->tx_depth--;
    memcpy(op->err, keep, sizeof keep);
}

/* One schema step: several statements, the simple protocol. */
static int apply_step(struct db_pg_op *op, int version)
{
    char what[64];
    snprintf(what, sizeof what, "migrating to schema version %d", version);
    struct pg_query q = {.sql = db_schema_pg_migrations[version], .simple = 1};
    int rc = send_and_wait(op, &q, what);
    if (rc == STORE_OK) {
        PQclear(op->result);
        op->result = NULL;
        rc = db_pg_exec(op, SQL_VERSION_SET, what, DB_ARGS(DB_INT(version)));
    }
    return rc;
}

int db_pg_migrate(struct db_pg_op *op, int *version, int *applied)
{
    *applied = 0;
    int rc = db_pg_tx_begin(op); /* the writer lock: instances starting together take turns */
    if (rc == STORE_OK)
        rc = db_pg_exec(op, SQL_VERSION_TABLE, "creating the schema version table", DB_NO_ARGS);
    int64_t v = 0;
    if (rc == STORE_OK)
        rc = db_pg_query_first(op, SQL_VERSION_GET, "reading the schema version", &v, NULL, 0, NULL,
                               DB_NO_ARGS);
    if (rc == STORE_OK && v > db_schema_latest) {
        snprintf(op->err, sizeof op->err,
                 "postgresql: schema version %d is newer than this o2c understands (%d); run a "
                 "newer o2c or restore a backup",
                 (int)v, db_schema_latest);
        rc = STORE_ERROR;
    }
    for (int64_t next = v + 1; rc == STORE_OK && next <= db_schema_latest; next++)
        if ((rc = apply_step(op, (int)next)) == STORE_OK)
            (*applied)++;
    rc = rc == STORE_OK ? db_pg_tx_commit(op) : (db_pg_tx_rollback(op), rc);
    *version = rc == STORE_OK ? db_schema_latest : (int)v;
    return rc;
}

int db_pg_schema_version(struct db_pg_op *op, int *version)
{
    int64_t v = 0;
    int found = 0;
    int rc = db_pg_query_first(op, SQL_VERSION_GET, "reading the schema version", &v, NULL, 0,
                               &found, DB_NO_ARGS);
    if (rc == STORE_UNAVAILABLE || rc == STORE_OK) {
        *version = (int)v;
        return rc;
    }
    *version = 0; /* no version table yet: an empty database */
    return STORE_OK;
}

static void op_entry(void *arg)
{
    struct db_pg_op *op = arg;
    op->fn(op, op->arg);
}

static int op_enter(struct db_pg_op *op, int first)
{
    running_op = op;
    int finished = first ? fiber_start(op->fiber, op_entry, op) : fiber_resume(op->fiber);
    running_op = NULL;
    return finished;
}

static void op_not_started(struct db_pg_op *op, const char *why)
{
    op->not_started = 1;
    snprintf(op->err, sizeof op->err, "%s", why);
    op->done(op, op->ud);
}

static void on_lease(struct pg_lease *lease, enum pg_error error, const char *message, void *ud)
{
    struct db_pg_op *op = ud;
    struct db_pg *pg = op->pg;
    char why[sizeof op->err];
    if (lease == NULL) {
        snprintf(why, sizeof why, "PostgreSQL cannot be reached (%s): %s", pg_error_name(error),
                 message ? message : "");
        op_not_started(op, why);
        return;
    }
    op->lease = lease;
    op->fiber = pg->nspare > 0 ? pg->spare[--pg->nspare] : fiber_new(0);
    if (op->fiber == NULL) {
        pg_lease_release(lease);
        op->lease = NULL;
        op_not_started(op, "out of memory starting a database operation");
        return;
    }
    if (op_enter(op, 1))
        op_finished(op); /* FN sent no statement */
}

static void on_blocking_lease(struct pg_lease *lease, enum pg_error error, const char *message,
                              void *ud)
{
    struct db_pg_op *op = ud;
    op->lease = lease;
    op->waiting = 0;
    if (lease == NULL)
        snprintf(op->err, sizeof op->err, "PostgreSQL cannot be reached (%s): %s",
                 pg_error_name(error), message ? message : "");
}

int db_pg_blocking_begin(struct db_pg *pg, struct db_pg_op *op)
{
    memset(op, 0, sizeof *op);
    op->pg = pg;
    op->blocking = 1;
    op->waiting = 1;
    enum pg_error e = pg_pool_acquire(pg->pool, on_blocking_lease, op);
    if (e != PG_OK) {
        snprintf(op->err, sizeof op->err, "PostgreSQL cannot be reached (%s): %s", pg_error_name(e),
                 e == PG_ERR_UNAVAILABLE ? pg_pool_why_down(pg->pool) : "try again shortly");
        return -1;
    }
    run_loop_while(pg, &op->waiting);
    return op->lease ? 0 : -1;
}

void db_pg_blocking_end(struct db_pg_op *op)
{
    if (op->lease)
        pg_lease_release(op->lease);
    op->lease = NULL;
}

int db_pg_op_start(struct db_pg *pg, struct db_pg_op *op, db_pg_op_fn fn, void *arg,
                   db_pg_done_fn done, void *ud)
{
    memset(op, 0, sizeof *op);
    op->pg = pg;
    op->fn = fn;
    op->arg = arg;
    op->done = done;
    op->ud = ud;
    enum pg_error e = pg_pool_acquire(pg->pool, on_lease, op);
    if (e == PG_OK)
        return 0;
    /* Refused at once: down, too many waiting, closing, out of memory. */
    op->not_started = 1;
    snprintf(op->err, sizeof op->err, "PostgreSQL cannot be reached (%s): %s", pg_error_name(e),
             e == PG_ERR_UNAVAILABLE ? pg_pool_why_down(pg->pool) : "try again shortly");
    return -1;
}
