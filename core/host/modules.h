/* Every o2c.* C module the product VM can require, in one table. */
#ifndef O2C_HOST_MODULES_H
#define O2C_HOST_MODULES_H
#include <lua.h>

struct host_module {
    const char *name;
    lua_CFunction open;
};
extern const struct host_module host_modules[];

int luaopen_o2c_timer(lua_State *L);
int luaopen_o2c_task(lua_State *L);
int luaopen_o2c_log(lua_State *L);
int luaopen_o2c_gen(lua_State *L);
int luaopen_o2c_config(lua_State *L);
int luaopen_o2c_assets(lua_State *L);
int luaopen_o2c_random(lua_State *L);
int luaopen_o2c_event(lua_State *L);
int luaopen_o2c_base64(lua_State *L);
/* core/llm/llm_lua.c: o2c.llm, and "llm" (forwards to core/lua/llm/init.lua). */
int luaopen_o2c_llm(lua_State *L);
int luaopen_llm_init(lua_State *L);

#endif
