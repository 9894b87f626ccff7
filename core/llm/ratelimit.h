/* The scheduler for one LLM provider: decides which queued call may start now so
 * that the provider's rate limits are never exceeded, fairly across report jobs.
 *
 * Engine-neutral: no Lua, no libuv, no clock of its own.  Every function that
 * depends on time takes NOW, a monotonic time in milliseconds (uv_now() in the host,
 * a plain counter in tests).  Functions that read wall-clock dates from headers also
 * take WALL_MS, the current Unix time in milliseconds.
 *
 * Budgets.  Four token buckets, refilled continuously the way Anthropic's limits
 * work: capacity = the per-minute limit, refill = limit / 60000 per millisecond.
 *   requests       1 per call
 *   input tokens   the caller's estimate at start, trued up from usage at finish
 *   output tokens  max_tokens reserved at start (see below), trued up at finish
 *   tokens         input + output combined (OpenAI's x-ratelimit-*-tokens, and
 *                  Anthropic's anthropic-ratelimit-tokens-* when the provider sends
 *                  no input/output-specific headers)
 * plus a cap on concurrent calls.  A budget with no configured limit is unlimited
 * until a limit is learned from the provider's headers.
 *
 * Output-token reservation policy: a call reserves its full max_tokens from the
 * output (and combined) bucket when it starts, and the unused part is credited back
 * when it finishes.  Both providers count max_tokens against the limit at admission
 * (Anthropic: "estimated based on max_tokens at the beginning of request and
 * adjusted at the end"), so reserving less could get a call refused with a 429.
 *
 * Input estimate: the provider counts the real input tokens when the call arrives,
 * and the scheduler only learns them at finish, so the estimate must be an upper
 * bound (bytes / 3 is one for English and JSON) for the "never a 429" guarantee.
 *
 * Fairness: calls are queued per job key (a report job id) in FIFO order; jobs
 * take turns round-robin.  The job whose turn it is waits for its head call to fit
 * (strict turns: a large call is never passed over forever by smaller ones), then
 * goes to the back of the line.  A job seen for the first time joins at the back.
 *
 * Host protocol: after ratelimit_enqueue, _finish, _cancel, _observe_headers,
 * _pause_until, and when the timer it armed fires, the host calls ratelimit_next
 * until it stops returning RATELIMIT_READY, and starts each returned ticket's call.
 * Finish, then observe the response's headers (finish credits back reservations the
 * headers may not reflect yet; observing last keeps the more conservative level).
 *
 * All functions run on one thread (the loop); none blocks; none allocates except
 * ratelimit_new and ratelimit_enqueue.  Safe to call from raw libuv callbacks. */
#ifndef O2C_LLM_RATELIMIT_H
#define O2C_LLM_RATELIMIT_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llm/headers.h"

enum ratelimit_budget {
    RATELIMIT_REQUESTS,
    RATELIMIT_INPUT_TOKENS,
    RATELIMIT_OUTPUT_TOKENS,
    RATELIMIT_TOKENS,
    RATELIMIT_BUDGETS
};

/* "requests", "input_tokens", "output_tokens", "tokens". */
const char *ratelimit_budget_name(enum ratelimit_budget budget);

struct ratelimit_config {
    /* Per-minute limits; 0 = not configured (unlimited until learned from headers).
     * A configured limit is never raised by headers, only lowered. */
    int64_t requests_per_minute;
    int64_t input_tokens_per_minute;
    int64_t output_tokens_per_minute;
    int64_t tokens_per_minute;
    int max_concurrency; /* 0 = unlimited */
    /* Learn unconfigured limits from headers.  While any budget is unconfigured and
     * no response has been observed yet, only one call runs at a time (a probe), so
     * the first burst cannot overrun limits nobody has told us. */
    bool learn_from_headers;
};

struct ratelimit;
struct ratelimit_ticket;

/* Returns NULL on out-of-memory or a negative limit. */
struct ratelimit *ratelimit_new(const struct ratelimit_config *config);
/* Frees the scheduler and every ticket still queued or in flight. */
void ratelimit_free(struct ratelimit *rl);

/* Whether a call with these sizes can ever start under the current capacities.
 * When not, writes why into WHY (if non-NULL), e.g. "needs 9000 output tokens
 * (max_tokens) but the provider allows 8000 per minute". */
bool ratelimit_fits(const struct ratelimit *rl, int64_t est_input_tokens, int64_t max_output_tokens,
                    char *why, size_t why_cap);

/* Queues a call for JOB_KEY (copied).  Returns the ticket, owned by the scheduler
 * until ratelimit_finish or ratelimit_cancel.  NULL with errno = E2BIG when the call
 * can never fit (see ratelimit_fits), EINVAL on negative sizes, ENOMEM. */
struct ratelimit_ticket *ratelimit_enqueue(struct ratelimit *rl, const char *job_key,
                                           int64_t est_input_tokens, int64_t max_output_tokens,
                                           void *user_data, int64_t now);

enum ratelimit_status {
    RATELIMIT_READY, /* *ticket may start now; its budgets are debited */
    RATELIMIT_WAIT,  /* the next call can start in *wait_ms: arm a timer */
    RATELIMIT_BUSY,  /* concurrency full (or the first-call probe): wait for a finish */
    RATELIMIT_IDLE   /* nothing queued */
};

/* Picks the call whose turn it is.  On READY sets *ticket (now in flight) and
 * *wait_ms = 0; on WAIT sets *wait_ms > 0; otherwise *ticket = NULL, *wait_ms = -1. */
enum ratelimit_status ratelimit_next(struct ratelimit *rl, int64_t now,
                                     struct ratelimit_ticket **ticket, int64_t *wait_ms);

/* A started call ended.  ACTUAL_INPUT / ACTUAL_OUTPUT are the response's usage, or
 * negative when unknown (the reservation is then kept, which is conservative).
 * Frees the concurrency slot and the ticket. */
void ratelimit_finish(struct ratelimit *rl, struct ratelimit_ticket *ticket, int64_t actual_input,
                      int64_t actual_output, int64_t now);

/* Drops a ticket: a queued one leaves the queue; an in-flight one (its task died)
 * frees its concurrency slot but keeps its debits, since the provider counted it. */
void ratelimit_cancel(struct ratelimit *rl, struct ratelimit_ticket *ticket);

/* Takes back the start of TICKET (in flight, not finished): a gate after the
 * rate limiter refused it (several instances share one budget).  Its debits
 * are credited back, it is the head of its job's queue again, and its job's
 * turn is next (the head of the rotation), so order and fairness are as if
 * it had waited.  0, or -1 (errno ENOMEM, EINVAL: not in flight): the ticket
 * is unchanged. */
int ratelimit_unstart(struct ratelimit *rl, struct ratelimit_ticket *ticket, int64_t now);

void *ratelimit_ticket_user_data(const struct ratelimit_ticket *ticket);
/* The sizes the ticket was queued with. */
int64_t ratelimit_ticket_est_input(const struct ratelimit_ticket *ticket);
int64_t ratelimit_ticket_max_output(const struct ratelimit_ticket *ticket);
uint64_t ratelimit_ticket_id(const struct ratelimit_ticket *ticket);
const char *ratelimit_ticket_job(const struct ratelimit_ticket *ticket);
bool ratelimit_ticket_started(const struct ratelimit_ticket *ticket);

/* Adapts to the provider's rate-limit headers, Anthropic's
 * anthropic-ratelimit-{requests,input-tokens,output-tokens,tokens}-{limit,remaining,reset}
 * (reset in RFC 3339) and OpenAI's x-ratelimit-{limit,remaining,reset}-{requests,tokens}
 * (reset as "1s", "6m0s", "20ms").  limit -> capacity (an unconfigured budget takes
 * it; a configured one only goes down); remaining -> the current level, never above
 * what we believe; reset is recorded for status.  Returns how many budgets the
 * headers described.  Ends the first-call probe in every case. */
int ratelimit_observe_headers(struct ratelimit *rl, int64_t now, int64_t wall_ms, llm_header_fn get,
                              void *ctx);

/* What the rate-limit headers of one response say, per budget, without
 * applying it: LIMIT (> 0) and REMAINING (>= 0), -1 where no header says;
 * the same families as ratelimit_observe_headers (the lower value where two
 * describe one budget).  Returns how many budgets the headers described. */
struct ratelimit_header_values {
    int64_t limit[RATELIMIT_BUDGETS];
    int64_t remaining[RATELIMIT_BUDGETS];
};
int ratelimit_read_headers(llm_header_fn get, void *ctx, struct ratelimit_header_values *out);

/* After a 429: no call starts before UNTIL (monotonic ms).  Pauses only extend. */
void ratelimit_pause_until(struct ratelimit *rl, int64_t until);

struct ratelimit_budget_stats {
    int64_t capacity; /* per minute; 0 = unlimited / not learned yet */
    int64_t level;    /* whole units available now; may be negative (debt) */
    bool configured;
    bool learned;     /* capacity or level came from headers */
    int64_t reset_at; /* monotonic ms the provider says the bucket is full; 0 = unknown */
};

struct ratelimit_stats {
    size_t queued;    /* calls waiting */
    size_t in_flight; /* calls started, not finished */
    size_t jobs;      /* job keys with queued calls */
    int max_concurrency;
    uint64_t started, finished, cancelled;
    int64_t wait_ms_total; /* sum over started calls of start - enqueue */
    int64_t wait_ms_max;
    int64_t input_tokens_total; /* from usage; calls without usage add nothing */
    int64_t output_tokens_total;
    int64_t paused_until; /* monotonic ms; 0 when not paused at NOW */
    uint64_t pauses;
    bool probing; /* waiting for the first response's headers */
    struct ratelimit_budget_stats budget[RATELIMIT_BUDGETS];
};

/* Fills *OUT with the state at NOW (levels refilled to NOW). */
void ratelimit_stats(struct ratelimit *rl, int64_t now, struct ratelimit_stats *out);

/* Header value parsers, exposed for tests and for the retry logic.
 * "1s", "6m0s", "20ms", "1h2m3.5s", "250us", or bare seconds ("12", "0.5") ->
 * milliseconds (rounded up).  Returns false on anything else. */
bool ratelimit_parse_duration_ms(const char *text, int64_t *ms);
/* RFC 3339 ("2024-05-01T12:00:30Z", "...30.25+02:00") -> Unix time in ms. */
bool ratelimit_parse_rfc3339_ms(const char *text, int64_t *unix_ms);

#endif
