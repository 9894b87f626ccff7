/* o2c.proxies: the trusted_proxies setting for the API's Context.
 *   trusted(address) -> whether that address is one of the trusted proxies
 *   address(text)    -> TEXT as a canonical IP address, or nil when it is not one
 * Ranges are parsed once when the configuration loads (host/config.c). */
#include <lauxlib.h>
#include "host/cidr.h"
#include "host/config.h"
#include "host/modules.h"

static int proxies_trusted(lua_State *L)
{
    const char *address = luaL_checkstring(L, 1);
    const struct config *cfg = config_current();
    lua_pushboolean(L, cfg && cidr_list_match(cfg->proxies, cfg->proxy_count, address));
    return 1;
}

static int proxies_address(lua_State *L)
{
    char canonical[CIDR_ADDRESS_MAX];
    if (cidr_address_canonical(luaL_checkstring(L, 1), canonical) == 0)
        lua_pushstring(L, canonical);
    else
        lua_pushnil(L);
    return 1;
}

int luaopen_o2c_proxies(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"trusted", proxies_trusted}, {"address", proxies_address}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
