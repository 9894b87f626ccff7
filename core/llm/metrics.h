/* LLM metrics for GET /metrics, engine-neutral: counters the host bumps per call
 * attempt, plus a writer of the Prometheus text format that also reads the
 * providers' schedulers and breakers.
 *
 * Families written (label provider="..." on each):
 *   o2c_llm_calls_total{status}            counter  attempts by HTTP status ("error" = no response)
 *   o2c_llm_retries_total                  counter
 *   o2c_llm_queue_depth                    gauge    calls waiting in the scheduler
 *   o2c_llm_in_flight                      gauge
 *   o2c_llm_scheduler_started_total        counter
 *   o2c_llm_scheduler_wait_seconds_total   counter  enqueue -> start, summed
 *   o2c_llm_scheduler_wait_seconds_max     gauge
 *   o2c_llm_tokens_total{direction}        counter  "input" / "output", from usage
 *   o2c_llm_paused_seconds                 gauge    left of a 429 pause (0 = none)
 *   o2c_llm_ratelimit_limit{budget}        gauge    per minute, known budgets only
 *   o2c_llm_ratelimit_remaining{budget}    gauge
 *   o2c_llm_breaker_state{state}           gauge    1 for the current state, else 0
 *   o2c_llm_breaker_opened_total           counter
 *   o2c_llm_breaker_rejected_total         counter
 *   o2c_llm_shared_refusals_total          counter  calls the shared budget (several
 *                                                   instances, PostgreSQL) sent back to wait;
 *                                                   only for providers that share one
 * Safe anywhere; no allocation. */
#ifndef O2C_LLM_METRICS_H
#define O2C_LLM_METRICS_H
#include <stddef.h>
#include <stdint.h>

#include "llm/breaker.h"
#include "llm/ratelimit.h"

#define LLM_METRICS_STATUSES 32
#define LLM_METRICS_MAX_PROVIDERS 8 /* sources beyond are left out */

struct llm_metrics {
    struct {
        long status; /* 0 = no response */
        uint64_t count;
    } calls[LLM_METRICS_STATUSES];
    int statuses;         /* entries used in calls[] */
    uint64_t other_calls; /* statuses beyond LLM_METRICS_STATUSES distinct ones */
    uint64_t retries;
    bool shared;              /* the provider takes permits from a shared budget */
    uint64_t shared_refusals; /* takes the shared budget refused (the call waited) */
};

/* One attempt ended with STATUS (0 = no response). */
void llm_metrics_count_call(struct llm_metrics *m, long status);
/* A retry was scheduled. */
void llm_metrics_count_retry(struct llm_metrics *m);

struct llm_metrics_source {
    const char *provider;
    const struct llm_metrics *calls; /* each of these three may be NULL */
    struct ratelimit *ratelimit;
    struct breaker *breaker;
};

/* Writes the families above for N providers (each family once, with a sample per
 * provider, as the format requires) into BUF (NUL-terminated, truncated
 * to CAP).  Returns the length the whole text needs, like snprintf: call again with
 * a bigger buffer when the result is >= CAP. */
size_t llm_metrics_format(char *buf, size_t cap, const struct llm_metrics_source *sources, size_t n,
                          int64_t now);

#endif
