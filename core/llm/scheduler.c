/* The per-provider schedulers: provider state, the pump, acquires, slots and
 * what they report (see scheduler.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "llm/retry.h"
#include "llm/scheduler.h"
#include "llm/scheduler_internal.h"

/* ---- clocks ----------------------------------------------------------------- */

int64_t scheduler_now(const struct scheduler_provider *p)
{
    return (int64_t)uv_now(p->loop);
}

/* Real monotonic ms -> the rate limiter's clock. */
int64_t scheduler_time(const struct scheduler_provider *p, int64_t real)
{
    return p->window_ms == SCHEDULER_MINUTE_MS ? real : real * SCHEDULER_MINUTE_MS / p->window_ms;
}

/* A rate limiter duration -> real ms, rounded up. */
static int64_t scheduler_real_duration(const struct scheduler_provider *p, int64_t sched)
{
    if (p->window_ms == SCHEDULER_MINUTE_MS || sched <= 0)
        return sched;
    return (sched * p->window_ms + SCHEDULER_MINUTE_MS - 1) / SCHEDULER_MINUTE_MS;
}

int64_t scheduler_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic ms (uv_now clock) -> "2025-05-01T12:00:30Z", rounded up to the second.
 * The offset between the clocks is taken once, so one instant always prints the
 * same (the breaker's "open until" in an error and in /api/v1/status agree). */
static void scheduler_iso_time(uv_loop_t *loop, int64_t mono_ms, char *buf, size_t cap)
{
    static int64_t offset;
    static bool have_offset;
    if (!have_offset) {
        offset = scheduler_wall_ms() - (int64_t)uv_now(loop);
        have_offset = true;
    }
    int64_t wall = mono_ms + offset;
    time_t secs = (time_t)((wall + 999) / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- the queue of acquires -------------------------------------------------- */

static void scheduler_queue_add(struct scheduler_provider *p, struct scheduler_acquire *op)
{
    op->prev = NULL;
    op->next = p->queue;
    if (p->queue)
        p->queue->prev = op;
    p->queue = op;
    op->queued = true;
}

void scheduler_queue_remove(struct scheduler_acquire *op)
{
    if (!op->queued)
        return;
    if (op->prev)
        op->prev->next = op->next;
    else
        op->p->queue = op->next;
    if (op->next)
        op->next->prev = op->prev;
    op->queued = false;
}

/* ---- providers and the pump ------------------------------------------------- */

static void scheduler_provider_closed(uv_handle_t *h)
{
    struct scheduler_provider *p = h->data;
    ratelimit_free(p->rl);
    breaker_free(p->br);
    free(p);
}

void scheduler_unref(struct scheduler_provider *p)
{
    if (--p->refs > 0)
        return;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, scheduler_provider_closed);
}

static void scheduler_pump(struct scheduler_provider *p);

static void scheduler_on_timer(uv_timer_t *timer)
{
    scheduler_pump(timer->data);
}

void scheduler_arm(struct scheduler_provider *p, int64_t delay_ms)
{
    if (!p->detached)
        uv_timer_start(&p->timer, scheduler_on_timer, (uint64_t)(delay_ms > 0 ? delay_ms : 0), 0);
}

/* Something changed: let the timer callback start what can start now. */
void scheduler_kick(struct scheduler_provider *p)
{
    if (!p->detached && !p->pumping)
        uv_timer_start(&p->timer, scheduler_on_timer, 0, 0);
}

/* Gives a call's ticket and breaker permit back (it will not be made). */
void scheduler_acquire_cancel(struct scheduler_acquire *op)
{
    if (!op->ticket)
        return;
    scheduler_share_forget(op);
    ratelimit_cancel(op->p->rl, op->ticket);
    op->ticket = NULL;
    breaker_release(op->p->br, &op->permit);
    scheduler_kick(op->p);
}

/* An open circuit fails every queued call now, not when its turn comes. */
static void scheduler_fail_queued(struct scheduler_provider *p)
{
    while (p->queue && breaker_state(p->br, scheduler_now(p)) == BREAKER_OPEN) {
        struct scheduler_acquire *op = p->queue;
        struct breaker_stats bs;
        breaker_stats(p->br, scheduler_now(p), &bs);
        scheduler_queue_remove(op);
        scheduler_acquire_cancel(op);
        op->verdict = SCHEDULER_UNAVAILABLE;
        op->open_until = bs.open_until;
        op->wake(op->ud); /* may free OP */
    }
}

/* Starts every call the rate limiter lets through (waking its caller), then arms
 * the timer for the next WAIT.  Runs only from the timer callback.  A woken
 * caller may finish or enqueue calls on this provider: the next ratelimit_next
 * sees it, and the last one decides the timer. */
static void scheduler_pump(struct scheduler_provider *p)
{
    if (p->detached)
        return;
    p->pumping = true;
    scheduler_fail_queued(p);
    for (;;) {
        if (p->share && !scheduler_share_may_take(p))
            break;
        struct ratelimit_ticket *ticket = NULL;
        int64_t wait_ms = -1;
        enum ratelimit_status st =
            ratelimit_next(p->rl, scheduler_time(p, scheduler_now(p)), &ticket, &wait_ms);
        if (st == RATELIMIT_READY) {
            struct scheduler_acquire *op = ratelimit_ticket_user_data(ticket);
            if (p->share) {               /* the shared budget decides; its answer kicks again */
                uv_timer_stop(&p->timer); /* (the take may arm it to retry) */
                scheduler_share_take(p, op);
                break;
            }
            op->granted = true;
            scheduler_queue_remove(op);
            op->wake(op->ud);
            continue;
        }
        if (st == RATELIMIT_WAIT)
            uv_timer_start(&p->timer, scheduler_on_timer,
                           (uint64_t)scheduler_real_duration(p, wait_ms), 0);
        else
            uv_timer_stop(&p->timer);
        break;
    }
    p->pumping = false;
}

/* ---- the registry ------------------------------------------------------------ */

struct scheduler *scheduler_new(uv_loop_t *loop)
{
    struct scheduler *s = calloc(1, sizeof *s);
    if (s)
        s->loop = loop;
    return s;
}

void scheduler_free(struct scheduler *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        s->providers[i]->detached = true;
        uv_timer_stop(&s->providers[i]->timer);
        scheduler_unref(s->providers[i]);
    }
    scheduler_share_detach(s);
    free(s);
}

struct scheduler_provider *scheduler_find(struct scheduler *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->providers[i]->name, name) == 0)
            return s->providers[i];
    return NULL;
}

size_t scheduler_count(const struct scheduler *s)
{
    return s->n;
}

struct scheduler_provider *scheduler_provider_at(const struct scheduler *s, size_t i)
{
    return i < s->n ? s->providers[i] : NULL;
}

const char *scheduler_provider_name(const struct scheduler_provider *p)
{
    return p->name;
}

static bool scheduler_name_valid(const char *name)
{
    size_t len = strlen(name);
    bool ok = len > 0 && len < SCHEDULER_NAME_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
             name[i] == '_' || name[i] == '-';
    return ok;
}

static bool scheduler_provider_busy(struct scheduler_provider *p)
{
    struct ratelimit_stats st;
    ratelimit_stats(p->rl, 0, &st);
    return st.queued || st.in_flight;
}

static struct scheduler_provider *scheduler_provider_new(struct scheduler *s, const char *name)
{
    struct scheduler_provider *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    snprintf(p->name, sizeof p->name, "%s", name);
    p->loop = s->loop;
    uv_timer_init(p->loop, &p->timer);
    p->timer.data = p;
    p->refs = 1;
    p->share = s->share;
    p->metrics.shared = s->share != NULL;
    s->providers[s->n++] = p;
    return p;
}

struct scheduler_provider *scheduler_install(struct scheduler *s, const char *name,
                                             const struct ratelimit_config *rc,
                                             const struct breaker_config *bc, int64_t window_ms,
                                             char *err, size_t err_cap)
{
    if (!scheduler_name_valid(name)) {
        snprintf(err, err_cap, "provider name must be 1-31 of a-z 0-9 _ - (got \"%s\")", name);
        return NULL;
    }
    struct scheduler_provider *p = scheduler_find(s, name);
    if (p && scheduler_provider_busy(p)) {
        snprintf(err, err_cap,
                 "provider %s has calls queued or in flight; configure it before its first call",
                 name);
        return NULL;
    }
    struct ratelimit *rl = ratelimit_new(rc);
    struct breaker *br = breaker_new(bc);
    if (!rl || !br || window_ms < 1) {
        ratelimit_free(rl);
        breaker_free(br);
        snprintf(err, err_cap, "invalid limits or breaker settings for provider %s", name);
        return NULL;
    }
    if (!p && (s->n == SCHEDULER_MAX_PROVIDERS || !(p = scheduler_provider_new(s, name)))) {
        ratelimit_free(rl);
        breaker_free(br);
        snprintf(err, err_cap, "cannot add provider %s (at most %d)", name,
                 SCHEDULER_MAX_PROVIDERS);
        return NULL;
    }
    ratelimit_free(p->rl);
    breaker_free(p->br);
    p->rl = rl;
    p->br = br;
    p->window_ms = window_ms;
    p->rc = *rc;
    scheduler_share_installed(p);
    return p;
}

/* ---- acquire ------------------------------------------------------------------ */

const char *scheduler_status_code(enum scheduler_status st)
{
    switch (st) {
    case SCHEDULER_OK:
        return "ok";
    case SCHEDULER_UNAVAILABLE:
        return "unavailable";
    case SCHEDULER_TOO_LARGE:
        return "too_large";
    case SCHEDULER_DEADLINE:
        return "deadline";
    default:
        return "error";
    }
}

static enum scheduler_status scheduler_unavailable(struct scheduler_provider *p, int64_t until,
                                                   char *msg, size_t cap)
{
    char iso[32];
    scheduler_iso_time(p->loop, until, iso, sizeof iso);
    snprintf(msg, cap, "provider unavailable (circuit open until %s)", iso);
    return SCHEDULER_UNAVAILABLE;
}

static void scheduler_deadline_closed(uv_handle_t *h)
{
    free(h);
}

static void scheduler_on_deadline(uv_timer_t *timer)
{
    struct scheduler_acquire *op = timer->data;
    if (op->granted || !op->ticket)
        return;
    scheduler_queue_remove(op);
    scheduler_acquire_cancel(op);
    op->verdict = SCHEDULER_DEADLINE;
    op->wake(op->ud);
}

/* Whether the call may be queued at all; on refusal MSG says why. */
static enum scheduler_status scheduler_admit(struct scheduler_provider *p,
                                             const struct scheduler_request *req,
                                             struct breaker_permit *permit, char *msg, size_t cap)
{
    int64_t now = scheduler_now(p), until = 0;
    if (!breaker_allow(p->br, now, permit, &until))
        return scheduler_unavailable(p, until, msg, cap);
    char why[192] = "";
    enum scheduler_status st = SCHEDULER_OK;
    if (!ratelimit_fits(p->rl, req->est_input_tokens, req->max_output_tokens, why, sizeof why)) {
        snprintf(msg, cap, "%s: this call can never start: %s", p->name, why);
        st = SCHEDULER_TOO_LARGE;
    } else if (req->deadline_at > 0 && req->deadline_at <= now) {
        snprintf(msg, cap, "no %s slot before the section deadline (it has passed)", p->name);
        st = SCHEDULER_DEADLINE;
    }
    if (st != SCHEDULER_OK)
        breaker_release(p->br, permit);
    return st;
}

static struct scheduler_acquire *scheduler_acquire_alloc(bool with_deadline)
{
    struct scheduler_acquire *op = calloc(1, sizeof *op);
    if (op && with_deadline && !(op->deadline = malloc(sizeof *op->deadline))) {
        free(op);
        return NULL;
    }
    return op;
}

enum scheduler_status scheduler_acquire(struct scheduler_provider *p,
                                        const struct scheduler_request *req,
                                        struct scheduler_acquire **out, char *msg, size_t cap)
{
    *out = NULL;
    struct breaker_permit permit;
    enum scheduler_status st = scheduler_admit(p, req, &permit, msg, cap);
    if (st != SCHEDULER_OK)
        return st;
    int64_t now = scheduler_now(p);
    struct scheduler_acquire *op = scheduler_acquire_alloc(req->deadline_at > 0);
    if (op)
        op->ticket = ratelimit_enqueue(p->rl, req->job_key, req->est_input_tokens,
                                       req->max_output_tokens, op, scheduler_time(p, now));
    if (!op || !op->ticket) {
        int err = op ? errno : ENOMEM;
        breaker_release(p->br, &permit);
        if (op)
            free(op->deadline);
        free(op);
        snprintf(msg, cap, "cannot queue the call (%s)", strerror(err));
        return SCHEDULER_ERROR;
    }
    op->p = p;
    op->wake = req->wake;
    op->ud = req->ud;
    op->permit = permit;
    op->enqueued_at = now;
    p->refs++;
    scheduler_queue_add(p, op);
    if (op->deadline) {
        uv_timer_init(p->loop, op->deadline);
        op->deadline->data = op;
        uv_timer_start(op->deadline, scheduler_on_deadline, (uint64_t)(req->deadline_at - now), 0);
    }
    scheduler_kick(p);
    *out = op;
    return SCHEDULER_OK;
}

enum scheduler_status scheduler_acquire_take(struct scheduler_acquire *op,
                                             struct scheduler_slot *slot, char *msg, size_t cap)
{
    struct scheduler_provider *p = op->p;
    memset(slot, 0, sizeof *slot);
    if (op->verdict == SCHEDULER_DEADLINE) {
        snprintf(msg, cap,
                 "no %s slot before the section deadline (waited %" PRId64 " ms in the queue)",
                 p->name, scheduler_now(p) - op->enqueued_at);
        return SCHEDULER_DEADLINE;
    }
    if (op->verdict == SCHEDULER_UNAVAILABLE)
        return scheduler_unavailable(p, op->open_until, msg, cap);
    if (!op->granted || !op->ticket) {
        scheduler_queue_remove(op);
        scheduler_acquire_cancel(op);
        snprintf(msg, cap, "%s: the call was not granted a slot", p->name);
        return SCHEDULER_ERROR;
    }
    /* The circuit opened between the grant and now: fail fast rather than send it. */
    if (breaker_state(p->br, scheduler_now(p)) == BREAKER_OPEN) {
        struct breaker_stats bs;
        breaker_stats(p->br, scheduler_now(p), &bs);
        scheduler_acquire_cancel(op);
        return scheduler_unavailable(p, bs.open_until, msg, cap);
    }
    slot->p = p;
    slot->ticket = op->ticket;
    slot->permit = op->permit;
    slot->shared = op->shared;
    slot->granted_at_ms = op->granted_at_ms;
    op->shared = false; /* the slot holds the shared permit now */
    p->refs++;
    op->ticket = NULL; /* the slot owns it now */
    return SCHEDULER_OK;
}

void scheduler_acquire_free(struct scheduler_acquire *op)
{
    if (!op)
        return;
    scheduler_queue_remove(op);
    if (op->deadline) {
        uv_timer_stop(op->deadline);
        uv_close((uv_handle_t *)op->deadline, scheduler_deadline_closed);
    }
    scheduler_acquire_cancel(op);
    scheduler_unref(op->p);
    free(op);
}

/* ---- slots ---------------------------------------------------------------------- */

uint64_t scheduler_slot_id(const struct scheduler_slot *slot)
{
    return slot->p ? ratelimit_ticket_id(slot->ticket) : 0;
}

void scheduler_slot_finish(struct scheduler_slot *slot, long status, int64_t in, int64_t out,
                           llm_header_fn get, void *ctx)
{
    struct scheduler_provider *p = slot->p;
    if (!p)
        return;
    int64_t now = scheduler_now(p), snow = scheduler_time(p, now);
    if (!p->detached) {
        int64_t delay =
            status == 429 && get ? retry_server_delay_ms(get, ctx, scheduler_wall_ms()) : 0;
        if (slot->shared) /* before the local finish frees the ticket */
            scheduler_share_finish(p, slot, in, out, get, ctx, delay > 0 ? delay : 0);
        ratelimit_finish(p->rl, slot->ticket, in, out, snow);
        if (get)
            ratelimit_observe_headers(p->rl, snow, scheduler_wall_ms(), get, ctx);
        if (delay > 0)
            ratelimit_pause_until(p->rl, scheduler_time(p, now + delay));
        breaker_record(p->br, now, &slot->permit, breaker_classify(status));
        llm_metrics_count_call(&p->metrics, status);
        scheduler_kick(p);
    }
    slot->p = NULL;
    slot->ticket = NULL;
    scheduler_unref(p);
}

void scheduler_slot_drop(struct scheduler_slot *slot)
{
    struct scheduler_provider *p = slot->p;
    if (!p)
        return;
    slot->p = NULL;
    if (!p->detached) {
        if (slot->shared) /* the lease back; the provider counted the call, if it was sent */
            scheduler_share_finish(p, slot, -1, -1, NULL, NULL, 0);
        ratelimit_cancel(p->rl, slot->ticket);
        breaker_release(p->br, &slot->permit);
        scheduler_kick(p);
    }
    slot->ticket = NULL;
    scheduler_unref(p);
}

/* ---- the provider's controls and reports ------------------------------------------ */

bool scheduler_breaker_allow(struct scheduler_provider *p, char *until, size_t cap)
{
    struct breaker_permit permit;
    int64_t at = 0;
    if (breaker_allow(p->br, scheduler_now(p), &permit, &at)) {
        breaker_release(p->br, &permit);
        return true;
    }
    scheduler_iso_time(p->loop, at, until, cap);
    return false;
}

void scheduler_pause(struct scheduler_provider *p, int64_t until_ms)
{
    ratelimit_pause_until(p->rl, scheduler_time(p, until_ms));
    if (p->share && until_ms > scheduler_now(p))
        scheduler_share_pause(p, until_ms - scheduler_now(p));
    scheduler_kick(p);
}

void scheduler_count_retry(struct scheduler_provider *p)
{
    llm_metrics_count_retry(&p->metrics);
}

void scheduler_stats(struct scheduler_provider *p, struct scheduler_stats *out)
{
    int64_t now = scheduler_now(p), snow = scheduler_time(p, now);
    memset(out, 0, sizeof *out);
    out->provider = p->name;
    ratelimit_stats(p->rl, snow, &out->rl);
    breaker_stats(p->br, now, &out->breaker);
    out->rl.wait_ms_total = scheduler_real_duration(p, out->rl.wait_ms_total);
    out->rl.wait_ms_max = scheduler_real_duration(p, out->rl.wait_ms_max);
    out->calls = p->metrics;
    out->calls_total = p->metrics.other_calls;
    for (int i = 0; i < p->metrics.statuses; i++)
        out->calls_total += p->metrics.calls[i].count;
    out->window_ms = p->window_ms;
    if (out->rl.paused_until > snow)
        scheduler_iso_time(p->loop, now + scheduler_real_duration(p, out->rl.paused_until - snow),
                           out->paused_until, sizeof out->paused_until);
    if (out->breaker.state == BREAKER_OPEN)
        scheduler_iso_time(p->loop, out->breaker.open_until, out->breaker_until,
                           sizeof out->breaker_until);
    for (int i = 0; i < RATELIMIT_BUDGETS; i++)
        if (out->rl.budget[i].reset_at > snow)
            out->reset_in_ms[i] = out->rl.budget[i].reset_at - snow;
}

size_t scheduler_metrics_text(struct scheduler *s, char *buf, size_t cap)
{
    struct llm_metrics_source src[SCHEDULER_MAX_PROVIDERS];
    for (size_t i = 0; i < s->n; i++)
        src[i] = (struct llm_metrics_source){s->providers[i]->name, &s->providers[i]->metrics,
                                             s->providers[i]->rl, s->providers[i]->br};
    return llm_metrics_format(buf, cap, src, s->n, (int64_t)uv_now(s->loop));
}
