/* o2c.scheduler: the per-provider schedulers as the product VM sees them (its
 * Lua side is core/lua/llm/init.lua, require "llm"). */
#ifndef O2C_LLM_SCHEDULER_LUA_H
#define O2C_LLM_SCHEDULER_LUA_H
#include <lua.h>
#include <stddef.h>

int luaopen_o2c_scheduler(lua_State *L);

struct db;
/* Several instances on one PostgreSQL database: the VM L's schedulers take
 * every call's permit from the budget they share through DB (scheduler_share,
 * this instance's id a new UUID).  DB outlives the VM.  0, or -1 with the
 * reason in ERR. */
int scheduler_lua_share(lua_State *L, struct db *db, char *err, size_t err_cap);

#endif
