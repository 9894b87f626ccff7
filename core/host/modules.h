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

#endif
