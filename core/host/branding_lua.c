/* o2c.branding (branding.h): the logo the configuration names, as read at
 * start-up.
 *
 *   branding.logo() -> bytes, "image/png" | "image/svg+xml"   (nil when none) */
#include <lauxlib.h>
#include "host/branding.h"

static int branding_logo_lua(lua_State *L)
{
    size_t len;
    const char *mime;
    const char *data = branding_logo(&len, &mime);
    if (!data)
        return 0;
    lua_pushlstring(L, data, len);
    lua_pushstring(L, mime);
    return 2;
}

int luaopen_o2c_branding(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"logo", branding_logo_lua}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
