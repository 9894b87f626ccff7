/* What scheduler.c and scheduler_share.c share: the provider, the registry
 * and an acquire, and the shared gate's entry points (scheduler.h explains
 * the design).  Nothing outside core/llm/scheduler*.c includes this. */
#ifndef O2C_LLM_SCHEDULER_INTERNAL_H
#define O2C_LLM_SCHEDULER_INTERNAL_H
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>
#include "llm/scheduler.h"

struct scheduler_share;
struct scheduler_share_op;

struct scheduler_provider {
    char name[SCHEDULER_NAME_MAX];
    struct ratelimit *rl;
    struct breaker *br;
    struct llm_metrics metrics;
    int64_t window_ms; /* real ms per scheduler minute */
    uv_loop_t *loop;
    uv_timer_t timer;
    int refs;                        /* the registry + each acquire and slot holding it */
    bool pumping;                    /* inside scheduler_pump */
    bool detached;                   /* the registry is gone: start nothing more */
    struct scheduler_acquire *queue; /* queued acquires, so an open circuit fails them at once */
    struct ratelimit_config rc;      /* as installed (the shared budget's limits) */
    /* One budget across instances (scheduler_share.c); share NULL: local only. */
    struct scheduler_share *share;
    bool share_ready;                /* the shared budget is configured for these limits */
    bool share_configuring;          /* ... being configured */
    struct scheduler_share_op *take; /* the take in flight, or NULL */
    int64_t hold_until;              /* real ms: the shared budget said to wait until then */
    int leases;                      /* shared permits held by slots and grants */
};

struct scheduler {
    uv_loop_t *loop;
    struct scheduler_share *share;
    struct scheduler_provider *providers[SCHEDULER_MAX_PROVIDERS];
    size_t n;
};

/* One call waiting for its turn. */
struct scheduler_acquire {
    struct scheduler_provider *p;
    scheduler_wake_fn wake;
    void *ud;
    struct ratelimit_ticket *ticket; /* NULL once cancelled or handed to a slot */
    struct breaker_permit permit;
    int64_t enqueued_at;
    uv_timer_t *deadline; /* NULL: no deadline */
    enum scheduler_status verdict;
    bool granted;          /* the rate limiter started the ticket (and the shared budget, if any) */
    bool shared;           /* granted by the shared budget */
    int64_t granted_at_ms; /* the shared budget's time of the grant */
    struct scheduler_share_op *take; /* the shared take asking for this call */
    int64_t open_until;              /* verdict UNAVAILABLE: when the circuit lets calls through */
    struct scheduler_acquire *prev, *next; /* in p->queue while queued */
    bool queued;
};

/* From scheduler.c. */
int64_t scheduler_now(const struct scheduler_provider *p);
int64_t scheduler_time(const struct scheduler_provider *p, int64_t real);
void scheduler_kick(struct scheduler_provider *p);
void scheduler_unref(struct scheduler_provider *p);
void scheduler_queue_remove(struct scheduler_acquire *op);
/* Arms the provider's timer to pump in DELAY_MS (real). */
void scheduler_arm(struct scheduler_provider *p, int64_t delay_ms);
/* Gives a call's ticket and breaker permit back (it will not be made). */
void scheduler_acquire_cancel(struct scheduler_acquire *op);

/* ---- the shared gate (scheduler_share.c) ---- */

/* The pump, before ratelimit_next: false when no call may be asked for now
 * (being configured, a take in flight, holding: the timer is armed then). */
bool scheduler_share_may_take(struct scheduler_provider *p);
/* The pump got READY for OP's ticket: asks the shared budget for it. */
void scheduler_share_take(struct scheduler_provider *p, struct scheduler_acquire *op);
/* OP leaves before its take answered (cancelled, deadline, circuit). */
void scheduler_share_forget(struct scheduler_acquire *op);
/* A shared slot ended: lease back, true-up with usage IN / OUT (negative:
 * unknown), what the headers GET said, and a 429's DELAY_MS (0: none). */
void scheduler_share_finish(struct scheduler_provider *p, struct scheduler_slot *slot, int64_t in,
                            int64_t out, llm_header_fn get, void *ctx, int64_t delay_ms);
/* A pause (real ms from now) for every instance. */
void scheduler_share_pause(struct scheduler_provider *p, int64_t delay_ms);
/* A provider was installed or reinstalled: its limits go to the database. */
void scheduler_share_installed(struct scheduler_provider *p);
/* The registry goes: the share lives on until its operations are done. */
void scheduler_share_detach(struct scheduler *s);

#endif
