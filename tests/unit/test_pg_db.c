/* db_pg: the store's query.h statements on a real PostgreSQL 15, each
 * operation on a fiber that suspends while libpq answers on the loop.
 *
 * Run through tests/lib/pg.sh (ctest does), which passes O2C_TEST_PG_URL. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <libpq-fe.h>
#include <uv.h>
#include "host/fiber.h"
#include "store/db.h"
#include "store/db_pg.h"
#include "store/query.h"
#include "store/rowset.h"

#define WATCHDOG_MS 20000

static const char *pg_url;

struct fixture {
    uv_loop_t loop;
    uv_timer_t watchdog;
    int expired;
    struct db_pg *pg;
};

static void on_watchdog(uv_timer_t *t)
{
    struct fixture *f = t->data;
    f->expired = 1;
    uv_stop(&f->loop);
}

/* The test's own blocking connection, for set-up and checks. */
static void admin_exec(const char *sql)
{
    PGconn *pq = PQconnectdb(pg_url);
    assert_int_equal(PQstatus(pq), CONNECTION_OK);
    PGresult *r = PQexec(pq, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(pq);
}

static long admin_count(const char *sql)
{
    PGconn *pq = PQconnectdb(pg_url);
    assert_int_equal(PQstatus(pq), CONNECTION_OK);
    PGresult *r = PQexec(pq, sql);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    long n = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    PQfinish(pq);
    return n;
}

static struct fixture *fixture_new(const char *url)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->watchdog);
    f->watchdog.data = f;
    struct db_pg_config cfg = {.url = url, .pool_size = 3, .connect_timeout_ms = 2000};
    f->pg = db_pg_new(&f->loop, &cfg);
    assert_non_null(f->pg);
    return f;
}

static int setup(void **state)
{
    admin_exec(
        "DROP TABLE IF EXISTS items;"
        "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT UNIQUE, data BYTEA, note TEXT)");
    *state = fixture_new(pg_url);
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    db_pg_free(f->pg, NULL, NULL);
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    int rc = uv_loop_close(&f->loop);
    free(f);
    assert_int_equal(rc, 0);
    return 0;
}

/* An operation under test: what FN did and when DONE came. */
struct job {
    struct db_pg_op op;
    struct fixture *f;
    int rc, done, started;
    int *order, position; /* the order DONE came in */
    int64_t count;
    struct rowset rows;
    char text[64];
};

static void on_done(struct db_pg_op *op, void *ud)
{
    (void)op;
    struct job *j = ud;
    j->done = 1;
    if (j->order)
        j->position = ++*j->order;
    uv_stop(&j->f->loop);
}

static void start(struct fixture *f, struct job *j, db_pg_op_fn fn)
{
    j->f = f;
    rowset_init(&j->rows, 0);
    assert_int_equal(db_pg_op_start(f->pg, &j->op, fn, j, on_done, j), 0);
}

static void wait_done(struct fixture *f, struct job *const *jobs, size_t n)
{
    f->expired = 0;
    uv_timer_start(&f->watchdog, on_watchdog, WATCHDOG_MS, 0);
    for (;;) {
        size_t left = 0;
        for (size_t i = 0; i < n; i++)
            left += !jobs[i]->done;
        if (left == 0 || f->expired)
            break;
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&f->watchdog);
    for (size_t i = 0; i < n; i++)
        if (!jobs[i]->done)
            fail_msg("operation %zu still running after %d ms", i, WATCHDOG_MS);
}

/* ---------------------------------------------------------------- statements */

static const char SQL_INSERT[] = "INSERT INTO items (id, name, data, note) VALUES (?, ?, ?, ?)";
static const char SQL_SELECT[] =
    "SELECT id, name, data, note, '?' AS \"question?\" FROM items ORDER BY id";
static const char SQL_COUNT[] = "SELECT count(*) FROM items";
static const char SQL_NAME_OF[] = "SELECT name FROM items WHERE id = ?";
static const char SQL_RENAME[] = "UPDATE items SET name = ? WHERE id > ?";
static const char SQL_SLEEP[] = "SELECT pg_sleep(0.3)";

static void insert_and_read(struct db_pg_op *op, void *arg)
{
    struct job *j = arg;
    j->started = fiber_current() != NULL; /* no cmocka assert on a fiber: it longjmps */
    static const unsigned char bytes[] = {0, 1, 2, 255};
    if ((j->rc = db_pg_tx_begin(op)) != STORE_OK)
        return;
    j->rc = db_pg_exec(op, SQL_INSERT, "adding one",
                       DB_ARGS(DB_INT(1), DB_TEXT("first"), DB_BLOB(bytes, 4), DB_NULL));
    if (j->rc == STORE_OK)
        j->rc = db_pg_exec(
            op, SQL_INSERT, "adding two",
            DB_ARGS(DB_INT(2), DB_TEXT_MAX("second-and-cut", 6), DB_NULL, DB_TEXT("a note")));
    if (j->rc == STORE_OK)
        j->rc = db_pg_tx_commit(op);
    else
        db_pg_tx_rollback(op);
    if (j->rc == STORE_OK)
        j->rc = db_pg_query(op, SQL_SELECT, "reading", &j->rows, DB_NO_ARGS);
    if (j->rc == STORE_OK)
        j->rc = db_pg_exec(op, SQL_RENAME, "renaming", DB_ARGS(DB_TEXT("renamed"), DB_INT(1)));
    if (j->rc == STORE_OK)
        j->count = op->changes;
    int found = 0;
    if (j->rc == STORE_OK)
        j->rc = db_pg_query_first(op, SQL_NAME_OF, "naming", NULL, j->text, sizeof j->text, &found,
                                  DB_ARGS(DB_INT(2)));
    if (j->rc == STORE_OK && !found)
        j->rc = STORE_NOT_FOUND;
}

static void test_statements_run_with_their_arguments(void **state)
{
    struct fixture *f = *state;
    struct job j = {0};
    start(f, &j, insert_and_read);
    struct job *jobs[] = {&j};
    wait_done(f, jobs, 1);
    if (j.rc != STORE_OK)
        fail_msg("%s: %s", store_rc_code(j.rc), j.op.err);
    assert_int_equal(j.rows.nrows, 2);
    assert_true(j.started);
    assert_int_equal(rowset_int(&j.rows, 0, 0), 1);
    assert_string_equal(rowset_text(&j.rows, 0, 1), "first");
    const struct rowset_value *blob = rowset_value(&j.rows, 0, 2);
    assert_int_equal(blob->type, ROWSET_BLOB);
    assert_int_equal(blob->len, 4);
    assert_memory_equal(blob->bytes, "\0\1\2\377", 4);
    assert_int_equal(rowset_value(&j.rows, 0, 3)->type, ROWSET_NULL);
    assert_string_equal(rowset_text(&j.rows, 1, 1), "second"); /* cut to 6 bytes */
    assert_string_equal(rowset_text(&j.rows, 1, 3), "a note");
    assert_string_equal(rowset_text(&j.rows, 0, 4), "?"); /* a quoted ? is not a parameter */
    assert_int_equal(j.count, 1);
    assert_string_equal(j.text, "renamed");
    assert_int_equal(admin_count("SELECT count(*) FROM items"), 2);
    rowset_free(&j.rows);
}

/* ---------------------------------------------------------------- errors */

static void insert_twice(struct db_pg_op *op, void *arg)
{
    struct job *j = arg;
    if ((j->rc = db_pg_tx_begin(op)) != STORE_OK)
        return;
    j->rc = db_pg_exec(op, SQL_INSERT, "adding the first",
                       DB_ARGS(DB_INT(1), DB_TEXT("same"), DB_NULL, DB_NULL));
    if (j->rc == STORE_OK)
        j->rc = db_pg_exec(op, SQL_INSERT, "adding the second",
                           DB_ARGS(DB_INT(2), DB_TEXT("same"), DB_NULL, DB_NULL));
    if (j->rc == STORE_OK)
        j->rc = db_pg_tx_commit(op);
    else
        db_pg_tx_rollback(op);
}

static void test_unique_violation_rolls_back_everything(void **state)
{
    struct fixture *f = *state;
    struct job j = {0};
    start(f, &j, insert_twice);
    struct job *jobs[] = {&j};
    wait_done(f, jobs, 1);
    assert_int_equal(j.rc, STORE_EXISTS);
    assert_non_null(strstr(j.op.err, "adding the second"));
    assert_non_null(strstr(j.op.err, "23505"));
    assert_int_equal(admin_count("SELECT count(*) FROM items"), 0);
    rowset_free(&j.rows);
}

/* ---------------------------------------------------------------- concurrency */

/* Holds the writer lock for a while with one row inserted. */
static void slow_writer(struct db_pg_op *op, void *arg)
{
    struct job *j = arg;
    if ((j->rc = db_pg_tx_begin(op)) != STORE_OK)
        return;
    j->started = 1;
    j->rc =
        db_pg_exec(op, SQL_INSERT, "adding", DB_ARGS(DB_INT(1), DB_TEXT("x"), DB_NULL, DB_NULL));
    if (j->rc == STORE_OK)
        j->rc = db_pg_query_first(op, SQL_SLEEP, "sleeping", NULL, NULL, 0, NULL, DB_NO_ARGS);
    if (j->rc == STORE_OK)
        j->rc = db_pg_tx_commit(op);
    else
        db_pg_tx_rollback(op);
}

/* A second writer: counts the rows once it has the lock. */
static void counting_writer(struct db_pg_op *op, void *arg)
{
    struct job *j = arg;
    if ((j->rc = db_pg_tx_begin(op)) != STORE_OK)
        return;
    j->rc = db_pg_query_first(op, SQL_COUNT, "counting", &j->count, NULL, 0, NULL, DB_NO_ARGS);
    if (j->rc == STORE_OK)
        j->rc = db_pg_tx_commit(op);
    else
        db_pg_tx_rollback(op);
}

/* A reader outside any transaction. */
static void reader(struct db_pg_op *op, void *arg)
{
    struct job *j = arg;
    j->rc = db_pg_query_first(op, SQL_COUNT, "counting", &j->count, NULL, 0, NULL, DB_NO_ARGS);
}

/* Writers take turns (the second sees the first's committed row, as with
 * SQLite's BEGIN IMMEDIATE), while a reader is served at once: the loop
 * and the other fibers go on while a transaction waits on the server. */
static void test_writers_take_turns_and_readers_do_not_wait(void **state)
{
    struct fixture *f = *state;
    int order = 0;
    struct job slow = {.order = &order}, second = {.order = &order}, read = {.order = &order};
    start(f, &slow, slow_writer);
    /* The second writer and the reader start once the first holds the lock. */
    f->expired = 0;
    uv_timer_start(&f->watchdog, on_watchdog, WATCHDOG_MS, 0);
    while (!slow.started && !f->expired)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_timer_stop(&f->watchdog);
    assert_true(slow.started);
    start(f, &second, counting_writer);
    start(f, &read, reader);
    struct job *jobs[] = {&slow, &second, &read};
    wait_done(f, jobs, 3);
    for (size_t i = 0; i < 3; i++)
        if (jobs[i]->rc != STORE_OK)
            fail_msg("job %zu: %s", i, jobs[i]->op.err);
    assert_int_equal(read.position, 1);   /* not held up by the writers */
    assert_int_equal(read.count, 0);      /* the first's row is not committed yet */
    assert_int_equal(slow.position, 2);   /* the second writer waited for it */
    assert_int_equal(second.position, 3); /* ... */
    assert_int_equal(second.count, 1);    /* and saw its row */
    rowset_free(&slow.rows);
    rowset_free(&second.rows);
    rowset_free(&read.rows);
}

/* Many operations through a pool of three: every one runs, fibers reused. */
static void insert_numbered(struct db_pg_op *op, void *arg)
{
    struct job *j = arg;
    char name[16];
    snprintf(name, sizeof name, "n%d", (int)j->count);
    if ((j->rc = db_pg_tx_begin(op)) != STORE_OK)
        return;
    j->rc = db_pg_exec(op, SQL_INSERT, "adding",
                       DB_ARGS(DB_INT(j->count), DB_TEXT(name), DB_NULL, DB_NULL));
    if (j->rc == STORE_OK)
        j->rc = db_pg_tx_commit(op);
    else
        db_pg_tx_rollback(op);
}

static void test_two_hundred_operations_through_three_connections(void **state)
{
    struct fixture *f = *state;
    enum { N = 200 };
    struct job *jobs[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = calloc(1, sizeof **jobs);
        jobs[i]->count = i + 1;
        start(f, jobs[i], insert_numbered);
    }
    wait_done(f, jobs, N);
    for (int i = 0; i < N; i++) {
        if (jobs[i]->rc != STORE_OK)
            fail_msg("operation %d: %s", i, jobs[i]->op.err);
        rowset_free(&jobs[i]->rows);
        free(jobs[i]);
    }
    assert_int_equal(admin_count("SELECT count(*) FROM items"), N);
}

/* ---------------------------------------------------------------- schema */

struct migration {
    struct job job;
    int version, applied;
};

static void migrate(struct db_pg_op *op, void *arg)
{
    struct migration *m = arg;
    m->job.rc = db_pg_migrate(op, &m->version, &m->applied);
}

static const char SQL_AUDIT_ADD[] = "INSERT INTO audit_log (at, action) VALUES (?, ?)";
static const char SQL_AUDIT_EDIT[] = "UPDATE audit_log SET action = ?";

static void touch_audit(struct db_pg_op *op, void *arg)
{
    struct job *j = arg;
    j->rc = db_pg_exec(op, SQL_AUDIT_ADD, "auditing", DB_ARGS(DB_INT(1), DB_TEXT("test")));
    if (j->rc == STORE_OK)
        j->count = db_pg_exec(op, SQL_AUDIT_EDIT, "editing the log", DB_ARGS(DB_TEXT("forged")));
}

static int setup_empty(void **state)
{
    admin_exec("DROP SCHEMA public CASCADE; CREATE SCHEMA public");
    *state = fixture_new(pg_url);
    return 0;
}

/* Two instances starting at once on an empty database: one migrates, the
 * other finds it done; a third start applies nothing. */
static void test_migrations_run_once_across_instances(void **state)
{
    struct fixture *f = *state;
    struct migration a = {0}, b = {0}, c = {0};
    a.job.f = b.job.f = c.job.f = f;
    assert_int_equal(db_pg_op_start(f->pg, &a.job.op, migrate, &a, on_done, &a.job), 0);
    assert_int_equal(db_pg_op_start(f->pg, &b.job.op, migrate, &b, on_done, &b.job), 0);
    struct job *jobs[] = {&a.job, &b.job};
    wait_done(f, jobs, 2);
    if (a.job.rc != STORE_OK || b.job.rc != STORE_OK)
        fail_msg("%s / %s", a.job.op.err, b.job.op.err);
    assert_int_equal(a.version, DB_SCHEMA_VERSION);
    assert_int_equal(b.version, DB_SCHEMA_VERSION);
    assert_int_equal(a.applied + b.applied, DB_SCHEMA_VERSION);
    assert_true(a.applied == 0 || b.applied == 0);
    assert_int_equal(db_pg_op_start(f->pg, &c.job.op, migrate, &c, on_done, &c.job), 0);
    struct job *again[] = {&c.job};
    wait_done(f, again, 1);
    assert_int_equal(c.job.rc, STORE_OK);
    assert_int_equal(c.applied, 0);
    assert_int_equal(
        admin_count("SELECT count(*) FROM information_schema.columns"
                    " WHERE table_name = 'login_failures' AND column_name = 'attempt'"),
        1);
    /* The audit log takes rows and refuses edits, as on SQLite. */
    struct job t = {0};
    start(f, &t, touch_audit);
    struct job *audit[] = {&t};
    wait_done(f, audit, 1);
    assert_int_equal(t.rc, STORE_OK);
    assert_int_equal(t.count, STORE_REFUSED);
    assert_non_null(strstr(t.op.err, "append-only"));
    rowset_free(&t.rows);
}

/* ---------------------------------------------------------------- no server */

static void never_runs(struct db_pg_op *op, void *arg)
{
    (void)op;
    ((struct job *)arg)->started = 1;
}

/* With no server an operation fails soon, saying so, without running. */
static void test_no_server_means_unavailable(void **state)
{
    (void)state;
    struct fixture *f = fixture_new("postgresql://o2c@/none?host=/nonexistent-o2c-socket-dir");
    struct job j = {.f = f};
    rowset_init(&j.rows, 0);
    int rc = db_pg_op_start(f->pg, &j.op, never_runs, &j, on_done, &j);
    if (rc == 0) {
        struct job *jobs[] = {&j};
        wait_done(f, jobs, 1);
    }
    assert_false(j.started);
    assert_true(j.op.not_started);
    assert_non_null(strstr(j.op.err, "PostgreSQL cannot be reached"));
    void *s = f;
    teardown(&s);
}

static void test_translation_skips_quotes(void **state)
{
    (void)state;
    char out[128];
    assert_int_equal(db_pg_translate("a = ? AND b = '?' AND \"c?\" = ?", out, sizeof out), 2);
    assert_string_equal(out, "a = $1 AND b = '?' AND \"c?\" = $2");
    assert_int_equal(db_pg_translate("x = ?", out, 5), -1);
}

int main(void)
{
    pg_url = getenv("O2C_TEST_PG_URL");
    if (pg_url == NULL || pg_url[0] == '\0') {
        fprintf(stderr, "test_pg_db: O2C_TEST_PG_URL is not set. It needs a real PostgreSQL 15: "
                        "run it as 'tests/lib/pg.sh run build/test_pg_db' (ctest does).\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_translation_skips_quotes),
        cmocka_unit_test_setup_teardown(test_statements_run_with_their_arguments, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unique_violation_rolls_back_everything, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_writers_take_turns_and_readers_do_not_wait, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_two_hundred_operations_through_three_connections,
                                        setup, teardown),
        cmocka_unit_test(test_no_server_means_unavailable),
        cmocka_unit_test_setup_teardown(test_migrations_run_once_across_instances, setup_empty,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
