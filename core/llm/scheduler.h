/* The per-provider schedulers every LLM call goes through, apart from any
 * binding: no Lua, no tasks.  Wraps ratelimit.h (which call may start),
 * breaker.h (whether the provider is up) and metrics.h (what happened) in a
 * provider that owns a uv_timer driving them.
 *
 *   struct scheduler *s = scheduler_new(loop);
 *   struct scheduler_provider *p = scheduler_install(s, "anthropic", &rc, NULL, 60000, err, cap);
 *   scheduler_acquire(p, &req, &op, msg, cap);   -- SCHEDULER_OK: queued; REQ.wake fires
 *   ... wake(ud) ...                             -- once: granted, deadline, or circuit open
 *   scheduler_acquire_take(op, &slot, msg, cap); -- the slot, or why not
 *   scheduler_acquire_free(op);
 *   ... the HTTP call ...
 *   scheduler_slot_finish(&slot, 200, in, out, get_header, ctx);   (or scheduler_slot_drop)
 *
 * The pump.  Every change (enqueue, finish, cancel, pause, headers) "kicks" the
 * provider's timer at 0 ms; its callback starts every call the rate limiter lets
 * through (calling their wake), then re-arms itself for the next WAIT.  Wakes
 * therefore run only from that raw libuv callback (or a deadline timer's), never
 * from inside the caller's own scheduler_* call.  A wake callback may call back
 * into the scheduler (take, free, finish, acquire again).
 *
 * window_ms: the limits are per window_ms of real time (60000 in production,
 * where the providers' limits are per minute).  The rate limiter counts per
 * minute, so the provider runs it on a clock scaled by 60000 / window_ms; tests
 * use it to mirror a mock provider whose window is shortened.
 *
 * Lifetimes.  A provider is held by the registry and by every acquire and slot
 * on it.  scheduler_free detaches every provider (nothing more starts); each is
 * freed, its timer closed first, when the last acquire or slot holding it goes.
 * Run the loop afterwards so the close callbacks run.
 *
 * One budget across instances (scheduler_share, PostgreSQL only).  The rate
 * limiter keeps choosing, inside this instance, which call goes next; when it
 * lets one through, the pump first takes the call's permit from the shared
 * budget (store/llm_budget.h) in one asynchronous store operation (never
 * blocking the loop; one take in flight per provider, so the order holds).
 * Granted: the call's wake runs.  Refused: the call goes back to the head of
 * its job's queue (ratelimit_unstart) and the provider starts nothing until
 * the wait the database computed has passed.  Finish trues up the shared
 * buckets and frees the lease, the headers' limit/remaining and a 429's
 * retry-after reach the other instances, and the leases of calls in flight
 * are renewed every lease_ms / 3.  window_ms applies to the shared buckets
 * too: their capacity is per window_ms of the database's clock.
 *
 * Every function runs on the loop's thread and may be called from a raw libuv
 * callback. */
#ifndef O2C_LLM_SCHEDULER_H
#define O2C_LLM_SCHEDULER_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "llm/breaker.h"
#include "llm/headers.h"
#include "llm/metrics.h"
#include "llm/ratelimit.h"

#define SCHEDULER_NAME_MAX 32 /* a name is 1-31 of a-z 0-9 _ - */
#define SCHEDULER_MAX_PROVIDERS LLM_METRICS_MAX_PROVIDERS
#define SCHEDULER_MINUTE_MS 60000
#define SCHEDULER_MESSAGE_MAX 256 /* room for any message written here */

struct scheduler;
struct scheduler_provider;
struct db;
struct scheduler_acquire;

struct scheduler *scheduler_new(uv_loop_t *loop);
/* Detaches every provider and frees the registry (see Lifetimes). */
void scheduler_free(struct scheduler *s);

struct scheduler_provider *scheduler_find(struct scheduler *s, const char *name);
/* Creates provider NAME, or gives the idle provider NAME a new rate limiter and
 * breaker (its call counters live on: they are Prometheus counters).  BC NULL =
 * the breaker's defaults; WINDOW_MS >= 1.  NULL with the reason in ERR on a bad
 * name, bad settings, calls queued or in flight, or no room. */
struct scheduler_provider *scheduler_install(struct scheduler *s, const char *name,
                                             const struct ratelimit_config *rc,
                                             const struct breaker_config *bc, int64_t window_ms,
                                             char *err, size_t err_cap);
size_t scheduler_count(const struct scheduler *s);
struct scheduler_provider *scheduler_provider_at(const struct scheduler *s, size_t i);
const char *scheduler_provider_name(const struct scheduler_provider *p);

/* ---- one budget across instances --------------------------------------------- */

struct scheduler_share_config {
    struct db *db;        /* PostgreSQL; outlives S (and the operations S leaves behind) */
    const char *instance; /* this instance's id (copied; at most 39 bytes), e.g. a UUID */
    int64_t lease_ms;     /* a call's concurrency lease without renewal; 0: 30000 */
    int64_t grace_ms;     /* a refused call's place in line, past its wait; 0: 2000 */
    int64_t poll_ms;      /* the wait when refused for concurrency or turn; 0: 100 */
};

/* Every provider of S, installed before or after, takes each call's permit
 * from the budget shared through CFG->db (see above).  -1 with the reason in
 * ERR when the database is not PostgreSQL, S shares already, or out of
 * memory. */
int scheduler_share(struct scheduler *s, const struct scheduler_share_config *cfg, char *err,
                    size_t err_cap);
/* Shared-budget operations still running (finish, headers, pauses): run the
 * loop until 0 before closing the database. */
int scheduler_share_pending(const struct scheduler *s);

/* ---- acquire ---------------------------------------------------------------- */

enum scheduler_status {
    SCHEDULER_OK,
    SCHEDULER_UNAVAILABLE, /* the circuit is open */
    SCHEDULER_TOO_LARGE,   /* the call can never fit the provider's limits */
    SCHEDULER_DEADLINE,    /* the deadline passed before a slot was free */
    SCHEDULER_ERROR        /* out of memory, bad sizes: the caller's failure, not the provider's */
};

/* "ok", "unavailable", "too_large", "deadline", "error". */
const char *scheduler_status_code(enum scheduler_status st);

typedef void (*scheduler_wake_fn)(void *ud);

struct scheduler_request {
    const char *job_key; /* calls of one job are FIFO; jobs take turns */
    int64_t est_input_tokens;
    int64_t max_output_tokens;
    int64_t deadline_at; /* uv_now ms; 0 = none */
    scheduler_wake_fn wake;
    void *ud;
};

/* Queues a call.  SCHEDULER_OK: *OUT is queued and REQ->wake(REQ->ud) is called
 * exactly once later (granted, deadline passed, or the circuit opened), unless
 * scheduler_acquire_free comes first.  Otherwise *OUT = NULL and MSG says why. */
enum scheduler_status scheduler_acquire(struct scheduler_provider *p,
                                        const struct scheduler_request *req,
                                        struct scheduler_acquire **out, char *msg, size_t cap);

/* A call's right to talk to the provider.  Embedded by the caller (a Lua
 * userdata, a test's struct); the fields are the scheduler's. */
struct scheduler_slot {
    struct scheduler_provider *p; /* NULL once finished or dropped */
    struct ratelimit_ticket *ticket;
    struct breaker_permit permit;
    bool shared;           /* holds a permit of the shared budget */
    int64_t granted_at_ms; /* shared: the database's time of the grant (Unix ms) */
};

/* After the wake: SCHEDULER_OK fills *SLOT; else (deadline, the circuit open,
 * not granted yet) MSG says why and the call leaves the queue. */
enum scheduler_status scheduler_acquire_take(struct scheduler_acquire *op,
                                             struct scheduler_slot *slot, char *msg, size_t cap);
/* Frees OP; a call still queued (or granted but never taken) is cancelled. */
void scheduler_acquire_free(struct scheduler_acquire *op);

/* ---- slots ------------------------------------------------------------------ */

static inline bool scheduler_slot_live(const struct scheduler_slot *slot)
{
    return slot->p != NULL;
}
uint64_t scheduler_slot_id(const struct scheduler_slot *slot);

/* The call ended with STATUS (0 = no response), usage IN / OUT (negative =
 * unknown) and the response headers through GET (NULL = none): trues up the
 * budgets, learns from the headers, pauses on a 429 with retry-after, gives the
 * breaker its verdict and counts the call. */
void scheduler_slot_finish(struct scheduler_slot *slot, long status, int64_t in, int64_t out,
                           llm_header_fn get, void *ctx);
/* Gives the slot back without a verdict: the provider counted the call, if it
 * was sent, so its budgets stay spent.  No-op on a dead slot. */
void scheduler_slot_drop(struct scheduler_slot *slot);

/* ---- the provider ----------------------------------------------------------- */

/* Whether a call may start now (only looks: acquire takes the trial slot).
 * false: UNTIL gets "2025-05-01T12:00:30Z", when the circuit lets calls through. */
bool scheduler_breaker_allow(struct scheduler_provider *p, char *until, size_t cap);
/* No call starts before UNTIL_MS (uv_now clock). */
void scheduler_pause(struct scheduler_provider *p, int64_t until_ms);
void scheduler_count_retry(struct scheduler_provider *p);

struct scheduler_stats {
    const char *provider;
    struct ratelimit_stats rl; /* wait_ms_* in real ms */
    struct breaker_stats breaker;
    struct llm_metrics calls;
    uint64_t calls_total; /* every counted attempt */
    int64_t window_ms;
    char paused_until[32];                  /* ISO time; "" when not paused */
    char breaker_until[32];                 /* ISO time; "" unless open */
    int64_t reset_in_ms[RATELIMIT_BUDGETS]; /* scheduler ms; 0 = unknown or past */
};

void scheduler_stats(struct scheduler_provider *p, struct scheduler_stats *out);

/* The o2c_llm_* families in the Prometheus text format (metrics.h), like
 * snprintf: returns the length the whole text needs. */
size_t scheduler_metrics_text(struct scheduler *s, char *buf, size_t cap);

/* Unix time in ms (for retry-after dates). */
int64_t scheduler_wall_ms(void);

#endif
