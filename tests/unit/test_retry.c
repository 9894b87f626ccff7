/* Retry classification and backoff (core/llm/retry.c): every rule of issue 6. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>
#include <strings.h>
#include <time.h>

#include "llm/retry.h"

/* ---- fixtures ------------------------------------------------------------ */

struct headers {
    const char *pairs[16]; /* name, value, name, value, ..., NULL */
};

static const char *get_header(void *ctx, const char *name)
{
    struct headers *h = ctx;
    for (int i = 0; h->pairs[i]; i += 2)
        if (strcasecmp(h->pairs[i], name) == 0)
            return h->pairs[i + 1];
    return NULL;
}

/* A random source that returns the largest value allowed, or zero, and records
 * the bound it was asked for. */
struct fake_random {
    bool max;
    uint32_t last_bound;
    int calls;
};

static uint32_t fake_uniform(void *ctx, uint32_t upper_bound)
{
    struct fake_random *r = ctx;
    r->last_bound = upper_bound;
    r->calls++;
    return r->max ? upper_bound - 1 : 0;
}

static struct retry_policy policy_with(struct fake_random *r)
{
    struct retry_policy p;
    retry_policy_default(&p);
    p.random = fake_uniform;
    p.random_ctx = r;
    return p;
}

#define WALL_MS 1700000000000LL /* 2023-11-14T22:13:20Z */

static struct retry_decision decide(const struct retry_policy *p, int attempt, long status,
                                    const char *error_type, struct headers *h, int64_t deadline)
{
    struct retry_attempt a = {
        .attempt = attempt,
        .status = status,
        .error_type = error_type,
        .get_header = h ? get_header : NULL,
        .header_ctx = h,
        .now = 1000,
        .wall_ms = WALL_MS,
        .deadline = deadline,
    };
    struct retry_decision d;
    retry_decide(p, &a, &d);
    return d;
}

/* ---- status rules -------------------------------------------------------- */

static void test_retryable_statuses(void **state)
{
    (void)state;
    struct fake_random r = {.max = true};
    struct retry_policy p = policy_with(&r);
    const long statuses[] = {408, 409, 429, 500, 502, 503, 504, 529, 599};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        struct retry_decision d = decide(&p, 1, statuses[i], NULL, NULL, 0);
        assert_true(d.retry);
        assert_int_equal(d.reason, RETRY_RETRYABLE_STATUS);
        assert_false(d.server_delay);
        assert_int_equal(d.delay_ms, 500);
        assert_true(retry_status_is_retryable(statuses[i]));
    }
    struct retry_decision d = decide(&p, 1, 529, "overloaded_error", NULL, 0);
    assert_string_equal(d.message,
                        "HTTP 529 (overloaded_error): retrying in 500 ms (attempt 2 of 4)");
}

static void test_transport_errors_are_retried(void **state)
{
    (void)state;
    struct fake_random r = {.max = true};
    struct retry_policy p = policy_with(&r);
    struct retry_decision d = decide(&p, 2, 0, "timeout", NULL, 0);
    assert_true(d.retry);
    assert_int_equal(d.reason, RETRY_TRANSPORT);
    assert_int_equal(d.delay_ms, 1000);
    assert_string_equal(d.message, "no response (timeout): retrying in 1000 ms (attempt 3 of 4)");
}

static void test_never_retried_statuses(void **state)
{
    (void)state;
    struct fake_random r = {.max = true};
    struct retry_policy p = policy_with(&r);
    const long statuses[] = {400, 401, 403, 404, 413, 422, 301};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        struct retry_decision d = decide(&p, 1, statuses[i], NULL, NULL, 0);
        assert_false(d.retry);
        assert_int_equal(d.reason, RETRY_NOT_RETRYABLE);
        assert_false(retry_status_is_retryable(statuses[i]));
    }
    assert_int_equal(r.calls, 0);
    struct retry_decision d = decide(&p, 1, 401, "authentication_error", NULL, 0);
    assert_string_equal(d.message, "HTTP 401 (authentication_error): not retried");
}

static void test_success_is_not_a_retry(void **state)
{
    (void)state;
    struct retry_policy p;
    retry_policy_default(&p);
    struct retry_decision d = decide(&p, 1, 200, NULL, NULL, 0);
    assert_false(d.retry);
    assert_int_equal(d.reason, RETRY_OK);
}

static void test_should_retry_header_overrides_status(void **state)
{
    (void)state;
    struct fake_random r = {.max = true};
    struct retry_policy p = policy_with(&r);
    struct headers yes = {{"X-Should-Retry", "true", NULL}};
    struct headers no = {{"x-should-retry", "false", NULL}};
    struct headers odd = {{"x-should-retry", "maybe", NULL}};

    struct retry_decision d = decide(&p, 1, 400, NULL, &yes, 0);
    assert_true(d.retry);
    assert_int_equal(d.reason, RETRY_SHOULD_RETRY_TRUE);

    d = decide(&p, 1, 529, NULL, &no, 0);
    assert_false(d.retry);
    assert_int_equal(d.reason, RETRY_SHOULD_RETRY_FALSE);
    assert_string_equal(d.message, "HTTP 529: not retried (x-should-retry: false)");

    d = decide(&p, 1, 0, NULL, &no, 0); /* even a connection error */
    assert_false(d.retry);

    d = decide(&p, 1, 529, NULL, &odd, 0); /* unknown value: the status decides */
    assert_true(d.retry);
    d = decide(&p, 1, 400, NULL, &odd, 0);
    assert_false(d.retry);

    /* x-should-retry: true still respects the attempt budget */
    d = decide(&p, 4, 400, NULL, &yes, 0);
    assert_false(d.retry);
    assert_int_equal(d.reason, RETRY_ATTEMPTS_EXHAUSTED);
}

static void test_spend_limit_is_never_retried(void **state)
{
    (void)state;
    struct fake_random r = {.max = true};
    struct retry_policy p = policy_with(&r);
    struct headers yes = {{"x-should-retry", "true", "retry-after", "5", NULL}};

    struct retry_decision d = decide(&p, 1, 429, "enforced_spend_limit_reached", NULL, 0);
    assert_false(d.retry);
    assert_int_equal(d.reason, RETRY_SPEND_LIMIT);
    assert_string_equal(d.message, "HTTP 429 (enforced_spend_limit_reached): spend limit "
                                   "reached, not retried (raise the limit)");
    /* wins over x-should-retry: true, and is found inside a message too */
    d = decide(&p, 1, 429, "rate_limit_error: enforced_spend_limit_reached for org", &yes, 0);
    assert_false(d.retry);
    assert_int_equal(d.reason, RETRY_SPEND_LIMIT);
    /* a plain 429 is retried */
    d = decide(&p, 1, 429, "rate_limit_error", NULL, 0);
    assert_true(d.retry);
    assert_true(retry_is_spend_limit("enforced_spend_limit_reached"));
    assert_false(retry_is_spend_limit(NULL));
    assert_false(retry_is_spend_limit("rate_limit_error"));
}

static void test_attempts_exhausted(void **state)
{
    (void)state;
    struct fake_random r = {.max = true};
    struct retry_policy p = policy_with(&r);
    assert_int_equal(p.max_attempts, 4);
    for (int attempt = 1; attempt <= 3; attempt++)
        assert_true(decide(&p, attempt, 503, NULL, NULL, 0).retry);
    struct retry_decision d = decide(&p, 4, 503, NULL, NULL, 0);
    assert_false(d.retry);
    assert_int_equal(d.reason, RETRY_ATTEMPTS_EXHAUSTED);
    assert_string_equal(d.message, "HTTP 503: gave up after 4 attempts");

    p.max_attempts = 1; /* retries off */
    assert_false(decide(&p, 1, 503, NULL, NULL, 0).retry);
    p.max_attempts = 6;
    assert_true(decide(&p, 5, 503, NULL, NULL, 0).retry);
    assert_false(decide(&p, 6, 503, NULL, NULL, 0).retry);
}

/* ---- waits --------------------------------------------------------------- */

static void test_retry_after_seconds(void **state)
{
    (void)state;
    struct fake_random r = {.max = true};
    struct retry_policy p = policy_with(&r);
    struct headers h = {{"retry-after", "7", NULL}};
    struct retry_decision d = decide(&p, 1, 429, NULL, &h, 0);
    assert_true(d.retry);
    assert_true(d.server_delay);
    assert_int_equal(d.delay_ms, 7000);
    assert_int_equal(r.calls, 0); /* the server's wait wins over jitter */
    assert_string_equal(d.message,
                        "HTTP 429: retrying in 7000 ms (attempt 2 of 4, as the provider asks)");

    struct headers frac = {{"retry-after", " 1.5 ", NULL}};
    assert_int_equal(decide(&p, 1, 503, NULL, &frac, 0).delay_ms, 1500);
    struct headers zero = {{"retry-after", "0", NULL}};
    d = decide(&p, 1, 503, NULL, &zero, 0);
    assert_true(d.server_delay);
    assert_int_equal(d.delay_ms, 0);
    /* larger than the 8 s jitter cap: still the server's word */
    struct headers big = {{"retry-after", "45", NULL}};
    assert_int_equal(decide(&p, 1, 529, NULL, &big, 0).delay_ms, 45000);
}

static void test_retry_after_http_date(void **state)
{
    (void)state;
    struct fake_random r = {.max = true};
    struct retry_policy p = policy_with(&r);
    /* WALL_MS is 2023-11-14T22:13:20Z; the dates are 12 s later, in all three
     * HTTP-date forms, and one in the past. */
    struct headers imf = {{"retry-after", "Tue, 14 Nov 2023 22:13:32 GMT", NULL}};
    struct headers rfc850 = {{"retry-after", "Tuesday, 14-Nov-23 22:13:32 GMT", NULL}};
    struct headers asctime_form = {{"retry-after", "Tue Nov 14 22:13:32 2023", NULL}};
    struct headers past = {{"retry-after", "Tue, 14 Nov 2023 22:00:00 GMT", NULL}};
    struct retry_decision d = decide(&p, 1, 503, NULL, &imf, 0);
    assert_true(d.retry);
    assert_true(d.server_delay);
    assert_int_equal(d.delay_ms, 12000);
    assert_int_equal(decide(&p, 1, 503, NULL, &rfc850, 0).delay_ms, 12000);
    assert_int_equal(decide(&p, 1, 503, NULL, &asctime_form, 0).delay_ms, 12000);
    d = decide(&p, 1, 503, NULL, &past, 0);
    assert_true(d.server_delay);
    assert_int_equal(d.delay_ms, 0);
}

static void test_retry_after_ms_takes_precedence(void **state)
{
    (void)state;
    struct fake_random r = {.max = true};
    struct retry_policy p = policy_with(&r);
    struct headers both = {{"retry-after", "30", "retry-after-ms", "250", NULL}};
    struct retry_decision d = decide(&p, 1, 429, NULL, &both, 0);
    assert_true(d.server_delay);
    assert_int_equal(d.delay_ms, 250);
    struct headers frac = {{"retry-after-ms", "12.2", NULL}};
    assert_int_equal(decide(&p, 1, 429, NULL, &frac, 0).delay_ms, 13);
    /* an unparseable retry-after-ms falls back to retry-after ... */
    struct headers bad_ms = {{"retry-after-ms", "soon", "retry-after", "3", NULL}};
    assert_int_equal(decide(&p, 1, 429, NULL, &bad_ms, 0).delay_ms, 3000);
    /* ... and unparseable both fall back to jitter */
    struct headers bad = {{"retry-after-ms", "-5", "retry-after", "later", NULL}};
    d = decide(&p, 1, 429, NULL, &bad, 0);
    assert_false(d.server_delay);
    assert_int_equal(d.delay_ms, 500);
    assert_int_equal(retry_server_delay_ms(get_header, &bad, WALL_MS), -1);
    assert_int_equal(retry_server_delay_ms(NULL, NULL, WALL_MS), -1);
}

static void test_jitter_bounds(void **state)
{
    (void)state;
    struct fake_random r = {.max = true};
    struct retry_policy p = policy_with(&r);
    /* full jitter: uniform in [0, min(8000, 500 * 2^(attempt-1))] */
    const int64_t ceilings[] = {500, 1000, 2000, 4000, 8000, 8000, 8000};
    for (int attempt = 1; attempt <= 7; attempt++) {
        r.max = true;
        assert_int_equal(retry_backoff_ms(&p, attempt), ceilings[attempt - 1]);
        assert_int_equal(r.last_bound, ceilings[attempt - 1] + 1);
        r.max = false;
        assert_int_equal(retry_backoff_ms(&p, attempt), 0);
    }
    r.max = true;
    assert_int_equal(retry_backoff_ms(&p, 200), 8000); /* no shift overflow */
    p.base_ms = INT64_MAX / 2;
    p.cap_ms = INT64_MAX;
    assert_true(retry_backoff_ms(&p, 40) > 0);

    /* the default source (libsodium) stays within bounds and spreads out */
    struct retry_policy real;
    retry_policy_default(&real);
    for (int attempt = 1; attempt <= 6; attempt++) {
        int64_t lo = INT64_MAX, hi = -1;
        for (int i = 0; i < 2000; i++) {
            int64_t v = retry_backoff_ms(&real, attempt);
            assert_true(v >= 0 && v <= ceilings[attempt - 1]);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        assert_true(lo < ceilings[attempt - 1] / 10);
        assert_true(hi > ceilings[attempt - 1] * 9 / 10);
    }
}

static void test_deadline_bounds_the_wait(void **state)
{
    (void)state;
    struct fake_random r = {.max = true};
    struct retry_policy p = policy_with(&r);
    struct headers wait30 = {{"retry-after", "30", NULL}};
    /* now = 1000: a 30 s wait ends at 31000 */
    struct retry_decision d = decide(&p, 1, 429, NULL, &wait30, 20000);
    assert_false(d.retry);
    assert_int_equal(d.reason, RETRY_DEADLINE);
    assert_string_equal(d.message, "HTTP 429: not retried: waiting 30000 ms (as the provider "
                                   "asks) would pass the section deadline");
    d = decide(&p, 1, 429, NULL, &wait30, 40000);
    assert_true(d.retry);
    assert_int_equal(d.delay_ms, 30000);
    /* jitter too: attempt 3 draws up to 2000 ms */
    d = decide(&p, 3, 503, NULL, NULL, 2000);
    assert_false(d.retry);
    assert_int_equal(d.reason, RETRY_DEADLINE);
    r.max = false;
    d = decide(&p, 3, 503, NULL, NULL, 2000); /* a zero draw fits */
    assert_true(d.retry);
    assert_int_equal(d.delay_ms, 0);
}

static void test_reason_names(void **state)
{
    (void)state;
    assert_string_equal(retry_reason_name(RETRY_SPEND_LIMIT), "spend_limit");
    assert_string_equal(retry_reason_name(RETRY_DEADLINE), "deadline");
    assert_string_equal(retry_reason_name((enum retry_reason)99), "?");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retryable_statuses),
        cmocka_unit_test(test_transport_errors_are_retried),
        cmocka_unit_test(test_never_retried_statuses),
        cmocka_unit_test(test_success_is_not_a_retry),
        cmocka_unit_test(test_should_retry_header_overrides_status),
        cmocka_unit_test(test_spend_limit_is_never_retried),
        cmocka_unit_test(test_attempts_exhausted),
        cmocka_unit_test(test_retry_after_seconds),
        cmocka_unit_test(test_retry_after_http_date),
        cmocka_unit_test(test_retry_after_ms_takes_precedence),
        cmocka_unit_test(test_jitter_bounds),
        cmocka_unit_test(test_deadline_bounds_the_wait),
        cmocka_unit_test(test_reason_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
