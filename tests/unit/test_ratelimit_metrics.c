/* LLM metrics (core/llm/metrics.c): counters and the Prometheus text they make. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "llm/metrics.h"

static void assert_contains(const char *text, const char *line)
{
    if (!strstr(text, line))
        fail_msg("missing line: %s\n--- in ---\n%s", line, text);
}

static void test_counts_calls_by_status(void **state)
{
    (void)state;
    struct llm_metrics m = {0};
    llm_metrics_count_call(&m, 200);
    llm_metrics_count_call(&m, 200);
    llm_metrics_count_call(&m, 529);
    llm_metrics_count_call(&m, 0);
    llm_metrics_count_retry(&m);
    assert_int_equal(m.statuses, 3);
    for (long status = 300; status < 300 + LLM_METRICS_STATUSES; status++)
        llm_metrics_count_call(&m, status);
    assert_int_equal(m.statuses, LLM_METRICS_STATUSES);
    assert_int_equal(m.other_calls, 3);
}

static void test_prometheus_text(void **state)
{
    (void)state;
    struct llm_metrics m = {0};
    llm_metrics_count_call(&m, 200);
    llm_metrics_count_call(&m, 529);
    llm_metrics_count_call(&m, 0);
    llm_metrics_count_retry(&m);
    llm_metrics_count_retry(&m);

    struct ratelimit_config rc = {.requests_per_minute = 50, .output_tokens_per_minute = 8000};
    struct ratelimit *rl = ratelimit_new(&rc);
    ratelimit_enqueue(rl, "job", 1000, 1000, NULL, 0);
    ratelimit_enqueue(rl, "job", 1000, 1000, NULL, 0);
    ratelimit_enqueue(rl, "other", 1000, 1000, NULL, 0);
    struct ratelimit_ticket *t;
    int64_t wait;
    assert_int_equal(ratelimit_next(rl, 1500, &t, &wait), RATELIMIT_READY);
    ratelimit_finish(rl, t, 1200, 300, 2000);
    assert_int_equal(ratelimit_next(rl, 2000, &t, &wait), RATELIMIT_READY);
    ratelimit_pause_until(rl, 4500);

    struct breaker *br = breaker_new(NULL);
    struct breaker_permit permit;
    int64_t until;
    for (int i = 0; i < 5; i++) {
        assert_true(breaker_allow(br, 0, &permit, &until));
        breaker_record(br, 0, &permit, BREAKER_FAILURE);
    }
    assert_false(breaker_allow(br, 1, &permit, &until));

    struct llm_metrics_source src[] = {
        {.provider = "anthropic", .calls = &m, .ratelimit = rl, .breaker = br},
        {.provider = "odd\"name\\", .calls = NULL, .ratelimit = NULL, .breaker = NULL},
    };
    size_t need = llm_metrics_format(NULL, 0, src, 2, 2000);
    char *text = malloc(need + 1);
    assert_int_equal(llm_metrics_format(text, need + 1, src, 2, 2000), need);
    assert_int_equal(strlen(text), need);

    const char *lines[] = {
        "# TYPE o2c_llm_calls_total counter\n",
        "o2c_llm_calls_total{provider=\"anthropic\",status=\"200\"} 1\n",
        "o2c_llm_calls_total{provider=\"anthropic\",status=\"529\"} 1\n",
        "o2c_llm_calls_total{provider=\"anthropic\",status=\"error\"} 1\n",
        "o2c_llm_retries_total{provider=\"anthropic\"} 2\n",
        "o2c_llm_queue_depth{provider=\"anthropic\"} 1\n",
        "o2c_llm_in_flight{provider=\"anthropic\"} 1\n",
        "o2c_llm_scheduler_started_total{provider=\"anthropic\"} 2\n",
        "o2c_llm_scheduler_wait_seconds_total{provider=\"anthropic\"} 3.500\n",
        "o2c_llm_scheduler_wait_seconds_max{provider=\"anthropic\"} 2.000\n",
        "o2c_llm_paused_seconds{provider=\"anthropic\"} 2.500\n",
        "o2c_llm_tokens_total{provider=\"anthropic\",direction=\"input\"} 1200\n",
        "o2c_llm_tokens_total{provider=\"anthropic\",direction=\"output\"} 300\n",
        "o2c_llm_ratelimit_limit{provider=\"anthropic\",budget=\"requests\"} 50\n",
        "o2c_llm_ratelimit_limit{provider=\"anthropic\",budget=\"output_tokens\"} 8000\n",
        "o2c_llm_ratelimit_remaining{provider=\"anthropic\",budget=\"requests\"} 48\n",
        "o2c_llm_ratelimit_remaining{provider=\"anthropic\",budget=\"output_tokens\"} 6766\n",
        "o2c_llm_breaker_state{provider=\"anthropic\",state=\"closed\"} 0\n",
        "o2c_llm_breaker_state{provider=\"anthropic\",state=\"open\"} 1\n",
        "o2c_llm_breaker_state{provider=\"anthropic\",state=\"half_open\"} 0\n",
        "o2c_llm_breaker_opened_total{provider=\"anthropic\"} 1\n",
        "o2c_llm_breaker_rejected_total{provider=\"anthropic\"} 1\n",
    };
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++)
        assert_contains(text, lines[i]);
    /* budgets with no known limit are left out; each family is declared once */
    assert_null(strstr(text, "budget=\"input_tokens\""));
    assert_null(strstr(text, "odd"));
    const char *first = strstr(text, "# TYPE o2c_llm_in_flight");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE o2c_llm_in_flight"));

    /* a short buffer is truncated, NUL-terminated, and the size still reported */
    char small[64];
    assert_int_equal(llm_metrics_format(small, sizeof small, src, 2, 2000), need);
    assert_int_equal(strlen(small), sizeof small - 1);
    free(text);

    /* label values are escaped */
    struct llm_metrics one = {0};
    llm_metrics_count_call(&one, 200);
    struct llm_metrics_source odd = {.provider = "a\"b\\c\nd", .calls = &one};
    char buf[4096];
    llm_metrics_format(buf, sizeof buf, &odd, 1, 0);
    assert_contains(buf, "o2c_llm_calls_total{provider=\"a\\\"b\\\\c\\nd\",status=\"200\"} 1\n");

    ratelimit_free(rl);
    breaker_free(br);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_calls_by_status),
        cmocka_unit_test(test_prometheus_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
