/* The per-provider schedulers (core/llm/scheduler.c) without Lua: real uv loop,
 * callers that are plain C structs woken through the wake callback.
 *
 * Each test ends by freeing the registry, running the loop dry and closing it:
 * uv_loop_close fails (and ASan reports) if a provider, its timer or a deadline
 * timer is left behind or freed too early. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "llm/scheduler.h"

#define MAX_CALLERS 8

struct caller {
    const char *job;
    struct scheduler_acquire *op;
    struct scheduler_slot slot;
    enum scheduler_status status;
    char msg[SCHEDULER_MESSAGE_MAX];
    int woken;   /* wake calls */
    bool finish; /* finish with 200 as soon as granted */
    int order;   /* 1-based rank among the callers granted */
};

struct fixture {
    uv_loop_t loop;
    struct scheduler *s;
    struct scheduler_provider *p;
    struct caller callers[MAX_CALLERS];
    int granted;
};

static struct fixture *fx;

/* The wake callback: takes the slot (or the refusal) and frees the acquire,
 * the way the Lua binding's push and done do. */
static void caller_wake(void *ud)
{
    struct caller *c = ud;
    c->woken++;
    c->status = scheduler_acquire_take(c->op, &c->slot, c->msg, sizeof c->msg);
    scheduler_acquire_free(c->op);
    c->op = NULL;
    if (c->status != SCHEDULER_OK)
        return;
    c->order = ++fx->granted;
    if (c->finish)
        scheduler_slot_finish(&c->slot, 200, 10, 5, NULL, NULL);
}

static enum scheduler_status caller_acquire(struct caller *c, const char *job, int64_t deadline_at)
{
    struct scheduler_request req = {job, 100, 50, deadline_at, caller_wake, c};
    c->job = job;
    return scheduler_acquire(fx->p, &req, &c->op, c->msg, sizeof c->msg);
}

static struct scheduler_provider *install(const struct ratelimit_config *rc,
                                          const struct breaker_config *bc, int64_t window_ms)
{
    char err[SCHEDULER_MESSAGE_MAX] = "";
    struct scheduler_provider *p =
        scheduler_install(fx->s, "mock", rc, bc, window_ms, err, sizeof err);
    assert_non_null(p);
    return p;
}

static int setup(void **state)
{
    (void)state;
    static struct fixture f;
    memset(&f, 0, sizeof f);
    fx = &f;
    assert_int_equal(uv_loop_init(&f.loop), 0);
    f.s = scheduler_new(&f.loop);
    assert_non_null(f.s);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    scheduler_free(fx->s);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&fx->loop), 0); /* no handle left open */
    return 0;
}

/* Runs until nothing more can start without time passing or a finish. */
static void run_ready(void)
{
    for (int i = 0; i < 4; i++)
        uv_run(&fx->loop, UV_RUN_NOWAIT);
}

static void stats(struct scheduler_stats *st)
{
    scheduler_stats(fx->p, st);
}

/* ---- tests --------------------------------------------------------------------- */

/* Calls of one job start in FIFO order; jobs take turns. */
static void test_fifo_and_fairness_across_jobs(void **state)
{
    (void)state;
    struct ratelimit_config rc = {.max_concurrency = 1};
    fx->p = install(&rc, NULL, SCHEDULER_MINUTE_MS);
    const char *jobs[] = {"job-a", "job-a", "job-a", "job-b", "job-b"};
    for (int i = 0; i < 5; i++) {
        fx->callers[i].finish = true;
        assert_int_equal(caller_acquire(&fx->callers[i], jobs[i], 0), SCHEDULER_OK);
    }
    assert_int_equal(fx->granted, 0); /* nothing starts inside acquire */
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    /* a1, b1, a2, b2, a3 */
    assert_int_equal(fx->callers[0].order, 1);
    assert_int_equal(fx->callers[3].order, 2);
    assert_int_equal(fx->callers[1].order, 3);
    assert_int_equal(fx->callers[4].order, 4);
    assert_int_equal(fx->callers[2].order, 5);
    struct scheduler_stats st;
    stats(&st);
    assert_int_equal(st.rl.started, 5);
    assert_int_equal(st.rl.finished, 5);
    assert_int_equal(st.rl.queued, 0);
    assert_int_equal(st.rl.in_flight, 0);
    assert_int_equal(st.calls_total, 5);
    assert_int_equal(st.calls.calls[0].status, 200);
    assert_int_equal(st.rl.input_tokens_total, 50);
    assert_int_equal(st.rl.output_tokens_total, 25);
}

/* A queued call whose deadline passes is released with "deadline", and leaves
 * the queue (cancelled) while the call holding the slot goes on. */
static void test_deadline_releases_queued_call(void **state)
{
    (void)state;
    struct ratelimit_config rc = {.max_concurrency = 1};
    fx->p = install(&rc, NULL, SCHEDULER_MINUTE_MS);
    struct caller *holder = &fx->callers[0], *late = &fx->callers[1];
    assert_int_equal(caller_acquire(holder, "job-a", 0), SCHEDULER_OK);
    run_ready();
    assert_int_equal(holder->status, SCHEDULER_OK);
    int64_t now = (int64_t)uv_now(&fx->loop);
    assert_int_equal(caller_acquire(late, "job-b", now + 20), SCHEDULER_OK);
    uv_run(&fx->loop, UV_RUN_DEFAULT); /* only the deadline timer is left to fire */
    assert_int_equal(late->woken, 1);
    assert_int_equal(late->status, SCHEDULER_DEADLINE);
    assert_string_equal(scheduler_status_code(late->status), "deadline");
    assert_non_null(strstr(late->msg, "no mock slot before the section deadline (waited"));
    struct scheduler_stats st;
    stats(&st);
    assert_int_equal(st.rl.cancelled, 1);
    assert_int_equal(st.rl.queued, 0);
    assert_int_equal(st.rl.in_flight, 1);
    scheduler_slot_finish(&holder->slot, 200, -1, -1, NULL, NULL);
    stats(&st);
    assert_int_equal(st.rl.finished, 1);
    assert_int_equal(st.rl.in_flight, 0);

    /* A deadline already past is refused at once. */
    assert_int_equal(caller_acquire(&fx->callers[2], "job-c", now), SCHEDULER_DEADLINE);
    assert_null(fx->callers[2].op);
}

/* When the breaker opens, every queued call fails at once with "unavailable",
 * though the rate limit would keep them waiting a minute; a new acquire is
 * refused without queueing. */
static void test_open_breaker_fails_queued_calls(void **state)
{
    (void)state;
    struct ratelimit_config rc = {.requests_per_minute = 1};
    struct breaker_config bc;
    breaker_config_default(&bc);
    bc.consecutive_failures = 1;
    bc.open_ms = 600000; /* stays open for the whole test */
    fx->p = install(&rc, &bc, SCHEDULER_MINUTE_MS);
    for (int i = 0; i < 3; i++)
        assert_int_equal(caller_acquire(&fx->callers[i], "job-a", 0), SCHEDULER_OK);
    run_ready();
    assert_int_equal(fx->granted, 1);
    assert_int_equal(fx->callers[1].woken, 0);
    scheduler_slot_finish(&fx->callers[0].slot, 503, -1, -1, NULL, NULL);
    run_ready();
    for (int i = 1; i < 3; i++) {
        assert_int_equal(fx->callers[i].woken, 1);
        assert_int_equal(fx->callers[i].status, SCHEDULER_UNAVAILABLE);
        assert_non_null(strstr(fx->callers[i].msg, "provider unavailable (circuit open until "));
    }
    struct scheduler_stats st;
    stats(&st);
    assert_string_equal(st.breaker.state_name, "open");
    assert_true(st.breaker_until[0] != '\0');
    assert_int_equal(st.rl.queued, 0);
    assert_int_equal(st.rl.cancelled, 2);

    char until[32];
    assert_false(scheduler_breaker_allow(fx->p, until, sizeof until));
    assert_string_equal(until, st.breaker_until); /* one instant prints the same */
    assert_int_equal(caller_acquire(&fx->callers[3], "job-a", 0), SCHEDULER_UNAVAILABLE);
    assert_null(fx->callers[3].op);
}

static const char *retry_after_2s(void *ctx, const char *name)
{
    (void)ctx;
    return strcasecmp(name, "retry-after") == 0 ? "2" : NULL;
}

/* A 429 with retry-after pauses the provider: the queued call does not start. */
static void test_429_with_retry_after_pauses(void **state)
{
    (void)state;
    struct ratelimit_config rc = {.max_concurrency = 1};
    fx->p = install(&rc, NULL, SCHEDULER_MINUTE_MS);
    struct caller *first = &fx->callers[0], *next = &fx->callers[1];
    assert_int_equal(caller_acquire(first, "job-a", 0), SCHEDULER_OK);
    assert_int_equal(caller_acquire(next, "job-a", 0), SCHEDULER_OK);
    run_ready();
    assert_int_equal(fx->granted, 1);
    scheduler_slot_finish(&first->slot, 429, -1, -1, retry_after_2s, NULL);
    run_ready();
    assert_int_equal(next->woken, 0); /* paused for 2 s */
    struct scheduler_stats st;
    stats(&st);
    assert_int_equal(st.rl.pauses, 1);
    assert_true(st.paused_until[0] != '\0');
    assert_int_equal(st.rl.queued, 1);
    assert_string_equal(st.breaker.state_name, "closed"); /* a 429 is not a failure */
    scheduler_acquire_free(next->op);                     /* the caller gave up: cancelled */
    next->op = NULL;
    stats(&st);
    assert_int_equal(st.rl.queued, 0);
    assert_int_equal(st.rl.cancelled, 1);
    assert_int_equal(st.calls.calls[0].status, 429);
}

static void find_active_timer(uv_handle_t *h, void *arg)
{
    if (h->type == UV_TIMER && uv_is_active(h))
        *(uint64_t *)arg = uv_timer_get_due_in((uv_timer_t *)h);
}

/* window_ms scales the clock: 2 requests per 1000 ms of real time means the
 * third waits about 500 ms, not the 30 s it would wait per minute. */
static void test_window_ms_scales_the_clock(void **state)
{
    (void)state;
    struct ratelimit_config rc = {.requests_per_minute = 2};
    fx->p = install(&rc, NULL, 1000);
    for (int i = 0; i < 3; i++)
        assert_int_equal(caller_acquire(&fx->callers[i], "job-a", 0), SCHEDULER_OK);
    run_ready();
    assert_int_equal(fx->granted, 2);
    uint64_t due = UINT64_MAX;
    uv_walk(&fx->loop, find_active_timer, &due);
    assert_true(due > 0 && due <= 1000);
    struct scheduler_stats st;
    stats(&st);
    assert_int_equal(st.window_ms, 1000);
    assert_int_equal(st.rl.budget[RATELIMIT_REQUESTS].capacity, 2);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    assert_int_equal(fx->granted, 3);
    stats(&st);
    assert_true(st.rl.wait_ms_max > 0); /* in real ms, scaled back */
    for (int i = 0; i < 3; i++)
        scheduler_slot_finish(&fx->callers[i].slot, 200, -1, -1, NULL, NULL);
}

/* Dropping a slot gives it back without a verdict; stats count it cancelled. */
static void test_stats_after_finish_and_drop(void **state)
{
    (void)state;
    struct ratelimit_config rc = {0};
    fx->p = install(&rc, NULL, SCHEDULER_MINUTE_MS);
    for (int i = 0; i < 3; i++)
        assert_int_equal(caller_acquire(&fx->callers[i], "job-a", 0), SCHEDULER_OK);
    run_ready();
    assert_int_equal(fx->granted, 3);
    scheduler_slot_finish(&fx->callers[0].slot, 200, 7, 3, NULL, NULL);
    scheduler_slot_finish(&fx->callers[1].slot, 0, -1, -1, NULL, NULL);
    scheduler_slot_drop(&fx->callers[2].slot);
    scheduler_slot_drop(&fx->callers[2].slot); /* a dead slot: no-op */
    assert_false(scheduler_slot_live(&fx->callers[2].slot));
    scheduler_count_retry(fx->p);
    struct scheduler_stats st;
    stats(&st);
    assert_int_equal(st.rl.started, 3);
    assert_int_equal(st.rl.finished, 2);
    assert_int_equal(st.rl.cancelled, 1);
    assert_int_equal(st.rl.in_flight, 0);
    assert_int_equal(st.calls_total, 2); /* a drop has no verdict */
    assert_int_equal(st.calls.retries, 1);
    assert_int_equal(st.rl.input_tokens_total, 7);
    char text[8192];
    size_t len = scheduler_metrics_text(fx->s, text, sizeof text);
    assert_true(len < sizeof text);
    assert_non_null(strstr(text, "o2c_llm_calls_total{provider=\"mock\",status=\"200\"} 1"));
    assert_non_null(strstr(text, "o2c_llm_calls_total{provider=\"mock\",status=\"error\"} 1"));
    assert_non_null(strstr(text, "o2c_llm_retries_total{provider=\"mock\"} 1"));
}

static void count_handles(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        ++*(int *)arg;
}

/* The registry going away detaches the provider; it lives on (timer open)
 * until its last slot is finished, and only then is freed. */
static void test_provider_freed_with_last_slot(void **state)
{
    (void)state;
    struct ratelimit_config rc = {0};
    fx->p = install(&rc, NULL, SCHEDULER_MINUTE_MS);
    struct caller *c = &fx->callers[0];
    assert_int_equal(caller_acquire(c, "job-a", 0), SCHEDULER_OK);
    run_ready();
    assert_true(scheduler_slot_live(&c->slot));
    scheduler_free(fx->s);
    fx->s = NULL;
    run_ready();
    int open = 0;
    uv_walk(&fx->loop, count_handles, &open);
    assert_int_equal(open, 1);                              /* the provider's timer */
    scheduler_slot_finish(&c->slot, 200, 1, 1, NULL, NULL); /* reads the provider: ASan */
    assert_false(scheduler_slot_live(&c->slot));
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    open = 0;
    uv_walk(&fx->loop, count_handles, &open);
    assert_int_equal(open, 0);
}

/* Install errors come back as messages. */
static void test_install_errors(void **state)
{
    (void)state;
    struct ratelimit_config rc = {.max_concurrency = 1};
    char err[SCHEDULER_MESSAGE_MAX];
    assert_null(scheduler_install(fx->s, "Bad Name", &rc, NULL, 60000, err, sizeof err));
    assert_string_equal(err, "provider name must be 1-31 of a-z 0-9 _ - (got \"Bad Name\")");
    struct ratelimit_config bad = {.requests_per_minute = -1};
    assert_null(scheduler_install(fx->s, "mock", &bad, NULL, 60000, err, sizeof err));
    assert_non_null(strstr(err, "invalid limits or breaker settings for provider mock"));
    fx->p = install(&rc, NULL, SCHEDULER_MINUTE_MS);
    assert_ptr_equal(scheduler_find(fx->s, "mock"), fx->p);
    assert_int_equal(caller_acquire(&fx->callers[0], "job-a", 0), SCHEDULER_OK);
    assert_null(scheduler_install(fx->s, "mock", &rc, NULL, 60000, err, sizeof err));
    assert_non_null(strstr(err, "has calls queued or in flight"));
    scheduler_acquire_free(fx->callers[0].op);         /* the task died while queued */
    assert_ptr_equal(install(&rc, NULL, 1000), fx->p); /* idle again: replaced */
    assert_int_equal(scheduler_count(fx->s), 1);

    struct ratelimit_config small = {.output_tokens_per_minute = 10};
    fx->p = install(&small, NULL, SCHEDULER_MINUTE_MS);
    assert_int_equal(caller_acquire(&fx->callers[1], "job-a", 0), SCHEDULER_TOO_LARGE);
    assert_non_null(strstr(fx->callers[1].msg, "mock: this call can never start: "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fifo_and_fairness_across_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_releases_queued_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_breaker_fails_queued_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_429_with_retry_after_pauses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_window_ms_scales_the_clock, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stats_after_finish_and_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(test_provider_freed_with_last_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_install_errors, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
