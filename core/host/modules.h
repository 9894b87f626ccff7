/* The o2c.* C modules of the host's own folder, and the shape of a module
 * table.  The floors above (net, store, llm) declare theirs in their own
 * headers; core/app puts every table together for the product VM. */
#ifndef O2C_HOST_MODULES_H
#define O2C_HOST_MODULES_H
#include <lua.h>

struct host_module {
    const char *name;
    lua_CFunction open;
};

/* o2c.timer, o2c.task, o2c.log, o2c.generation, o2c.config, o2c.assets,
 * o2c.random, o2c.event, o2c.base64, o2c.proxies, o2c.spawn,
 * o2c.xlsx, o2c.markdown; ends with {NULL, NULL}. */
extern const struct host_module host_modules[];

int luaopen_o2c_timer(lua_State *L);
int luaopen_o2c_task(lua_State *L);
int luaopen_o2c_log(lua_State *L);
int luaopen_o2c_generation(lua_State *L);
int luaopen_o2c_config(lua_State *L);
int luaopen_o2c_assets(lua_State *L);
int luaopen_o2c_random(lua_State *L);
int luaopen_o2c_event(lua_State *L);
int luaopen_o2c_base64(lua_State *L);
int luaopen_o2c_proxies(lua_State *L);
int luaopen_o2c_spawn(lua_State *L);
int luaopen_o2c_xlsx(lua_State *L);
int luaopen_o2c_markdown(lua_State *L);
int luaopen_o2c_branding(lua_State *L);

#endif
