/* o2c.assets: the files of core/web and core/data embedded in the binary.
 *   assets.get("web/app.js") -> text or nil;  assets.list() -> {web/ names}
 *   assets.get("data/reference.docx"): files the exports hand to helpers */
#include <lauxlib.h>
#include <string.h>
#include "host/embedded.h"
#include "host/modules.h"

static int assets_get(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    int shipped = strncmp(name, "web/", 4) == 0 || strncmp(name, "data/", 5) == 0;
    const struct embedded_file *f = shipped ? embedded_find(name) : NULL;
    if (!f)
        lua_pushnil(L);
    else
        lua_pushlstring(L, f->data, f->size);
    return 1;
}

static int assets_list(lua_State *L)
{
    lua_newtable(L);
    lua_Integer n = 0;
    for (const struct embedded_file *f = embedded_files; f->name; f++) {
        if (strncmp(f->name, "web/", 4) != 0)
            continue;
        lua_pushstring(L, f->name);
        lua_rawseti(L, -2, ++n);
    }
    return 1;
}

int luaopen_o2c_assets(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"get", assets_get}, {"list", assets_list}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
