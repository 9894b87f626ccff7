/* o2c.scheduler.retry_decide (retry.h for Lua) and the getter that reads response
 * headers from a Lua table for retry.h and the scheduler (scheduler_lua_internal.h). */
#include <lauxlib.h>
#include <lua.h>
#include <uv.h>
#include "host/lua_host.h"
#include "llm/scheduler_lua_internal.h"
#include "llm/retry.h"
#include "llm/scheduler.h"

/* Response headers from a Lua table {lower-case name = value}. */
const char *scheduler_lua_header(void *ctx, const char *name)
{
    struct scheduler_lua_headers *h = ctx;
    if (!h->idx)
        return NULL;
    lua_pushstring(h->L, name);
    const char *v = lua_rawget(h->L, h->idx) == LUA_TSTRING ? lua_tostring(h->L, -1) : NULL;
    lua_pop(h->L, 1); /* the string stays anchored in the table */
    return v;
}

static int64_t llm_retry_field(lua_State *L, const char *key, int64_t def)
{
    int64_t v = def;
    if (lua_getfield(L, 1, key) != LUA_TNIL) {
        int isnum = 0;
        lua_Number n = lua_tonumberx(L, -1, &isnum);
        if (!isnum)
            luaL_error(L, "o2c.scheduler.retry_decide: %s must be a number", key);
        v = (int64_t)n;
    }
    lua_pop(L, 1);
    return v;
}

/* retry_decide{provider =, status =, error_type =, headers =, attempt =, deadline_at =,
 * max_attempts =, base_ms =, cap_ms =} -> retry, delay_ms, reason, message, server_delay */
int scheduler_lua_retry_decide(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    struct config fallback;
    const struct config *cfg = scheduler_lua_config(&fallback);
    struct retry_policy policy;
    retry_policy_default(&policy);
    policy.max_attempts = cfg->llm.max_retries > 0 ? (int)cfg->llm.max_retries : 1;
    policy.max_attempts = (int)llm_retry_field(L, "max_attempts", policy.max_attempts);
    policy.base_ms = llm_retry_field(L, "base_ms", policy.base_ms);
    policy.cap_ms = llm_retry_field(L, "cap_ms", policy.cap_ms);
    if (policy.max_attempts < 1 || policy.base_ms < 0 || policy.cap_ms < 0)
        return luaL_error(L,
                          "o2c.scheduler.retry_decide: max_attempts >= 1, base_ms and cap_ms >= 0");
    struct retry_attempt a = {0};
    a.attempt = (int)llm_retry_field(L, "attempt", 1);
    a.status = (long)llm_retry_field(L, "status", 0);
    a.deadline = llm_retry_field(L, "deadline_at", llm_retry_field(L, "deadline", 0));
    a.now = (int64_t)uv_now(host_loop());
    a.wall_ms = scheduler_wall_ms();
    lua_getfield(L, 1, "error_type"); /* 2 */
    a.error_type = lua_tostring(L, 2);
    lua_getfield(L, 1, "headers"); /* 3 */
    struct scheduler_lua_headers h = {L, lua_istable(L, 3) ? 3 : 0};
    a.get_header = scheduler_lua_header;
    a.header_ctx = &h;
    struct retry_decision d;
    retry_decide(&policy, &a, &d);
    lua_getfield(L, 1, "provider");
    if (d.retry && lua_isstring(L, -1))
        scheduler_count_retry(scheduler_lua_provider(L, -1));
    lua_pushboolean(L, d.retry);
    lua_pushinteger(L, (lua_Integer)d.delay_ms);
    lua_pushstring(L, retry_reason_name(d.reason));
    lua_pushstring(L, d.message);
    lua_pushboolean(L, d.server_delay);
    return 5;
}
