/* Three o2c instances' schedulers (core/llm/scheduler.h) sharing one LLM
 * budget through one PostgreSQL database (scheduler_share): each instance
 * has its own scheduler and its own `struct db` (its own connections) on
 * the same database, all on one loop in this process.
 *
 * The fake provider is a mock with a limit of 60 requests per 1.5 s window
 * (the window shortened as in the integration tests, through window_ms)
 * and 4 calls at once.  Every instance alone is configured with the full
 * limit, as each real instance is, so without the shared budget the three
 * together would start up to 180 calls in one window.
 *
 * What is checked, exactly and without timing: the calls' start instants
 * (the database's time of each grant, the clock the budget is kept in),
 * replayed through the mock's token bucket, never take it below empty; no
 * more than 4 calls run at once; every call is done; while every job still
 * has calls queued, each job of each instance gets starts (fairness); and
 * no lease or waiter is left behind.  Run through tests/lib/pg.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "llm/scheduler.h"
#include "store/db.h"

#define INSTANCES 3
#define JOBS 2   /* per instance */
#define CALLS 20 /* per job */
#define TOTAL (INSTANCES * JOBS * CALLS)
#define LIMIT 60 /* requests per window */
#define WINDOW_MS 1500
#define CONCURRENCY 4
#define CALL_MS 5
#define WATCHDOG_MS 60000

static const char *pg_url;

struct call {
    struct fixture *f;
    int instance, job;
    struct scheduler_acquire *op;
    struct scheduler_slot slot;
    uv_timer_t timer;
    bool started, done;
    const char *const *headers; /* non-NULL: the call ends at once with a 429 and these */
};

struct fixture {
    uv_loop_t loop;
    uv_timer_t check, watchdog;
    struct db *db[INSTANCES];
    struct scheduler *s[INSTANCES];
    struct call calls[TOTAL];
    struct start {
        int64_t at;  /* the database's ms of the grant */
        int job;     /* instance * JOBS + job */
    } starts[TOTAL]; /* in the order the calls were woken */
    int started, done, running, max_running, refused;
    int want; /* calls to be done before the loop stops */
    bool expired;
};

static long admin_count(const char *sql)
{
    PGconn *pq = PQconnectdb(pg_url);
    assert_int_equal(PQstatus(pq), CONNECTION_OK);
    PGresult *r = PQexec(pq, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    long n = PQresultStatus(r) == PGRES_TUPLES_OK ? strtol(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    PQfinish(pq);
    return n;
}

static const char *get_header(void *ctx, const char *name)
{
    const char *const *h = ctx;
    for (int i = 0; h[i]; i += 2)
        if (strcmp(h[i], name) == 0)
            return h[i + 1];
    return NULL;
}

static void call_finish(uv_timer_t *t)
{
    struct call *c = t->data;
    c->f->running--;
    c->f->done++;
    c->done = true;
    scheduler_slot_finish(&c->slot, 200, 10, 5, NULL, NULL);
}

/* The wake: the call starts (at the database's time of its grant) and
 * "runs" for CALL_MS. */
static void call_wake(void *ud)
{
    struct call *c = ud;
    struct fixture *f = c->f;
    char msg[SCHEDULER_MESSAGE_MAX];
    enum scheduler_status st = scheduler_acquire_take(c->op, &c->slot, msg, sizeof msg);
    scheduler_acquire_free(c->op);
    c->op = NULL;
    if (st != SCHEDULER_OK) {
        f->refused++;
        print_message("call refused: %s\n", msg);
        return;
    }
    assert_true(c->slot.shared);
    f->starts[f->started].at = c->slot.granted_at_ms;
    f->starts[f->started].job = c->instance * JOBS + c->job;
    f->started++;
    c->started = true;
    if (++f->running > f->max_running)
        f->max_running = f->running;
    if (c->headers) {
        f->running--;
        f->done++;
        c->done = true;
        scheduler_slot_finish(&c->slot, 429, 10, 0, get_header, (void *)c->headers);
        return;
    }
    uv_timer_start(&c->timer, call_finish, CALL_MS, 0);
}

static int pending(struct fixture *f)
{
    int n = 0;
    for (int i = 0; i < INSTANCES; i++)
        n += scheduler_share_pending(f->s[i]);
    return n;
}

static void on_check(uv_timer_t *t)
{
    struct fixture *f = t->data;
    if (f->done + f->refused >= f->want && pending(f) == 0)
        uv_stop(&f->loop);
}

static void on_watchdog(uv_timer_t *t)
{
    struct fixture *f = t->data;
    f->expired = true;
    uv_stop(&f->loop);
}

static void open_instance(struct fixture *f, int i, int64_t window_ms)
{
    char err[512];
    struct db_config cfg = {.url = pg_url, .loop = &f->loop, .pool_size = 2};
    f->db[i] = db_open(&cfg, err, sizeof err);
    if (!f->db[i])
        fail_msg("db_open: %s", err);
    db_serve_operations(f->db[i]);
    f->s[i] = scheduler_new(&f->loop);
    char id[16];
    snprintf(id, sizeof id, "instance-%d", i + 1);
    struct scheduler_share_config share = {
        .db = f->db[i], .instance = id, .poll_ms = 10, .grace_ms = 500};
    assert_int_equal(scheduler_share(f->s[i], &share, err, sizeof err), 0);
    struct ratelimit_config rc = {.requests_per_minute = LIMIT, .max_concurrency = CONCURRENCY};
    assert_non_null(scheduler_install(f->s[i], "mock", &rc, NULL, window_ms, err, sizeof err));
}

static int by_time(const void *a, const void *b)
{
    const struct start *x = a, *y = b;
    return x->at < y->at ? -1 : x->at > y->at;
}

/* The mock's bucket over the grant instants in time order: full at first,
 * refilled at LIMIT per WINDOW_MS, one request per start; never below
 * empty. */
static void expect_the_mock_never_over(struct fixture *f)
{
    qsort(f->starts, (size_t)f->started, sizeof f->starts[0], by_time);
    const int64_t full = (int64_t)LIMIT * WINDOW_MS, cost = WINDOW_MS;
    int64_t level = full, prev = f->starts[0].at, lowest = full;
    for (int i = 0; i < f->started; i++) {
        level += (f->starts[i].at - prev) * LIMIT;
        if (level > full)
            level = full;
        level -= cost;
        prev = f->starts[i].at;
        if (level < lowest)
            lowest = level;
        if (level < 0)
            fail_msg("start %d at %lld ms: the mock's bucket is %lld requests short", i,
                     (long long)(f->starts[i].at - f->starts[0].at),
                     (long long)(-level / cost + 1));
    }
    print_message("lowest bucket level: %lld of %d requests\n", (long long)(lowest / cost), LIMIT);
}

/* (After expect_the_mock_never_over sorted the starts.)  Once the burst
 * (one window's capacity) is spent, the next starts go
 * round to every job of every instance while all still have calls. */
static void expect_every_job_progresses(const struct fixture *f)
{
    int got[INSTANCES * JOBS] = {0};
    for (int i = LIMIT; i < LIMIT + 4 * INSTANCES * JOBS && i < f->started; i++)
        got[f->starts[i].job]++;
    for (int j = 0; j < INSTANCES * JOBS; j++) {
        print_message("job %d: %d of the %d starts after the burst\n", j, got[j],
                      4 * INSTANCES * JOBS);
        assert_true(got[j] >= 2);
    }
}

static void close_handle(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static struct fixture *fixture_new(int64_t window_ms)
{
    admin_count("SET client_min_messages = warning; DROP SCHEMA public CASCADE;"
                " CREATE SCHEMA public");
    struct fixture *f = calloc(1, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    for (int i = 0; i < INSTANCES; i++)
        open_instance(f, i, window_ms);
    for (int n = 0; n < TOTAL; n++) {
        f->calls[n].f = f;
        uv_timer_init(&f->loop, &f->calls[n].timer);
        f->calls[n].timer.data = &f->calls[n];
    }
    uv_timer_init(&f->loop, &f->check);
    uv_timer_init(&f->loop, &f->watchdog);
    f->check.data = f->watchdog.data = f;
    return f;
}

/* Runs the loop until the calls counted in WANT are done (or refused) and
 * no shared-budget operation is left. */
static void run_until_done(struct fixture *f, int want)
{
    f->want = want;
    uv_timer_start(&f->check, on_check, 5, 5);
    uv_timer_start(&f->watchdog, on_watchdog, WATCHDOG_MS, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&f->check);
    uv_timer_stop(&f->watchdog);
    assert_false(f->expired);
}

static void acquire(struct fixture *f, struct call *c, int instance, int job)
{
    c->instance = instance;
    c->job = job;
    char key[32];
    snprintf(key, sizeof key, "report-%d-%d", instance + 1, job + 1);
    struct scheduler_request req = {
        .job_key = key, .est_input_tokens = 10, .max_output_tokens = 5, .wake = call_wake, .ud = c};
    char msg[SCHEDULER_MESSAGE_MAX];
    assert_int_equal(
        scheduler_acquire(scheduler_find(f->s[instance], "mock"), &req, &c->op, msg, sizeof msg),
        SCHEDULER_OK);
}

static void queue_calls(struct fixture *f)
{
    int n = 0;
    for (int i = 0; i < INSTANCES; i++)
        for (int j = 0; j < JOBS; j++)
            for (int k = 0; k < CALLS; k++)
                acquire(f, &f->calls[n++], i, j);
}

static void fixture_free(struct fixture *f)
{
    for (int i = 0; i < INSTANCES; i++)
        scheduler_free(f->s[i]);
    uv_close((uv_handle_t *)&f->check, NULL);
    uv_close((uv_handle_t *)&f->watchdog, NULL);
    for (int n = 0; n < TOTAL; n++)
        uv_close((uv_handle_t *)&f->calls[n].timer, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    for (int i = 0; i < INSTANCES; i++)
        db_close(f->db[i]);
    uv_walk(&f->loop, close_handle, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
}

static void test_three_instances_share_one_budget(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(WINDOW_MS);
    queue_calls(f);
    run_until_done(f, TOTAL);

    assert_int_equal(f->refused, 0);
    assert_int_equal(f->done, TOTAL);
    assert_true(f->max_running <= CONCURRENCY);
    expect_the_mock_never_over(f);
    expect_every_job_progresses(f);
    assert_int_equal(admin_count("SELECT count(*) FROM llm_leases"), 0);
    assert_int_equal(admin_count("SELECT count(*) FROM llm_waiters"), 0);
    char metrics[8192];
    scheduler_metrics_text(f->s[0], metrics, sizeof metrics);
    assert_non_null(strstr(metrics, "o2c_llm_shared_refusals_total{provider=\"mock\"}"));
    fixture_free(f);
}

static long shared_refusals(struct fixture *f, int instance)
{
    char metrics[8192];
    scheduler_metrics_text(f->s[instance], metrics, sizeof metrics);
    const char *at = strstr(metrics, "o2c_llm_shared_refusals_total{provider=\"mock\"} ");
    assert_non_null(at);
    return strtol(strchr(at, '}') + 2, NULL, 10);
}

/* What one instance learns reaches the others: instance 1's call gets a
 * 429 asking to wait 800 ms and says 3 requests remain; instance 2's next
 * call is refused by the shared pause and starts only once it has ended
 * (by the database's clock), and the shared level is what the header said,
 * less that call. */
static void test_a_429_pause_and_headers_reach_the_other_instances(void **state)
{
    (void)state;
    struct fixture *f = fixture_new(60000);
    static const char *const headers[] = {"retry-after-ms", "800",
                                          "anthropic-ratelimit-requests-remaining", "3", NULL};
    f->calls[0].headers = headers;
    acquire(f, &f->calls[0], 0, 0);
    run_until_done(f, 1);
    long paused_until = admin_count("SELECT paused_until_ms FROM llm_providers");
    assert_in_range(admin_count("SELECT level / 60000 FROM llm_budgets WHERE budget = 'requests'"),
                    3, 3);
    acquire(f, &f->calls[1], 1, 0);
    run_until_done(f, 2);
    assert_true(f->calls[1].started);
    assert_true(f->calls[1].slot.granted_at_ms >= paused_until);
    assert_true(shared_refusals(f, 1) >= 1);
    assert_in_range(admin_count("SELECT level / 60000 FROM llm_budgets WHERE budget = 'requests'"),
                    2, 3);
    fixture_free(f);
}

/* One SQLite process has nothing to share: scheduler_share says so. */
static void test_sqlite_shares_nothing(void **state)
{
    (void)state;
    char dir[] = "/tmp/o2c-test-share-XXXXXX", err[SCHEDULER_MESSAGE_MAX];
    assert_non_null(mkdtemp(dir));
    struct db_config cfg = {.data_dir = dir};
    struct db *db = db_open(&cfg, err, sizeof err);
    assert_non_null(db);
    struct scheduler *s = scheduler_new(uv_default_loop());
    struct scheduler_share_config share = {.db = db, .instance = "one"};
    assert_int_equal(scheduler_share(s, &share, err, sizeof err), -1);
    assert_non_null(strstr(err, "needs PostgreSQL"));
    scheduler_free(s);
    db_close(db);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    pg_url = getenv("O2C_TEST_PG_URL");
    if (!pg_url || !pg_url[0]) {
        fprintf(stderr, "test_pg_scheduler_share: O2C_TEST_PG_URL is not set; run it through "
                        "tests/lib/pg.sh run\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_instances_share_one_budget),
        cmocka_unit_test(test_a_429_pause_and_headers_reach_the_other_instances),
        cmocka_unit_test(test_sqlite_shares_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
