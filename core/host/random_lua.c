/* o2c.random: token(nbytes) -> a URL-safe base64 string of NBYTES random
 * bytes from libsodium (CSRF tokens, ids that are not UUIDs). */
#include <lauxlib.h>
#include <sodium.h>
#include "host/modules.h"

static int random_token(lua_State *L)
{
    lua_Integer n = luaL_optinteger(L, 1, 32);
    luaL_argcheck(L, n >= 8 && n <= 128, 1, "expected 8 to 128 bytes");
    unsigned char bytes[128];
    char text[sizeof bytes * 2];
    randombytes_buf(bytes, (size_t)n);
    sodium_bin2base64(text, sizeof text, bytes, (size_t)n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    lua_pushstring(L, text);
    return 1;
}

int luaopen_o2c_random(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"token", random_token}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
