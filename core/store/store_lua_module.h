/* The areas of o2c.store: each ..._lua.c adds its functions to the module
 * table on top of the stack; luaopen_o2c_store (store_lua.c) calls them. */
#ifndef O2C_STORE_STORE_LUA_MODULE_H
#define O2C_STORE_STORE_LUA_MODULE_H
#include <lua.h>

void store_lua_user_funcs(lua_State *L);
void store_lua_report_funcs(lua_State *L);
void store_lua_attachment_funcs(lua_State *L);
void store_lua_audit_funcs(lua_State *L);
void store_lua_assessment_funcs(lua_State *L);

#endif
