/* The scheduler against a simulated provider, in virtual time.
 *
 * The provider is a reference model written apart from ratelimit.c: token buckets
 * in floating point (capacity = limit, refill = limit / 60 s), admission only when
 * every bucket holds the call's cost (requests 1, the real input tokens, max_tokens
 * for output, their sum for the combined budget), the unused part of max_tokens
 * credited back at the end (what Anthropic documents), a 429 with retry-after
 * otherwise, and the real rate-limit headers on every response.
 *
 * The driver plays the host: report jobs whose sections form a DAG (independent
 * sections, then a summary that needs them all), ratelimit_next until it stops
 * saying READY, a timer for WAIT, finish + observe_headers on every response,
 * pause + requeue on a 429. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "llm/ratelimit.h"

#define MINUTE 60000.0
#define WALL0 1714564800000LL /* virtual time 0 is 2024-05-01T12:00:00Z */
#define MAX_JOBS 64
#define MAX_SECTIONS 16
#define MAX_STARTS 4096

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static int64_t rng_range(int64_t lo, int64_t hi) /* inclusive */
{
    return lo + (int64_t)(rng_next() % (uint64_t)(hi - lo + 1));
}

/* ---- the provider -------------------------------------------------------- */

enum { FAMILY_NONE, FAMILY_ANTHROPIC, FAMILY_OPENAI };

struct provider {
    double limit[RATELIMIT_BUDGETS]; /* 0 = not enforced */
    double level[RATELIMIT_BUDGETS];
    int64_t updated;
    int family;
    int concurrency, max_concurrency_seen;
    int rejected; /* 429s */
    char text[RATELIMIT_BUDGETS][3][48];
    const char *pairs[2 * RATELIMIT_BUDGETS * 3 + 1];
};

static void provider_init(struct provider *p, const double limit[RATELIMIT_BUDGETS], int family)
{
    memset(p, 0, sizeof *p);
    for (int i = 0; i < RATELIMIT_BUDGETS; i++)
        p->level[i] = p->limit[i] = limit[i];
    p->family = family;
}

static void provider_refill(struct provider *p, int64_t now)
{
    for (int i = 0; i < RATELIMIT_BUDGETS; i++)
        if (p->limit[i] > 0)
            p->level[i] =
                fmin(p->limit[i], p->level[i] + (double)(now - p->updated) * p->limit[i] / MINUTE);
    p->updated = now;
}

static void call_cost(int64_t in, int64_t out, double cost[RATELIMIT_BUDGETS])
{
    cost[RATELIMIT_REQUESTS] = 1;
    cost[RATELIMIT_INPUT_TOKENS] = (double)in;
    cost[RATELIMIT_OUTPUT_TOKENS] = (double)out;
    cost[RATELIMIT_TOKENS] = (double)(in + out);
}

/* Admits a call or returns the ms until it would fit (the 429's retry-after). */
static int64_t provider_admit(struct provider *p, int64_t now, int64_t in, int64_t max_out)
{
    provider_refill(p, now);
    double cost[RATELIMIT_BUDGETS];
    call_cost(in, max_out, cost);
    double wait = 0;
    for (int i = 0; i < RATELIMIT_BUDGETS; i++)
        if (p->limit[i] > 0 && p->level[i] < cost[i] - 1e-6)
            wait = fmax(wait, (cost[i] - p->level[i]) * MINUTE / p->limit[i]);
    if (wait > 0) {
        p->rejected++;
        return (int64_t)ceil(wait);
    }
    for (int i = 0; i < RATELIMIT_BUDGETS; i++)
        p->level[i] -= cost[i];
    p->concurrency++;
    if (p->concurrency > p->max_concurrency_seen)
        p->max_concurrency_seen = p->concurrency;
    return 0;
}

static void provider_finish(struct provider *p, int64_t now, int64_t max_out, int64_t act_out)
{
    provider_refill(p, now);
    p->concurrency--;
    for (int i = RATELIMIT_OUTPUT_TOKENS; i <= RATELIMIT_TOKENS; i++)
        p->level[i] = fmin(p->limit[i], p->level[i] + (double)(max_out - act_out));
}

static void format_rfc3339(char *buf, size_t cap, int64_t unix_ms)
{
    time_t t = (time_t)((unix_ms + 999) / 1000); /* servers round resets up to the second */
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The headers of a response sent at NOW. */
static void provider_headers(struct provider *p, int64_t now)
{
    static const char *const anthropic[RATELIMIT_BUDGETS] = {"requests", "input-tokens",
                                                             "output-tokens", NULL};
    static const char *const openai[RATELIMIT_BUDGETS] = {"requests", NULL, NULL, "tokens"};
    static char names[RATELIMIT_BUDGETS][3][64];
    provider_refill(p, now);
    int n = 0;
    for (int i = 0; i < RATELIMIT_BUDGETS && p->family != FAMILY_NONE; i++) {
        const char *what = p->family == FAMILY_ANTHROPIC ? anthropic[i] : openai[i];
        if (!what || p->limit[i] <= 0)
            continue;
        double to_full = (p->limit[i] - p->level[i]) * MINUTE / p->limit[i];
        snprintf(p->text[i][0], sizeof p->text[i][0], "%.0f", p->limit[i]);
        snprintf(p->text[i][1], sizeof p->text[i][1], "%.0f", floor(p->level[i]));
        if (p->family == FAMILY_ANTHROPIC) {
            format_rfc3339(p->text[i][2], sizeof p->text[i][2], WALL0 + now + (int64_t)to_full);
            for (int k = 0; k < 3; k++)
                snprintf(names[i][k], sizeof names[i][k], "anthropic-ratelimit-%s-%s", what,
                         (const char *[]){"limit", "remaining", "reset"}[k]);
        } else {
            snprintf(p->text[i][2], sizeof p->text[i][2], "%.0fms", ceil(to_full));
            for (int k = 0; k < 3; k++)
                snprintf(names[i][k], sizeof names[i][k], "x-ratelimit-%s-%s",
                         (const char *[]){"limit", "remaining", "reset"}[k], what);
        }
        for (int k = 0; k < 3; k++) {
            p->pairs[n++] = names[i][k];
            p->pairs[n++] = p->text[i][k];
        }
    }
    p->pairs[n] = NULL;
}

static const char *provider_get_header(void *ctx, const char *name)
{
    struct provider *p = ctx;
    for (int i = 0; p->pairs[i]; i += 2)
        if (strcasecmp(p->pairs[i], name) == 0)
            return p->pairs[i + 1];
    return NULL;
}

/* ---- the host ------------------------------------------------------------ */

struct call {
    int job;
    int64_t est_in, act_in, max_out, act_out, latency;
    bool usage_lost;     /* the response carried no usage */
    bool rejected;       /* got a 429: retried after the pause */
    int64_t retry_after; /* of the 429, when rejected */
    int64_t enqueued_at, started_at, ends_at;
    enum { CALL_IDLE, CALL_QUEUED, CALL_RUNNING, CALL_DONE } state;
    struct ratelimit_ticket *ticket;
};

struct job {
    int64_t arrival, done_at;
    int sections; /* sections - 1 independent ones, then the summary (if sections > 1) */
    int independent_done;
    struct call call[MAX_SECTIONS];
    char key[24]; /* "report-" and any int */
};

struct sim {
    struct ratelimit *rl;
    struct provider provider;
    struct job job[MAX_JOBS];
    int jobs;
    int64_t now;
    int64_t starts[MAX_STARTS]; /* admitted calls' start times, in order */
    int nstarts;
    int in_flight, max_in_flight;
    int64_t external_period; /* another client using the same key: 1 request per period */
    int64_t next_external;
};

static void sim_enqueue(struct sim *s, struct job *j, int idx)
{
    struct call *c = &j->call[idx];
    c->ticket = ratelimit_enqueue(s->rl, j->key, c->est_in, c->max_out, c, s->now);
    assert_non_null(c->ticket);
    c->state = CALL_QUEUED;
    c->enqueued_at = s->now;
}

static void sim_arrive(struct sim *s, struct job *j)
{
    int independent = j->sections > 1 ? j->sections - 1 : 1;
    for (int i = 0; i < independent; i++)
        sim_enqueue(s, j, i);
}

static void sim_start(struct sim *s, struct call *c)
{
    int64_t retry_after = provider_admit(&s->provider, s->now, c->act_in, c->max_out);
    c->state = CALL_RUNNING;
    c->started_at = s->now;
    c->rejected = retry_after > 0;
    c->ends_at = s->now + (c->rejected ? 50 : c->latency);
    if (c->rejected) {
        s->provider.concurrency++; /* the 429 holds a connection for its 50 ms */
        c->retry_after = retry_after;
        return;
    }
    assert_true(s->nstarts < MAX_STARTS);
    s->starts[s->nstarts++] = s->now;
    s->in_flight++;
    if (s->in_flight > s->max_in_flight)
        s->max_in_flight = s->in_flight;
}

/* Handles the response to C; returns whether it completed its job. */
static bool sim_end(struct sim *s, struct call *c)
{
    struct job *j = &s->job[c->job];
    if (c->rejected) {
        s->provider.concurrency--;
        ratelimit_finish(s->rl, c->ticket, 0, 0, s->now);
        provider_headers(&s->provider, s->now);
        ratelimit_observe_headers(s->rl, s->now, WALL0 + s->now, provider_get_header, &s->provider);
        ratelimit_pause_until(s->rl, s->now + c->retry_after);
        sim_enqueue(s, j, (int)(c - j->call));
        return false;
    }
    provider_finish(&s->provider, s->now, c->max_out, c->act_out);
    s->in_flight--;
    ratelimit_finish(s->rl, c->ticket, c->usage_lost ? -1 : c->act_in,
                     c->usage_lost ? -1 : c->act_out, s->now);
    provider_headers(&s->provider, s->now);
    ratelimit_observe_headers(s->rl, s->now, WALL0 + s->now, provider_get_header, &s->provider);
    c->state = CALL_DONE;
    c->ticket = NULL;
    int idx = (int)(c - j->call);
    if (j->sections == 1 || idx == j->sections - 1) {
        j->done_at = s->now;
        return true;
    }
    if (++j->independent_done == j->sections - 1)
        sim_enqueue(s, j, j->sections - 1);
    return false;
}

/* Runs until every job is done; returns the makespan. */
static int64_t sim_run(struct sim *s)
{
    int jobs_left = s->jobs;
    s->next_external = s->external_period ? s->external_period : INT64_MAX;
    while (jobs_left > 0) {
        for (int i = 0; i < s->jobs; i++)
            if (s->job[i].arrival == s->now)
                sim_arrive(s, &s->job[i]);
        if (s->now == s->next_external) {
            int ours = s->provider.rejected; /* the other client's 429s are not ours */
            if (provider_admit(&s->provider, s->now, 0, 0) == 0)
                s->provider.concurrency--;
            s->provider.rejected = ours;
            s->next_external += s->external_period;
        }
        /* responses due now, oldest first */
        for (;;) {
            struct call *due = NULL;
            for (int i = 0; i < s->jobs; i++)
                for (int k = 0; k < s->job[i].sections; k++) {
                    struct call *c = &s->job[i].call[k];
                    if (c->state == CALL_RUNNING && c->ends_at <= s->now &&
                        (!due || c->ends_at < due->ends_at))
                        due = c;
                }
            if (!due)
                break;
            if (sim_end(s, due))
                jobs_left--;
        }
        struct ratelimit_ticket *t;
        int64_t wait;
        enum ratelimit_status st;
        while ((st = ratelimit_next(s->rl, s->now, &t, &wait)) == RATELIMIT_READY)
            sim_start(s, ratelimit_ticket_user_data(t));
        if (jobs_left == 0)
            break;
        int64_t next = st == RATELIMIT_WAIT ? s->now + wait : INT64_MAX;
        for (int i = 0; i < s->jobs; i++) {
            if (s->job[i].arrival > s->now && s->job[i].arrival < next)
                next = s->job[i].arrival;
            for (int k = 0; k < s->job[i].sections; k++)
                if (s->job[i].call[k].state == CALL_RUNNING && s->job[i].call[k].ends_at < next)
                    next = s->job[i].call[k].ends_at;
        }
        if (s->next_external < next)
            next = s->next_external;
        assert_true(next != INT64_MAX && next > s->now);
        s->now = next;
    }
    int64_t makespan = 0;
    for (int i = 0; i < s->jobs; i++)
        if (s->job[i].done_at > makespan)
            makespan = s->job[i].done_at;
    return makespan;
}

static void sim_free(struct sim *s)
{
    ratelimit_free(s->rl);
    free(s);
}

/* Our own calls alone never exceed a token bucket of LIMIT: for every pair of
 * starts i <= j, what started in [t_i, t_j] <= LIMIT + LIMIT * (t_j - t_i) / 60 s.
 * Returns the most calls seen in any sliding 60-s window, for the report. */
static int check_request_windows(const struct sim *s, double limit)
{
    int most = 0;
    for (int i = 0; i < s->nstarts; i++) {
        for (int j = i; j < s->nstarts; j++) {
            double allowed = limit + limit * (double)(s->starts[j] - s->starts[i]) / MINUTE;
            assert_true((double)(j - i + 1) <= allowed + 1e-9);
            if (s->starts[j] - s->starts[i] < 60000 && j - i + 1 > most)
                most = j - i + 1;
        }
    }
    return most;
}

/* ---- scenarios ----------------------------------------------------------- */

/* Random reports arriving over ten minutes, random call sizes and latencies,
 * lost usage now and then: the provider never has to refuse a call, and neither
 * the concurrency cap nor any bucket is ever exceeded. */
static void run_random(uint64_t seed, bool configured, int family)
{
    rng_state = seed;
    struct sim *s = calloc(1, sizeof *s);
    /* each family enforces what its headers describe */
    const double anthropic[RATELIMIT_BUDGETS] = {50, 60000, 16000, 0};
    const double openai[RATELIMIT_BUDGETS] = {50, 0, 0, 70000};
    const double *limits = family == FAMILY_ANTHROPIC ? anthropic : openai;
    provider_init(&s->provider, limits, family);
    struct ratelimit_config c = {.max_concurrency = 6, .learn_from_headers = true};
    if (configured) {
        c.requests_per_minute = 50;
        c.input_tokens_per_minute = (int64_t)limits[RATELIMIT_INPUT_TOKENS];
        c.output_tokens_per_minute = (int64_t)limits[RATELIMIT_OUTPUT_TOKENS];
        c.tokens_per_minute = (int64_t)limits[RATELIMIT_TOKENS];
    }
    s->rl = ratelimit_new(&c);
    s->jobs = 40;
    for (int i = 0; i < s->jobs; i++) {
        struct job *j = &s->job[i];
        snprintf(j->key, sizeof j->key, "report-%d", i);
        j->arrival = i == 0 ? 0 : rng_range(0, 600000);
        j->sections = (int)rng_range(1, 12);
        for (int k = 0; k < j->sections; k++) {
            struct call *call = &j->call[k];
            call->job = i;
            call->est_in = rng_range(500, 6000);
            call->act_in = call->est_in * rng_range(60, 100) / 100; /* estimates are upper bounds */
            call->max_out = rng_range(256, 2048);
            call->act_out = rng_range(0, call->max_out);
            call->latency = rng_range(300, 20000);
            call->usage_lost = rng_range(1, 100) <= 5;
        }
    }
    int64_t makespan = sim_run(s);
    assert_int_equal(s->provider.rejected, 0);
    assert_true(s->max_in_flight <= 6);
    assert_true(s->provider.max_concurrency_seen <= 6);
    int most = check_request_windows(s, 50);
    struct ratelimit_stats st;
    ratelimit_stats(s->rl, s->now, &st);
    assert_int_equal(st.queued, 0);
    assert_int_equal(st.in_flight, 0);
    assert_int_equal(st.started, (uint64_t)s->nstarts);
    print_message("  random run (seed %llu, %s, %s headers): %d calls in %.1f virtual min, "
                  "0 refused, max %d calls in any 60 s (bucket 50 + refill), mean wait %.1f s\n",
                  (unsigned long long)seed, configured ? "configured" : "learned",
                  family == FAMILY_ANTHROPIC ? "anthropic" : "openai", s->nstarts,
                  (double)makespan / MINUTE, most,
                  (double)st.wait_ms_total / (double)st.started / 1000.0);
    sim_free(s);
}

static void test_never_exceeds_configured_limits(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++)
        run_random(seed * 7919, true, seed % 2 ? FAMILY_ANTHROPIC : FAMILY_OPENAI);
}

static void test_never_exceeds_learned_limits(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++)
        run_random(seed * 104729, false, seed % 2 ? FAMILY_ANTHROPIC : FAMILY_OPENAI);
}

/* Another client shares the key, so the provider has less than we were told: the
 * 429s pause the whole provider, the headers lower our belief, and every report
 * still finishes. */
static void test_shared_key_pauses_and_recovers(void **state)
{
    (void)state;
    rng_state = 99;
    struct sim *s = calloc(1, sizeof *s);
    const double limits[RATELIMIT_BUDGETS] = {30, 0, 0, 0};
    provider_init(&s->provider, limits, FAMILY_ANTHROPIC);
    struct ratelimit_config c = {.requests_per_minute = 30, .learn_from_headers = true};
    s->rl = ratelimit_new(&c);
    s->external_period = 4000; /* the other client takes half the budget */
    s->jobs = 6;
    for (int i = 0; i < s->jobs; i++) {
        struct job *j = &s->job[i];
        snprintf(j->key, sizeof j->key, "report-%d", i);
        j->arrival = i * 1000;
        j->sections = 10;
        for (int k = 0; k < j->sections; k++)
            j->call[k] = (struct call){.job = i,
                                       .est_in = 100,
                                       .act_in = 100,
                                       .max_out = 100,
                                       .act_out = 50,
                                       .latency = 1500};
    }
    int64_t makespan = sim_run(s);
    struct ratelimit_stats st;
    ratelimit_stats(s->rl, s->now, &st);
    for (int i = 0; i < s->jobs; i++)
        assert_true(s->job[i].done_at > 0);
    /* each response's headers pull our belief down to the provider's level, so
     * refusals stay rare, each one pauses the provider, and the throughput is what
     * is left: 30 at once, then 15 per minute (120 s for 60 calls) */
    assert_true(s->provider.rejected >= 1 && s->provider.rejected <= 10);
    assert_int_equal(st.pauses, (uint64_t)s->provider.rejected);
    assert_true(makespan < 130000);
    print_message("  shared key: 60 calls at half the configured RPM in %.1f s, %d refused "
                  "(429), %llu pauses\n",
                  (double)makespan / 1000.0, s->provider.rejected, (unsigned long long)st.pauses);
    sim_free(s);
}

/* Issue 6's benchmark in virtual time: 8 reports x 10 sections (9 independent + a
 * summary) at 60 RPM with a fixed latency, against the bound
 *   (calls beyond the bucket) / (refill per s) + DAG depth x latency. */
static double makespan_ratio(bool configured, int64_t latency, int family)
{
    struct sim *s = calloc(1, sizeof *s);
    const double limits[RATELIMIT_BUDGETS] = {60, 400000, 80000, 0};
    provider_init(&s->provider, limits, family);
    struct ratelimit_config c = {.learn_from_headers = true};
    if (configured) {
        c.requests_per_minute = 60;
        c.input_tokens_per_minute = 400000;
        c.output_tokens_per_minute = 80000;
    }
    s->rl = ratelimit_new(&c);
    s->jobs = 8;
    for (int i = 0; i < s->jobs; i++) {
        struct job *j = &s->job[i];
        snprintf(j->key, sizeof j->key, "report-%d", i);
        j->sections = 10;
        for (int k = 0; k < j->sections; k++)
            j->call[k] = (struct call){.job = i,
                                       .est_in = 3000,
                                       .act_in = 2500,
                                       .max_out = 1000,
                                       .act_out = 600,
                                       .latency = latency};
    }
    int64_t makespan = sim_run(s);
    double bound = (80.0 - 60.0) / 1.0 * 1000.0 + 2.0 * (double)latency;
    double ratio = (double)makespan / bound;
    assert_int_equal(s->provider.rejected, 0);
    print_message("  makespan 8x10 @ 60 RPM, latency %lld ms, %s: %.1f s vs bound %.1f s = "
                  "%.3f x\n",
                  (long long)latency, configured ? "configured" : "learned from headers",
                  (double)makespan / 1000.0, bound / 1000.0, ratio);
    sim_free(s);
    return ratio;
}

static void test_makespan(void **state)
{
    (void)state;
    const int64_t latencies[] = {500, 2000, 5000};
    for (size_t i = 0; i < sizeof latencies / sizeof latencies[0]; i++) {
        assert_true(makespan_ratio(true, latencies[i], FAMILY_ANTHROPIC) <= 1.15);
        assert_true(makespan_ratio(false, latencies[i], FAMILY_ANTHROPIC) <= 1.3);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_never_exceeds_configured_limits),
        cmocka_unit_test(test_never_exceeds_learned_limits),
        cmocka_unit_test(test_shared_key_pauses_and_recovers),
        cmocka_unit_test(test_makespan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
