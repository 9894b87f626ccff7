/* Circuit breaker (core/llm/breaker.c): transitions, timing, stale outcomes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>

#include "llm/breaker.h"

/* Lets one call through at NOW and records OUTCOME for it. */
static void call(struct breaker *b, int64_t now, enum breaker_outcome outcome)
{
    struct breaker_permit permit;
    int64_t until;
    assert_true(breaker_allow(b, now, &permit, &until));
    breaker_record(b, now, &permit, outcome);
}

static void test_defaults_and_names(void **state)
{
    (void)state;
    struct breaker_config c;
    breaker_config_default(&c);
    assert_int_equal(c.consecutive_failures, 5);
    assert_int_equal(c.window, 20);
    assert_int_equal(c.min_calls, 10);
    assert_int_equal(c.failure_percent, 50);
    assert_int_equal(c.open_ms, 30000);
    assert_string_equal(breaker_state_name(BREAKER_CLOSED), "closed");
    assert_string_equal(breaker_state_name(BREAKER_OPEN), "open");
    assert_string_equal(breaker_state_name(BREAKER_HALF_OPEN), "half_open");

    assert_int_equal(breaker_classify(200), BREAKER_SUCCESS);
    assert_int_equal(breaker_classify(400), BREAKER_SUCCESS); /* the provider answered */
    assert_int_equal(breaker_classify(401), BREAKER_SUCCESS);
    assert_int_equal(breaker_classify(429), BREAKER_NEUTRAL);
    assert_int_equal(breaker_classify(0), BREAKER_FAILURE);
    assert_int_equal(breaker_classify(408), BREAKER_FAILURE);
    assert_int_equal(breaker_classify(500), BREAKER_FAILURE);
    assert_int_equal(breaker_classify(529), BREAKER_FAILURE);

    c.window = 65;
    assert_null(breaker_new(&c));
    breaker_config_default(&c);
    c.min_calls = 21;
    assert_null(breaker_new(&c));
}

static void test_opens_on_consecutive_failures(void **state)
{
    (void)state;
    struct breaker *b = breaker_new(NULL);
    for (int i = 0; i < 4; i++)
        call(b, 100, BREAKER_FAILURE);
    assert_int_equal(breaker_state(b, 100), BREAKER_CLOSED);
    call(b, 100, BREAKER_SUCCESS); /* a success resets the run */
    for (int i = 0; i < 4; i++)
        call(b, 200, BREAKER_FAILURE);
    assert_int_equal(breaker_state(b, 200), BREAKER_CLOSED);
    call(b, 250, BREAKER_FAILURE);
    assert_int_equal(breaker_state(b, 250), BREAKER_OPEN);

    struct breaker_permit permit;
    int64_t until;
    assert_false(breaker_allow(b, 251, &permit, &until));
    assert_int_equal(until, 250 + 30000);
    struct breaker_stats s;
    breaker_stats(b, 251, &s);
    assert_string_equal(s.state_name, "open");
    assert_int_equal(s.open_until, 30250);
    assert_int_equal(s.opened, 1);
    assert_int_equal(s.rejected, 1);
    assert_int_equal(s.failures, 9);
    assert_int_equal(s.successes, 1);
    breaker_free(b);
}

static void test_opens_on_failure_ratio(void **state)
{
    (void)state;
    struct breaker *b = breaker_new(NULL);
    /* S F S F ...: never 5 in a row; 50% once the 10th call is in */
    for (int i = 0; i < 9; i++)
        call(b, i, i % 2 ? BREAKER_FAILURE : BREAKER_SUCCESS);
    assert_int_equal(breaker_state(b, 9), BREAKER_CLOSED); /* 4 of 9, and below 10 calls */
    call(b, 9, BREAKER_FAILURE);
    assert_int_equal(breaker_state(b, 9), BREAKER_OPEN);
    breaker_free(b);
}

static void test_ratio_needs_min_calls(void **state)
{
    (void)state;
    struct breaker *b = breaker_new(NULL);
    /* F F S F F S F F S: 6 of 9 failed, but a sample of 9 is too small */
    for (int i = 0; i < 9; i++)
        call(b, i, i % 3 == 2 ? BREAKER_SUCCESS : BREAKER_FAILURE);
    struct breaker_stats s;
    breaker_stats(b, 9, &s);
    assert_string_equal(s.state_name, "closed");
    assert_int_equal(s.window_calls, 9);
    assert_int_equal(s.window_failures, 6);
    call(b, 9, BREAKER_SUCCESS); /* 6 of 10, but a success never trips it */
    assert_int_equal(breaker_state(b, 9), BREAKER_CLOSED);
    call(b, 10, BREAKER_FAILURE); /* 7 of 11 */
    assert_int_equal(breaker_state(b, 10), BREAKER_OPEN);
    breaker_free(b);
}

static void test_window_slides(void **state)
{
    (void)state;
    struct breaker *b = breaker_new(NULL);
    /* F S S repeated stays at a third: never opens, however long it runs */
    for (int i = 0; i < 300; i++)
        call(b, i, i % 3 == 0 ? BREAKER_FAILURE : BREAKER_SUCCESS);
    struct breaker_stats s;
    breaker_stats(b, 300, &s);
    assert_string_equal(s.state_name, "closed");
    assert_int_equal(s.window_calls, 20);
    assert_in_range(s.window_failures, 6, 7);
    /* 20 successes push every old failure out; then failures in runs of 4 climb
     * to 45% of the window and stay closed; the one reaching 50% opens it */
    for (int i = 0; i < 20; i++)
        call(b, 400, BREAKER_SUCCESS);
    const char *pattern = "SFFFFSFFFFSSSSSSSSS"; /* 8 failures, never 5 in a row */
    for (int i = 0; i < 19; i++)
        call(b, 500 + i, pattern[i] == 'F' ? BREAKER_FAILURE : BREAKER_SUCCESS);
    breaker_stats(b, 600, &s);
    assert_string_equal(s.state_name, "closed");
    assert_int_equal(s.window_failures, 8);
    call(b, 601, BREAKER_FAILURE); /* the oldest S leaves: 9 of 20 */
    assert_int_equal(breaker_state(b, 601), BREAKER_CLOSED);
    call(b, 602, BREAKER_FAILURE); /* pattern[0] (S) leaves: 10 of 20 */
    assert_int_equal(breaker_state(b, 602), BREAKER_OPEN);
    breaker_free(b);
}

/* Drives the breaker open at T0 with five failures. */
static struct breaker *open_breaker(int64_t t0)
{
    struct breaker *b = breaker_new(NULL);
    for (int i = 0; i < 5; i++)
        call(b, t0, BREAKER_FAILURE);
    assert_int_equal(breaker_state(b, t0), BREAKER_OPEN);
    return b;
}

static void test_half_open_success_closes(void **state)
{
    (void)state;
    struct breaker *b = open_breaker(1000);
    struct breaker_permit permit, other;
    int64_t until;
    assert_false(breaker_allow(b, 30999, &permit, &until));
    assert_int_equal(until, 31000);
    assert_int_equal(breaker_state(b, 31000), BREAKER_HALF_OPEN);
    assert_true(breaker_allow(b, 31000, &permit, &until));
    assert_true(permit.trial);
    /* one trial at a time */
    assert_false(breaker_allow(b, 31001, &other, &until));
    assert_int_equal(until, 31000 + 30000);
    struct breaker_stats s;
    breaker_stats(b, 31001, &s);
    assert_string_equal(s.state_name, "half_open");
    assert_true(s.trial_in_flight);
    breaker_record(b, 32000, &permit, BREAKER_SUCCESS);
    assert_int_equal(breaker_state(b, 32000), BREAKER_CLOSED);
    assert_true(breaker_allow(b, 32000, &other, &until));
    assert_false(other.trial);
    /* the window starts clean: four failures do not open it */
    breaker_record(b, 32000, &other, BREAKER_FAILURE);
    for (int i = 0; i < 3; i++)
        call(b, 32001, BREAKER_FAILURE);
    assert_int_equal(breaker_state(b, 32001), BREAKER_CLOSED);
    breaker_free(b);
}

static void test_half_open_failure_reopens(void **state)
{
    (void)state;
    struct breaker *b = open_breaker(0);
    struct breaker_permit permit;
    int64_t until;
    assert_true(breaker_allow(b, 30000, &permit, &until));
    breaker_record(b, 30500, &permit, BREAKER_FAILURE);
    assert_int_equal(breaker_state(b, 30500), BREAKER_OPEN);
    assert_false(breaker_allow(b, 30600, &permit, &until));
    assert_int_equal(until, 60500);
    assert_true(breaker_allow(b, 60500, &permit, &until));
    assert_true(permit.trial);
    breaker_record(b, 60600, &permit, BREAKER_SUCCESS);
    struct breaker_stats s;
    breaker_stats(b, 60600, &s);
    assert_string_equal(s.state_name, "closed");
    assert_int_equal(s.opened, 2);
    breaker_free(b);
}

static void test_trial_without_verdict(void **state)
{
    (void)state;
    struct breaker *b = open_breaker(0);
    struct breaker_permit trial, next;
    int64_t until;
    /* a 429 (neutral) frees the trial slot for the next call */
    assert_true(breaker_allow(b, 30000, &trial, &until));
    breaker_record(b, 30100, &trial, BREAKER_NEUTRAL);
    assert_int_equal(breaker_state(b, 30100), BREAKER_HALF_OPEN);
    assert_true(breaker_allow(b, 30100, &next, &until));
    assert_true(next.trial);
    /* a trial that never reports is written off after open_ms ... */
    assert_false(breaker_allow(b, 60099, &trial, &until));
    assert_true(breaker_allow(b, 60100, &trial, &until));
    assert_true(trial.trial);
    /* ... and its late success does not close the circuit */
    breaker_record(b, 60200, &next, BREAKER_SUCCESS);
    assert_int_equal(breaker_state(b, 60200), BREAKER_HALF_OPEN);
    breaker_record(b, 60300, &trial, BREAKER_SUCCESS);
    assert_int_equal(breaker_state(b, 60300), BREAKER_CLOSED);
    breaker_free(b);
}

static void test_stale_outcomes_move_nothing(void **state)
{
    (void)state;
    struct breaker *b = breaker_new(NULL);
    struct breaker_permit slow, trial;
    int64_t until;
    assert_true(breaker_allow(b, 0, &slow, &until)); /* started while closed */
    for (int i = 0; i < 5; i++)
        call(b, 10, BREAKER_FAILURE);
    assert_int_equal(breaker_state(b, 10), BREAKER_OPEN);
    breaker_record(b, 20, &slow, BREAKER_SUCCESS); /* finishes while open */
    assert_int_equal(breaker_state(b, 20), BREAKER_OPEN);
    assert_true(breaker_allow(b, 30010, &trial, &until));
    breaker_record(b, 30020, &slow, BREAKER_FAILURE); /* or while half-open */
    assert_int_equal(breaker_state(b, 30020), BREAKER_HALF_OPEN);
    breaker_release(b, &slow); /* not the trial: changes nothing */
    struct breaker_permit again;
    assert_false(breaker_allow(b, 30030, &again, &until));
    breaker_record(b, 30040, &trial, BREAKER_SUCCESS);
    assert_int_equal(breaker_state(b, 30040), BREAKER_CLOSED);
    struct breaker_stats s;
    breaker_stats(b, 30040, &s);
    assert_int_equal(s.successes, 2);
    assert_int_equal(s.failures, 6);
    breaker_free(b);
}

/* A long random run against a reference model of the rules. */
static void test_matches_reference_model(void **state)
{
    (void)state;
    struct breaker *b = breaker_new(NULL);
    uint64_t seed = 42;
    bool outcomes[1000];
    int n = 0, run = 0, opens = 0;
    int64_t now = 0;
    for (int step = 0; step < 20000; step++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        bool failed = (int)((seed >> 33) % 100) < 30 + (step / 2000 % 2) * 25; /* 30% or 55% */
        now += 10;
        if (breaker_state(b, now) != BREAKER_CLOSED) {
            now += 30000;
            call(b, now, BREAKER_SUCCESS); /* the trial closes it */
            n = run = 0;
            continue;
        }
        call(b, now, failed ? BREAKER_FAILURE : BREAKER_SUCCESS);
        outcomes[n++ % 1000] = failed;
        run = failed ? run + 1 : 0;
        int window = n < 20 ? n : 20, fails = 0;
        for (int i = 0; i < window; i++)
            fails += outcomes[(n - 1 - i) % 1000];
        bool should_open = failed && (run >= 5 || (window >= 10 && fails * 2 >= window));
        assert_int_equal(breaker_state(b, now) == BREAKER_OPEN, should_open);
        opens += should_open;
        if (should_open)
            n = run = 0;
    }
    assert_true(opens > 10);
    breaker_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_names),
        cmocka_unit_test(test_opens_on_consecutive_failures),
        cmocka_unit_test(test_opens_on_failure_ratio),
        cmocka_unit_test(test_ratio_needs_min_calls),
        cmocka_unit_test(test_window_slides),
        cmocka_unit_test(test_half_open_success_closes),
        cmocka_unit_test(test_half_open_failure_reopens),
        cmocka_unit_test(test_trial_without_verdict),
        cmocka_unit_test(test_stale_outcomes_move_nothing),
        cmocka_unit_test(test_matches_reference_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
