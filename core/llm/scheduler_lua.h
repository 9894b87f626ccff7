/* o2c.scheduler: the per-provider schedulers as the product VM sees them (its
 * Lua side is core/lua/llm/init.lua, require "llm"). */
#ifndef O2C_LLM_SCHEDULER_LUA_H
#define O2C_LLM_SCHEDULER_LUA_H
#include <lua.h>

int luaopen_o2c_scheduler(lua_State *L);

#endif
