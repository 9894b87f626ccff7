/* o2c.gen: the product VM's view of generations.
 *
 *   local g <close> = gen.pin()      -- the current generation, pinned; nil if none
 *   g:call("score", type, answers, targets) -> results (copied), or raises
 *   g:try("score", ...)               -> true, results... | false, message
 *   g:hash(); g:sources() -> {{path=, text=}}; g:release() (also on close/GC)
 *   gen.status() -> {generation=, loads=, failures=, last_ms=, errors={{file,line,message}}}
 *
 * Values cross by copy through sandbox_copy_value: no function or userdata
 * of a generation ever reaches product code, and the reverse. */
#include <lauxlib.h>
#include "host/generation.h"
#include "host/lua_host.h"
#include "host/modules.h"
#include "host/reload.h"

#define GEN_HANDLE "o2c.gen.handle"

struct gen_handle {
    struct generation *g; /* NULL once released */
};

static struct gen_handle *check_handle(lua_State *L)
{
    struct gen_handle *h = luaL_checkudata(L, 1, GEN_HANDLE);
    if (!h->g)
        luaL_error(L, "this generation handle was released");
    return h;
}

static int gen_pin(lua_State *L)
{
    struct generation *g = generation_current();
    if (!g) {
        lua_pushnil(L);
        return 1;
    }
    struct gen_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->g = g;
    generation_pin(g);
    luaL_setmetatable(L, GEN_HANDLE);
    return 1;
}

static int handle_release(lua_State *L)
{
    struct gen_handle *h = luaL_checkudata(L, 1, GEN_HANDLE);
    if (h->g) {
        generation_unpin(h->g);
        h->g = NULL;
    }
    return 0;
}

static int handle_hash(lua_State *L)
{
    lua_pushstring(L, generation_hash(check_handle(L)->g));
    return 1;
}

/* Calls METHOD with the arguments after it; returns results or raises. */
static int handle_call(lua_State *L)
{
    struct gen_handle *h = check_handle(L);
    const char *method = luaL_checkstring(L, 2);
    int nargs = lua_gettop(L) - 2; /* METHOD stays at 2, alive, under them */
    int nres = 2;                  /* loader methods return a value and an optional error list */
    if (generation_call(h->g, method, L, nargs, nres) != 0)
        return lua_error(L);
    return nres;
}

static int handle_try(lua_State *L)
{
    struct gen_handle *h = check_handle(L);
    const char *method = luaL_checkstring(L, 2);
    int nargs = lua_gettop(L) - 2;
    if (generation_call(h->g, method, L, nargs, 2) != 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -3);
    return 3;
}

static int handle_sources(lua_State *L)
{
    const struct gen_sources *src = generation_sources(check_handle(L)->g);
    lua_createtable(L, (int)src->count, 0);
    for (size_t i = 0; i < src->count; i++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, src->items[i].path);
        lua_setfield(L, -2, "path");
        lua_pushlstring(L, src->items[i].text, src->items[i].len);
        lua_setfield(L, -2, "text");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int gen_status(lua_State *L)
{
    struct reload_status st;
    reload_get_status(&st);
    struct generation *g = generation_current();
    lua_createtable(L, 0, 5);
    if (g) {
        lua_pushstring(L, generation_hash(g));
        lua_setfield(L, -2, "generation");
    }
    lua_pushinteger(L, (lua_Integer)st.loads);
    lua_setfield(L, -2, "loads");
    lua_pushinteger(L, (lua_Integer)st.failures);
    lua_setfield(L, -2, "failures");
    lua_pushnumber(L, st.last_ms);
    lua_setfield(L, -2, "last_ms");
    lua_createtable(L, (int)st.errors->count, 0);
    host_mark_array(L, -1);
    for (size_t i = 0; i < st.errors->count; i++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, st.errors->items[i].file);
        lua_setfield(L, -2, "file");
        lua_pushinteger(L, st.errors->items[i].line);
        lua_setfield(L, -2, "line");
        lua_pushstring(L, st.errors->items[i].message);
        lua_setfield(L, -2, "message");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "errors");
    return 1;
}

static int gen_reload(lua_State *L)
{
    reload_now(luaL_optstring(L, 1, "requested"));
    return 0;
}

int luaopen_o2c_gen(lua_State *L)
{
    static const luaL_Reg methods[] = {{"call", handle_call},       {"try", handle_try},
                                       {"hash", handle_hash},       {"sources", handle_sources},
                                       {"release", handle_release}, {NULL, NULL}};
    static const luaL_Reg funcs[] = {
        {"pin", gen_pin}, {"status", gen_status}, {"reload", gen_reload}, {NULL, NULL}};
    luaL_newmetatable(L, GEN_HANDLE);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, handle_release);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, handle_release);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
