#include <dlfcn.h>
#include <lauxlib.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>
#include "host/embedded.h"
#include "host/log.h"
#include "host/lua_host.h"
#include "host/modules.h"

static uv_loop_t *host_uv_loop;

struct host_heap {
    size_t used, limit;
};
static struct host_heap host_heap;

static void *host_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct host_heap *heap = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        heap->used -= old;
        return NULL;
    }
    if (heap->limit && nsize > old && heap->used - old + nsize > heap->limit)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        heap->used = heap->used - old + nsize;
    return p;
}

static int host_panic(lua_State *L)
{
    const char *msg = lua_tostring(L, -1);
    log_msg(LOG_ERROR, "unprotected Lua error", "error", msg ? msg : "?", NULL);
    abort();
}

/* package.searchers entry: "a.b" -> embedded "lua/a/b.lua", else
 * "lua/a/b/init.lua" (package.path's "?.lua;?/init.lua"). */
static int host_search_embedded(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    char path[256];
    size_t n = (size_t)snprintf(path, sizeof path, "lua/%s", name);
    if (n + sizeof "/init.lua" >= sizeof path)
        return 0;
    for (char *p = path + 4; *p; p++)
        if (*p == '.')
            *p = '/';
    strcpy(path + n, ".lua");
    const struct embedded_file *f = embedded_find(path);
    if (!f) {
        strcpy(path + n, "/init.lua");
        f = embedded_find(path);
    }
    if (!f) {
        path[n] = '\0';
        lua_pushfstring(L, "no embedded file 'core/%s.lua' or 'core/%s/init.lua'", path, path);
        return 1;
    }
    char chunk[300];
    snprintf(chunk, sizeof chunk, "@core/%s", path);
    if (luaL_loadbufferx(L, f->data, f->size, chunk, "t") != LUA_OK)
        return lua_error(L);
    lua_pushstring(L, chunk + 1);
    return 2;
}

static void host_install_searcher(lua_State *L)
{
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchers");
    /* Keep the preload searcher (1) and ours; no searching the disk. */
    lua_newtable(L);
    lua_rawgeti(L, -2, 1);
    lua_rawseti(L, -2, 1);
    lua_pushcfunction(L, host_search_embedded);
    lua_rawseti(L, -2, 2);
    lua_setfield(L, -3, "searchers");
    lua_pop(L, 2);
}

void host_preload(lua_State *L, const char *name, lua_CFunction open)
{
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
    lua_pushcfunction(L, open);
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
}

/* lua-cjson is a Lua C module built against the shared liblua: load it once
 * from its Debian path; its luaopen functions serve every state. */
static lua_CFunction cjson_open, cjson_open_safe;

lua_CFunction host_cjson_opener(void)
{
    if (cjson_open)
        return cjson_open;
    void *lib = dlopen(O2C_CJSON_SO, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        log_msg(LOG_ERROR, "cannot load lua-cjson", "path", O2C_CJSON_SO, "error", dlerror(), "fix",
                "install the Debian package lua-cjson", NULL);
        return NULL;
    }
    cjson_open = (lua_CFunction)dlsym(lib, "luaopen_cjson");
    cjson_open_safe = (lua_CFunction)dlsym(lib, "luaopen_cjson_safe");
    if (!cjson_open || !cjson_open_safe) {
        log_msg(LOG_ERROR, "lua-cjson lacks luaopen_cjson", "path", O2C_CJSON_SO, NULL);
        cjson_open = NULL;
    }
    return cjson_open;
}

static int host_preload_cjson(lua_State *L)
{
    if (!host_cjson_opener())
        return -1;
    host_preload(L, "cjson", cjson_open);
    host_preload(L, "cjson.safe", cjson_open_safe);
    return 0;
}

static int host_open_protected(lua_State *L)
{
    const struct host_module *extra = lua_touserdata(L, 1);
    luaL_openlibs(L);
    host_install_searcher(L);
    for (const struct host_module *m = host_modules; m->name; m++)
        host_preload(L, m->name, m->open);
    for (const struct host_module *m = extra; m && m->name; m++)
        host_preload(L, m->name, m->open);
    return 0;
}

lua_State *host_open(uv_loop_t *loop, size_t memory_limit, const struct host_module *modules)
{
    host_uv_loop = loop;
    host_heap.used = 0;
    host_heap.limit = memory_limit;
    lua_State *L = lua_newstate(host_alloc, &host_heap);
    if (!L) {
        log_msg(LOG_ERROR, "cannot create the Lua VM: out of memory", NULL);
        return NULL;
    }
    lua_atpanic(L, host_panic);
    /* Generational GC: requests and report sections make short-lived
     * garbage beside a large old heap (modules, jobs, sessions' state);
     * young collections keep the heap near what is live instead of letting
     * it double before each incremental cycle (measured with 200 users
     * holding reports: 34 MB of heap → 22 MB, RSS 59 → 47 MB). */
    lua_gc(L, LUA_GCGEN, 0, 0);
    lua_pushcfunction(L, host_open_protected);
    lua_pushlightuserdata(L, (void *)modules);
    if (host_pcall(L, 1, 0) != LUA_OK || host_preload_cjson(L) != 0) {
        if (lua_gettop(L) > 0)
            log_msg(LOG_ERROR, "cannot set up the Lua VM", "error", lua_tostring(L, -1), NULL);
        lua_close(L);
        return NULL;
    }
    return L;
}

void host_close(lua_State *L)
{
    if (L)
        lua_close(L);
}

uv_loop_t *host_loop(void)
{
    return host_uv_loop;
}

size_t host_memory_used(void)
{
    return host_heap.used;
}

lua_State *host_main_state(lua_State *L)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    lua_State *main = lua_tothread(L, -1);
    lua_pop(L, 1);
    return main;
}

static int host_traceback(lua_State *L)
{
    const char *msg = lua_tostring(L, 1);
    if (!msg)
        msg = luaL_tolstring(L, 1, NULL);
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int host_pcall(lua_State *L, int nargs, int nresults)
{
    int base = lua_gettop(L) - nargs;
    lua_pushcfunction(L, host_traceback);
    lua_insert(L, base);
    int status = lua_pcall(L, nargs, nresults, base);
    lua_remove(L, base);
    return status;
}

static int host_require_protected(lua_State *L)
{
    lua_getglobal(L, "require");
    lua_insert(L, 1);
    lua_call(L, 1, 1);
    return 1;
}

int host_require(lua_State *L, const char *name)
{
    lua_pushcfunction(L, host_require_protected);
    lua_pushstring(L, name);
    return host_pcall(L, 1, 1);
}

static int host_json_encode_protected(lua_State *L)
{
    lua_getglobal(L, "require");
    lua_pushliteral(L, "json");
    lua_call(L, 1, 1);
    lua_getfield(L, -1, "encode");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    return 1;
}

int host_json_encode(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    lua_pushcfunction(L, host_json_encode_protected);
    lua_pushvalue(L, idx);
    int status = host_pcall(L, 1, 1);
    lua_replace(L, idx);
    return status;
}

void host_mark_array(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    if (host_require(L, "json") != LUA_OK) {
        lua_pop(L, 1);
        return;
    }
    lua_getfield(L, -1, "array_mt");
    lua_setmetatable(L, idx);
    lua_pop(L, 1);
}
