/* Internals shared by the files of the o2c.scheduler binding; not for use outside them.
 *
 *   scheduler_lua.c        the module: its state, the configuration, provider_config,
 *                    acquire, slots (request with the API key), breaker_allow, pause
 *   scheduler_lua_retry.c  retry_decide; response headers read from a Lua table
 *   scheduler_lua_stats.c  stats, metrics_text
 *
 * The functions below run in a module function (upvalue 1 is the state). */
#ifndef O2C_LLM_SCHEDULER_LUA_INTERNAL_H
#define O2C_LLM_SCHEDULER_LUA_INTERNAL_H
#include <lua.h>
#include "host/config.h"
#include "llm/scheduler.h"

/* The VM's scheduler registry (raises once the state is collected). */
struct scheduler *scheduler_lua_sched(lua_State *L);
/* The provider named at stack index IDX, created from the configuration on first use. */
struct scheduler_provider *scheduler_lua_provider(lua_State *L, int idx);
/* The current configuration, else the defaults written into FALLBACK. */
const struct config *scheduler_lua_config(struct config *fallback);

/* Response headers from the Lua table {lower-case name = value} at IDX, for an
 * llm_header_fn.  The values stay anchored in the table. */
struct scheduler_lua_headers {
    lua_State *L;
    int idx; /* 0: no headers */
};

const char *scheduler_lua_header(void *ctx, const char *name);

int scheduler_lua_retry_decide(lua_State *L);
int scheduler_lua_stats(lua_State *L);
int scheduler_lua_metrics_text(lua_State *L);

#endif
