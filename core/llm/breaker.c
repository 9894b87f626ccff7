/* Circuit breaker; see breaker.h for the states and rules. */
#include "llm/breaker.h"

#include <errno.h>
#include <stdlib.h>

#define WINDOW_MAX 64

struct breaker {
    struct breaker_config config;
    enum breaker_state state;
    uint64_t epoch;
    int64_t open_until;
    int64_t trial_started;
    bool trial_in_flight;
    int consecutive;
    uint64_t window_bits; /* bit i set = the i-th slot of the ring was a failure */
    int window_calls;     /* slots filled, up to config.window */
    int window_pos;       /* next slot to write */
    struct breaker_stats totals;
};

void breaker_config_default(struct breaker_config *config)
{
    *config = (struct breaker_config){
        .consecutive_failures = 5,
        .window = 20,
        .min_calls = 10,
        .failure_percent = 50,
        .open_ms = 30000,
    };
}

const char *breaker_state_name(enum breaker_state state)
{
    switch (state) {
    case BREAKER_CLOSED:
        return "closed";
    case BREAKER_OPEN:
        return "open";
    case BREAKER_HALF_OPEN:
        return "half_open";
    }
    return "?";
}

enum breaker_outcome breaker_classify(long status)
{
    if (status == 429)
        return BREAKER_NEUTRAL;
    if (status == 0 || status == 408 || status >= 500)
        return BREAKER_FAILURE;
    return BREAKER_SUCCESS;
}

struct breaker *breaker_new(const struct breaker_config *config)
{
    struct breaker_config defaults;
    breaker_config_default(&defaults);
    if (!config)
        config = &defaults;
    if (config->consecutive_failures < 1 || config->window < 1 || config->window > WINDOW_MAX ||
        config->min_calls < 1 || config->min_calls > config->window ||
        config->failure_percent < 1 || config->failure_percent > 100 || config->open_ms < 0) {
        errno = EINVAL;
        return NULL;
    }
    struct breaker *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->config = *config;
    b->state = BREAKER_CLOSED;
    b->epoch = 1;
    return b;
}

void breaker_free(struct breaker *b)
{
    free(b);
}

static void window_clear(struct breaker *b)
{
    b->consecutive = 0;
    b->window_bits = 0;
    b->window_calls = 0;
    b->window_pos = 0;
}

static int window_failures(const struct breaker *b)
{
    return __builtin_popcountll(b->window_bits);
}

static void window_push(struct breaker *b, bool failed)
{
    uint64_t bit = (uint64_t)1 << b->window_pos;
    b->window_bits = failed ? b->window_bits | bit : b->window_bits & ~bit;
    b->window_pos = (b->window_pos + 1) % b->config.window;
    if (b->window_calls < b->config.window)
        b->window_calls++;
}

static void enter(struct breaker *b, enum breaker_state state, int64_t now)
{
    b->state = state;
    b->epoch++;
    b->trial_in_flight = false;
    window_clear(b);
    if (state == BREAKER_OPEN) {
        b->open_until = now + b->config.open_ms;
        b->totals.opened++;
    }
}

/* Time-driven transitions: open -> half-open when the wait is over; a half-open
 * trial that never reported is written off (a new epoch ignores its late result). */
static void advance(struct breaker *b, int64_t now)
{
    if (b->state == BREAKER_OPEN && now >= b->open_until)
        enter(b, BREAKER_HALF_OPEN, now);
    else if (b->state == BREAKER_HALF_OPEN && b->trial_in_flight &&
             now >= b->trial_started + b->config.open_ms)
        enter(b, BREAKER_HALF_OPEN, now);
}

bool breaker_allow(struct breaker *b, int64_t now, struct breaker_permit *permit, int64_t *until)
{
    advance(b, now);
    *until = 0;
    switch (b->state) {
    case BREAKER_CLOSED:
        *permit = (struct breaker_permit){.epoch = b->epoch, .trial = false};
        return true;
    case BREAKER_HALF_OPEN:
        if (!b->trial_in_flight) {
            b->trial_in_flight = true;
            b->trial_started = now;
            *permit = (struct breaker_permit){.epoch = b->epoch, .trial = true};
            return true;
        }
        *until = b->trial_started + b->config.open_ms;
        break;
    case BREAKER_OPEN:
        *until = b->open_until;
        break;
    }
    b->totals.rejected++;
    return false;
}

static bool should_open(const struct breaker *b)
{
    if (b->consecutive >= b->config.consecutive_failures)
        return true;
    return b->window_calls >= b->config.min_calls &&
           window_failures(b) * 100 >= b->config.failure_percent * b->window_calls;
}

void breaker_record(struct breaker *b, int64_t now, const struct breaker_permit *permit,
                    enum breaker_outcome outcome)
{
    if (outcome == BREAKER_NEUTRAL) {
        breaker_release(b, permit);
        return;
    }
    bool failed = outcome == BREAKER_FAILURE;
    if (failed)
        b->totals.failures++;
    else
        b->totals.successes++;
    advance(b, now);
    if (permit->epoch != b->epoch)
        return; /* stale: the state changed while this call ran */
    if (b->state == BREAKER_HALF_OPEN) {
        if (permit->trial)
            enter(b, failed ? BREAKER_OPEN : BREAKER_CLOSED, now);
        return;
    }
    if (b->state != BREAKER_CLOSED)
        return;
    b->consecutive = failed ? b->consecutive + 1 : 0;
    window_push(b, failed);
    if (failed && should_open(b)) /* a success never trips the circuit */
        enter(b, BREAKER_OPEN, now);
}

void breaker_release(struct breaker *b, const struct breaker_permit *permit)
{
    if (b->state == BREAKER_HALF_OPEN && permit->trial && permit->epoch == b->epoch)
        b->trial_in_flight = false;
}

enum breaker_state breaker_state(struct breaker *b, int64_t now)
{
    advance(b, now);
    return b->state;
}

void breaker_stats(struct breaker *b, int64_t now, struct breaker_stats *out)
{
    advance(b, now);
    *out = b->totals;
    out->state = b->state;
    out->state_name = breaker_state_name(b->state);
    out->open_until = b->state == BREAKER_OPEN ? b->open_until : 0;
    out->consecutive_failures = b->consecutive;
    out->window_calls = b->window_calls;
    out->window_failures = window_failures(b);
    out->trial_in_flight = b->trial_in_flight;
}
