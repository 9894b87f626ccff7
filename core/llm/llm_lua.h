/* o2c.llm: the per-provider schedulers as the product VM sees them (its
 * Lua side is core/lua/llm/init.lua, require "llm"). */
#ifndef O2C_LLM_LLM_LUA_H
#define O2C_LLM_LLM_LUA_H
#include <lua.h>

int luaopen_o2c_llm(lua_State *L);

#endif
