/* o2c.scheduler.stats and o2c.scheduler.metrics_text: the schedulers' reports for
 * /api/v1/status and GET /metrics (scheduler_lua_internal.h). */
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include "llm/scheduler_lua_internal.h"

static void llm_set_int(lua_State *L, const char *key, int64_t v)
{
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, key);
}

static void llm_set_bool(lua_State *L, const char *key, bool v)
{
    lua_pushboolean(L, v);
    lua_setfield(L, -2, key);
}

static void llm_set_string(lua_State *L, const char *key, const char *v)
{
    lua_pushstring(L, v);
    lua_setfield(L, -2, key);
}

static void llm_push_limits(lua_State *L, const struct scheduler_stats *st)
{
    lua_createtable(L, 0, RATELIMIT_BUDGETS);
    for (int i = 0; i < RATELIMIT_BUDGETS; i++) {
        const struct ratelimit_budget_stats *b = &st->rl.budget[i];
        lua_createtable(L, 0, 6);
        if (b->capacity > 0) {
            llm_set_int(L, "limit", b->capacity);
            llm_set_int(L, "remaining", b->level);
        } else {
            llm_set_bool(L, "unlimited", true);
        }
        llm_set_bool(L, "configured", b->configured);
        llm_set_bool(L, "learned", b->learned);
        if (st->reset_in_ms[i] > 0)
            llm_set_int(L, "reset_in_ms", st->reset_in_ms[i]);
        lua_setfield(L, -2, ratelimit_budget_name((enum ratelimit_budget)i));
    }
    lua_setfield(L, -2, "limits");
}

static void llm_push_calls(lua_State *L, const struct scheduler_stats *st)
{
    const struct llm_metrics *m = &st->calls;
    lua_createtable(L, 0, m->statuses);
    for (int i = 0; i < m->statuses; i++) {
        char key[16];
        if (m->calls[i].status)
            snprintf(key, sizeof key, "%ld", m->calls[i].status);
        else
            snprintf(key, sizeof key, "error");
        llm_set_int(L, key, (int64_t)m->calls[i].count);
    }
    if (m->other_calls)
        llm_set_int(L, "other", (int64_t)m->other_calls);
    lua_setfield(L, -2, "calls_by_status");
    llm_set_int(L, "calls", (int64_t)st->calls_total);
}

static void llm_push_provider_stats(lua_State *L, struct scheduler_provider *p)
{
    struct scheduler_stats st;
    scheduler_stats(p, &st);
    lua_createtable(L, 0, 24);
    llm_set_string(L, "provider", st.provider);
    llm_set_int(L, "queue_depth", (int64_t)st.rl.queued);
    llm_set_int(L, "in_flight", (int64_t)st.rl.in_flight);
    llm_set_int(L, "jobs_queued", (int64_t)st.rl.jobs);
    llm_set_int(L, "max_concurrency", st.rl.max_concurrency);
    llm_set_int(L, "started", (int64_t)st.rl.started);
    llm_set_int(L, "finished", (int64_t)st.rl.finished);
    llm_set_int(L, "cancelled", (int64_t)st.rl.cancelled);
    llm_set_int(L, "wait_ms_total", st.rl.wait_ms_total);
    llm_set_int(L, "wait_ms_max", st.rl.wait_ms_max);
    llm_set_int(L, "tokens_in", st.rl.input_tokens_total);
    llm_set_int(L, "tokens_out", st.rl.output_tokens_total);
    llm_set_int(L, "retries", (int64_t)st.calls.retries);
    llm_set_int(L, "pauses", (int64_t)st.rl.pauses);
    if (*st.paused_until)
        llm_set_string(L, "paused_until", st.paused_until);
    llm_set_bool(L, "probing", st.rl.probing);
    llm_set_int(L, "window_ms", st.window_ms);
    llm_push_calls(L, &st);
    llm_set_string(L, "breaker_state", st.breaker.state_name);
    if (*st.breaker_until)
        llm_set_string(L, "breaker_until", st.breaker_until);
    llm_set_int(L, "breaker_opened", (int64_t)st.breaker.opened);
    llm_set_int(L, "breaker_rejected", (int64_t)st.breaker.rejected);
    llm_push_limits(L, &st);
}

/* stats() -> {[provider] = {...}} for /api/v1/status; stats(name) -> that
 * provider's table (created from the configuration if it is not yet). */
int scheduler_lua_stats(lua_State *L)
{
    if (!lua_isnoneornil(L, 1)) {
        llm_push_provider_stats(L, scheduler_lua_provider(L, 1));
        return 1;
    }
    struct scheduler *s = scheduler_lua_sched(L);
    lua_createtable(L, 0, (int)scheduler_count(s));
    for (size_t i = 0; i < scheduler_count(s); i++) {
        llm_push_provider_stats(L, scheduler_provider_at(s, i));
        lua_setfield(L, -2, scheduler_provider_name(scheduler_provider_at(s, i)));
    }
    return 1;
}

/* metrics_text() -> the o2c_llm_* families in the Prometheus text format. */
int scheduler_lua_metrics_text(lua_State *L)
{
    struct scheduler *s = scheduler_lua_sched(L);
    size_t need = scheduler_metrics_text(s, NULL, 0);
    luaL_Buffer b;
    char *buf = luaL_buffinitsize(L, &b, need + 1);
    size_t len = scheduler_metrics_text(s, buf, need + 1);
    luaL_pushresultsize(&b, len < need + 1 ? len : need);
    return 1;
}
