/* LLM metrics in the Prometheus text format; see metrics.h. */
#include "llm/metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void llm_metrics_count_call(struct llm_metrics *m, long status)
{
    for (int i = 0; i < m->statuses; i++)
        if (m->calls[i].status == status) {
            m->calls[i].count++;
            return;
        }
    if (m->statuses == LLM_METRICS_STATUSES) {
        m->other_calls++;
        return;
    }
    m->calls[m->statuses].status = status;
    m->calls[m->statuses].count = 1;
    m->statuses++;
}

void llm_metrics_count_retry(struct llm_metrics *m)
{
    m->retries++;
}

/* A bounded writer that keeps counting past the end, for snprintf-style sizing. */
struct out {
    char *buf;
    size_t cap, len;
};

__attribute__((format(printf, 2, 3))) static void emit(struct out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = o->len < o->cap ? o->cap - o->len : 0;
    int n = vsnprintf(room ? o->buf + o->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n;
}

/* Label values escape backslash, double quote and newline. */
static void emit_label_value(struct out *o, const char *value)
{
    for (const char *p = value ? value : ""; *p; p++) {
        if (*p == '\\' || *p == '"')
            emit(o, "\\%c", *p);
        else if (*p == '\n')
            emit(o, "\\n");
        else
            emit(o, "%c", *p);
    }
}

/* Starts a sample line: NAME{provider="P" (the caller closes the braces). */
static void sample(struct out *o, const char *name, const char *provider)
{
    emit(o, "%s{provider=\"", name);
    emit_label_value(o, provider);
    emit(o, "\"");
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
    emit(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

struct snapshot {
    const struct llm_metrics_source *src;
    struct ratelimit_stats rl;
    struct breaker_stats br;
};

static void write_calls(struct out *o, const struct snapshot *s, size_t n)
{
    family(o, "o2c_llm_calls_total", "counter", "LLM call attempts by HTTP status.");
    for (size_t i = 0; i < n; i++) {
        const struct llm_metrics *m = s[i].src->calls;
        if (!m)
            continue;
        for (int k = 0; k < m->statuses; k++) {
            sample(o, "o2c_llm_calls_total", s[i].src->provider);
            if (m->calls[k].status)
                emit(o, ",status=\"%ld\"} %" PRIu64 "\n", m->calls[k].status, m->calls[k].count);
            else
                emit(o, ",status=\"error\"} %" PRIu64 "\n", m->calls[k].count);
        }
        if (m->other_calls) {
            sample(o, "o2c_llm_calls_total", s[i].src->provider);
            emit(o, ",status=\"other\"} %" PRIu64 "\n", m->other_calls);
        }
    }
    family(o, "o2c_llm_retries_total", "counter", "LLM call retries scheduled.");
    for (size_t i = 0; i < n; i++)
        if (s[i].src->calls) {
            sample(o, "o2c_llm_retries_total", s[i].src->provider);
            emit(o, "} %" PRIu64 "\n", s[i].src->calls->retries);
        }
    bool any_shared = false;
    for (size_t i = 0; i < n; i++)
        any_shared |= s[i].src->calls && s[i].src->calls->shared;
    if (!any_shared)
        return;
    family(o, "o2c_llm_shared_refusals_total", "counter",
           "LLM calls the budget shared by every instance sent back to wait.");
    for (size_t i = 0; i < n; i++)
        if (s[i].src->calls && s[i].src->calls->shared) {
            sample(o, "o2c_llm_shared_refusals_total", s[i].src->provider);
            emit(o, "} %" PRIu64 "\n", s[i].src->calls->shared_refusals);
        }
}

/* One gauge or counter per provider that has a scheduler. */
enum rl_field { QUEUED, IN_FLIGHT, STARTED, WAIT_TOTAL, WAIT_MAX, PAUSED };

static void write_rl_family(struct out *o, const struct snapshot *s, size_t n, int64_t now,
                            const char *name, const char *type, const char *help,
                            enum rl_field field)
{
    family(o, name, type, help);
    for (size_t i = 0; i < n; i++) {
        if (!s[i].src->ratelimit)
            continue;
        const struct ratelimit_stats *r = &s[i].rl;
        sample(o, name, s[i].src->provider);
        switch (field) {
        case QUEUED:
            emit(o, "} %zu\n", r->queued);
            break;
        case IN_FLIGHT:
            emit(o, "} %zu\n", r->in_flight);
            break;
        case STARTED:
            emit(o, "} %" PRIu64 "\n", r->started);
            break;
        case WAIT_TOTAL:
            emit(o, "} %.3f\n", (double)r->wait_ms_total / 1000.0);
            break;
        case WAIT_MAX:
            emit(o, "} %.3f\n", (double)r->wait_ms_max / 1000.0);
            break;
        case PAUSED:
            emit(o, "} %.3f\n",
                 r->paused_until > now ? (double)(r->paused_until - now) / 1000.0 : 0.0);
            break;
        }
    }
}

static void write_scheduler(struct out *o, const struct snapshot *s, size_t n, int64_t now)
{
    write_rl_family(o, s, n, now, "o2c_llm_queue_depth", "gauge",
                    "LLM calls waiting in the scheduler.", QUEUED);
    write_rl_family(o, s, n, now, "o2c_llm_in_flight", "gauge", "LLM calls in flight.", IN_FLIGHT);
    write_rl_family(o, s, n, now, "o2c_llm_scheduler_started_total", "counter",
                    "LLM calls started by the scheduler.", STARTED);
    write_rl_family(o, s, n, now, "o2c_llm_scheduler_wait_seconds_total", "counter",
                    "Time calls waited in the scheduler, summed.", WAIT_TOTAL);
    write_rl_family(o, s, n, now, "o2c_llm_scheduler_wait_seconds_max", "gauge",
                    "Longest time a call waited in the scheduler.", WAIT_MAX);
    write_rl_family(o, s, n, now, "o2c_llm_paused_seconds", "gauge",
                    "Seconds left of a pause after a 429 (0 when not paused).", PAUSED);

    family(o, "o2c_llm_tokens_total", "counter", "LLM tokens used, from the responses' usage.");
    for (size_t i = 0; i < n; i++)
        if (s[i].src->ratelimit) {
            sample(o, "o2c_llm_tokens_total", s[i].src->provider);
            emit(o, ",direction=\"input\"} %" PRId64 "\n", s[i].rl.input_tokens_total);
            sample(o, "o2c_llm_tokens_total", s[i].src->provider);
            emit(o, ",direction=\"output\"} %" PRId64 "\n", s[i].rl.output_tokens_total);
        }
    static const char *const fields[] = {"o2c_llm_ratelimit_limit", "o2c_llm_ratelimit_remaining"};
    static const char *const helps[] = {"Known rate limit per minute, by budget.",
                                        "What the scheduler believes is left, by budget."};
    for (int f = 0; f < 2; f++) {
        family(o, fields[f], "gauge", helps[f]);
        for (size_t i = 0; i < n; i++) {
            if (!s[i].src->ratelimit)
                continue;
            for (int b = 0; b < RATELIMIT_BUDGETS; b++) {
                const struct ratelimit_budget_stats *bs = &s[i].rl.budget[b];
                if (!bs->capacity)
                    continue;
                sample(o, fields[f], s[i].src->provider);
                emit(o, ",budget=\"%s\"} %" PRId64 "\n", ratelimit_budget_name(b),
                     f == 0 ? bs->capacity : bs->level);
            }
        }
    }
}

static void write_breakers(struct out *o, const struct snapshot *s, size_t n)
{
    static const enum breaker_state states[] = {BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN};
    family(o, "o2c_llm_breaker_state", "gauge", "Circuit breaker state (1 = current).");
    for (size_t i = 0; i < n; i++) {
        if (!s[i].src->breaker)
            continue;
        for (int k = 0; k < 3; k++) {
            sample(o, "o2c_llm_breaker_state", s[i].src->provider);
            emit(o, ",state=\"%s\"} %d\n", breaker_state_name(states[k]),
                 s[i].br.state == states[k]);
        }
    }
    family(o, "o2c_llm_breaker_opened_total", "counter", "Times the circuit opened.");
    for (size_t i = 0; i < n; i++)
        if (s[i].src->breaker) {
            sample(o, "o2c_llm_breaker_opened_total", s[i].src->provider);
            emit(o, "} %" PRIu64 "\n", s[i].br.opened);
        }
    family(o, "o2c_llm_breaker_rejected_total", "counter",
           "Calls refused at once because the circuit was open.");
    for (size_t i = 0; i < n; i++)
        if (s[i].src->breaker) {
            sample(o, "o2c_llm_breaker_rejected_total", s[i].src->provider);
            emit(o, "} %" PRIu64 "\n", s[i].br.rejected);
        }
}

size_t llm_metrics_format(char *buf, size_t cap, const struct llm_metrics_source *sources, size_t n,
                          int64_t now)
{
    struct out o = {.buf = buf, .cap = cap, .len = 0};
    if (cap)
        buf[0] = '\0';
    struct snapshot snaps[LLM_METRICS_MAX_PROVIDERS];
    if (n > LLM_METRICS_MAX_PROVIDERS)
        n = LLM_METRICS_MAX_PROVIDERS;
    for (size_t i = 0; i < n; i++) {
        memset(&snaps[i], 0, sizeof snaps[i]);
        snaps[i].src = &sources[i];
        if (sources[i].ratelimit)
            ratelimit_stats(sources[i].ratelimit, now, &snaps[i].rl);
        if (sources[i].breaker)
            breaker_stats(sources[i].breaker, now, &snaps[i].br);
    }
    write_calls(&o, snaps, n);
    write_scheduler(&o, snaps, n, now);
    write_breakers(&o, snaps, n);
    return o.len;
}
