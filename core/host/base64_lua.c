/* o2c.base64: encode(bytes) -> standard base64 text with padding (libsodium),
 * e.g. evidence images sent to a provider as image blocks. */
#include <lauxlib.h>
#include <sodium.h>
#include "host/modules.h"

static int base64_encode(lua_State *L)
{
    size_t len;
    const char *bytes = luaL_checklstring(L, 1, &len);
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    luaL_Buffer b;
    char *out = luaL_buffinitsize(L, &b, cap);
    sodium_bin2base64(out, cap, (const unsigned char *)bytes, len, sodium_base64_VARIANT_ORIGINAL);
    luaL_pushresultsize(&b, cap - 1); /* without the terminating NUL */
    return 1;
}

int luaopen_o2c_base64(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"encode", base64_encode}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
