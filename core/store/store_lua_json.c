/* The JSON bridge of the storage bindings: core/lua/json.lua (lua-cjson
 * underneath), with whole numbers decoded as integers and lists kept
 * lists. */
#include <lauxlib.h>
#include <stddef.h>
#include "host/lua_host.h"
#include "store/store_lua_internal.h"

static const char store_json_key = 'j'; /* registry: core/lua/json.lua's module */

/* JSON */

static void store_lua_json_module(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &store_json_key) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    if (host_require(L, "json") != LUA_OK)
        lua_error(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &store_json_key);
}

const char *store_lua_encode(lua_State *L, int idx, const char *what, size_t *len)
{
    idx = lua_absindex(L, idx);
    store_lua_json_module(L);
    lua_getfield(L, -1, "encode");
    lua_remove(L, -2);
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
        luaL_error(L, "%s cannot be stored as JSON: %s", what, lua_tostring(L, -1));
    return lua_tolstring(L, -1, len);
}

/* 1 when the value at IDX is a float that is a whole number, in *I. */
static int whole_float(lua_State *L, int idx, lua_Integer *i)
{
    return lua_type(L, idx) == LUA_TNUMBER && !lua_isinteger(L, idx) &&
           lua_numbertointeger(lua_tonumber(L, idx), i) && (lua_Number)*i == lua_tonumber(L, idx);
}

/* Whole numbers decoded as floats (lua-cjson) become integers, so a stored
 * 3 comes back as 3, not 3.0. */
static void store_lua_integers(lua_State *L, int idx, int depth)
{
    if (depth > 64)
        return;
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 4, "decoding JSON");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        /* Stack: key, value. */
        lua_Integer i;
        if (whole_float(L, -1, &i)) {
            lua_pushvalue(L, -2);
            lua_pushinteger(L, i);
            lua_rawset(L, idx); /* assigning an existing field: allowed in lua_next */
        } else if (lua_type(L, -1) == LUA_TTABLE) {
            store_lua_integers(L, -1, depth + 1);
        }
        lua_pop(L, 1);
    }
}

void store_lua_decode(lua_State *L, const char *text, size_t len)
{
    store_lua_json_module(L);
    lua_getfield(L, -1, "decode");
    lua_remove(L, -2);
    lua_pushlstring(L, text ? text : "null", text ? len : 4);
    lua_call(L, 1, 2);
    if (lua_isnil(L, -2) && !lua_isnil(L, -1))
        luaL_error(L, "stored JSON is invalid: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    lua_Integer whole;
    if (whole_float(L, -1, &whole)) {
        lua_pop(L, 1);
        lua_pushinteger(L, whole);
    } else if (lua_type(L, -1) == LUA_TTABLE) {
        store_lua_integers(L, -1, 0);
        /* A stored list stays a list: empty, it encodes back as []. */
        size_t i = 0;
        while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t'))
            i++;
        if (i < len && text[i] == '[')
            store_lua_mark_array(L, -1);
    }
}

void store_lua_mark_array(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    store_lua_json_module(L);
    lua_getfield(L, -1, "array_mt");
    lua_setmetatable(L, idx);
    lua_pop(L, 1);
}
