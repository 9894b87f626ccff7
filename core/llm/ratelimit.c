/* Token-bucket scheduler for one LLM provider; see ratelimit.h for the contract. */
#include "llm/ratelimit.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

/* Bucket levels are kept in units of (token x WINDOW_MS), so refilling at
 * capacity / WINDOW_MS tokens per ms adds exactly `capacity` per ms: integer
 * arithmetic, no drift over hours of uptime. */
#define WINDOW_MS 60000
/* Largest limit or call size accepted, so that value * WINDOW_MS * 2 fits int64. */
#define MAX_UNITS ((int64_t)1 << 40)

struct bucket {
    int64_t capacity;   /* per minute; 0 = unlimited */
    int64_t configured; /* 0 = not configured */
    int64_t level;      /* scaled; may be negative (debt after a true-up) */
    int64_t updated;    /* NOW of the last refill; INT64_MIN = never (bucket full) */
    int64_t reset_at;
    bool learned;
};

struct rl_job {
    TAILQ_ENTRY(rl_job) link;
    TAILQ_HEAD(, ratelimit_ticket) queue;
    char key[];
};

struct ratelimit_ticket {
    TAILQ_ENTRY(ratelimit_ticket) link;
    struct rl_job *job; /* while queued; NULL once started */
    uint64_t id;
    int64_t est_input, max_output;
    int64_t enqueued_at;
    void *user_data;
    bool started;
    int64_t waited;                  /* enqueue to start, counted in the stats */
    bool charged[RATELIMIT_BUDGETS]; /* debited from that bucket at start */
    int64_t debit[RATELIMIT_BUDGETS];
    char job_key[];
};

TAILQ_HEAD(rl_job_list, rl_job);
TAILQ_HEAD(rl_ticket_list, ratelimit_ticket);

struct ratelimit {
    struct bucket bucket[RATELIMIT_BUDGETS];
    int max_concurrency;
    bool probing;
    struct rl_job_list jobs; /* round-robin order: the head's turn is next */
    struct rl_ticket_list in_flight;
    uint64_t next_id;
    int64_t paused_until;
    struct ratelimit_stats counters; /* only the cumulative fields are kept here */
};

static const char *const budget_names[RATELIMIT_BUDGETS] = {"requests", "input_tokens",
                                                            "output_tokens", "tokens"};

const char *ratelimit_budget_name(enum ratelimit_budget budget)
{
    return (unsigned)budget < RATELIMIT_BUDGETS ? budget_names[budget] : "?";
}

/* ---- buckets ------------------------------------------------------------- */

static void bucket_init(struct bucket *b, int64_t per_minute)
{
    memset(b, 0, sizeof *b);
    b->capacity = per_minute;
    b->configured = per_minute;
    b->level = per_minute * WINDOW_MS;
    b->updated = INT64_MIN;
}

static void bucket_refill(struct bucket *b, int64_t now)
{
    if (b->updated == INT64_MIN || now <= b->updated || b->capacity == 0) {
        if (b->updated == INT64_MIN || now > b->updated)
            b->updated = now;
        return;
    }
    int64_t full = b->capacity * WINDOW_MS;
    int64_t elapsed = now - b->updated;
    b->updated = now;
    if (b->level >= full)
        return;
    /* Compare before multiplying: a long idle period must not overflow. */
    if (elapsed >= (full - b->level + b->capacity - 1) / b->capacity)
        b->level = full;
    else
        b->level += elapsed * b->capacity;
}

/* Milliseconds until COST units are available (0 = now).  A call larger than the
 * whole bucket (possible only after a learned limit shrank) waits for a full bucket
 * and leaves it in debt, rather than waiting forever. */
static int64_t bucket_wait(const struct bucket *b, int64_t cost)
{
    if (b->capacity == 0)
        return 0;
    int64_t need = (cost < b->capacity ? cost : b->capacity) * WINDOW_MS;
    if (b->level >= need)
        return 0;
    return (need - b->level + b->capacity - 1) / b->capacity;
}

/* Debits UNITS (a credit when negative).  The level stays within [-MAX_UNITS,
 * capacity] whole units, so nonsense usage figures cannot overflow it. */
static void bucket_debit(struct bucket *b, int64_t now, int64_t units)
{
    bucket_refill(b, now);
    if (units > MAX_UNITS)
        units = MAX_UNITS;
    if (units < -MAX_UNITS)
        units = -MAX_UNITS;
    b->level -= units * WINDOW_MS;
    if (b->level > b->capacity * WINDOW_MS)
        b->level = b->capacity * WINDOW_MS;
    if (b->level < -MAX_UNITS * WINDOW_MS)
        b->level = -MAX_UNITS * WINDOW_MS;
}

/* Cost of a call in each budget. */
static void call_costs(int64_t est_input, int64_t max_output, int64_t cost[RATELIMIT_BUDGETS])
{
    cost[RATELIMIT_REQUESTS] = 1;
    cost[RATELIMIT_INPUT_TOKENS] = est_input;
    cost[RATELIMIT_OUTPUT_TOKENS] = max_output;
    cost[RATELIMIT_TOKENS] = est_input + max_output;
}

/* ---- life cycle ---------------------------------------------------------- */

struct ratelimit *ratelimit_new(const struct ratelimit_config *config)
{
    struct ratelimit_config none = {0};
    if (!config)
        config = &none;
    int64_t limits[RATELIMIT_BUDGETS] = {
        config->requests_per_minute, config->input_tokens_per_minute,
        config->output_tokens_per_minute, config->tokens_per_minute};
    for (int i = 0; i < RATELIMIT_BUDGETS; i++)
        if (limits[i] < 0 || limits[i] > MAX_UNITS) {
            errno = EINVAL;
            return NULL;
        }
    if (config->max_concurrency < 0) {
        errno = EINVAL;
        return NULL;
    }
    struct ratelimit *rl = calloc(1, sizeof *rl);
    if (!rl)
        return NULL;
    bool any_unconfigured = false;
    for (int i = 0; i < RATELIMIT_BUDGETS; i++) {
        bucket_init(&rl->bucket[i], limits[i]);
        any_unconfigured |= limits[i] == 0;
    }
    rl->max_concurrency = config->max_concurrency;
    rl->probing = config->learn_from_headers && any_unconfigured;
    TAILQ_INIT(&rl->jobs);
    TAILQ_INIT(&rl->in_flight);
    rl->next_id = 1;
    return rl;
}

void ratelimit_free(struct ratelimit *rl)
{
    if (!rl)
        return;
    struct rl_job *job;
    while ((job = TAILQ_FIRST(&rl->jobs))) {
        struct ratelimit_ticket *t;
        while ((t = TAILQ_FIRST(&job->queue))) {
            TAILQ_REMOVE(&job->queue, t, link);
            free(t);
        }
        TAILQ_REMOVE(&rl->jobs, job, link);
        free(job);
    }
    struct ratelimit_ticket *t;
    while ((t = TAILQ_FIRST(&rl->in_flight))) {
        TAILQ_REMOVE(&rl->in_flight, t, link);
        free(t);
    }
    free(rl);
}

/* ---- queueing ------------------------------------------------------------ */

bool ratelimit_fits(const struct ratelimit *rl, int64_t est_input_tokens, int64_t max_output_tokens,
                    char *why, size_t why_cap)
{
    static const char *const what[RATELIMIT_BUDGETS] = {"request", "input tokens (estimate)",
                                                        "output tokens (max_tokens)",
                                                        "tokens (input estimate + max_tokens)"};
    int64_t cost[RATELIMIT_BUDGETS];
    call_costs(est_input_tokens, max_output_tokens, cost);
    for (int i = 0; i < RATELIMIT_BUDGETS; i++) {
        const struct bucket *b = &rl->bucket[i];
        if (b->capacity == 0 || cost[i] <= b->capacity)
            continue;
        if (why && why_cap)
            snprintf(why, why_cap,
                     "needs %" PRId64 " %s but the provider allows %" PRId64 " per minute", cost[i],
                     what[i], b->capacity);
        return false;
    }
    return true;
}

static struct rl_job *job_find(struct ratelimit *rl, const char *key)
{
    struct rl_job *job;
    TAILQ_FOREACH(job, &rl->jobs, link)
    if (strcmp(job->key, key) == 0)
        return job;
    return NULL;
}

struct ratelimit_ticket *ratelimit_enqueue(struct ratelimit *rl, const char *job_key,
                                           int64_t est_input_tokens, int64_t max_output_tokens,
                                           void *user_data, int64_t now)
{
    if (!job_key || est_input_tokens < 0 || max_output_tokens < 0 || est_input_tokens > MAX_UNITS ||
        max_output_tokens > MAX_UNITS) {
        errno = EINVAL;
        return NULL;
    }
    if (!ratelimit_fits(rl, est_input_tokens, max_output_tokens, NULL, 0)) {
        errno = E2BIG;
        return NULL;
    }
    size_t key_len = strlen(job_key) + 1;
    struct ratelimit_ticket *t = calloc(1, sizeof *t + key_len);
    if (!t)
        return NULL;
    memcpy(t->job_key, job_key, key_len);
    struct rl_job *job = job_find(rl, job_key);
    if (!job) {
        job = calloc(1, sizeof *job + key_len);
        if (!job) {
            free(t);
            return NULL;
        }
        memcpy(job->key, job_key, key_len);
        TAILQ_INIT(&job->queue);
        TAILQ_INSERT_TAIL(&rl->jobs, job, link);
    }
    t->job = job;
    t->id = rl->next_id++;
    t->est_input = est_input_tokens;
    t->max_output = max_output_tokens;
    t->enqueued_at = now;
    t->user_data = user_data;
    TAILQ_INSERT_TAIL(&job->queue, t, link);
    return t;
}

/* Takes T out of its job's queue; a job left empty leaves the rotation. */
static void ticket_unqueue(struct ratelimit *rl, struct ratelimit_ticket *t)
{
    struct rl_job *job = t->job;
    TAILQ_REMOVE(&job->queue, t, link);
    t->job = NULL;
    if (TAILQ_EMPTY(&job->queue)) {
        TAILQ_REMOVE(&rl->jobs, job, link);
        free(job);
    }
}

static void ticket_start(struct ratelimit *rl, struct ratelimit_ticket *t, int64_t now)
{
    struct rl_job *job = t->job;
    int64_t cost[RATELIMIT_BUDGETS];
    call_costs(t->est_input, t->max_output, cost);
    for (int i = 0; i < RATELIMIT_BUDGETS; i++) {
        struct bucket *b = &rl->bucket[i];
        if (b->capacity == 0)
            continue;
        bucket_debit(b, now, cost[i]);
        t->charged[i] = true;
        t->debit[i] = cost[i];
    }
    /* The job had its turn: to the back of the line (or out, if nothing is left). */
    TAILQ_REMOVE(&rl->jobs, job, link);
    TAILQ_INSERT_TAIL(&rl->jobs, job, link);
    ticket_unqueue(rl, t);
    t->started = true;
    TAILQ_INSERT_TAIL(&rl->in_flight, t, link);
    rl->counters.in_flight++;
    rl->counters.started++;
    int64_t waited = now > t->enqueued_at ? now - t->enqueued_at : 0;
    t->waited = waited;
    rl->counters.wait_ms_total += waited;
    if (waited > rl->counters.wait_ms_max)
        rl->counters.wait_ms_max = waited;
}

enum ratelimit_status ratelimit_next(struct ratelimit *rl, int64_t now,
                                     struct ratelimit_ticket **ticket, int64_t *wait_ms)
{
    *ticket = NULL;
    *wait_ms = -1;
    struct rl_job *job = TAILQ_FIRST(&rl->jobs);
    if (!job)
        return RATELIMIT_IDLE;
    if (rl->paused_until > now) {
        *wait_ms = rl->paused_until - now;
        return RATELIMIT_WAIT;
    }
    size_t in_flight = rl->counters.in_flight;
    if ((rl->max_concurrency > 0 && in_flight >= (size_t)rl->max_concurrency) ||
        (rl->probing && in_flight > 0))
        return RATELIMIT_BUSY;

    struct ratelimit_ticket *t = TAILQ_FIRST(&job->queue);
    int64_t cost[RATELIMIT_BUDGETS];
    call_costs(t->est_input, t->max_output, cost);
    int64_t wait = 0;
    for (int i = 0; i < RATELIMIT_BUDGETS; i++) {
        bucket_refill(&rl->bucket[i], now);
        int64_t w = bucket_wait(&rl->bucket[i], cost[i]);
        if (w > wait)
            wait = w;
    }
    if (wait > 0) {
        *wait_ms = wait;
        return RATELIMIT_WAIT;
    }
    ticket_start(rl, t, now);
    *ticket = t;
    *wait_ms = 0;
    return RATELIMIT_READY;
}

static void ticket_release(struct ratelimit *rl, struct ratelimit_ticket *t)
{
    TAILQ_REMOVE(&rl->in_flight, t, link);
    rl->counters.in_flight--;
    free(t);
}

void ratelimit_finish(struct ratelimit *rl, struct ratelimit_ticket *ticket, int64_t actual_input,
                      int64_t actual_output, int64_t now)
{
    if (!ticket->started) {
        ratelimit_cancel(rl, ticket);
        return;
    }
    int64_t in = actual_input >= 0 ? actual_input : ticket->est_input;
    int64_t out = actual_output >= 0 ? actual_output : ticket->max_output;
    in = in > MAX_UNITS ? MAX_UNITS : in;
    out = out > MAX_UNITS ? MAX_UNITS : out;
    int64_t actual[RATELIMIT_BUDGETS];
    call_costs(in, out, actual);
    for (int i = 0; i < RATELIMIT_BUDGETS; i++)
        if (ticket->charged[i])
            bucket_debit(&rl->bucket[i], now, actual[i] - ticket->debit[i]);
    if (actual_input > 0)
        rl->counters.input_tokens_total += in;
    if (actual_output > 0)
        rl->counters.output_tokens_total += out;
    rl->counters.finished++;
    ticket_release(rl, ticket);
}

void ratelimit_cancel(struct ratelimit *rl, struct ratelimit_ticket *ticket)
{
    rl->counters.cancelled++;
    if (ticket->started) {
        ticket_release(rl, ticket);
        return;
    }
    ticket_unqueue(rl, ticket);
    free(ticket);
}

int ratelimit_unstart(struct ratelimit *rl, struct ratelimit_ticket *ticket, int64_t now)
{
    if (!ticket->started) {
        errno = EINVAL;
        return -1;
    }
    struct rl_job *job = job_find(rl, ticket->job_key);
    if (!job) {
        size_t key_len = strlen(ticket->job_key) + 1;
        if (!(job = calloc(1, sizeof *job + key_len)))
            return -1;
        memcpy(job->key, ticket->job_key, key_len);
        TAILQ_INIT(&job->queue);
    } else {
        TAILQ_REMOVE(&rl->jobs, job, link);
    }
    TAILQ_INSERT_HEAD(&rl->jobs, job, link);
    for (int i = 0; i < RATELIMIT_BUDGETS; i++)
        if (ticket->charged[i]) {
            bucket_debit(&rl->bucket[i], now, -ticket->debit[i]);
            ticket->charged[i] = false;
            ticket->debit[i] = 0;
        }
    TAILQ_REMOVE(&rl->in_flight, ticket, link);
    rl->counters.in_flight--;
    rl->counters.started--;
    rl->counters.wait_ms_total -= ticket->waited;
    ticket->started = false;
    ticket->job = job;
    TAILQ_INSERT_HEAD(&job->queue, ticket, link);
    return 0;
}

int64_t ratelimit_ticket_est_input(const struct ratelimit_ticket *ticket)
{
    return ticket->est_input;
}

int64_t ratelimit_ticket_max_output(const struct ratelimit_ticket *ticket)
{
    return ticket->max_output;
}

void *ratelimit_ticket_user_data(const struct ratelimit_ticket *ticket)
{
    return ticket->user_data;
}

uint64_t ratelimit_ticket_id(const struct ratelimit_ticket *ticket)
{
    return ticket->id;
}

const char *ratelimit_ticket_job(const struct ratelimit_ticket *ticket)
{
    return ticket->job_key;
}

bool ratelimit_ticket_started(const struct ratelimit_ticket *ticket)
{
    return ticket->started;
}

void ratelimit_pause_until(struct ratelimit *rl, int64_t until)
{
    if (until <= rl->paused_until)
        return;
    rl->paused_until = until;
    rl->counters.pauses++;
}

/* ---- header parsing ------------------------------------------------------ */

static bool parse_count(const char *text, int64_t *value)
{
    if (!text)
        return false;
    while (*text == ' ' || *text == '\t')
        text++;
    if (*text < '0' || *text > '9')
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    while (*end == ' ' || *end == '\t')
        end++;
    if (errno || *end || v < 0)
        return false;
    *value = v > MAX_UNITS ? MAX_UNITS : v;
    return true;
}

bool ratelimit_parse_duration_ms(const char *text, int64_t *ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ms", 1},     {"us", 1e-3}, {"\xc2\xb5s", 1e-3}, {"ns", 1e-6},
                 {"h", 3600e3}, {"m", 60e3},  {"s", 1e3}};
    if (!text)
        return false;
    while (*text == ' ')
        text++;
    double total = 0;
    int terms = 0;
    while (*text && *text != ' ') {
        char *end;
        if ((*text < '0' || *text > '9') && *text != '.')
            return false;
        double v = strtod(text, &end);
        if (end == text || !isfinite(v) || v < 0)
            return false;
        text = end;
        size_t i, n = sizeof units / sizeof units[0];
        for (i = 0; i < n; i++)
            if (strncmp(text, units[i].unit, strlen(units[i].unit)) == 0)
                break;
        if (i == n) {
            /* A bare number is seconds, and only alone ("12", not "1m12"). */
            if (terms > 0 || (*text && *text != ' '))
                return false;
            total += v * 1e3;
            terms++;
            break;
        }
        text += strlen(units[i].unit);
        total += v * units[i].ms;
        terms++;
    }
    while (*text == ' ')
        text++;
    if (!terms || *text || total > 1e15)
        return false;
    *ms = (int64_t)ceil(total);
    return true;
}

bool ratelimit_parse_rfc3339_ms(const char *text, int64_t *unix_ms)
{
    if (!text)
        return false;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest) {
        memset(&tm, 0, sizeof tm);
        rest = strptime(text, "%Y-%m-%d %H:%M:%S", &tm); /* RFC 3339 allows a space */
    }
    if (!rest)
        return false;
    int64_t frac_ms = 0;
    if (*rest == '.') {
        rest++;
        int digits = 0;
        for (; *rest >= '0' && *rest <= '9'; rest++, digits++)
            if (digits < 3)
                frac_ms = frac_ms * 10 + (*rest - '0');
        if (!digits)
            return false;
        for (; digits < 3; digits++)
            frac_ms *= 10;
    }
    struct tm zone;
    memset(&zone, 0, sizeof zone);
    const char *end = strptime(rest, "%z", &zone); /* "Z", "+02:00", "-0130" */
    if (!end || *end)
        return false;
    long offset = zone.tm_gmtoff; /* read before timegm, which may rewrite fields */
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return false;
    *unix_ms = ((int64_t)t - offset) * 1000 + frac_ms;
    return true;
}

/* Reset header -> monotonic ms: an RFC 3339 date (Anthropic) or a duration (OpenAI). */
static bool parse_reset(const char *text, int64_t now, int64_t wall_ms, int64_t *at)
{
    int64_t v;
    if (ratelimit_parse_rfc3339_ms(text, &v)) {
        *at = now + (v > wall_ms ? v - wall_ms : 0);
        return true;
    }
    if (ratelimit_parse_duration_ms(text, &v)) {
        *at = now + v;
        return true;
    }
    return false;
}

/* Applies one budget's limit/remaining/reset headers.  Returns whether any was set. */
static bool bucket_observe(struct bucket *b, int64_t now, int64_t wall_ms, const char *limit,
                           const char *remaining, const char *reset)
{
    if (!limit && !remaining && !reset)
        return false;
    bucket_refill(b, now);
    int64_t v;
    if (parse_count(limit, &v) && v > 0) {
        int64_t cap = b->configured && b->configured < v ? b->configured : v;
        if (b->capacity == 0)
            b->level = cap * WINDOW_MS; /* first sight: full, until remaining says less */
        b->capacity = cap;
        if (b->level > cap * WINDOW_MS)
            b->level = cap * WINDOW_MS;
        b->learned = true;
    }
    if (parse_count(remaining, &v) && b->capacity > 0 && v * WINDOW_MS < b->level) {
        b->level = v * WINDOW_MS;
        b->learned = true;
    }
    if (reset && parse_reset(reset, now, wall_ms, &v))
        b->reset_at = v;
    return true;
}

static const char *header(llm_header_fn get, void *ctx, const char *a, const char *b, const char *c)
{
    char name[96];
    snprintf(name, sizeof name, "%s%s%s", a, b, c);
    return get(ctx, name);
}

/* The Anthropic family for one budget: anthropic-ratelimit-<what>-{limit,remaining,reset}. */
static bool observe_anthropic(struct ratelimit *rl, enum ratelimit_budget budget, const char *what,
                              int64_t now, int64_t wall_ms, llm_header_fn get, void *ctx)
{
    const char *p = "anthropic-ratelimit-";
    return bucket_observe(&rl->bucket[budget], now, wall_ms, header(get, ctx, p, what, "-limit"),
                          header(get, ctx, p, what, "-remaining"),
                          header(get, ctx, p, what, "-reset"));
}

/* The OpenAI family: x-ratelimit-{limit,remaining,reset}-<what>. */
static bool observe_openai(struct ratelimit *rl, enum ratelimit_budget budget, const char *what,
                           int64_t now, int64_t wall_ms, llm_header_fn get, void *ctx)
{
    return bucket_observe(&rl->bucket[budget], now, wall_ms,
                          header(get, ctx, "x-ratelimit-limit-", what, ""),
                          header(get, ctx, "x-ratelimit-remaining-", what, ""),
                          header(get, ctx, "x-ratelimit-reset-", what, ""));
}

int ratelimit_observe_headers(struct ratelimit *rl, int64_t now, int64_t wall_ms, llm_header_fn get,
                              void *ctx)
{
    rl->probing = false;
    int seen = 0;
    seen += observe_anthropic(rl, RATELIMIT_REQUESTS, "requests", now, wall_ms, get, ctx);
    bool in = observe_anthropic(rl, RATELIMIT_INPUT_TOKENS, "input-tokens", now, wall_ms, get, ctx);
    bool out =
        observe_anthropic(rl, RATELIMIT_OUTPUT_TOKENS, "output-tokens", now, wall_ms, get, ctx);
    seen += in + out;
    /* Anthropic's -tokens-* mirrors "the most restrictive limit in effect", i.e. one
     * of the two above; it is a budget of its own only when they are absent. */
    if (!in && !out)
        seen += observe_anthropic(rl, RATELIMIT_TOKENS, "tokens", now, wall_ms, get, ctx);
    seen += observe_openai(rl, RATELIMIT_REQUESTS, "requests", now, wall_ms, get, ctx);
    seen += observe_openai(rl, RATELIMIT_TOKENS, "tokens", now, wall_ms, get, ctx);
    return seen;
}

/* One family's limit and remaining for BUDGET into OUT (the lower value
 * when another family already set it). */
static bool read_pair(struct ratelimit_header_values *out, enum ratelimit_budget budget,
                      const char *limit, const char *remaining)
{
    int64_t v;
    bool seen = limit || remaining;
    if (parse_count(limit, &v) && v > 0 && (out->limit[budget] < 0 || v < out->limit[budget]))
        out->limit[budget] = v;
    if (parse_count(remaining, &v) && (out->remaining[budget] < 0 || v < out->remaining[budget]))
        out->remaining[budget] = v;
    return seen;
}

static bool read_anthropic(struct ratelimit_header_values *out, enum ratelimit_budget budget,
                           const char *what, llm_header_fn get, void *ctx)
{
    const char *p = "anthropic-ratelimit-";
    return read_pair(out, budget, header(get, ctx, p, what, "-limit"),
                     header(get, ctx, p, what, "-remaining"));
}

static bool read_openai(struct ratelimit_header_values *out, enum ratelimit_budget budget,
                        const char *what, llm_header_fn get, void *ctx)
{
    return read_pair(out, budget, header(get, ctx, "x-ratelimit-limit-", what, ""),
                     header(get, ctx, "x-ratelimit-remaining-", what, ""));
}

int ratelimit_read_headers(llm_header_fn get, void *ctx, struct ratelimit_header_values *out)
{
    for (int i = 0; i < RATELIMIT_BUDGETS; i++)
        out->limit[i] = out->remaining[i] = -1;
    int seen = read_anthropic(out, RATELIMIT_REQUESTS, "requests", get, ctx);
    bool in = read_anthropic(out, RATELIMIT_INPUT_TOKENS, "input-tokens", get, ctx);
    bool o = read_anthropic(out, RATELIMIT_OUTPUT_TOKENS, "output-tokens", get, ctx);
    seen += in + o;
    if (!in && !o) /* as in ratelimit_observe_headers */
        seen += read_anthropic(out, RATELIMIT_TOKENS, "tokens", get, ctx);
    seen += read_openai(out, RATELIMIT_REQUESTS, "requests", get, ctx);
    seen += read_openai(out, RATELIMIT_TOKENS, "tokens", get, ctx);
    return seen;
}

/* ---- stats --------------------------------------------------------------- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

void ratelimit_stats(struct ratelimit *rl, int64_t now, struct ratelimit_stats *out)
{
    *out = rl->counters;
    out->max_concurrency = rl->max_concurrency;
    out->probing = rl->probing;
    out->paused_until = rl->paused_until > now ? rl->paused_until : 0;
    out->queued = 0;
    out->jobs = 0;
    struct rl_job *job;
    TAILQ_FOREACH(job, &rl->jobs, link)
    {
        struct ratelimit_ticket *t;
        out->jobs++;
        TAILQ_FOREACH(t, &job->queue, link)
        out->queued++;
    }
    for (int i = 0; i < RATELIMIT_BUDGETS; i++) {
        struct bucket *b = &rl->bucket[i];
        bucket_refill(b, now);
        out->budget[i] = (struct ratelimit_budget_stats){
            .capacity = b->capacity,
            .level = b->capacity ? floor_div(b->level, WINDOW_MS) : 0,
            .configured = b->configured > 0,
            .learned = b->learned,
            .reset_at = b->reset_at,
        };
    }
}
