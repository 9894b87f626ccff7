/* o2c.auth: the access rules of authz.h for handlers.
 *
 *   auth.is_admin(actor) -> bool          (an enabled admin, as stored now)
 *   auth.can_access(actor, assessment) -> bool   (assessment: a table with owner)
 *
 * The actor is reloaded by the id it was issued for (store_lua.h), so a
 * table claiming role = "admin" proves nothing.  An account that is gone
 * or disabled may access nothing. */
#include <lauxlib.h>
#include "store/authz.h"
#include "store/store_lua_internal.h"

static int auth_is_admin(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct user u;
    int rc = store_lua_actor(L, 1, s->db, &u);
    lua_pushboolean(L, rc == STORE_OK && authz_is_admin(&u));
    return 1;
}

static int auth_can_access(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct user u;
    int rc = store_lua_actor(L, 1, s->db, &u);
    luaL_checktype(L, 2, LUA_TTABLE);
    const char *owner = store_lua_field_string(L, 2, "owner", 0, NULL);
    lua_pushboolean(L, rc == STORE_OK && authz_can_access_owner(&u, owner));
    return 1;
}

int luaopen_o2c_auth(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"is_admin", auth_is_admin}, {"can_access", auth_can_access}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
