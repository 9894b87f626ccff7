/* o2c.scheduler: the rate-limited gate every LLM call goes through (Lua binding of
 * scheduler.h and retry.h).
 *
 *   local scheduler = require "o2c.scheduler"
 *   scheduler.provider_config{name = "anthropic", rpm = 50, itpm = 30000, otpm = 8000, tpm = 0,
 *                             concurrency = 4, learn_limits = false, window_ms = 60000,
 *                             breaker = {consecutive_failures = 5, window = 20, min_calls = 10,
 *                                        failure_percent = 50, open_ms = 30000}}
 *   local slot, err, code = scheduler.acquire("anthropic", job_key, est_input_tokens,
 *                                             max_output_tokens [, deadline_at])
 *     -- yields until the scheduler lets the call start; slot or nil, message, code
 *     -- ("unavailable": circuit open; "too_large": can never fit; "deadline")
 *   local res, err, code = slot:request{url =, headers =, body =, timeout_ms = ...}
 *     -- o2c.http.request with the provider's API key added (the key never reaches Lua code)
 *   slot:finish(status, actual_input, actual_output, headers)   -- status 0 = no response
 *   slot:release()                  -- give the slot back without a verdict (also __close/__gc)
 *   local ok, until_iso = scheduler.breaker_allow("anthropic")
 *   local retry, delay_ms, reason, message, server_delay = scheduler.retry_decide{
 *       provider =, status =, error_type =, headers =, attempt =, deadline_at = (or deadline),
 *       max_attempts =, base_ms =, cap_ms =}
 *   scheduler.pause("anthropic", until_ms)      -- o2c.timer.now() clock
 *   scheduler.stats([provider]) -> {anthropic = {queue_depth =, in_flight =, ...}, ...}, or
 *                            one provider's table
 *   scheduler.metrics_text() -> Prometheus text
 *   scheduler.config() -> the configuration table (config_push: no secrets)
 *
 * The binding only (argument checks, configuration, pushes; the files are listed
 * in scheduler_lua_internal.h): the schedulers are scheduler.c, which knows nothing of
 * Lua (an acquire's wake callback is task_wake here).
 *
 * Providers are created on first use from the configuration (cfg.llm.*), or by
 * provider_config.  The module state is a userdata in the registry holding the
 * scheduler registry; its __gc (at lua_close) detaches every provider.  A task
 * that dies while queued frees its acquire (the wait's done(cancelled=1)); a
 * slot never finished is released by __close (`local slot <close> = ...`) or,
 * late, by __gc. */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include "host/config.h"
#include "host/log.h"
#include "host/lua_host.h"
#include "host/task.h"
#include "llm/scheduler_lua.h"
#include "llm/scheduler_lua_internal.h"
#include "llm/scheduler.h"
#include "net/http_client_lua.h"
#include "net/http_header.h"
#include "store/uuid.h"

#define SCHEDULER_LUA_STATE "o2c.scheduler.state"
#define SCHEDULER_LUA_SLOT "o2c.scheduler.slot"
#define LLM_BEARER_MAX 1024 /* "Bearer " + an OpenAI key, on the C stack */

struct llm_state {
    struct scheduler *sched; /* NULL once collected */
};

struct scheduler *scheduler_lua_sched(lua_State *L)
{
    struct llm_state *s = lua_touserdata(L, lua_upvalueindex(1));
    if (!s->sched)
        luaL_error(L, "o2c.scheduler: the module state is closed");
    return s->sched;
}

static int llm_state_gc(lua_State *L)
{
    struct llm_state *s = luaL_checkudata(L, 1, SCHEDULER_LUA_STATE);
    scheduler_free(s->sched);
    s->sched = NULL;
    return 0;
}

/* ---- configuration ------------------------------------------------------------ */

const struct config *scheduler_lua_config(struct config *fallback)
{
    const struct config *cfg = config_current();
    if (cfg)
        return cfg;
    config_defaults(fallback);
    return fallback;
}

/* The scheduler configuration from cfg.llm.* (learn_limits: all budgets learned). */
static int64_t llm_config_limits(struct ratelimit_config *rc)
{
    struct config fallback;
    const struct config *cfg = scheduler_lua_config(&fallback);
    memset(rc, 0, sizeof *rc);
    rc->learn_from_headers = cfg->llm.learn_limits != 0;
    if (!cfg->llm.learn_limits) {
        rc->requests_per_minute = (int64_t)cfg->llm.rpm;
        rc->input_tokens_per_minute = (int64_t)cfg->llm.itpm;
        rc->output_tokens_per_minute = (int64_t)cfg->llm.otpm;
    }
    rc->max_concurrency = (int)cfg->llm.concurrency;
    int64_t window_ms = (int64_t)(cfg->llm.window_s * 1000);
    return window_ms > 0 ? window_ms : SCHEDULER_MINUTE_MS;
}

static struct scheduler_provider *llm_install(lua_State *L, const char *name,
                                              const struct ratelimit_config *rc,
                                              const struct breaker_config *bc, int64_t window_ms)
{
    char err[SCHEDULER_MESSAGE_MAX];
    struct scheduler_provider *p =
        scheduler_install(scheduler_lua_sched(L), name, rc, bc, window_ms, err, sizeof err);
    if (!p)
        luaL_error(L, "o2c.scheduler: %s", err);
    return p;
}

/* The provider named at stack index IDX, created from the configuration on first use. */
struct scheduler_provider *scheduler_lua_provider(lua_State *L, int idx)
{
    const char *name = luaL_checkstring(L, idx);
    struct scheduler_provider *p = scheduler_find(scheduler_lua_sched(L), name);
    if (p)
        return p;
    struct ratelimit_config rc;
    int64_t window_ms = llm_config_limits(&rc);
    return llm_install(L, name, &rc, NULL, window_ms);
}

/* ---- provider_config ------------------------------------------------------- */

static int64_t llm_opt_int(lua_State *L, int t, const char *key, int64_t def, int64_t max)
{
    int64_t v = def;
    if (lua_getfield(L, t, key) != LUA_TNIL) {
        int isnum = 0;
        lua_Number n = lua_tonumberx(L, -1, &isnum);
        if (!isnum || n < 0 || n > (lua_Number)max)
            luaL_error(L, "o2c.scheduler: %s must be a number from 0 to %I (got %s)", key,
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
        luaL_error(L, "o2c.scheduler.provider_config: breaker must be a table");
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
        return luaL_error(L, "o2c.scheduler.provider_config: name is required");
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
    int64_t window_ms = llm_opt_int(L, 1, "window_ms", SCHEDULER_MINUTE_MS, 3600000);
    if (window_ms < 1)
        return luaL_error(L, "o2c.scheduler.provider_config: window_ms must be at least 1");
    struct breaker_config bc;
    llm_read_breaker(L, &bc);
    llm_install(L, name, &rc, &bc, window_ms);
    return 0;
}

/* ---- acquire ----------------------------------------------------------------- */

/* nil, message, code ("unavailable", "too_large", "deadline", "error"). */
static int llm_push_refusal(lua_State *L, enum scheduler_status st, const char *msg)
{
    lua_pushnil(L);
    lua_pushstring(L, msg);
    lua_pushstring(L, scheduler_status_code(st));
    return 3;
}

static void llm_wake_task(void *task)
{
    task_wake(task);
}

/* task_wait push: the slot, or nil, message, code. */
static int llm_acquire_push(lua_State *co, void *op)
{
    luaL_checkstack(co, 4, "o2c.scheduler.acquire");
    struct scheduler_slot *slot = lua_newuserdatauv(co, sizeof *slot, 0);
    memset(slot, 0, sizeof *slot);
    luaL_setmetatable(co, SCHEDULER_LUA_SLOT);
    char msg[SCHEDULER_MESSAGE_MAX];
    enum scheduler_status st = scheduler_acquire_take(op, slot, msg, sizeof msg);
    if (st == SCHEDULER_OK)
        return 1;
    lua_pop(co, 1);
    return llm_push_refusal(co, st, msg);
}

/* task_wait done: the slot took the ticket, or the call is cancelled (queued
 * or started: the task died). */
static void llm_acquire_done(void *op, int cancelled)
{
    (void)cancelled;
    scheduler_acquire_free(op);
}

static int64_t llm_check_size(lua_State *L, int idx, const char *what)
{
    int isnum = 0;
    lua_Integer v = lua_tointegerx(L, idx, &isnum);
    if (!isnum || v < 0)
        luaL_error(L, "o2c.scheduler.acquire: %s must be a non-negative integer (got %s)", what,
                   luaL_tolstring(L, idx, NULL));
    return (int64_t)v;
}

/* acquire(provider, job_key, est_input_tokens, max_output_tokens [, deadline_at]) */
static int llm_acquire(lua_State *L)
{
    struct scheduler_provider *p = scheduler_lua_provider(L, 1);
    struct scheduler_request req = {0};
    req.job_key = luaL_checkstring(L, 2);
    req.est_input_tokens = llm_check_size(L, 3, "est_input_tokens");
    req.max_output_tokens = llm_check_size(L, 4, "max_output_tokens");
    lua_Number deadline = luaL_optnumber(L, 5, 0);
    luaL_argcheck(L, deadline >= 0 && deadline < 9e15, 5, "expected o2c.timer.now() ms");
    req.deadline_at = (int64_t)deadline;
    req.wake = llm_wake_task;
    req.ud = task_from_state(L);
    if (!req.ud)
        return luaL_error(L, "o2c.scheduler.acquire must be called from a task");
    struct scheduler_acquire *op = NULL;
    char msg[SCHEDULER_MESSAGE_MAX];
    enum scheduler_status st = scheduler_acquire(p, &req, &op, msg, sizeof msg);
    if (st == SCHEDULER_ERROR)
        return luaL_error(L, "o2c.scheduler.acquire: %s", msg);
    if (st != SCHEDULER_OK)
        return llm_push_refusal(L, st, msg);
    struct task_wait wait = {llm_acquire_push, llm_acquire_done, op};
    return task_yield(L, &wait);
}

/* ---- slots ------------------------------------------------------------------- */

static struct scheduler_slot *llm_check_slot(lua_State *L)
{
    return luaL_checkudata(L, 1, SCHEDULER_LUA_SLOT);
}

static struct scheduler_slot *llm_live_slot(lua_State *L, const char *what)
{
    struct scheduler_slot *slot = llm_check_slot(L);
    if (!scheduler_slot_live(slot))
        luaL_error(L, "o2c.scheduler: slot:%s on a slot already finished or released", what);
    return slot;
}

/* slot:release(), __close, __gc: the slot back without a verdict. */
static int llm_slot_release(lua_State *L)
{
    scheduler_slot_drop(llm_check_slot(L));
    return 0;
}

static int64_t llm_opt_usage(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return -1;
    int isnum = 0;
    lua_Integer v = lua_tointegerx(L, idx, &isnum);
    return isnum && v >= 0 ? (int64_t)v : -1;
}

/* slot:finish(status, actual_input, actual_output, headers) */
static int llm_slot_finish(lua_State *L)
{
    struct scheduler_slot *slot = llm_live_slot(L, "finish");
    lua_Integer status = luaL_checkinteger(L, 2);
    luaL_argcheck(L, status >= 0 && status < 1000, 2, "expected an HTTP status or 0");
    int64_t in = llm_opt_usage(L, 3), out = llm_opt_usage(L, 4);
    struct scheduler_lua_headers h = {L, lua_istable(L, 5) ? 5 : 0};
    scheduler_slot_finish(slot, (long)status, in, out, h.idx ? scheduler_lua_header : NULL, &h);
    return 0;
}

/* The provider's API key as a header, or 0 when it has none.  The OpenAI value
 * is written into BEARER (the caller's stack): the key never enters a Lua value. */
static int llm_secret_header(lua_State *L, const char *provider, struct http_header *h,
                             char *bearer, size_t cap)
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
        *h = (struct http_header){"x-api-key", cfg->anthropic_api_key};
        return 1;
    }
    if (strcmp(provider, "openai") == 0 && cfg->openai_api_key && *cfg->openai_api_key) {
        size_t len = strlen(cfg->openai_api_key);
        if (len + sizeof "Bearer " > cap)
            luaL_error(L,
                       "o2c.scheduler: the openai API key is longer than %d bytes; check "
                       "O2C_OPENAI_API_KEY",
                       (int)(cap - sizeof "Bearer "));
        memcpy(bearer, "Bearer ", 7);
        memcpy(bearer + 7, cfg->openai_api_key, len + 1);
        *h = (struct http_header){"authorization", bearer};
        return 1;
    }
    return 0;
}

/* slot:request(req): o2c.http.request(req) with the provider's API key added in
 * C (http_client_lua_request_with copies it before it yields). */
static int llm_slot_request(lua_State *L)
{
    struct scheduler_slot *slot = llm_live_slot(L, "request");
    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    char bearer[LLM_BEARER_MAX];
    struct http_header key;
    const char *provider = scheduler_provider_name(slot->p);
    size_t n = (size_t)llm_secret_header(L, provider, &key, bearer, sizeof bearer);
    return http_client_lua_request_with(L, 2, &key, n);
}

static int llm_slot_tostring(lua_State *L)
{
    struct scheduler_slot *slot = llm_check_slot(L);
    if (scheduler_slot_live(slot))
        lua_pushfstring(L, "o2c.scheduler.slot(%s #%I)", scheduler_provider_name(slot->p),
                        (lua_Integer)scheduler_slot_id(slot));
    else
        lua_pushliteral(L, "o2c.scheduler.slot(closed)");
    return 1;
}

/* ---- breaker, pause ------------------------------------------------- */

/* breaker_allow(provider) -> true | false, until_iso */
static int llm_breaker_allow(lua_State *L)
{
    char until[32];
    if (scheduler_breaker_allow(scheduler_lua_provider(L, 1), until, sizeof until)) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushboolean(L, 0);
    lua_pushstring(L, until);
    return 2;
}

/* pause(provider, until_ms): no call starts before UNTIL_MS (o2c.timer.now() clock). */
static int llm_pause(lua_State *L)
{
    struct scheduler_provider *p = scheduler_lua_provider(L, 1);
    scheduler_pause(p, (int64_t)luaL_checkinteger(L, 2));
    return 0;
}

/* ---- stats and metrics -------------------------------------------------------- */

/* config() -> the configuration as a table (no secrets: llm.*_key_set booleans). */
static int llm_config_lua(lua_State *L)
{
    struct config fallback;
    config_push(L, scheduler_lua_config(&fallback));
    return 1;
}

static void llm_slot_metatable(lua_State *L)
{
    static const luaL_Reg slot_methods[] = {
        {"request", llm_slot_request},
        {"finish", llm_slot_finish},
        {"release", llm_slot_release},
        {NULL, NULL},
    };
    if (luaL_newmetatable(L, SCHEDULER_LUA_SLOT)) {
        luaL_newlib(L, slot_methods);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, llm_slot_release);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, llm_slot_release);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, llm_slot_tostring);
        lua_setfield(L, -2, "__tostring");
    }
    lua_pop(L, 1);
}

/* Pushes the one state of this VM, anchored in the registry by its metatable's name. */
static void llm_push_state(lua_State *L)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, SCHEDULER_LUA_STATE ".instance") == LUA_TUSERDATA)
        return;
    lua_pop(L, 1);
    struct llm_state *s = lua_newuserdatauv(L, sizeof *s, 0);
    s->sched = NULL;
    if (luaL_newmetatable(L, SCHEDULER_LUA_STATE)) {
        lua_pushcfunction(L, llm_state_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    if (!(s->sched = scheduler_new(host_loop())))
        luaL_error(L, "o2c.scheduler: out of memory");
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, SCHEDULER_LUA_STATE ".instance");
}

int scheduler_lua_share(lua_State *L, struct db *db, char *err, size_t err_cap)
{
    llm_push_state(L);
    struct llm_state *s = lua_touserdata(L, -1);
    lua_pop(L, 1);
    char instance[UUID_STR_LEN];
    uuid_v7_string(instance);
    struct scheduler_share_config cfg = {.db = db, .instance = instance};
    if (scheduler_share(s->sched, &cfg, err, err_cap) != 0)
        return -1;
    log_msg(LOG_INFO, "the LLM budget is shared with every instance on the database", "instance",
            instance, NULL);
    return 0;
}

int luaopen_o2c_scheduler(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"provider_config", llm_provider_config},
        {"acquire", llm_acquire},
        {"breaker_allow", llm_breaker_allow},
        {"retry_decide", scheduler_lua_retry_decide},
        {"pause", llm_pause},
        {"stats", scheduler_lua_stats},
        {"metrics_text", scheduler_lua_metrics_text},
        {"config", llm_config_lua},
        {NULL, NULL},
    };
    llm_slot_metatable(L);
    llm_push_state(L);
    luaL_newlibtable(L, functions);
    lua_insert(L, -2);
    luaL_setfuncs(L, functions, 1);
    return 1;
}
