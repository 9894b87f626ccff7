/* o2c.llm: the rate-limited gate every LLM call goes through (Lua binding of
 * ratelimit.h, breaker.h, retry.h and metrics.h).
 *
 *   local llm = require "o2c.llm"
 *   llm.provider_config{name = "anthropic", rpm = 50, itpm = 30000, otpm = 8000, tpm = 0,
 *                       concurrency = 4, learn_limits = false, window_ms = 60000,
 *                       breaker = {consecutive_failures = 5, window = 20, min_calls = 10,
 *                                  failure_percent = 50, open_ms = 30000}}
 *   local slot, err, code = llm.acquire("anthropic", job_key, est_input_tokens,
 *                                       max_output_tokens [, deadline_at])
 *     -- yields until the scheduler lets the call start; slot or nil, message, code
 *     -- ("unavailable": circuit open; "too_large": can never fit; "deadline")
 *   local res, err, code = slot:request{url =, headers =, body =, timeout_ms = ...}
 *     -- o2c.http.request with the provider's API key added (the key never reaches Lua code)
 *   slot:finish(status, actual_input, actual_output, headers)   -- status 0 = no response
 *   slot:release()                  -- give the slot back without a verdict (also __close/__gc)
 *   local ok, until_iso = llm.breaker_allow("anthropic")
 *   local retry, delay_ms, reason, message, server_delay = llm.retry_decide{
 *       provider =, status =, error_type =, headers =, attempt =, deadline_at = (or deadline),
 *       max_attempts =, base_ms =, cap_ms =}
 *   llm.pause("anthropic", until_ms)      -- o2c.timer.now() clock
 *   llm.stats([provider]) -> {anthropic = {queue_depth =, in_flight =, ...}, ...}, or
 *                            one provider's table
 *   llm.metrics_text() -> Prometheus text
 *   llm.config() -> the configuration table (config_push: no secrets)
 *
 * Providers are created on first use from the configuration (cfg.llm.*), or by
 * provider_config.  Each has a scheduler, a circuit breaker, call counters and a
 * uv_timer that drives the scheduler: every change (enqueue, finish, cancel,
 * pause, headers) "kicks" the timer at 0 ms, and its callback starts every call
 * the scheduler lets through, then re-arms itself for the next WAIT.  Starting
 * calls only from that raw libuv callback means a task is never resumed from
 * inside another task's C call.
 *
 * window_ms: the limits are per window_ms of real time (60000 in production,
 * where the providers' limits are per minute).  The scheduler counts per
 * minute, so the binding runs it on a clock scaled by 60000 / window_ms; tests
 * use it to mirror a mock provider whose window is shortened.
 *
 * Lifetimes.  The module state is a userdata in the registry; its __gc (at
 * lua_close) detaches every provider.  A provider is freed (its timer closed
 * first) when the state and every acquire or slot holding it are gone.  A task
 * that dies while queued cancels its ticket (the wait's done(cancelled=1)); a
 * slot never finished is released by __close (`local slot <close> = ...`) or,
 * late, by __gc. */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>
#include "host/config.h"
#include "host/lua_host.h"
#include "host/task.h"
#include "llm/breaker.h"
#include "llm/llm_lua.h"
#include "llm/metrics.h"
#include "llm/ratelimit.h"
#include "llm/retry.h"

#define LLM_LUA_STATE "o2c.llm.state"
#define LLM_LUA_SLOT "o2c.llm.slot"
#define LLM_NAME_MAX 32
#define LLM_MAX_PROVIDERS LLM_METRICS_MAX_PROVIDERS
#define LLM_MINUTE_MS 60000

struct llm_provider {
    char name[LLM_NAME_MAX];
    struct ratelimit *rl;
    struct breaker *br;
    struct llm_metrics metrics;
    int64_t window_ms; /* real ms per scheduler minute */
    uv_loop_t *loop;
    uv_timer_t timer;
    int refs;                    /* the module state + each acquire and slot holding it */
    bool pumping;                /* inside llm_pump */
    bool detached;               /* the module state is gone: start nothing more */
    struct llm_acquire *waiting; /* queued acquires, so an open circuit fails them at once */
};

struct llm_state {
    struct llm_provider *providers[LLM_MAX_PROVIDERS];
    size_t n;
};

/* One llm.acquire waiting in a task. */
struct llm_acquire {
    struct llm_provider *p;
    struct task *task;
    struct ratelimit_ticket *ticket; /* NULL once cancelled or handed to a slot */
    struct breaker_permit permit;
    int64_t enqueued_at;
    uv_timer_t *deadline;            /* NULL: no deadline */
    bool granted;                    /* the scheduler started the ticket */
    bool expired;                    /* the deadline passed first */
    struct llm_acquire *prev, *next; /* in p->waiting while queued */
    bool linked;
};

static void llm_waiting_add(struct llm_provider *p, struct llm_acquire *op)
{
    op->prev = NULL;
    op->next = p->waiting;
    if (p->waiting)
        p->waiting->prev = op;
    p->waiting = op;
    op->linked = true;
}

static void llm_waiting_remove(struct llm_acquire *op)
{
    if (!op->linked)
        return;
    if (op->prev)
        op->prev->next = op->next;
    else
        op->p->waiting = op->next;
    if (op->next)
        op->next->prev = op->prev;
    op->linked = false;
}

struct llm_slot {
    struct llm_provider *p; /* NULL once finished or released */
    struct ratelimit_ticket *ticket;
    struct breaker_permit permit;
};

/* ---- clocks ---------------------------------------------------------------- */

static int64_t llm_now(const struct llm_provider *p)
{
    return (int64_t)uv_now(p->loop);
}

/* Real monotonic ms -> the scheduler's clock. */
static int64_t llm_sched_time(const struct llm_provider *p, int64_t real)
{
    return p->window_ms == LLM_MINUTE_MS ? real : real * LLM_MINUTE_MS / p->window_ms;
}

/* A scheduler duration -> real ms, rounded up. */
static int64_t llm_real_duration(const struct llm_provider *p, int64_t sched)
{
    if (p->window_ms == LLM_MINUTE_MS || sched <= 0)
        return sched;
    return (sched * p->window_ms + LLM_MINUTE_MS - 1) / LLM_MINUTE_MS;
}

static int64_t llm_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Monotonic ms (uv_now clock) -> "2025-05-01T12:00:30Z", rounded up to the second.
 * The offset between the clocks is taken once, so one instant always prints the
 * same (the breaker's "open until" in an error and in /api/v1/status agree). */
static void llm_iso_time(uv_loop_t *loop, int64_t mono_ms, char *buf, size_t cap)
{
    static int64_t offset;
    static bool have_offset;
    if (!have_offset) {
        offset = llm_wall_ms() - (int64_t)uv_now(loop);
        have_offset = true;
    }
    int64_t wall = mono_ms + offset;
    time_t secs = (time_t)((wall + 999) / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(buf, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- the module state and its providers ------------------------------------ */

static void llm_provider_closed(uv_handle_t *h)
{
    struct llm_provider *p = h->data;
    ratelimit_free(p->rl);
    breaker_free(p->br);
    free(p);
}

static void llm_provider_unref(struct llm_provider *p)
{
    if (--p->refs > 0)
        return;
    uv_timer_stop(&p->timer);
    uv_close((uv_handle_t *)&p->timer, llm_provider_closed);
}

static void llm_pump(struct llm_provider *p);

static void llm_on_timer(uv_timer_t *timer)
{
    llm_pump(timer->data);
}

/* Something changed: let the timer callback start what can start now. */
static void llm_kick(struct llm_provider *p)
{
    if (!p->detached && !p->pumping)
        uv_timer_start(&p->timer, llm_on_timer, 0, 0);
}

/* Starts every call the scheduler lets through (waking its task), then arms the
 * timer for the next WAIT.  Runs only from the timer callback.  A woken task may
 * finish or enqueue calls on this provider: the next ratelimit_next sees it, and
 * the last one decides the timer. */
static void llm_pump(struct llm_provider *p)
{
    if (p->detached)
        return;
    p->pumping = true;
    /* An open circuit fails every queued call now, not when its turn comes:
     * the woken task's push sees the open breaker and answers "unavailable". */
    while (p->waiting && breaker_state(p->br, llm_now(p)) == BREAKER_OPEN) {
        struct llm_acquire *op = p->waiting;
        llm_waiting_remove(op);
        task_wake(op->task);
    }
    for (;;) {
        struct ratelimit_ticket *ticket = NULL;
        int64_t wait_ms = -1;
        enum ratelimit_status st =
            ratelimit_next(p->rl, llm_sched_time(p, llm_now(p)), &ticket, &wait_ms);
        if (st == RATELIMIT_READY) {
            struct llm_acquire *op = ratelimit_ticket_user_data(ticket);
            op->granted = true;
            llm_waiting_remove(op);
            task_wake(op->task);
            continue;
        }
        if (st == RATELIMIT_WAIT)
            uv_timer_start(&p->timer, llm_on_timer, (uint64_t)llm_real_duration(p, wait_ms), 0);
        else
            uv_timer_stop(&p->timer);
        break;
    }
    p->pumping = false;
}

static struct llm_state *llm_state(lua_State *L)
{
    return lua_touserdata(L, lua_upvalueindex(1));
}

static int llm_state_gc(lua_State *L)
{
    struct llm_state *s = luaL_checkudata(L, 1, LLM_LUA_STATE);
    for (size_t i = 0; i < s->n; i++) {
        s->providers[i]->detached = true;
        uv_timer_stop(&s->providers[i]->timer);
        llm_provider_unref(s->providers[i]);
    }
    s->n = 0;
    return 0;
}

static struct llm_provider *llm_find(struct llm_state *s, const char *name)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->providers[i]->name, name) == 0)
            return s->providers[i];
    return NULL;
}

static const struct config *llm_config(struct config *fallback)
{
    const struct config *cfg = config_current();
    if (cfg)
        return cfg;
    config_defaults(fallback);
    return fallback;
}

/* The scheduler configuration from cfg.llm.* (learn_limits: all budgets learned). */
static void llm_config_limits(struct ratelimit_config *rc)
{
    struct config fallback;
    const struct config *cfg = llm_config(&fallback);
    memset(rc, 0, sizeof *rc);
    rc->learn_from_headers = cfg->llm.learn_limits != 0;
    if (!cfg->llm.learn_limits) {
        rc->requests_per_minute = (int64_t)cfg->llm.rpm;
        rc->input_tokens_per_minute = (int64_t)cfg->llm.itpm;
        rc->output_tokens_per_minute = (int64_t)cfg->llm.otpm;
    }
    rc->max_concurrency = (int)cfg->llm.concurrency;
}

static void llm_check_name(lua_State *L, const char *name)
{
    size_t len = strlen(name);
    bool ok = len > 0 && len < LLM_NAME_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
             name[i] == '_' || name[i] == '-';
    if (!ok)
        luaL_error(L, "o2c.llm: provider name must be 1-31 of a-z 0-9 _ - (got \"%s\")", name);
}

/* Creates provider NAME, or replaces its scheduler and breaker when idle. */
static struct llm_provider *llm_install(lua_State *L, struct llm_state *s, const char *name,
                                        const struct ratelimit_config *rc,
                                        const struct breaker_config *bc, int64_t window_ms)
{
    llm_check_name(L, name);
    struct ratelimit *rl = ratelimit_new(rc);
    struct breaker *br = breaker_new(bc);
    if (!rl || !br) {
        ratelimit_free(rl);
        breaker_free(br);
        luaL_error(L, "o2c.llm: invalid limits or breaker settings for provider %s", name);
    }
    struct llm_provider *p = llm_find(s, name);
    if (p) {
        struct ratelimit_stats st;
        ratelimit_stats(p->rl, 0, &st);
        if (st.queued || st.in_flight) {
            ratelimit_free(rl);
            breaker_free(br);
            luaL_error(L,
                       "o2c.llm: provider %s has calls queued or in flight; configure it "
                       "before its first call",
                       name);
        }
        ratelimit_free(p->rl);
        breaker_free(p->br);
    } else {
        if (s->n == LLM_MAX_PROVIDERS || !(p = calloc(1, sizeof *p))) {
            ratelimit_free(rl);
            breaker_free(br);
            luaL_error(L, "o2c.llm: cannot add provider %s (at most %d)", name, LLM_MAX_PROVIDERS);
            return NULL; /* not reached: luaL_error does not return (GCC cannot tell) */
        }
        snprintf(p->name, sizeof p->name, "%s", name);
        p->loop = host_loop();
        uv_timer_init(p->loop, &p->timer);
        p->timer.data = p;
        p->refs = 1;
        s->providers[s->n++] = p;
    }
    p->rl = rl;
    p->br = br;
    p->window_ms = window_ms; /* the call counters live on: they are Prometheus counters */
    return p;
}

/* The provider named at stack index IDX, created from the configuration on first use. */
static struct llm_provider *llm_provider(lua_State *L, int idx)
{
    struct llm_state *s = llm_state(L);
    const char *name = luaL_checkstring(L, idx);
    struct llm_provider *p = llm_find(s, name);
    if (p)
        return p;
    struct ratelimit_config rc;
    llm_config_limits(&rc);
    struct config fallback;
    int64_t window_ms = (int64_t)(llm_config(&fallback)->llm.window_s * 1000);
    return llm_install(L, s, name, &rc, NULL, window_ms > 0 ? window_ms : LLM_MINUTE_MS);
}

/* ---- provider_config ----------------------------------------------------- */

static int64_t llm_opt_int(lua_State *L, int t, const char *key, int64_t def, int64_t max)
{
    int64_t v = def;
    if (lua_getfield(L, t, key) != LUA_TNIL) {
        int isnum = 0;
        lua_Number n = lua_tonumberx(L, -1, &isnum);
        if (!isnum || n < 0 || n > (lua_Number)max)
            luaL_error(L, "o2c.llm: %s must be a number from 0 to %I (got %s)", key,
                       (lua_Integer)max, luaL_tolstring(L, -1, NULL));
        v = (int64_t)n;
    }
    lua_pop(L, 1);
    return v;
}

static void llm_read_breaker(lua_State *L, struct breaker_config *bc)
{
    breaker_config_default(bc);
    if (lua_getfield(L, 1, "breaker") == LUA_TTABLE) {
        int t = lua_gettop(L);
        bc->consecutive_failures =
            (int)llm_opt_int(L, t, "consecutive_failures", bc->consecutive_failures, 1000);
        bc->window = (int)llm_opt_int(L, t, "window", bc->window, 64);
        bc->min_calls = (int)llm_opt_int(L, t, "min_calls", bc->min_calls, 64);
        bc->failure_percent = (int)llm_opt_int(L, t, "failure_percent", bc->failure_percent, 100);
        bc->open_ms = llm_opt_int(L, t, "open_ms", bc->open_ms, 86400000);
    } else if (!lua_isnil(L, -1)) {
        luaL_error(L, "o2c.llm.provider_config: breaker must be a table");
    }
    lua_pop(L, 1);
}

/* provider_config{name =, rpm =, itpm =, otpm =, tpm =, concurrency =, learn_limits =,
 * window_ms =, breaker = {...}}: absent limits are unconfigured (learned from headers). */
static int llm_provider_config(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    lua_getfield(L, 1, "name");
    const char *name = lua_tostring(L, -1);
    if (!name)
        return luaL_error(L, "o2c.llm.provider_config: name is required");
    const int64_t max_limit = (int64_t)1 << 40;
    struct ratelimit_config rc = {0};
    rc.requests_per_minute = llm_opt_int(L, 1, "rpm", 0, max_limit);
    rc.input_tokens_per_minute = llm_opt_int(L, 1, "itpm", 0, max_limit);
    rc.output_tokens_per_minute = llm_opt_int(L, 1, "otpm", 0, max_limit);
    rc.tokens_per_minute = llm_opt_int(L, 1, "tpm", 0, max_limit);
    rc.max_concurrency = (int)llm_opt_int(L, 1, "concurrency", 0, 100000);
    lua_getfield(L, 1, "learn_limits");
    rc.learn_from_headers = lua_toboolean(L, -1);
    lua_pop(L, 1);
    int64_t window_ms = llm_opt_int(L, 1, "window_ms", LLM_MINUTE_MS, 3600000);
    if (window_ms < 1)
        return luaL_error(L, "o2c.llm.provider_config: window_ms must be at least 1");
    struct breaker_config bc;
    llm_read_breaker(L, &bc);
    llm_install(L, llm_state(L), name, &rc, &bc, window_ms);
    return 0;
}

/* ---- acquire ------------------------------------------------------------- */

static void llm_push_unavailable(lua_State *L, struct llm_provider *p, int64_t until)
{
    char iso[32];
    llm_iso_time(p->loop, until, iso, sizeof iso);
    lua_pushnil(L);
    lua_pushfstring(L, "provider unavailable (circuit open until %s)", iso);
    lua_pushliteral(L, "unavailable");
}

static void llm_deadline_closed(uv_handle_t *h)
{
    free(h);
}

static void llm_on_deadline(uv_timer_t *timer)
{
    struct llm_acquire *op = timer->data;
    if (op->granted || !op->ticket)
        return;
    ratelimit_cancel(op->p->rl, op->ticket);
    op->ticket = NULL;
    breaker_release(op->p->br, &op->permit);
    op->expired = true;
    llm_waiting_remove(op);
    llm_kick(op->p);
    task_wake(op->task);
}

static void llm_slot_new(lua_State *co, struct llm_acquire *op)
{
    struct llm_slot *slot = lua_newuserdatauv(co, sizeof *slot, 0);
    memset(slot, 0, sizeof *slot);
    luaL_setmetatable(co, LLM_LUA_SLOT);
    slot->p = op->p;
    slot->ticket = op->ticket;
    slot->permit = op->permit;
    op->p->refs++;
    op->ticket = NULL; /* the slot owns it now */
}

/* task_wait push: the slot, or nil, message, code. */
static int llm_acquire_push(lua_State *co, void *data)
{
    struct llm_acquire *op = data;
    struct llm_provider *p = op->p;
    luaL_checkstack(co, 4, "o2c.llm.acquire");
    if (op->expired) {
        lua_pushnil(co);
        lua_pushfstring(co, "no %s slot before the section deadline (waited %I ms in the queue)",
                        p->name, (lua_Integer)(llm_now(p) - op->enqueued_at));
        lua_pushliteral(co, "deadline");
        return 3;
    }
    /* The circuit opened while this call waited: fail fast rather than send it. */
    if (breaker_state(p->br, llm_now(p)) == BREAKER_OPEN) {
        struct breaker_stats bs;
        breaker_stats(p->br, llm_now(p), &bs);
        ratelimit_cancel(p->rl, op->ticket);
        op->ticket = NULL;
        breaker_release(p->br, &op->permit);
        llm_kick(p);
        llm_push_unavailable(co, p, bs.open_until);
        return 3;
    }
    llm_slot_new(co, op);
    return 1;
}

/* task_wait done: completed (the slot took the ticket, unless push failed) or the
 * task died (cancel the ticket, queued or started). */
static void llm_acquire_done(void *data, int cancelled)
{
    struct llm_acquire *op = data;
    (void)cancelled;
    llm_waiting_remove(op);
    if (op->deadline) {
        uv_timer_stop(op->deadline);
        uv_close((uv_handle_t *)op->deadline, llm_deadline_closed);
    }
    if (op->ticket) {
        ratelimit_cancel(op->p->rl, op->ticket);
        breaker_release(op->p->br, &op->permit);
        llm_kick(op->p);
    }
    llm_provider_unref(op->p);
    free(op);
}

static int64_t llm_check_size(lua_State *L, int idx, const char *what)
{
    int isnum = 0;
    lua_Integer v = lua_tointegerx(L, idx, &isnum);
    if (!isnum || v < 0)
        luaL_error(L, "o2c.llm.acquire: %s must be a non-negative integer (got %s)", what,
                   luaL_tolstring(L, idx, NULL));
    return (int64_t)v;
}

/* acquire(provider, job_key, est_input_tokens, max_output_tokens [, deadline_at]) */
static int llm_acquire(lua_State *L)
{
    struct llm_provider *p = llm_provider(L, 1);
    const char *job = luaL_checkstring(L, 2);
    int64_t est_in = llm_check_size(L, 3, "est_input_tokens");
    int64_t max_out = llm_check_size(L, 4, "max_output_tokens");
    lua_Number deadline = luaL_optnumber(L, 5, 0);
    luaL_argcheck(L, deadline >= 0 && deadline < 9e15, 5, "expected o2c.timer.now() ms");
    int64_t deadline_at = (int64_t)deadline;
    struct task *task = task_from_state(L);
    if (!task)
        return luaL_error(L, "o2c.llm.acquire must be called from a task");
    int64_t now = llm_now(p), until = 0;
    struct breaker_permit permit;
    if (!breaker_allow(p->br, now, &permit, &until)) {
        llm_push_unavailable(L, p, until);
        return 3;
    }
    char why[192] = "";
    if (!ratelimit_fits(p->rl, est_in, max_out, why, sizeof why)) {
        breaker_release(p->br, &permit);
        lua_pushnil(L);
        lua_pushfstring(L, "%s: this call can never start: %s", p->name, why);
        lua_pushliteral(L, "too_large");
        return 3;
    }
    if (deadline_at > 0 && deadline_at <= now) {
        breaker_release(p->br, &permit);
        lua_pushnil(L);
        lua_pushfstring(L, "no %s slot before the section deadline (it has passed)", p->name);
        lua_pushliteral(L, "deadline");
        return 3;
    }
    struct llm_acquire *op = calloc(1, sizeof *op);
    if (op && deadline_at > 0 && !(op->deadline = malloc(sizeof *op->deadline))) {
        free(op);
        op = NULL;
    }
    if (!op) {
        breaker_release(p->br, &permit);
        return luaL_error(L, "o2c.llm.acquire: out of memory");
    }
    op->ticket = ratelimit_enqueue(p->rl, job, est_in, max_out, op, llm_sched_time(p, now));
    if (!op->ticket) {
        int err = errno;
        breaker_release(p->br, &permit);
        free(op->deadline);
        free(op);
        return luaL_error(L, "o2c.llm.acquire: cannot queue the call (%s)", strerror(err));
    }
    op->p = p;
    op->task = task;
    op->permit = permit;
    op->enqueued_at = now;
    p->refs++;
    llm_waiting_add(p, op);
    if (op->deadline) {
        uv_timer_init(p->loop, op->deadline);
        op->deadline->data = op;
        uv_timer_start(op->deadline, llm_on_deadline, (uint64_t)(deadline_at - now), 0);
    }
    llm_kick(p);
    struct task_wait wait = {llm_acquire_push, llm_acquire_done, op};
    return task_yield(L, &wait);
}

/* ---- slots ----------------------------------------------------------------- */

static struct llm_slot *llm_check_slot(lua_State *L)
{
    return luaL_checkudata(L, 1, LLM_LUA_SLOT);
}

static struct llm_slot *llm_live_slot(lua_State *L, const char *what)
{
    struct llm_slot *slot = llm_check_slot(L);
    if (!slot->p)
        luaL_error(L, "o2c.llm: slot:%s on a slot already finished or released", what);
    return slot;
}

/* Gives the slot back without a verdict: the provider counted the call, if it
 * was sent, so its budgets stay spent. */
static void llm_slot_drop(struct llm_slot *slot)
{
    struct llm_provider *p = slot->p;
    if (!p)
        return;
    slot->p = NULL;
    if (!p->detached) {
        ratelimit_cancel(p->rl, slot->ticket);
        breaker_release(p->br, &slot->permit);
        llm_kick(p);
    }
    slot->ticket = NULL;
    llm_provider_unref(p);
}

static int llm_slot_release(lua_State *L)
{
    llm_slot_drop(llm_check_slot(L));
    return 0;
}

/* Response headers from a Lua table {lower-case name = value}. */
struct llm_lua_headers {
    lua_State *L;
    int idx; /* 0: no headers */
};

static const char *llm_lua_header(void *ctx, const char *name)
{
    struct llm_lua_headers *h = ctx;
    if (!h->idx)
        return NULL;
    lua_pushstring(h->L, name);
    const char *v = lua_rawget(h->L, h->idx) == LUA_TSTRING ? lua_tostring(h->L, -1) : NULL;
    lua_pop(h->L, 1); /* the string stays anchored in the table */
    return v;
}

static int64_t llm_opt_usage(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return -1;
    int isnum = 0;
    lua_Integer v = lua_tointegerx(L, idx, &isnum);
    return isnum && v >= 0 ? (int64_t)v : -1;
}

/* slot:finish(status, actual_input, actual_output, headers): true-up, headers,
 * the 429 pause, the breaker's verdict and the call counters. */
static int llm_slot_finish(lua_State *L)
{
    struct llm_slot *slot = llm_live_slot(L, "finish");
    lua_Integer status = luaL_checkinteger(L, 2);
    luaL_argcheck(L, status >= 0 && status < 1000, 2, "expected an HTTP status or 0");
    int64_t in = llm_opt_usage(L, 3), out = llm_opt_usage(L, 4);
    struct llm_lua_headers h = {L, lua_istable(L, 5) ? 5 : 0};
    struct llm_provider *p = slot->p;
    int64_t now = llm_now(p), snow = llm_sched_time(p, now);
    if (!p->detached) {
        ratelimit_finish(p->rl, slot->ticket, in, out, snow);
        if (h.idx)
            ratelimit_observe_headers(p->rl, snow, llm_wall_ms(), llm_lua_header, &h);
        if (status == 429) {
            int64_t delay = retry_server_delay_ms(llm_lua_header, &h, llm_wall_ms());
            if (delay > 0)
                ratelimit_pause_until(p->rl, llm_sched_time(p, now + delay));
        }
        breaker_record(p->br, now, &slot->permit, breaker_classify((long)status));
        llm_metrics_count_call(&p->metrics, (long)status);
        llm_kick(p);
    }
    slot->p = NULL;
    slot->ticket = NULL;
    llm_provider_unref(p);
    return 0;
}

static int llm_secret_header(lua_State *L, const char *provider)
{
    struct config fallback;
    const struct config *cfg = config_current();
    if (!cfg) {
        config_defaults(&fallback);
        fallback.anthropic_api_key = getenv("ANTHROPIC_API_KEY");
        fallback.openai_api_key = getenv("O2C_OPENAI_API_KEY");
        cfg = &fallback;
    }
    if (strcmp(provider, "anthropic") == 0 && cfg->anthropic_api_key && *cfg->anthropic_api_key) {
        lua_pushstring(L, cfg->anthropic_api_key);
        lua_setfield(L, -2, "x-api-key");
        return 1;
    }
    if (strcmp(provider, "openai") == 0 && cfg->openai_api_key && *cfg->openai_api_key) {
        lua_pushfstring(L, "Bearer %s", cfg->openai_api_key);
        lua_setfield(L, -2, "authorization");
        return 1;
    }
    return 0;
}

static int llm_slot_request_k(lua_State *L, int status, lua_KContext base)
{
    (void)status;
    return lua_gettop(L) - (int)base;
}

/* slot:request(req): o2c.http.request on a copy of REQ whose headers carry the
 * provider's API key.  The copy is reachable only from this call, so no Lua code
 * ever sees the key. */
static int llm_slot_request(lua_State *L)
{
    struct llm_slot *slot = llm_live_slot(L, "request");
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    int base = lua_gettop(L);
    if (lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE) != LUA_TTABLE ||
        lua_getfield(L, -1, "o2c.http") != LUA_TTABLE) {
        lua_settop(L, base);
        lua_getglobal(L, "require");
        lua_pushliteral(L, "o2c.http");
        lua_call(L, 1, 1);
    }
    lua_getfield(L, -1, "request");
    lua_replace(L, base + 1);
    lua_settop(L, base + 1); /* stack: slot, req, http.request */
    lua_createtable(L, 0, 8);
    lua_pushnil(L);
    while (lua_next(L, 2)) { /* shallow copy of req */
        lua_pushvalue(L, -2);
        lua_insert(L, -2);
        lua_rawset(L, base + 2);
    }
    lua_createtable(L, 0, 8);
    if (lua_getfield(L, 2, "headers") == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pushvalue(L, -2);
            lua_insert(L, -2);
            lua_rawset(L, -5);
        }
    }
    lua_pop(L, 1);
    llm_secret_header(L, slot->p->name);
    lua_setfield(L, base + 2, "headers");
    lua_callk(L, 1, LUA_MULTRET, base, llm_slot_request_k);
    return llm_slot_request_k(L, LUA_OK, base);
}

static int llm_slot_gc(lua_State *L)
{
    llm_slot_drop(llm_check_slot(L));
    return 0;
}

static int llm_slot_tostring(lua_State *L)
{
    struct llm_slot *slot = llm_check_slot(L);
    if (slot->p)
        lua_pushfstring(L, "o2c.llm.slot(%s #%I)", slot->p->name,
                        (lua_Integer)ratelimit_ticket_id(slot->ticket));
    else
        lua_pushliteral(L, "o2c.llm.slot(closed)");
    return 1;
}

/* ---- breaker, retries, pause ---------------------------------------------- */

/* breaker_allow(provider) -> true | false, until_iso.  Only looks: a trial slot
 * is taken by acquire, not here. */
static int llm_breaker_allow(lua_State *L)
{
    struct llm_provider *p = llm_provider(L, 1);
    struct breaker_permit permit;
    int64_t until = 0;
    if (breaker_allow(p->br, llm_now(p), &permit, &until)) {
        breaker_release(p->br, &permit);
        lua_pushboolean(L, 1);
        return 1;
    }
    char iso[32];
    llm_iso_time(p->loop, until, iso, sizeof iso);
    lua_pushboolean(L, 0);
    lua_pushstring(L, iso);
    return 2;
}

static int64_t llm_field_int(lua_State *L, const char *key, int64_t def)
{
    int64_t v = def;
    if (lua_getfield(L, 1, key) != LUA_TNIL) {
        int isnum = 0;
        lua_Number n = lua_tonumberx(L, -1, &isnum);
        if (!isnum)
            luaL_error(L, "o2c.llm.retry_decide: %s must be a number", key);
        v = (int64_t)n;
    }
    lua_pop(L, 1);
    return v;
}

/* retry_decide{provider =, status =, error_type =, headers =, attempt =, deadline_at =,
 * max_attempts =, base_ms =, cap_ms =} -> retry, delay_ms, reason, message, server_delay */
static int llm_retry_decide(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    struct config fallback;
    const struct config *cfg = llm_config(&fallback);
    struct retry_policy policy;
    retry_policy_default(&policy);
    policy.max_attempts = cfg->llm.max_retries > 0 ? (int)cfg->llm.max_retries : 1;
    policy.max_attempts = (int)llm_field_int(L, "max_attempts", policy.max_attempts);
    policy.base_ms = llm_field_int(L, "base_ms", policy.base_ms);
    policy.cap_ms = llm_field_int(L, "cap_ms", policy.cap_ms);
    if (policy.max_attempts < 1 || policy.base_ms < 0 || policy.cap_ms < 0)
        return luaL_error(L, "o2c.llm.retry_decide: max_attempts >= 1, base_ms and cap_ms >= 0");
    struct retry_attempt a = {0};
    a.attempt = (int)llm_field_int(L, "attempt", 1);
    a.status = (long)llm_field_int(L, "status", 0);
    a.deadline = llm_field_int(L, "deadline_at", llm_field_int(L, "deadline", 0));
    a.now = (int64_t)uv_now(host_loop());
    a.wall_ms = llm_wall_ms();
    lua_getfield(L, 1, "error_type"); /* 2 */
    a.error_type = lua_tostring(L, 2);
    lua_getfield(L, 1, "headers"); /* 3 */
    struct llm_lua_headers h = {L, lua_istable(L, 3) ? 3 : 0};
    a.get_header = llm_lua_header;
    a.header_ctx = &h;
    struct retry_decision d;
    retry_decide(&policy, &a, &d);
    lua_getfield(L, 1, "provider");
    if (d.retry && lua_isstring(L, -1))
        llm_metrics_count_retry(&llm_provider(L, -1)->metrics);
    lua_pushboolean(L, d.retry);
    lua_pushinteger(L, (lua_Integer)d.delay_ms);
    lua_pushstring(L, retry_reason_name(d.reason));
    lua_pushstring(L, d.message);
    lua_pushboolean(L, d.server_delay);
    return 5;
}

/* pause(provider, until_ms): no call starts before UNTIL_MS (o2c.timer.now() clock). */
static int llm_pause(lua_State *L)
{
    struct llm_provider *p = llm_provider(L, 1);
    lua_Integer until = luaL_checkinteger(L, 2);
    ratelimit_pause_until(p->rl, llm_sched_time(p, (int64_t)until));
    llm_kick(p);
    return 0;
}

/* ---- stats and metrics ------------------------------------------------------ */

static void llm_set_int(lua_State *L, const char *key, int64_t v)
{
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, key);
}

static void llm_set_iso(lua_State *L, struct llm_provider *p, const char *key, int64_t mono)
{
    char iso[32];
    llm_iso_time(p->loop, mono, iso, sizeof iso);
    lua_pushstring(L, iso);
    lua_setfield(L, -2, key);
}

static void llm_push_limits(lua_State *L, const struct ratelimit_stats *st, int64_t snow)
{
    lua_createtable(L, 0, RATELIMIT_BUDGETS);
    for (int i = 0; i < RATELIMIT_BUDGETS; i++) {
        const struct ratelimit_budget_stats *b = &st->budget[i];
        lua_createtable(L, 0, 6);
        if (b->capacity > 0) {
            llm_set_int(L, "limit", b->capacity);
            llm_set_int(L, "remaining", b->level);
        } else {
            lua_pushboolean(L, 1);
            lua_setfield(L, -2, "unlimited");
        }
        lua_pushboolean(L, b->configured);
        lua_setfield(L, -2, "configured");
        lua_pushboolean(L, b->learned);
        lua_setfield(L, -2, "learned");
        if (b->reset_at > snow)
            llm_set_int(L, "reset_in_ms", b->reset_at - snow);
        lua_setfield(L, -2, ratelimit_budget_name((enum ratelimit_budget)i));
    }
    lua_setfield(L, -2, "limits");
}

static void llm_push_calls(lua_State *L, const struct llm_metrics *m)
{
    lua_createtable(L, 0, m->statuses);
    uint64_t total = m->other_calls;
    for (int i = 0; i < m->statuses; i++) {
        char key[16];
        if (m->calls[i].status)
            snprintf(key, sizeof key, "%ld", m->calls[i].status);
        else
            snprintf(key, sizeof key, "error");
        llm_set_int(L, key, (int64_t)m->calls[i].count);
        total += m->calls[i].count;
    }
    if (m->other_calls)
        llm_set_int(L, "other", (int64_t)m->other_calls);
    lua_setfield(L, -2, "calls_by_status");
    llm_set_int(L, "calls", (int64_t)total);
}

static void llm_push_provider_stats(lua_State *L, struct llm_provider *p)
{
    int64_t now = llm_now(p), snow = llm_sched_time(p, now);
    struct ratelimit_stats st;
    struct breaker_stats bs;
    ratelimit_stats(p->rl, snow, &st);
    breaker_stats(p->br, now, &bs);
    lua_createtable(L, 0, 24);
    lua_pushstring(L, p->name);
    lua_setfield(L, -2, "provider");
    llm_set_int(L, "queue_depth", (int64_t)st.queued);
    llm_set_int(L, "in_flight", (int64_t)st.in_flight);
    llm_set_int(L, "jobs_queued", (int64_t)st.jobs);
    llm_set_int(L, "max_concurrency", st.max_concurrency);
    llm_set_int(L, "started", (int64_t)st.started);
    llm_set_int(L, "finished", (int64_t)st.finished);
    llm_set_int(L, "cancelled", (int64_t)st.cancelled);
    llm_set_int(L, "wait_ms_total", llm_real_duration(p, st.wait_ms_total));
    llm_set_int(L, "wait_ms_max", llm_real_duration(p, st.wait_ms_max));
    llm_set_int(L, "tokens_in", st.input_tokens_total);
    llm_set_int(L, "tokens_out", st.output_tokens_total);
    llm_set_int(L, "retries", (int64_t)p->metrics.retries);
    llm_set_int(L, "pauses", (int64_t)st.pauses);
    if (st.paused_until > snow)
        llm_set_iso(L, p, "paused_until", now + llm_real_duration(p, st.paused_until - snow));
    lua_pushboolean(L, st.probing);
    lua_setfield(L, -2, "probing");
    llm_set_int(L, "window_ms", p->window_ms);
    llm_push_calls(L, &p->metrics);
    lua_pushstring(L, bs.state_name);
    lua_setfield(L, -2, "breaker_state");
    if (bs.state == BREAKER_OPEN)
        llm_set_iso(L, p, "breaker_until", bs.open_until);
    llm_set_int(L, "breaker_opened", (int64_t)bs.opened);
    llm_set_int(L, "breaker_rejected", (int64_t)bs.rejected);
    llm_push_limits(L, &st, snow);
}

/* stats() -> {[provider] = {...}} for /api/v1/status; stats(name) -> that
 * provider's table (created from the configuration if it is not yet). */
static int llm_stats(lua_State *L)
{
    struct llm_state *s = llm_state(L);
    if (!lua_isnoneornil(L, 1)) {
        llm_push_provider_stats(L, llm_provider(L, 1));
        return 1;
    }
    lua_createtable(L, 0, (int)s->n);
    for (size_t i = 0; i < s->n; i++) {
        llm_push_provider_stats(L, s->providers[i]);
        lua_setfield(L, -2, s->providers[i]->name);
    }
    return 1;
}

/* metrics_text() -> the o2c_llm_* families in the Prometheus text format. */
static int llm_metrics_text(lua_State *L)
{
    struct llm_state *s = llm_state(L);
    struct llm_metrics_source src[LLM_MAX_PROVIDERS];
    for (size_t i = 0; i < s->n; i++)
        src[i] = (struct llm_metrics_source){s->providers[i]->name, &s->providers[i]->metrics,
                                             s->providers[i]->rl, s->providers[i]->br};
    int64_t now = (int64_t)uv_now(host_loop());
    size_t need = llm_metrics_format(NULL, 0, src, s->n, now);
    luaL_Buffer b;
    char *buf = luaL_buffinitsize(L, &b, need + 1);
    size_t len = llm_metrics_format(buf, need + 1, src, s->n, now);
    luaL_pushresultsize(&b, len < need + 1 ? len : need);
    return 1;
}

/* config() -> the configuration as a table (no secrets: llm.*_key_set booleans). */
static int llm_config_lua(lua_State *L)
{
    struct config fallback;
    config_push(L, llm_config(&fallback));
    return 1;
}

int luaopen_o2c_llm(lua_State *L)
{
    static const luaL_Reg slot_methods[] = {
        {"request", llm_slot_request},
        {"finish", llm_slot_finish},
        {"release", llm_slot_release},
        {NULL, NULL},
    };
    static const luaL_Reg functions[] = {
        {"provider_config", llm_provider_config},
        {"acquire", llm_acquire},
        {"breaker_allow", llm_breaker_allow},
        {"retry_decide", llm_retry_decide},
        {"pause", llm_pause},
        {"stats", llm_stats},
        {"metrics_text", llm_metrics_text},
        {"config", llm_config_lua},
        {NULL, NULL},
    };
    if (luaL_newmetatable(L, LLM_LUA_SLOT)) {
        luaL_newlib(L, slot_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, llm_slot_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, llm_slot_gc);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, llm_slot_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
    /* One state per VM, anchored in the registry by its metatable's name. */
    if (lua_getfield(L, LUA_REGISTRYINDEX, LLM_LUA_STATE ".instance") != LUA_TUSERDATA) {
        lua_pop(L, 1);
        struct llm_state *s = lua_newuserdatauv(L, sizeof *s, 0);
        memset(s, 0, sizeof *s);
        if (luaL_newmetatable(L, LLM_LUA_STATE)) {
            lua_pushcfunction(L, llm_state_gc);
            lua_setfield(L, -2, "__gc");
        }
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, LLM_LUA_STATE ".instance");
    }
    luaL_newlibtable(L, functions);
    lua_insert(L, -2);
    luaL_setfuncs(L, functions, 1);
    return 1;
}
