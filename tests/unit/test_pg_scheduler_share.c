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
    if (f->done + f->refused == TOTAL && pending(f) == 0)
        uv_stop(&f->loop);
}

static void on_watchdog(uv_timer_t *t)
{
    struct fixture *f = t->data;
    f->expired = true;
    uv_stop(&f->loop);
}

static void open_instance(struct fixture *f, int i)
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
    assert_non_null(scheduler_install(f->s[i], "mock", &rc, NULL, WINDOW_MS, err, sizeof err));
}

static void queue_calls(struct fixture *f)
{
    int n = 0;
    for (int i = 0; i < INSTANCES; i++)
        for (int j = 0; j < JOBS; j++)
            for (int k = 0; k < CALLS; k++, n++) {
                struct call *c = &f->calls[n];
                c->f = f;
                c->instance = i;
                c->job = j;
                uv_timer_init(&f->loop, &c->timer);
                c->timer.data = c;
                char job[32];
                snprintf(job, sizeof job, "report-%d-%d", i + 1, j + 1);
                struct scheduler_request req = {.job_key = job,
                                                .est_input_tokens = 10,
                                                .max_output_tokens = 5,
                                                .wake = call_wake,
                                                .ud = c};
                char msg[SCHEDULER_MESSAGE_MAX];
                assert_int_equal(scheduler_acquire(scheduler_find(f->s[i], "mock"), &req, &c->op,
                                                   msg, sizeof msg),
                                 SCHEDULER_OK);
            }
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

static void test_three_instances_share_one_budget(void **state)
{
    (void)state;
    admin_count("SET client_min_messages = warning; DROP SCHEMA public CASCADE;"
                " CREATE SCHEMA public");
    struct fixture *f = calloc(1, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    for (int i = 0; i < INSTANCES; i++)
        open_instance(f, i);
    queue_calls(f);
    uv_timer_init(&f->loop, &f->check);
    uv_timer_init(&f->loop, &f->watchdog);
    f->check.data = f->watchdog.data = f;
    uv_timer_start(&f->check, on_check, 20, 20);
    uv_timer_start(&f->watchdog, on_watchdog, WATCHDOG_MS, 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_false(f->expired);

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

    for (int i = 0; i < INSTANCES; i++)
        scheduler_free(f->s[i]);
    uv_timer_stop(&f->check);
    uv_timer_stop(&f->watchdog);
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
