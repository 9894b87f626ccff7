/* pg_conn, pg_pool and rowset_capture_pg against a real PostgreSQL 15.
 *
 * ctest runs this through tests/lib/pg.sh, which starts a throw-away server
 * and passes its URL in O2C_TEST_PG_URL (and O2C_TEST_PG, O2C_TEST_PG_DIR
 * to restart it).  Without them the test fails and says how to run it.
 *
 * Everything under test runs on a real uv loop; each test ends with every
 * handle closed and uv_loop_close returning 0.  A watchdog only bounds how
 * long a test waits for an event.  The test's own set-up (tables, killing
 * a backend) uses a blocking libpq connection of its own. */
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
#include "store/pg_conn.h"
#include "store/pg_pool.h"
#include "store/rowset_pg.h"

#define WATCHDOG_MS 20000

static const char *pg_url;
static struct pg_pool *current_pool; /* described when a wait times out */
static uv_loop_t *test_loop;

/* Every callback the test waits for ends the loop's turn: otherwise a
 * flag set from a timer (the pool dispatches from one) would only be seen
 * after the next I/O event. */
static void seen(void)
{
    uv_stop(test_loop);
}

/* ---------------------------------------------------------------- loop */

struct fixture {
    uv_loop_t loop;
    uv_timer_t watchdog;
    int expired;
};

static void on_watchdog(uv_timer_t *t)
{
    ((struct fixture *)t->data)->expired = 1;
    seen();
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->watchdog);
    f->watchdog.data = f;
    test_loop = &f->loop;
    *state = f;
    return 0;
}

static void on_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    fprintf(stderr, "handle left open: %s\n", uv_handle_type_name(h->type));
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_walk(&f->loop, on_walk, NULL);
    int rc = uv_loop_close(&f->loop);
    free(f);
    assert_int_equal(rc, 0);
    return 0;
}

/* Runs the loop until *FLAG >= VALUE; fails the test when the watchdog
 * fires first. */
static void wait_for(struct fixture *f, const int *flag, int value, const char *what)
{
    f->expired = 0;
    uv_timer_start(&f->watchdog, on_watchdog, WATCHDOG_MS, 0);
    while (*flag < value && !f->expired)
        uv_run(&f->loop, UV_RUN_ONCE);
    uv_timer_stop(&f->watchdog);
    if (*flag < value && current_pool) {
        struct pg_pool_stats st;
        pg_pool_get_stats(current_pool, &st);
        fprintf(stderr, "pool: %u connected, %u idle, %u leased, %zu waiting\n", st.connected,
                st.idle, st.leased, st.waiting);
    }
    if (*flag < value)
        fail_msg("still waiting for %s after %d ms (%d of %d)", what, WATCHDOG_MS, *flag, value);
}

/* ---------------------------------------------------------------- outcomes */

struct outcome {
    int finished;
    enum pg_error error;
    char sqlstate[6];
    char message[512];
    struct rowset rows;
    int captured; /* rowset_capture_pg's return */
    int *counter; /* incremented when finished, if set */
};

static void outcome_init(struct outcome *o)
{
    memset(o, 0, sizeof *o);
    rowset_init(&o->rows, 0);
}

static void on_outcome(struct pg_reply *r, void *ud)
{
    struct outcome *o = ud;
    o->finished = 1;
    o->error = r->error;
    snprintf(o->sqlstate, sizeof o->sqlstate, "%s", r->sqlstate);
    snprintf(o->message, sizeof o->message, "%s", r->message);
    if (r->error == PG_OK && PQresultStatus(r->result) == PGRES_TUPLES_OK)
        o->captured = rowset_capture_pg(r->result, &o->rows);
    if (o->counter)
        (*o->counter)++;
    seen();
}

static void expect_ok(const struct outcome *o)
{
    if (o->error != PG_OK)
        fail_msg("query failed (%s, %s): %s", pg_error_name(o->error), o->sqlstate, o->message);
    assert_int_equal(o->captured, 0);
}

/* ---------------------------------------------------------------- set-up SQL */

/* The test's own blocking connection, for set-up and for killing backends. */
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

/* ---------------------------------------------------------------- conn helpers */

struct watch {
    int ready, down;
    int closed;
    uint64_t down_at[16];      /* uv_hrtime of each DOWN */
    unsigned down_backoff[16]; /* the backoff announced with it */
    struct pg_conn *conn;
};

static void on_state(struct pg_conn *conn, enum pg_conn_state state, const char *why, void *ud)
{
    (void)why;
    struct watch *w = ud;
    if (state == PG_CONN_READY)
        w->ready++;
    if (state == PG_CONN_DOWN && w->down < 16) {
        struct pg_conn_stats st;
        pg_conn_get_stats(conn, &st);
        w->down_at[w->down] = uv_hrtime();
        w->down_backoff[w->down] = st.backoff_ms;
        w->down++;
    } else if (state == PG_CONN_DOWN) {
        w->down++;
    }
    seen();
}

static void on_closed(void *ud)
{
    (*(int *)ud)++;
    seen();
}

static struct pg_conn *connect_ready(struct fixture *f, struct watch *w)
{
    memset(w, 0, sizeof *w);
    struct pg_conn_config cfg = {.conninfo = pg_url, .on_state = on_state, .ud = w};
    w->conn = pg_conn_new(&f->loop, &cfg);
    assert_non_null(w->conn);
    wait_for(f, &w->ready, 1, "the connection");
    assert_int_equal(pg_conn_state(w->conn), PG_CONN_READY);
    return w->conn;
}

static void close_conn(struct fixture *f, struct watch *w)
{
    pg_conn_close(w->conn, on_closed, &w->closed);
    wait_for(f, &w->closed, 1, "the connection to close");
}

static void conn_run(struct fixture *f, struct pg_conn *c, const struct pg_query *q,
                     struct outcome *o)
{
    outcome_init(o);
    assert_int_equal(pg_conn_query(c, q, on_outcome, o), PG_OK);
    wait_for(f, &o->finished, 1, q->sql);
}

/* ---------------------------------------------------------------- pool helpers */

/* Runs the loop until N of POOL's connections are up. */
static void wait_connected(struct fixture *f, struct pg_pool *pool, unsigned n)
{
    struct pg_pool_stats st;
    f->expired = 0;
    uv_timer_start(&f->watchdog, on_watchdog, WATCHDOG_MS, 0);
    for (pg_pool_get_stats(pool, &st); st.connected < n; pg_pool_get_stats(pool, &st)) {
        if (f->expired)
            fail_msg("%u of %u connections up after %d ms", st.connected, n, WATCHDOG_MS);
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&f->watchdog);
}

static struct pg_pool *pool_ready(struct fixture *f, unsigned size)
{
    struct pg_pool_config cfg = {
        .conninfo = pg_url, .size = size, .backoff_min_ms = 20, .backoff_max_ms = 200};
    struct pg_pool *pool = pg_pool_new(&f->loop, &cfg);
    assert_non_null(pool);
    wait_connected(f, pool, size);
    current_pool = pool;
    return pool;
}

static void close_pool(struct fixture *f, struct pg_pool *pool)
{
    int closed = 0;
    current_pool = NULL;
    pg_pool_close(pool, on_closed, &closed);
    wait_for(f, &closed, 1, "the pool to close");
}

static void pool_run(struct fixture *f, struct pg_pool *pool, const struct pg_query *q,
                     struct outcome *o)
{
    outcome_init(o);
    assert_int_equal(pg_pool_query(pool, q, on_outcome, o), PG_OK);
    wait_for(f, &o->finished, 1, q->sql);
}

/* Runs Q on POOL until it succeeds (a pool that is down refuses at once
 * with UNAVAILABLE; it connects again by itself). */
static void pool_run_when_up(struct fixture *f, struct pg_pool *pool, const struct pg_query *q,
                             struct outcome *o)
{
    f->expired = 0;
    uv_timer_start(&f->watchdog, on_watchdog, WATCHDOG_MS, 0);
    for (;;) {
        outcome_init(o);
        enum pg_error rc = pg_pool_query(pool, q, on_outcome, o);
        if (rc == PG_OK) {
            while (!o->finished)
                uv_run(&f->loop, UV_RUN_ONCE);
            if (o->error == PG_OK)
                break;
            rc = o->error;
            rowset_free(&o->rows);
        }
        assert_int_equal(rc, PG_ERR_UNAVAILABLE);
        if (f->expired)
            fail_msg("the pool did not come back within %d ms", WATCHDOG_MS);
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    uv_timer_stop(&f->watchdog);
}

/* ---------------------------------------------------------------- tests */

static void test_connects_and_runs_a_parameterised_query(void **state)
{
    struct fixture *f = *state;
    struct watch w;
    struct pg_conn *c = connect_ready(f, &w);
    assert_true(pg_conn_backend_pid(c) > 0);

    const char *values[] = {"it's", "41", NULL};
    struct pg_query q = {.sql = "SELECT $1::text || '!' AS said, $2::int + 1 AS n, "
                                "$3::text IS NULL AS was_null",
                         .nparams = 3,
                         .values = values};
    struct outcome o;
    conn_run(f, c, &q, &o);
    expect_ok(&o);
    assert_int_equal(o.rows.nrows, 1);
    assert_string_equal(o.rows.names[0], "said");
    assert_string_equal(rowset_text(&o.rows, 0, 0), "it's!");
    assert_int_equal(rowset_int(&o.rows, 0, 1), 42);
    assert_int_equal(rowset_int(&o.rows, 0, 2), 1);
    rowset_free(&o.rows);

    /* Prepared: prepared once on the connection, then executed by name. */
    q.prepared = "o2c_test_said";
    for (int i = 0; i < 2; i++) {
        conn_run(f, c, &q, &o);
        expect_ok(&o);
        assert_string_equal(rowset_text(&o.rows, 0, 0), "it's!");
        rowset_free(&o.rows);
    }
    close_conn(f, &w);
}

struct ticker {
    uv_timer_t timer;
    int ticks;
};

static void on_tick(uv_timer_t *t)
{
    ((struct ticker *)t->data)->ticks++;
    seen();
}

/* The loop goes on while the server works: a 5 ms timer ticks through a
 * 300 ms pg_sleep (a blocked loop would see one tick at most). */
static void test_the_loop_keeps_running_during_a_query(void **state)
{
    struct fixture *f = *state;
    struct watch w;
    struct pg_conn *c = connect_ready(f, &w);
    struct ticker t = {.ticks = 0};
    uv_timer_init(&f->loop, &t.timer);
    t.timer.data = &t;
    uv_timer_start(&t.timer, on_tick, 5, 5);
    struct pg_query q = {.sql = "SELECT pg_sleep(0.3)"};
    struct outcome o;
    conn_run(f, c, &q, &o);
    expect_ok(&o);
    uv_timer_stop(&t.timer);
    uv_close((uv_handle_t *)&t.timer, NULL);
    if (t.ticks < 10)
        fail_msg("the loop ticked %d times during a 300 ms query: it was blocked", t.ticks);
    rowset_free(&o.rows);
    close_conn(f, &w);
}

/* Every PostgreSQL type the store uses reaches the rowset as its kind:
 * integers, reals, booleans as 1/0, text, bytea with NUL bytes whole (out
 * and back in as a binary parameter), NULLs. */
static void test_rowset_capture_of_every_type(void **state)
{
    struct fixture *f = *state;
    struct watch w;
    struct pg_conn *c = connect_ready(f, &w);
    static const char blob[] = {'\0', (char)0xff, '\0', 'A'};
    const char *values[] = {blob};
    const int lengths[] = {sizeof blob}, formats[] = {1};
    struct pg_query q = {
        .sql = "SELECT 7::int2 AS i2, -8::int4 AS i4, 9007199254740993::int8 AS i8, "
               "1.5::float4 AS f4, 2.25::float8 AS f8, 3.125::numeric AS num, "
               "true AS yes, false AS no, 'héllo'::text AS txt, 'v'::varchar(3) AS vc, "
               "'\\x00ff0041'::bytea AS lit, $1::bytea AS param, NULL::text AS nt, "
               "NULL::int4 AS ni, NULL::bytea AS nb, '2024-01-02'::date AS day",
        .nparams = 1,
        .values = values,
        .lengths = lengths,
        .formats = formats};
    struct outcome o;
    conn_run(f, c, &q, &o);
    expect_ok(&o);
    struct rowset *rs = &o.rows;
    assert_int_equal(rs->ncols, 16);
    assert_int_equal(rs->nrows, 1);
    const enum rowset_type types[] = {
        ROWSET_INTEGER, ROWSET_INTEGER, ROWSET_INTEGER, ROWSET_REAL, ROWSET_REAL, ROWSET_REAL,
        ROWSET_INTEGER, ROWSET_INTEGER, ROWSET_TEXT,    ROWSET_TEXT, ROWSET_BLOB, ROWSET_BLOB,
        ROWSET_NULL,    ROWSET_NULL,    ROWSET_NULL,    ROWSET_TEXT};
    for (size_t i = 0; i < 16; i++)
        if (rowset_value(rs, 0, i)->type != types[i])
            fail_msg("column %s: type %d, expected %d", rs->names[i], rowset_value(rs, 0, i)->type,
                     types[i]);
    assert_int_equal(rowset_value(rs, 0, 0)->integer, 7);
    assert_int_equal(rowset_value(rs, 0, 1)->integer, -8);
    assert_true(rowset_value(rs, 0, 2)->integer == INT64_C(9007199254740993));
    assert_true(rowset_value(rs, 0, 3)->real == 1.5);
    assert_true(rowset_value(rs, 0, 4)->real == 2.25);
    assert_true(rowset_value(rs, 0, 5)->real == 3.125);
    assert_int_equal(rowset_value(rs, 0, 6)->integer, 1);
    assert_int_equal(rowset_value(rs, 0, 7)->integer, 0);
    assert_string_equal(rowset_text(rs, 0, 8), "héllo");
    assert_int_equal(rowset_value(rs, 0, 8)->len, strlen("héllo"));
    assert_string_equal(rowset_text(rs, 0, 9), "v");
    for (size_t col = 10; col <= 11; col++) {
        const struct rowset_value *v = rowset_value(rs, 0, col);
        assert_int_equal(v->len, sizeof blob);
        assert_memory_equal(v->bytes, blob, sizeof blob);
    }
    assert_string_equal(rowset_text(rs, 0, 15), "2024-01-02");
    assert_int_equal(rowset_column(rs, "param"), 11);
    rowset_free(rs);

    /* A command (no rows) is not something to capture. */
    struct pg_query set = {.sql = "SET application_name = 'o2c-test'"};
    conn_run(f, c, &set, &o);
    assert_int_equal(o.error, PG_OK);
    close_conn(f, &w);
}

/* A constraint the server enforces comes back as a query error with its
 * SQLSTATE; the connection stays usable. */
static void test_unique_violation_has_its_sqlstate(void **state)
{
    struct fixture *f = *state;
    admin_exec("DROP TABLE IF EXISTS t_unique; CREATE TABLE t_unique (k text PRIMARY KEY)");
    struct watch w;
    struct pg_conn *c = connect_ready(f, &w);
    const char *values[] = {"a"};
    struct pg_query q = {.sql = "INSERT INTO t_unique VALUES ($1)", .nparams = 1, .values = values};
    struct outcome o;
    conn_run(f, c, &q, &o);
    assert_int_equal(o.error, PG_OK);
    conn_run(f, c, &q, &o);
    assert_int_equal(o.error, PG_ERR_QUERY);
    assert_string_equal(o.sqlstate, "23505");
    assert_non_null(strstr(o.message, "duplicate key"));
    struct pg_query bad = {.sql = "SELECT * FROM no_such_table"};
    conn_run(f, c, &bad, &o);
    assert_int_equal(o.error, PG_ERR_QUERY);
    assert_string_equal(o.sqlstate, "42P01");
    struct pg_query count = {.sql = "SELECT count(*) FROM t_unique"};
    conn_run(f, c, &count, &o);
    expect_ok(&o);
    assert_int_equal(rowset_int(&o.rows, 0, 0), 1);
    rowset_free(&o.rows);
    close_conn(f, &w);
}

/* A query past its timeout: TIMEOUT for the caller at once; the server
 * cancels it and the same session (same backend) serves the next query. */
static void test_timeout_cancels_and_keeps_the_connection(void **state)
{
    struct fixture *f = *state;
    struct watch w;
    struct pg_conn *c = connect_ready(f, &w);
    int pid = pg_conn_backend_pid(c);
    struct pg_query slow = {.sql = "SELECT pg_sleep(30)", .timeout_ms = 100};
    struct outcome o;
    conn_run(f, c, &slow, &o);
    assert_int_equal(o.error, PG_ERR_TIMEOUT);
    assert_non_null(strstr(o.message, "100 ms"));
    /* Busy until the server has cancelled it: then READY again. */
    assert_int_equal(pg_conn_query(c, &slow, on_outcome, &o), PG_ERR_BUSY);
    wait_for(f, &w.ready, 2, "the cancelled query to drain");
    struct pg_query quick = {.sql = "SELECT 1"};
    conn_run(f, c, &quick, &o);
    expect_ok(&o);
    assert_int_equal(pg_conn_backend_pid(c), pid);
    assert_int_equal(w.down, 0);
    struct pg_conn_stats st;
    pg_conn_get_stats(c, &st);
    assert_int_equal(st.timeouts, 1);
    rowset_free(&o.rows);
    close_conn(f, &w);
}

/* A server that is not there: UNAVAILABLE, and attempts again after waits
 * that double up to the cap (each wait at least as long as announced). */
static void test_unreachable_server_backs_off(void **state)
{
    struct fixture *f = *state;
    struct watch w;
    memset(&w, 0, sizeof w);
    struct pg_conn_config cfg = {.conninfo = "postgresql:///o2c_test?host=/nonexistent-o2c",
                                 .backoff_min_ms = 20,
                                 .backoff_max_ms = 80,
                                 .on_state = on_state,
                                 .ud = &w};
    struct pg_conn *c = pg_conn_new(&f->loop, &cfg);
    w.conn = c;
    assert_int_equal(pg_conn_state(c), PG_CONN_CONNECTING);
    wait_for(f, &w.down, 6, "six failed attempts");
    assert_int_equal(w.ready, 0);
    assert_non_null(strstr(pg_conn_last_error(c), "cannot connect"));
    struct pg_query q = {.sql = "SELECT 1"};
    struct outcome o;
    outcome_init(&o);
    assert_int_equal(pg_conn_query(c, &q, on_outcome, &o), PG_ERR_UNAVAILABLE);
    const unsigned expected[] = {20, 40, 80, 80, 80, 80};
    for (int i = 0; i < 6; i++)
        assert_int_equal(w.down_backoff[i], expected[i]);
    for (int i = 1; i < 6; i++) {
        uint64_t gap_ms = (w.down_at[i] - w.down_at[i - 1]) / 1000000;
        if (gap_ms + 1 < w.down_backoff[i - 1])
            fail_msg("attempt %d came %llu ms after the last, before its %u ms wait", i + 1,
                     (unsigned long long)gap_ms, w.down_backoff[i - 1]);
    }
    close_conn(f, &w);
}

struct many {
    struct outcome out[50];
    int finished;
};

/* 50 queries at once through 3 connections: every one answered, rightly,
 * by at most 3 sessions. */
static void test_fifty_queries_through_a_pool_of_three(void **state)
{
    struct fixture *f = *state;
    struct pg_pool *pool = pool_ready(f, 3);
    struct many *m = calloc(1, sizeof *m);
    char numbers[50][8];
    for (int i = 0; i < 50; i++) {
        snprintf(numbers[i], sizeof numbers[i], "%d", i);
        const char *values[] = {numbers[i]};
        struct pg_query q = {.sql = "SELECT $1::int * 2, pg_backend_pid(), pg_sleep(0.01)",
                             .nparams = 1,
                             .values = values,
                             .prepared = i % 2 ? "o2c_test_double" : NULL};
        outcome_init(&m->out[i]);
        m->out[i].counter = &m->finished;
        assert_int_equal(pg_pool_query(pool, &q, on_outcome, &m->out[i]), PG_OK);
    }
    struct pg_pool_stats st;
    pg_pool_get_stats(pool, &st);
    assert_int_equal(st.waiting, 50); /* nothing is sent from inside the call */
    wait_for(f, &m->finished, 50, "50 answers");
    int64_t pids[3] = {0};
    for (int i = 0; i < 50; i++) {
        expect_ok(&m->out[i]);
        assert_int_equal(rowset_int(&m->out[i].rows, 0, 0), 2 * i);
        int64_t pid = rowset_int(&m->out[i].rows, 0, 1);
        int k = 0;
        while (k < 3 && pids[k] && pids[k] != pid)
            k++;
        assert_true(k < 3); /* a fourth session would be a fourth connection */
        pids[k] = pid;
        rowset_free(&m->out[i].rows);
    }
    pg_pool_get_stats(pool, &st);
    assert_int_equal(st.waiting, 0);
    assert_int_equal(st.connected, 3);
    assert_int_equal(st.queries, 50);
    free(m);
    close_pool(f, pool);
}

struct lease_box {
    int got;
    struct pg_lease *lease;
    enum pg_error error;
};

static void on_acquired(struct pg_lease *lease, enum pg_error error, const char *message, void *ud)
{
    (void)message;
    struct lease_box *b = ud;
    b->got++;
    b->lease = lease;
    b->error = error;
    seen();
}

static struct pg_lease *acquire(struct fixture *f, struct pg_pool *pool)
{
    struct lease_box b = {0};
    assert_int_equal(pg_pool_acquire(pool, on_acquired, &b), PG_OK);
    wait_for(f, &b.got, 1, "a lease");
    assert_int_equal(b.error, PG_OK);
    return b.lease;
}

static void lease_run(struct fixture *f, struct pg_lease *lease, const char *sql, struct outcome *o)
{
    struct pg_query q = {.sql = sql};
    outcome_init(o);
    assert_int_equal(pg_lease_query(lease, &q, on_outcome, o), PG_OK);
    wait_for(f, &o->finished, 1, sql);
    expect_ok(o);
}

static long pool_count(struct fixture *f, struct pg_pool *pool, const char *sql)
{
    struct pg_query q = {.sql = sql};
    struct outcome o;
    pool_run(f, pool, &q, &o);
    expect_ok(&o);
    long n = (long)rowset_int(&o.rows, 0, 0);
    rowset_free(&o.rows);
    return n;
}

/* A transaction on one leased connection: what it writes is seen inside
 * it, not outside, and gone after ROLLBACK; a lease released inside a
 * transaction is rolled back by the pool. */
static void test_transaction_on_a_leased_connection(void **state)
{
    struct fixture *f = *state;
    admin_exec("DROP TABLE IF EXISTS t_tx; CREATE TABLE t_tx (k int)");
    struct pg_pool *pool = pool_ready(f, 2);
    struct pg_lease *lease = acquire(f, pool);
    struct outcome o;
    lease_run(f, lease, "BEGIN", &o);
    lease_run(f, lease, "INSERT INTO t_tx VALUES (1)", &o);
    assert_true(pg_conn_in_transaction(pg_lease_conn(lease)));
    lease_run(f, lease, "SELECT count(*) FROM t_tx", &o);
    assert_int_equal(rowset_int(&o.rows, 0, 0), 1);
    rowset_free(&o.rows);
    assert_int_equal(pool_count(f, pool, "SELECT count(*) FROM t_tx"), 0); /* the other conn */
    lease_run(f, lease, "ROLLBACK", &o);
    assert_false(pg_conn_in_transaction(pg_lease_conn(lease)));
    pg_lease_release(lease);
    assert_int_equal(pool_count(f, pool, "SELECT count(*) FROM t_tx"), 0);

    lease = acquire(f, pool);
    struct pg_conn *conn = pg_lease_conn(lease);
    lease_run(f, lease, "BEGIN", &o);
    lease_run(f, lease, "INSERT INTO t_tx VALUES (2)", &o);
    pg_lease_release(lease); /* forgotten COMMIT: rolled back, not committed */
    lease = acquire(f, pool);
    struct pg_lease *other = acquire(f, pool); /* both connections, so CONN is one */
    assert_true(pg_lease_conn(lease) == conn || pg_lease_conn(other) == conn);
    assert_false(pg_conn_in_transaction(conn));
    pg_lease_release(lease);
    pg_lease_release(other);
    assert_int_equal(pool_count(f, pool, "SELECT count(*) FROM t_tx"), 0);
    assert_int_equal(admin_count("SELECT count(*) FROM t_tx"), 0);
    close_pool(f, pool);
}

static void terminate_backend(int pid)
{
    char sql[96];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%d)", pid);
    admin_exec(sql);
}

/* A backend killed under a query: that query reports a lost connection,
 * the pool connects again by itself, the next query succeeds; a lease
 * that lost its session stays broken rather than go on outside its
 * transaction. */
static void test_killed_backend_is_reported_and_replaced(void **state)
{
    struct fixture *f = *state;
    struct pg_pool *pool = pool_ready(f, 1);
    struct pg_lease *lease = acquire(f, pool);
    int pid = pg_conn_backend_pid(pg_lease_conn(lease));
    struct pg_query slow = {.sql = "SELECT pg_sleep(30)"};
    struct outcome o;
    outcome_init(&o);
    assert_int_equal(pg_lease_query(lease, &slow, on_outcome, &o), PG_OK);
    terminate_backend(pid);
    wait_for(f, &o.finished, 1, "the killed query");
    assert_int_equal(o.error, PG_ERR_LOST);
    assert_non_null(strstr(o.message, "connection to the database lost"));
    /* Even once the connection is back, the lease's session is gone. */
    wait_connected(f, pool, 1);
    struct pg_query q = {.sql = "SELECT pg_backend_pid()"};
    assert_int_equal(pg_lease_query(lease, &q, on_outcome, &o), PG_ERR_LOST);
    pg_lease_release(lease);

    pool_run_when_up(f, pool, &q, &o);
    expect_ok(&o);
    assert_true(rowset_int(&o.rows, 0, 0) != pid);
    rowset_free(&o.rows);
    struct pg_pool_stats st;
    pg_pool_get_stats(pool, &st);
    assert_int_equal(st.lost, 1);
    assert_int_equal(st.connects, 2);
    close_pool(f, pool);
}

/* The server restarted with a query in flight (pg_ctl restart -m fast):
 * LOST for that query, every connection of the pool connects again, and
 * prepared statements are prepared again on the new sessions. */
static void test_server_restart_mid_query(void **state)
{
    struct fixture *f = *state;
    const char *pg = getenv("O2C_TEST_PG"), *dir = getenv("O2C_TEST_PG_DIR");
    if (pg == NULL || dir == NULL)
        fail_msg("O2C_TEST_PG and O2C_TEST_PG_DIR are not set: run through tests/lib/pg.sh run");
    struct pg_pool *pool = pool_ready(f, 2);
    struct pg_query prepared = {.sql = "SELECT 40 + 2", .prepared = "o2c_test_answer"};
    struct outcome o;
    pool_run(f, pool, &prepared, &o);
    expect_ok(&o);
    rowset_free(&o.rows);
    struct pg_query slow = {.sql = "SELECT pg_sleep(30)"};
    outcome_init(&o);
    assert_int_equal(pg_pool_query(pool, &slow, on_outcome, &o), PG_OK);
    struct pg_pool_stats st;
    do { /* until the pool has sent it (from a timer: no callback to wait for) */
        uv_run(&f->loop, UV_RUN_NOWAIT);
        pg_pool_get_stats(pool, &st);
    } while (st.waiting);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' restart '%s'", pg, dir);
    assert_int_equal(system(cmd), 0);
    wait_for(f, &o.finished, 1, "the query cut by the restart");
    assert_int_equal(o.error, PG_ERR_LOST);

    for (int i = 0; i < 2; i++) { /* both connections, the prepared one again */
        struct outcome again;
        pool_run_when_up(f, pool, &prepared, &again);
        expect_ok(&again);
        assert_int_equal(rowset_int(&again.rows, 0, 0), 42);
        rowset_free(&again.rows);
    }
    wait_connected(f, pool, 2);
    pg_pool_get_stats(pool, &st);
    assert_int_equal(st.lost, 2);
    assert_true(st.connects >= 4);
    close_pool(f, pool);
}

/* A pool whose database is not there refuses at once with UNAVAILABLE
 * (the store's 503), rather than queueing behind it. */
static void test_pool_without_a_database_fails_fast(void **state)
{
    struct fixture *f = *state;
    struct pg_pool_config cfg = {.conninfo = "postgresql:///o2c_test?host=/nonexistent-o2c",
                                 .size = 2,
                                 .backoff_min_ms = 1000};
    struct pg_pool *pool = pg_pool_new(&f->loop, &cfg);
    struct pg_query q = {.sql = "SELECT 1"};
    struct outcome o;
    outcome_init(&o);
    /* Before the first attempt has failed, it waits... */
    assert_int_equal(pg_pool_query(pool, &q, on_outcome, &o), PG_OK);
    wait_for(f, &o.finished, 1, "the waiting query to fail");
    assert_int_equal(o.error, PG_ERR_UNAVAILABLE);
    assert_non_null(strstr(o.message, "cannot connect"));
    /* ...after, it fails at once. */
    assert_int_equal(pg_pool_query(pool, &q, on_outcome, &o), PG_ERR_UNAVAILABLE);
    assert_non_null(strstr(pg_pool_why_down(pool), "cannot connect"));
    close_pool(f, pool);
}

int main(void)
{
    pg_url = getenv("O2C_TEST_PG_URL");
    if (pg_url == NULL || pg_url[0] == '\0') {
        fprintf(stderr,
                "test_pg_conn: O2C_TEST_PG_URL is not set. It needs a real PostgreSQL 15: "
                "run it as 'tests/lib/pg.sh run %s' (ctest does), with postgresql-15 "
                "installed (apt-get install postgresql-15).\n",
                "build/test_pg_conn");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_connects_and_runs_a_parameterised_query, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_the_loop_keeps_running_during_a_query, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_rowset_capture_of_every_type, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unique_violation_has_its_sqlstate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_cancels_and_keeps_the_connection, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_unreachable_server_backs_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifty_queries_through_a_pool_of_three, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_transaction_on_a_leased_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_killed_backend_is_reported_and_replaced, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_server_restart_mid_query, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pool_without_a_database_fails_fast, setup, teardown),
    };
    if (getenv("O2C_TEST_FILTER")) /* e.g. "*restart*" */
        cmocka_set_test_filter(getenv("O2C_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
