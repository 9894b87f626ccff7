/* Whether and when to retry a failed LLM call.  Engine-neutral: the host passes
 * the response's status, its headers (through a getter), the provider's error type
 * string (the host decodes the JSON body; no JSON in C), and the clocks.
 *
 * Rules, in order (the first that applies decides):
 *   1. error type/message containing "enforced_spend_limit_reached" -> never (a
 *      spend cap does not lift within a section's deadline; this wins even over
 *      x-should-retry: true);
 *   2. x-should-retry: true | false -> that;
 *   3. the status: retried are 408, 409, 429, every 5xx (529 included) and no
 *      response at all (status 0: connection error, timeout); everything else
 *      (400, 401, 403, 404, 413, 422, ...) is not;
 *   4. no more than max_attempts attempts in all;
 *   5. the wait: retry-after-ms, else retry-after (seconds or HTTP date), else
 *      exponential backoff with full jitter, uniform in
 *      [0, min(cap, base * 2^(attempt-1))];
 *   6. a retry that could not start before the section deadline is not made.
 *
 * All functions are pure apart from the random source; safe anywhere. */
#ifndef O2C_LLM_RETRY_H
#define O2C_LLM_RETRY_H
#include <stdbool.h>
#include <stdint.h>

#include "llm/headers.h"

/* Uniform in [0, upper_bound) (the randombytes_uniform contract). */
typedef uint32_t (*retry_random_fn)(void *ctx, uint32_t upper_bound);

struct retry_policy {
    int max_attempts; /* attempts in all, the first included; default 4 */
    int64_t base_ms;  /* default 500 */
    int64_t cap_ms;   /* default 8000 */
    retry_random_fn random;
    void *random_ctx; /* random == NULL: libsodium randombytes_uniform */
};

/* Fills *POLICY with the defaults above. */
void retry_policy_default(struct retry_policy *policy);

struct retry_attempt {
    int attempt;              /* 1-based number of the attempt that just failed */
    long status;              /* HTTP status; 0 when no response arrived */
    const char *error_type;   /* provider error type or message (may be NULL) */
    llm_header_fn get_header; /* may be NULL when there was no response */
    void *header_ctx;
    int64_t now;      /* monotonic ms */
    int64_t wall_ms;  /* Unix time in ms, for retry-after as an HTTP date */
    int64_t deadline; /* monotonic ms the section must be done by; 0 = none */
};

enum retry_reason {
    RETRY_OK,                /* status 2xx: nothing to retry */
    RETRY_RETRYABLE_STATUS,  /* retry: 408, 409, 429, 5xx */
    RETRY_TRANSPORT,         /* retry: no response (connection error, timeout) */
    RETRY_SHOULD_RETRY_TRUE, /* retry: x-should-retry: true */
    RETRY_NOT_RETRYABLE,     /* stop: a status that is never retried */
    RETRY_SHOULD_RETRY_FALSE,
    RETRY_SPEND_LIMIT,
    RETRY_ATTEMPTS_EXHAUSTED,
    RETRY_DEADLINE
};

struct retry_decision {
    bool retry;
    int64_t delay_ms;  /* when retry: wait this long first */
    bool server_delay; /* the wait came from retry-after-ms / retry-after */
    enum retry_reason reason;
    char message[192]; /* for the section's status line, e.g.
                        * "HTTP 529: retrying in 1234 ms (attempt 2 of 4)"
                        * "HTTP 401: not retried" */
};

void retry_decide(const struct retry_policy *policy, const struct retry_attempt *attempt,
                  struct retry_decision *out);

/* Rule 3 alone. */
bool retry_status_is_retryable(long status);
/* Rule 1 alone: ERROR_TYPE names the spend limit. */
bool retry_is_spend_limit(const char *error_type);
/* The wait the server asked for: retry-after-ms, else retry-after as seconds or an
 * HTTP date (relative to WALL_MS).  -1 when absent or unparseable; never negative
 * otherwise (a date in the past is 0).  Also what the host passes to
 * ratelimit_pause_until after a 429. */
int64_t retry_server_delay_ms(llm_header_fn get, void *ctx, int64_t wall_ms);
/* Rule 5's jitter alone: a draw for ATTEMPT (1-based) under POLICY. */
int64_t retry_backoff_ms(const struct retry_policy *policy, int attempt);
/* "ok", "retryable_status", "transport", "should_retry_true", "not_retryable",
 * "should_retry_false", "spend_limit", "attempts_exhausted", "deadline". */
const char *retry_reason_name(enum retry_reason reason);

#endif
