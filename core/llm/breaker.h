/* Circuit breaker for one LLM provider, engine-neutral (time is passed in as NOW,
 * monotonic ms).
 *
 *   closed     calls pass; each attempt's outcome is recorded.  Opens on
 *              `consecutive_failures` failures in a row (default 5), or when at
 *              least `min_calls` (default 10) of the last `window` (default 20)
 *              outcomes are known and >= `failure_percent` (default 50) of them
 *              failed.  The minimum keeps two failures out of the first three calls
 *              from opening the circuit on a sample too small to mean anything;
 *              below it only the consecutive rule applies.
 *   open       calls are refused at once, with the time the circuit opens again,
 *              for `open_ms` (default 30 s).
 *   half_open  one trial call passes; its success closes the circuit (with a clean
 *              window), its failure opens it for another `open_ms`.  A trial that
 *              reports nothing within `open_ms` is written off and the next call
 *              becomes the trial.
 *
 * Each call carries a permit from breaker_allow.  A permit remembers the breaker's
 * epoch (bumped at every state change), so an outcome arriving after the state
 * changed (a slow call started while closed, finishing while half-open) is counted
 * in the totals but moves nothing.
 *
 * What counts as a failure is breaker_classify's business: the provider did not
 * answer properly (no response, 408, 5xx).  4xx answers show the provider is up;
 * 429 is the rate limiter's business and is neutral.  Safe anywhere; no allocation
 * after breaker_new. */
#ifndef O2C_LLM_BREAKER_H
#define O2C_LLM_BREAKER_H
#include <stdbool.h>
#include <stdint.h>

struct breaker_config {
    int consecutive_failures; /* default 5 */
    int window;               /* default 20; at most 64 */
    int min_calls;            /* default 10; 1..window */
    int failure_percent;      /* default 50 */
    int64_t open_ms;          /* default 30000 */
};

void breaker_config_default(struct breaker_config *config);

enum breaker_state { BREAKER_CLOSED, BREAKER_OPEN, BREAKER_HALF_OPEN };

/* "closed", "open", "half_open". */
const char *breaker_state_name(enum breaker_state state);

enum breaker_outcome { BREAKER_SUCCESS, BREAKER_FAILURE, BREAKER_NEUTRAL };

/* HTTP status of an attempt (0 = no response) -> its outcome for the breaker. */
enum breaker_outcome breaker_classify(long status);

struct breaker_permit {
    uint64_t epoch;
    bool trial;
};

struct breaker;

/* CONFIG NULL = defaults.  NULL on a bad config (errno EINVAL) or out of memory. */
struct breaker *breaker_new(const struct breaker_config *config);
void breaker_free(struct breaker *b);

/* May a call start now?  true: *PERMIT is filled, pass it to breaker_record.
 * false: the circuit is open (or half-open with its trial under way); *UNTIL is
 * when a call may be let through again, for "provider unavailable (circuit open
 * until ...)". */
bool breaker_allow(struct breaker *b, int64_t now, struct breaker_permit *permit, int64_t *until);

/* The permitted call's outcome.  BREAKER_NEUTRAL is breaker_release. */
void breaker_record(struct breaker *b, int64_t now, const struct breaker_permit *permit,
                    enum breaker_outcome outcome);

/* The permitted call ended without a verdict (cancelled, or 429): a trial's slot is
 * freed so the next call can be the trial. */
void breaker_release(struct breaker *b, const struct breaker_permit *permit);

enum breaker_state breaker_state(struct breaker *b, int64_t now);

struct breaker_stats {
    enum breaker_state state;
    const char *state_name;
    int64_t open_until; /* when open: monotonic ms; else 0 */
    int consecutive_failures;
    int window_calls, window_failures;
    bool trial_in_flight;
    uint64_t successes, failures; /* every recorded outcome, stale ones included */
    uint64_t opened;              /* times the circuit opened */
    uint64_t rejected;            /* calls refused by breaker_allow */
};

void breaker_stats(struct breaker *b, int64_t now, struct breaker_stats *out);

#endif
