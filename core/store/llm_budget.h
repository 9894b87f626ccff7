/* One LLM budget shared by every o2c instance on one PostgreSQL database
 * (schema version 5; the SQL is in llm_budget_sql.h).
 *
 * The scheduler (llm/scheduler.h) keeps deciding, inside one instance,
 * which call goes next and in what order; before a call it let through
 * starts, it takes the call's permit here: 1 request, the input estimate,
 * max_tokens of output, their sum, and one concurrency lease, all in one
 * statement, or none and the wait until all would fit.
 *
 *   buckets   one row per provider and budget, refilled continuously at
 *             capacity per window (the local limiter's arithmetic), with
 *             the database's clock; a take debits every bucket or none
 *   pause     a 429's retry-after, on the provider's row: no take
 *             succeeds before it, on any instance
 *   leases    one row per call in flight, expiring LEASE_MS after the take
 *             or the last renewal; max_concurrency live leases at most
 *   waiters   an instance refused registers its head call (job key and
 *             rank: when that job was last served, else when it began
 *             waiting); a take succeeds only when no live waiter of another
 *             instance ranks before it, so the next capacity goes to the
 *             job served least recently across instances (round-robin over
 *             the instances' head-of-line jobs)
 *   headers   a remaining below the shared level lowers it; a limit
 *             becomes the capacity, never above a configured one
 *   finish    the lease goes, the unused reservation comes back (capped at
 *             capacity), more usage than reserved is debited
 *
 * Worst case.  Requests and tokens: never over the budget.  Every start is
 * debited in the shared row before the call is sent, in one statement
 * under the provider row's lock, with the database's clock, so no
 * instance's clock (nor a skew between them) enters the arithmetic; the
 * input estimate must be an upper bound, as for one instance.  Only a step
 * of the database server's own clock by S ms could refill early, by at
 * most S x capacity / window (never more than one window's capacity).
 * Concurrency: never over while instances renew their leases (every
 * LEASE_MS / 3); an instance cut from the database longer than LEASE_MS
 * while its calls run can exceed it by those calls.  A crash spends
 * nothing extra: a crashed instance's debits stay spent (its calls may
 * have reached the provider), its leases come back after at most
 * LEASE_MS and its waiter stops holding others back after at most its
 * wait + GRACE_MS.
 *
 * Store functions (run inside an operation, db.h); on SQLite they answer
 * STORE_INVALID: one process needs no shared budget. */
#ifndef O2C_STORE_LLM_BUDGET_H
#define O2C_STORE_LLM_BUDGET_H
#include <stdint.h>
#include "store/db.h"

/* In the order of llm/ratelimit.h's budgets. */
enum llm_budget_kind {
    LLM_BUDGET_REQUESTS,
    LLM_BUDGET_INPUT_TOKENS,
    LLM_BUDGET_OUTPUT_TOKENS,
    LLM_BUDGET_TOKENS,
    LLM_BUDGETS
};

#define LLM_BUDGET_INSTANCE_MAX 40 /* an instance id: a UUID string and its NUL */

struct llm_budget_limits {
    int64_t window_ms;               /* the limits are per this many ms (60000 in production) */
    int64_t max_concurrency;         /* 0: no cap */
    int64_t per_window[LLM_BUDGETS]; /* 0: not configured (unlimited until learned) */
};

/* Creates or updates PROVIDER's shared budget (the last instance to
 * configure it sets the limits; instances share one configuration).  A
 * bucket keeps its level, clamped to the new capacity. */
int llm_budget_configure(struct db *db, const char *provider, const struct llm_budget_limits *l);

struct llm_budget_take {
    const char *provider, *instance, *job_key;
    int64_t slot;               /* the call's id, unique within the instance */
    int64_t debit[LLM_BUDGETS]; /* 1, input estimate, max_tokens, their sum */
    int64_t lease_ms;           /* the lease's life without renewal */
    int64_t grace_ms;           /* a waiter's life past its wait */
    int64_t poll_ms;            /* the wait when refused for concurrency or turn */
};

struct llm_budget_answer {
    int granted;
    int64_t wait_ms; /* refused: when to ask again (> 0), in database ms */
    char reason[16]; /* "granted", "budget", "paused", "busy", "turn" */
    int64_t now_ms;  /* the database's time of the take */
};

int llm_budget_take(struct db *db, const struct llm_budget_take *t, struct llm_budget_answer *out);

/* A granted call ended (or never went out): its lease goes and CREDIT
 * (debit - actual per budget; 0: keep; negative: debit more) is applied. */
int llm_budget_finish(struct db *db, const char *provider, const char *instance, int64_t slot,
                      const int64_t credit[LLM_BUDGETS]);

/* What a response's headers said: LIMIT > 0 and REMAINING >= 0 per budget
 * (-1: not sent). */
int llm_budget_observe(struct db *db, const char *provider, const int64_t limit[LLM_BUDGETS],
                       const int64_t remaining[LLM_BUDGETS]);

/* No take succeeds for DELAY_MS from now (the database's now); pauses only
 * extend. */
int llm_budget_pause(struct db *db, const char *provider, int64_t delay_ms);

/* INSTANCE's leases on PROVIDER live LEASE_MS from now. */
int llm_budget_renew(struct db *db, const char *provider, const char *instance, int64_t lease_ms);

/* The shared state, for status, metrics and tests. */
struct llm_budget_state {
    int64_t window_ms, max_concurrency;
    int64_t paused_ms; /* how much longer the pause lasts; 0: none */
    int64_t capacity[LLM_BUDGETS];
    int64_t level[LLM_BUDGETS]; /* whole units now, refilled; may be negative */
    int64_t leases, waiters;    /* live ones */
};

/* STORE_NOT_FOUND when PROVIDER has no shared budget. */
int llm_budget_read(struct db *db, const char *provider, struct llm_budget_state *out);

#endif
