/* The provider scheduler (core/llm/ratelimit.c): budgets, fairness, true-up,
 * header learning, pauses.  The long randomized runs and the makespan figure are
 * in test_ratelimit_sim.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "llm/ratelimit.h"

/* ---- helpers ------------------------------------------------------------- */

struct headers {
    const char *pairs[32]; /* name, value, ..., NULL */
};

static const char *get_header(void *ctx, const char *name)
{
    struct headers *h = ctx;
    for (int i = 0; h->pairs[i]; i += 2)
        if (strcasecmp(h->pairs[i], name) == 0)
            return h->pairs[i + 1];
    return NULL;
}

/* Expects ratelimit_next at NOW to start a ticket and returns it. */
static struct ratelimit_ticket *expect_ready(struct ratelimit *rl, int64_t now)
{
    struct ratelimit_ticket *t;
    int64_t wait;
    assert_int_equal(ratelimit_next(rl, now, &t, &wait), RATELIMIT_READY);
    assert_non_null(t);
    assert_int_equal(wait, 0);
    assert_true(ratelimit_ticket_started(t));
    return t;
}

/* Expects ratelimit_next at NOW to say WAIT and returns the wait. */
static int64_t expect_wait(struct ratelimit *rl, int64_t now)
{
    struct ratelimit_ticket *t;
    int64_t wait;
    assert_int_equal(ratelimit_next(rl, now, &t, &wait), RATELIMIT_WAIT);
    assert_null(t);
    assert_true(wait > 0);
    return wait;
}

static void expect_status(struct ratelimit *rl, int64_t now, enum ratelimit_status status)
{
    struct ratelimit_ticket *t;
    int64_t wait;
    assert_int_equal(ratelimit_next(rl, now, &t, &wait), status);
    assert_null(t);
    assert_int_equal(wait, -1);
}

static struct ratelimit_budget_stats budget(struct ratelimit *rl, int64_t now,
                                            enum ratelimit_budget which)
{
    struct ratelimit_stats s;
    ratelimit_stats(rl, now, &s);
    return s.budget[which];
}

/* ---- budgets ------------------------------------------------------------- */

static void test_requests_per_minute(void **state)
{
    (void)state;
    struct ratelimit_config c = {.requests_per_minute = 2};
    struct ratelimit *rl = ratelimit_new(&c);
    expect_status(rl, 0, RATELIMIT_IDLE);
    for (int i = 0; i < 4; i++)
        assert_non_null(ratelimit_enqueue(rl, "job", 100, 100, NULL, 0));
    struct ratelimit_ticket *a = expect_ready(rl, 0);
    struct ratelimit_ticket *b = expect_ready(rl, 0);
    assert_int_equal(expect_wait(rl, 0), 30000); /* one request refills in 60 s / 2 */
    assert_int_equal(expect_wait(rl, 29999), 1);
    struct ratelimit_ticket *c3 = expect_ready(rl, 30000);
    assert_int_equal(expect_wait(rl, 30000), 30000);
    /* finishing frees nothing in a request bucket */
    ratelimit_finish(rl, a, 100, 100, 30001);
    ratelimit_finish(rl, b, 100, 100, 30001);
    assert_int_equal(expect_wait(rl, 30001), 29999);
    struct ratelimit_ticket *d = expect_ready(rl, 60000);
    ratelimit_finish(rl, c3, 100, 100, 60000);
    ratelimit_finish(rl, d, 100, 100, 60000);
    expect_status(rl, 60000, RATELIMIT_IDLE);
    /* an idle hour refills to capacity, not beyond */
    assert_int_equal(budget(rl, 3600000, RATELIMIT_REQUESTS).level, 2);
    ratelimit_free(rl);
}

static void test_concurrency_cap(void **state)
{
    (void)state;
    struct ratelimit_config c = {.max_concurrency = 2};
    struct ratelimit *rl = ratelimit_new(&c);
    int tag[3];
    for (int i = 0; i < 3; i++)
        ratelimit_enqueue(rl, "job", 10, 10, &tag[i], 0);
    struct ratelimit_ticket *a = expect_ready(rl, 0);
    assert_ptr_equal(ratelimit_ticket_user_data(a), &tag[0]);
    expect_ready(rl, 0);
    expect_status(rl, 0, RATELIMIT_BUSY);
    ratelimit_finish(rl, a, 10, 10, 5);
    struct ratelimit_ticket *c3 = expect_ready(rl, 5);
    assert_ptr_equal(ratelimit_ticket_user_data(c3), &tag[2]);
    struct ratelimit_stats s;
    ratelimit_stats(rl, 5, &s);
    assert_int_equal(s.in_flight, 2);
    assert_int_equal(s.queued, 0);
    assert_int_equal(s.started, 3);
    assert_int_equal(s.finished, 1);
    assert_int_equal(s.wait_ms_total, 5);
    assert_int_equal(s.max_concurrency, 2);
    ratelimit_free(rl); /* frees the two still in flight */
}

static void test_token_budgets_and_true_up(void **state)
{
    (void)state;
    struct ratelimit_config c = {.input_tokens_per_minute = 10000,
                                 .output_tokens_per_minute = 1000};
    struct ratelimit *rl = ratelimit_new(&c);
    ratelimit_enqueue(rl, "job", 6000, 800, NULL, 0);
    ratelimit_enqueue(rl, "job", 3000, 800, NULL, 0);
    struct ratelimit_ticket *a = expect_ready(rl, 0);
    assert_int_equal(budget(rl, 0, RATELIMIT_INPUT_TOKENS).level, 4000);
    assert_int_equal(budget(rl, 0, RATELIMIT_OUTPUT_TOKENS).level, 200);
    /* the second needs 800 output tokens: 600 more, at 1000 per minute = 36 s */
    assert_int_equal(expect_wait(rl, 0), 36000);
    /* usage says 1000 in and 100 out: 5000 and 700 come back */
    ratelimit_finish(rl, a, 1000, 100, 0);
    assert_int_equal(budget(rl, 0, RATELIMIT_INPUT_TOKENS).level, 9000);
    assert_int_equal(budget(rl, 0, RATELIMIT_OUTPUT_TOKENS).level, 900);
    struct ratelimit_ticket *b = expect_ready(rl, 0);
    assert_int_equal(budget(rl, 0, RATELIMIT_INPUT_TOKENS).level, 6000);
    /* more input than estimated leaves a debt the next call waits out */
    ratelimit_finish(rl, b, 15000, 800, 0);
    assert_int_equal(budget(rl, 0, RATELIMIT_INPUT_TOKENS).level, -6000);
    ratelimit_enqueue(rl, "job", 1000, 10, NULL, 0);
    assert_int_equal(expect_wait(rl, 0), 42000); /* 7000 tokens at 10000/min */
    expect_ready(rl, 42000);
    struct ratelimit_stats s;
    ratelimit_stats(rl, 42000, &s);
    assert_int_equal(s.input_tokens_total, 16000);
    assert_int_equal(s.output_tokens_total, 900);
    ratelimit_free(rl);
}

static void test_unknown_usage_keeps_reservation(void **state)
{
    (void)state;
    struct ratelimit_config c = {.input_tokens_per_minute = 10000,
                                 .output_tokens_per_minute = 1000,
                                 .tokens_per_minute = 20000};
    struct ratelimit *rl = ratelimit_new(&c);
    ratelimit_enqueue(rl, "job", 2000, 500, NULL, 0);
    struct ratelimit_ticket *t = expect_ready(rl, 0);
    assert_int_equal(budget(rl, 0, RATELIMIT_TOKENS).level, 17500);
    ratelimit_finish(rl, t, 1500, -1, 0); /* input known, output not */
    assert_int_equal(budget(rl, 0, RATELIMIT_INPUT_TOKENS).level, 8500);
    assert_int_equal(budget(rl, 0, RATELIMIT_OUTPUT_TOKENS).level, 500);
    assert_int_equal(budget(rl, 0, RATELIMIT_TOKENS).level, 18000);
    ratelimit_free(rl);
}

static void test_absurd_usage_does_not_overflow(void **state)
{
    (void)state;
    struct ratelimit_config c = {.input_tokens_per_minute = 1000};
    struct ratelimit *rl = ratelimit_new(&c);
    for (int i = 0; i < 3; i++) {
        ratelimit_enqueue(rl, "job", 1, 1, NULL, 0);
        struct ratelimit_ticket *t;
        int64_t wait;
        if (ratelimit_next(rl, INT64_MAX / 4, &t, &wait) == RATELIMIT_READY)
            ratelimit_finish(rl, t, INT64_MAX, INT64_MAX, INT64_MAX / 4);
    }
    assert_true(budget(rl, INT64_MAX / 4, RATELIMIT_INPUT_TOKENS).level < 0);
    /* a long idle period refills from any debt without overflowing */
    assert_int_equal(budget(rl, INT64_MAX / 2, RATELIMIT_INPUT_TOKENS).level, 1000);
    ratelimit_free(rl);
}

static void test_call_larger_than_a_limit(void **state)
{
    (void)state;
    struct ratelimit_config c = {.output_tokens_per_minute = 8000};
    struct ratelimit *rl = ratelimit_new(&c);
    char why[128];
    assert_false(ratelimit_fits(rl, 100, 9000, why, sizeof why));
    assert_string_equal(why, "needs 9000 output tokens (max_tokens) but the provider allows "
                             "8000 per minute");
    errno = 0;
    assert_null(ratelimit_enqueue(rl, "job", 100, 9000, NULL, 0));
    assert_int_equal(errno, E2BIG);
    assert_null(ratelimit_enqueue(rl, "job", -1, 10, NULL, 0));
    assert_int_equal(errno, EINVAL);
    assert_true(ratelimit_fits(rl, 100, 8000, NULL, 0));
    struct ratelimit_config bad = {.requests_per_minute = -1};
    assert_null(ratelimit_new(&bad));
    ratelimit_free(rl);
}

static void test_cancel(void **state)
{
    (void)state;
    struct ratelimit_config c = {.requests_per_minute = 60, .max_concurrency = 1};
    struct ratelimit *rl = ratelimit_new(&c);
    struct ratelimit_ticket *a = ratelimit_enqueue(rl, "a", 1, 1, NULL, 0);
    struct ratelimit_ticket *b = ratelimit_enqueue(rl, "b", 1, 1, NULL, 0);
    struct ratelimit_ticket *b2 = ratelimit_enqueue(rl, "b", 1, 1, NULL, 0);
    assert_string_equal(ratelimit_ticket_job(b), "b");
    assert_true(ratelimit_ticket_id(b) > ratelimit_ticket_id(a));
    ratelimit_cancel(rl, b); /* queued: leaves the queue */
    assert_ptr_equal(expect_ready(rl, 0), a);
    expect_status(rl, 0, RATELIMIT_BUSY);
    ratelimit_cancel(rl, a); /* in flight: frees the slot, keeps the debit */
    assert_int_equal(budget(rl, 0, RATELIMIT_REQUESTS).level, 59);
    assert_ptr_equal(expect_ready(rl, 0), b2);
    ratelimit_cancel(rl, b2);
    expect_status(rl, 0, RATELIMIT_IDLE);
    struct ratelimit_stats s;
    ratelimit_stats(rl, 0, &s);
    assert_int_equal(s.cancelled, 3);
    assert_int_equal(s.in_flight, 0);
    assert_int_equal(s.jobs, 0);
    ratelimit_free(rl);
}

/* ---- unstart (a shared gate refused a started call) ---------------------- */

/* The refused call is credited back and goes first again: the same ticket,
 * then its job's next call, then the other job's (the turn was its job's). */
static void test_unstart_puts_the_call_back_first(void **state)
{
    (void)state;
    struct ratelimit_config c = {
        .requests_per_minute = 60, .output_tokens_per_minute = 1000, .max_concurrency = 1};
    struct ratelimit *rl = ratelimit_new(&c);
    int a1, a2, b1;
    ratelimit_enqueue(rl, "a", 10, 400, &a1, 0);
    ratelimit_enqueue(rl, "a", 10, 400, &a2, 0);
    ratelimit_enqueue(rl, "b", 10, 400, &b1, 0);
    struct ratelimit_ticket *t = expect_ready(rl, 0);
    assert_ptr_equal(ratelimit_ticket_user_data(t), &a1);
    expect_status(rl, 0, RATELIMIT_BUSY);
    assert_int_equal(ratelimit_unstart(rl, t, 0), 0);
    assert_false(ratelimit_ticket_started(t));
    struct ratelimit_stats st;
    ratelimit_stats(rl, 0, &st);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.started, 0);
    assert_int_equal(st.queued, 3);
    assert_int_equal(st.budget[RATELIMIT_REQUESTS].level, 60);
    assert_int_equal(st.budget[RATELIMIT_OUTPUT_TOKENS].level, 1000);
    assert_int_equal(ratelimit_unstart(rl, t, 0), -1); /* not in flight */
    assert_int_equal(errno, EINVAL);
    /* a1 again, then b1 (round-robin), then a2. */
    t = expect_ready(rl, 0);
    assert_ptr_equal(ratelimit_ticket_user_data(t), &a1);
    ratelimit_finish(rl, t, 10, 400, 0);
    t = expect_ready(rl, 0);
    assert_ptr_equal(ratelimit_ticket_user_data(t), &b1);
    ratelimit_finish(rl, t, 10, 400, 0);
    expect_wait(rl, 0); /* 800 of 1000 output tokens spent: a2 waits */
    ratelimit_free(rl);
}

/* The last call of a job (its job gone from the rotation) comes back at
 * the head of it; a cancel afterwards leaves nothing behind. */
static void test_unstart_the_last_call_of_a_job(void **state)
{
    (void)state;
    struct ratelimit *rl = ratelimit_new(NULL);
    int a, b;
    ratelimit_enqueue(rl, "a", 1, 1, &a, 0);
    ratelimit_enqueue(rl, "b", 1, 1, &b, 0);
    struct ratelimit_ticket *t = expect_ready(rl, 0);
    assert_ptr_equal(ratelimit_ticket_user_data(t), &a);
    assert_int_equal(ratelimit_unstart(rl, t, 0), 0);
    struct ratelimit_stats st;
    ratelimit_stats(rl, 0, &st);
    assert_int_equal(st.jobs, 2);
    t = expect_ready(rl, 0);
    assert_ptr_equal(ratelimit_ticket_user_data(t), &a);
    assert_int_equal(ratelimit_unstart(rl, t, 0), 0);
    ratelimit_cancel(rl, t);
    t = expect_ready(rl, 0);
    assert_ptr_equal(ratelimit_ticket_user_data(t), &b);
    ratelimit_finish(rl, t, 1, 1, 0);
    expect_status(rl, 0, RATELIMIT_IDLE);
    ratelimit_free(rl);
}

/* The header values for the shared budget: the same families as
 * observe, without touching any bucket. */
static void test_read_headers(void **state)
{
    (void)state;
    struct headers h = {{"anthropic-ratelimit-requests-limit", "50",
                         "anthropic-ratelimit-requests-remaining", "49",
                         "anthropic-ratelimit-output-tokens-remaining", "7000",
                         "x-ratelimit-remaining-requests", "40", NULL}};
    struct ratelimit_header_values v;
    assert_int_equal(ratelimit_read_headers(get_header, &h, &v), 3);
    assert_int_equal(v.limit[RATELIMIT_REQUESTS], 50);
    assert_int_equal(v.remaining[RATELIMIT_REQUESTS], 40); /* the lower of two families */
    assert_int_equal(v.remaining[RATELIMIT_OUTPUT_TOKENS], 7000);
    assert_int_equal(v.limit[RATELIMIT_OUTPUT_TOKENS], -1);
    assert_int_equal(v.limit[RATELIMIT_INPUT_TOKENS], -1);
    assert_int_equal(v.remaining[RATELIMIT_TOKENS], -1);
}

/* ---- fairness ------------------------------------------------------------ */

static void test_fair_small_job_behind_large_one(void **state)
{
    (void)state;
    /* 1 request per second: every slot is one second */
    struct ratelimit_config c = {.requests_per_minute = 60};
    struct ratelimit *rl = ratelimit_new(&c);
    /* drain the burst so that slots are spaced out in time */
    for (int i = 0; i < 60; i++)
        ratelimit_enqueue(rl, "warm-up", 1, 1, NULL, 0);
    for (int i = 0; i < 60; i++)
        ratelimit_finish(rl, expect_ready(rl, 0), 1, 1, 0);
    int big[12], small;
    for (int i = 0; i < 12; i++)
        ratelimit_enqueue(rl, "report-12", 1, 1, &big[i], 0);
    ratelimit_enqueue(rl, "report-1", 1, 1, &small, 0);
    int64_t now = 0, small_started = -1;
    for (int started = 0; started < 13;) {
        struct ratelimit_ticket *t;
        int64_t wait;
        enum ratelimit_status st = ratelimit_next(rl, now, &t, &wait);
        if (st == RATELIMIT_WAIT) {
            now += wait;
            continue;
        }
        assert_int_equal(st, RATELIMIT_READY);
        if (ratelimit_ticket_user_data(t) == &small)
            small_started = now;
        if (started == 0)
            assert_ptr_equal(ratelimit_ticket_user_data(t), &big[0]);
        ratelimit_finish(rl, t, 1, 1, now);
        started++;
    }
    /* the 12-section report got one slot first; the 1-section one got the next */
    assert_int_equal(small_started, 2000);
    ratelimit_free(rl);
}

static void test_round_robin_across_many_jobs(void **state)
{
    (void)state;
    struct ratelimit_config c = {.max_concurrency = 1};
    struct ratelimit *rl = ratelimit_new(&c);
    char key[16];
    ratelimit_enqueue(rl, "big", 1, 1, NULL, 0);
    for (int i = 0; i < 11; i++)
        ratelimit_enqueue(rl, "big", 1, 1, NULL, 0);
    for (int j = 0; j < 9; j++) {
        snprintf(key, sizeof key, "small-%d", j);
        ratelimit_enqueue(rl, key, 1, 1, NULL, 0);
    }
    /* big, small-0..8, then big's remaining 11 */
    char expected_order[21][16];
    for (int i = 0; i < 21; i++)
        snprintf(expected_order[i], sizeof expected_order[i], i >= 1 && i <= 9 ? "small-%d" : "big",
                 i - 1);
    for (int i = 0; i < 21; i++) {
        struct ratelimit_ticket *t = expect_ready(rl, i);
        assert_string_equal(ratelimit_ticket_job(t), expected_order[i]);
        ratelimit_finish(rl, t, 1, 1, i);
    }
    expect_status(rl, 21, RATELIMIT_IDLE);
    /* a job that comes back joins at the back of the line */
    ratelimit_enqueue(rl, "a", 1, 1, NULL, 30);
    ratelimit_enqueue(rl, "a", 1, 1, NULL, 30);
    ratelimit_enqueue(rl, "b", 1, 1, NULL, 30);
    struct ratelimit_ticket *t = expect_ready(rl, 30);
    assert_string_equal(ratelimit_ticket_job(t), "a");
    ratelimit_enqueue(rl, "c", 1, 1, NULL, 30);
    ratelimit_finish(rl, t, 1, 1, 30);
    const char *expected[] = {"b", "a", "c"};
    for (int i = 0; i < 3; i++) {
        t = expect_ready(rl, 31);
        assert_string_equal(ratelimit_ticket_job(t), expected[i]);
        ratelimit_finish(rl, t, 1, 1, 31);
    }
    ratelimit_free(rl);
}

static void test_strict_turns_do_not_skip_a_large_call(void **state)
{
    (void)state;
    struct ratelimit_config c = {.output_tokens_per_minute = 6000};
    struct ratelimit *rl = ratelimit_new(&c);
    ratelimit_enqueue(rl, "small", 1, 4000, NULL, 0);
    ratelimit_enqueue(rl, "large", 1, 6000, NULL, 0);
    ratelimit_enqueue(rl, "small", 1, 1000, NULL, 0);
    expect_ready(rl, 0);
    /* large's turn: it waits for its 6000, and the small one behind does not jump */
    assert_int_equal(expect_wait(rl, 0), 40000);
    struct ratelimit_ticket *t = expect_ready(rl, 40000);
    assert_string_equal(ratelimit_ticket_job(t), "large");
    ratelimit_free(rl);
}

/* ---- pause --------------------------------------------------------------- */

static void test_pause_on_429(void **state)
{
    (void)state;
    struct ratelimit_config c = {.requests_per_minute = 600};
    struct ratelimit *rl = ratelimit_new(&c);
    ratelimit_enqueue(rl, "job", 1, 1, NULL, 0);
    ratelimit_enqueue(rl, "job", 1, 1, NULL, 0);
    struct ratelimit_ticket *t = expect_ready(rl, 0);
    /* the call got a 429 with retry-after: 5 */
    ratelimit_finish(rl, t, 0, 0, 100);
    ratelimit_pause_until(rl, 5100);
    ratelimit_pause_until(rl, 3000); /* pauses only extend */
    assert_int_equal(expect_wait(rl, 100), 5000);
    struct ratelimit_stats s;
    ratelimit_stats(rl, 100, &s);
    assert_int_equal(s.paused_until, 5100);
    assert_int_equal(s.pauses, 1);
    assert_int_equal(expect_wait(rl, 5099), 1);
    expect_ready(rl, 5100);
    ratelimit_stats(rl, 5100, &s);
    assert_int_equal(s.paused_until, 0);
    ratelimit_free(rl);
}

/* ---- headers ------------------------------------------------------------- */

static void test_learns_anthropic_headers(void **state)
{
    (void)state;
    struct ratelimit_config c = {.learn_from_headers = true};
    struct ratelimit *rl = ratelimit_new(&c);
    for (int i = 0; i < 5; i++)
        ratelimit_enqueue(rl, "job", 2000, 1000, NULL, 0);
    struct ratelimit_ticket *probe = expect_ready(rl, 0);
    /* nothing known yet: the first call runs alone */
    expect_status(rl, 0, RATELIMIT_BUSY);
    struct ratelimit_stats s;
    ratelimit_stats(rl, 0, &s);
    assert_true(s.probing);
    ratelimit_finish(rl, probe, 1800, 400, 1500);
    int64_t wall = 1714564800000LL; /* 2024-05-01T12:00:00Z */
    struct headers h = {{"anthropic-ratelimit-requests-limit",
                         "50",
                         "anthropic-ratelimit-requests-remaining",
                         "49",
                         "anthropic-ratelimit-requests-reset",
                         "2024-05-01T12:00:01Z",
                         "anthropic-ratelimit-input-tokens-limit",
                         "30000",
                         "anthropic-ratelimit-input-tokens-remaining",
                         "4000",
                         "anthropic-ratelimit-input-tokens-reset",
                         "2024-05-01T12:00:52.5Z",
                         "anthropic-ratelimit-output-tokens-limit",
                         "8000",
                         "anthropic-ratelimit-output-tokens-remaining",
                         "7600",
                         "anthropic-ratelimit-output-tokens-reset",
                         "2024-05-01T14:00:03+02:00",
                         "anthropic-ratelimit-tokens-limit",
                         "8000", /* mirrors output: not a budget */
                         "anthropic-ratelimit-tokens-remaining",
                         "4000",
                         NULL}};
    assert_int_equal(ratelimit_observe_headers(rl, 1500, wall, get_header, &h), 3);
    ratelimit_stats(rl, 1500, &s);
    assert_false(s.probing);
    assert_int_equal(s.budget[RATELIMIT_REQUESTS].capacity, 50);
    assert_int_equal(s.budget[RATELIMIT_REQUESTS].level, 49);
    assert_true(s.budget[RATELIMIT_REQUESTS].learned);
    assert_false(s.budget[RATELIMIT_REQUESTS].configured);
    assert_int_equal(s.budget[RATELIMIT_REQUESTS].reset_at, 2500);
    assert_int_equal(s.budget[RATELIMIT_INPUT_TOKENS].capacity, 30000);
    assert_int_equal(s.budget[RATELIMIT_INPUT_TOKENS].level, 4000);
    assert_int_equal(s.budget[RATELIMIT_INPUT_TOKENS].reset_at, 1500 + 52500);
    assert_int_equal(s.budget[RATELIMIT_OUTPUT_TOKENS].capacity, 8000);
    assert_int_equal(s.budget[RATELIMIT_OUTPUT_TOKENS].level, 7600);
    assert_int_equal(s.budget[RATELIMIT_OUTPUT_TOKENS].reset_at, 1500 + 3000);
    assert_int_equal(s.budget[RATELIMIT_TOKENS].capacity, 0);
    /* now the learned budgets rule: two calls of 2000 input fit in 4000 */
    expect_ready(rl, 1500);
    expect_ready(rl, 1500);
    /* the next needs 2000 more input tokens at 500 per second */
    assert_int_equal(expect_wait(rl, 1500), 4000);
    ratelimit_free(rl);
}

static void test_learns_openai_headers(void **state)
{
    (void)state;
    struct ratelimit_config c = {.learn_from_headers = true};
    struct ratelimit *rl = ratelimit_new(&c);
    ratelimit_enqueue(rl, "job", 100, 100, NULL, 0);
    ratelimit_finish(rl, expect_ready(rl, 0), 90, 50, 800);
    struct headers h = {{"x-ratelimit-limit-requests", "60", "x-ratelimit-remaining-requests", "10",
                         "x-ratelimit-reset-requests", "6m0s", "x-ratelimit-limit-tokens", "150000",
                         "x-ratelimit-remaining-tokens", "149000", "x-ratelimit-reset-tokens",
                         "20ms", NULL}};
    assert_int_equal(ratelimit_observe_headers(rl, 1000, 0, get_header, &h), 2);
    struct ratelimit_stats s;
    ratelimit_stats(rl, 1000, &s);
    assert_int_equal(s.budget[RATELIMIT_REQUESTS].capacity, 60);
    assert_int_equal(s.budget[RATELIMIT_REQUESTS].level, 10);
    assert_int_equal(s.budget[RATELIMIT_REQUESTS].reset_at, 1000 + 360000);
    assert_int_equal(s.budget[RATELIMIT_TOKENS].capacity, 150000);
    assert_int_equal(s.budget[RATELIMIT_TOKENS].level, 149000);
    assert_int_equal(s.budget[RATELIMIT_TOKENS].reset_at, 1020);
    assert_int_equal(s.budget[RATELIMIT_INPUT_TOKENS].capacity, 0);
    /* ten requests now, the eleventh a second later */
    for (int i = 0; i < 11; i++)
        ratelimit_enqueue(rl, "job", 100, 100, NULL, 1000);
    for (int i = 0; i < 10; i++)
        expect_ready(rl, 1000);
    assert_int_equal(expect_wait(rl, 1000), 1000);
    ratelimit_free(rl);
}

static void test_headers_never_raise_belief(void **state)
{
    (void)state;
    struct ratelimit_config c = {.requests_per_minute = 10,
                                 .input_tokens_per_minute = 1000,
                                 .output_tokens_per_minute = 1000,
                                 .tokens_per_minute = 2000,
                                 .learn_from_headers = true};
    struct ratelimit *rl = ratelimit_new(&c);
    for (int i = 0; i < 5; i++) {
        ratelimit_enqueue(rl, "job", 1, 1, NULL, 0);
        expect_ready(rl, 0);
    }
    assert_int_equal(budget(rl, 0, RATELIMIT_REQUESTS).level, 5);
    struct headers more = {
        {"x-ratelimit-limit-requests", "20", "x-ratelimit-remaining-requests", "18", NULL}};
    ratelimit_observe_headers(rl, 0, 0, get_header, &more);
    struct ratelimit_budget_stats b = budget(rl, 0, RATELIMIT_REQUESTS);
    assert_int_equal(b.capacity, 10); /* a configured limit is not raised */
    assert_int_equal(b.level, 5);     /* remaining is never above what we believe */
    assert_true(b.configured);
    struct headers less = {
        {"x-ratelimit-limit-requests", "4", "x-ratelimit-remaining-requests", "2", NULL}};
    ratelimit_observe_headers(rl, 0, 0, get_header, &less);
    b = budget(rl, 0, RATELIMIT_REQUESTS);
    assert_int_equal(b.capacity, 4); /* but lowered */
    assert_int_equal(b.level, 2);
    /* refill follows the new limit: 4 per minute */
    assert_int_equal(budget(rl, 15000, RATELIMIT_REQUESTS).level, 3);
    ratelimit_free(rl);
}

static void test_no_headers_ends_the_probe(void **state)
{
    (void)state;
    /* a llama.cpp server sends no rate-limit headers: after the first response
     * the scheduler runs unlimited (but for a configured concurrency) */
    struct ratelimit_config c = {.max_concurrency = 3, .learn_from_headers = true};
    struct ratelimit *rl = ratelimit_new(&c);
    for (int i = 0; i < 5; i++)
        ratelimit_enqueue(rl, "job", 1, 1, NULL, 0);
    struct ratelimit_ticket *t = expect_ready(rl, 0);
    expect_status(rl, 0, RATELIMIT_BUSY);
    struct headers none = {{NULL}};
    assert_int_equal(ratelimit_observe_headers(rl, 10, 0, get_header, &none), 0);
    expect_ready(rl, 10);
    expect_ready(rl, 10);
    expect_status(rl, 10, RATELIMIT_BUSY);
    ratelimit_finish(rl, t, 1, 1, 10);
    expect_ready(rl, 10);
    ratelimit_free(rl);

    /* all limits configured: no probe */
    struct ratelimit_config all = {.requests_per_minute = 5,
                                   .input_tokens_per_minute = 50,
                                   .output_tokens_per_minute = 50,
                                   .tokens_per_minute = 100,
                                   .learn_from_headers = true};
    rl = ratelimit_new(&all);
    ratelimit_enqueue(rl, "job", 1, 1, NULL, 0);
    ratelimit_enqueue(rl, "job", 1, 1, NULL, 0);
    expect_ready(rl, 0);
    expect_ready(rl, 0);
    ratelimit_free(rl);
}

static void test_parse_duration(void **state)
{
    (void)state;
    struct {
        const char *text;
        int64_t ms;
    } ok[] = {{"1s", 1000},    {"6m0s", 360000}, {"20ms", 20},      {"1h2m3.5s", 3723500},
              {"0s", 0},       {"12", 12000},    {"0.5", 500},      {"250us", 1},
              {"1.5m", 90000}, {" 7s ", 7000},   {"2m30s", 150000}, {"1\xc2\xb5s", 1}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t ms = -1;
        assert_true(ratelimit_parse_duration_ms(ok[i].text, &ms));
        assert_int_equal(ms, ok[i].ms);
    }
    const char *bad[] = {"", "s", "1x", "-1s", "1m2", "abc", "1s junk", NULL};
    for (int i = 0; bad[i]; i++) {
        int64_t ms;
        assert_false(ratelimit_parse_duration_ms(bad[i], &ms));
    }
    assert_false(ratelimit_parse_duration_ms(NULL, &(int64_t){0}));
}

static void test_parse_rfc3339(void **state)
{
    (void)state;
    int64_t ms;
    assert_true(ratelimit_parse_rfc3339_ms("2024-05-01T12:00:00Z", &ms));
    assert_int_equal(ms, 1714564800000LL);
    assert_true(ratelimit_parse_rfc3339_ms("2024-05-01T12:00:00.25Z", &ms));
    assert_int_equal(ms, 1714564800250LL);
    assert_true(ratelimit_parse_rfc3339_ms("2024-05-01T12:00:00.123456Z", &ms));
    assert_int_equal(ms, 1714564800123LL);
    assert_true(ratelimit_parse_rfc3339_ms("2024-05-01T14:00:00+02:00", &ms));
    assert_int_equal(ms, 1714564800000LL);
    assert_true(ratelimit_parse_rfc3339_ms("2024-05-01T10:30:00-01:30", &ms));
    assert_int_equal(ms, 1714564800000LL);
    assert_false(ratelimit_parse_rfc3339_ms("2024-05-01T12:00:00", &ms)); /* no zone */
    assert_false(ratelimit_parse_rfc3339_ms("2024-05-01T12:00:00Zjunk", &ms));
    assert_false(ratelimit_parse_rfc3339_ms("2024-05-01T12:00:00.Z", &ms));
    assert_false(ratelimit_parse_rfc3339_ms("6m0s", &ms));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests_per_minute),
        cmocka_unit_test(test_concurrency_cap),
        cmocka_unit_test(test_token_budgets_and_true_up),
        cmocka_unit_test(test_unknown_usage_keeps_reservation),
        cmocka_unit_test(test_absurd_usage_does_not_overflow),
        cmocka_unit_test(test_call_larger_than_a_limit),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_unstart_puts_the_call_back_first),
        cmocka_unit_test(test_unstart_the_last_call_of_a_job),
        cmocka_unit_test(test_read_headers),
        cmocka_unit_test(test_fair_small_job_behind_large_one),
        cmocka_unit_test(test_round_robin_across_many_jobs),
        cmocka_unit_test(test_strict_turns_do_not_skip_a_large_call),
        cmocka_unit_test(test_pause_on_429),
        cmocka_unit_test(test_learns_anthropic_headers),
        cmocka_unit_test(test_learns_openai_headers),
        cmocka_unit_test(test_headers_never_raise_belief),
        cmocka_unit_test(test_no_headers_ends_the_probe),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_parse_rfc3339),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
