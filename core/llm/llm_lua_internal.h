/* Internals shared by the files of the o2c.llm binding; not for use outside them.
 *
 *   llm_lua.c        the module: its state, the configuration, provider_config,
 *                    acquire, slots (request with the API key), breaker_allow, pause
 *   llm_lua_retry.c  retry_decide; response headers read from a Lua table
 *   llm_lua_stats.c  stats, metrics_text
 *
 * The functions below run in a module function (upvalue 1 is the state). */
#ifndef O2C_LLM_LLM_LUA_INTERNAL_H
#define O2C_LLM_LLM_LUA_INTERNAL_H
#include <lua.h>
#include "host/config.h"
#include "llm/scheduler.h"

/* The VM's scheduler registry (raises once the state is collected). */
struct scheduler *llm_lua_sched(lua_State *L);
/* The provider named at stack index IDX, created from the configuration on first use. */
struct scheduler_provider *llm_lua_provider(lua_State *L, int idx);
/* The current configuration, else the defaults written into FALLBACK. */
const struct config *llm_lua_config(struct config *fallback);

/* Response headers from the Lua table {lower-case name = value} at IDX, for an
 * llm_header_fn.  The values stay anchored in the table. */
struct llm_lua_headers {
    lua_State *L;
    int idx; /* 0: no headers */
};

const char *llm_lua_header(void *ctx, const char *name);

int llm_lua_retry_decide(lua_State *L);
int llm_lua_stats(lua_State *L);
int llm_lua_metrics_text(lua_State *L);

#endif
