/* Actors (store_lua.h): user tables issued by the binding, recorded weakly
 * with the id they were issued for, and reloaded by that id on every use. */
#include <lauxlib.h>
#include <stdio.h>
#include "store/authz.h"
#include "store/query.h"
#include "store/store_lua_internal.h"
#include "store/uuid.h"

static const char store_actors_key = 'a'; /* registry: weak table actor -> issued id */

void store_lua_actors_init(lua_State *L)
{
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &store_actors_key);
}

/* Users and actors */

void store_lua_push_user(lua_State *L, const struct user *u)
{
    lua_createtable(L, 0, 8);
    lua_pushstring(L, u->id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, u->name);
    lua_setfield(L, -2, "username");
    lua_pushstring(L, u->name); /* deprecated spelling, kept for one version */
    lua_setfield(L, -2, "name");
    lua_pushstring(L, user_role_name(u->role));
    lua_setfield(L, -2, "role");
    lua_pushboolean(L, u->disabled);
    lua_setfield(L, -2, "disabled");
    lua_pushboolean(L, u->removed);
    lua_setfield(L, -2, "removed");
    store_lua_set_time(L, "created_at", u->created_at);
}

/* Records the table on top as an actor issued for ID (stack unchanged). */
static void store_lua_issue(lua_State *L, const char *id)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &store_actors_key) != LUA_TTABLE)
        luaL_error(L, "o2c.store: no database is attached to this VM (store_lua_attach)");
    lua_pushvalue(L, -2);
    lua_pushstring(L, id);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

void store_lua_push_actor(lua_State *L, const struct user *u)
{
    store_lua_push_user(L, u);
    store_lua_issue(L, u->id);
}

void store_lua_push_system_actor(lua_State *L)
{
    const struct user *sys = authz_system_user();
    store_lua_push_user(L, sys);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "system");
    store_lua_issue(L, ""); /* no account has an empty id */
}

void store_lua_actor_ref(lua_State *L, int idx, char id[UUID_STR_LEN])
{
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx))
        luaL_argerror(L, idx, "expected an actor (the user table from session.validate)");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &store_actors_key);
    lua_pushvalue(L, idx);
    lua_rawget(L, -2);
    const char *issued = lua_tostring(L, -1);
    if (issued == NULL)
        luaL_argerror(L, idx,
                      "this actor was not issued by o2c.session or store.system_actor() "
                      "(a handler cannot build its own)");
    snprintf(id, UUID_STR_LEN, "%s", issued);
    lua_pop(L, 2);
}

int store_actor_load(struct db *db, const char *id, struct user *out)
{
    if (id[0] == '\0') {
        *out = *authz_system_user();
        return STORE_OK;
    }
    return user_get_by_id(db, id, out);
}

int store_lua_actor(lua_State *L, int idx, struct db *db, struct user *out)
{
    char id[UUID_STR_LEN];
    store_lua_actor_ref(L, idx, id);
    return store_actor_load(db, id, out);
}

int store_lua_actor_and_id(lua_State *L, struct db *db, const char *kind, struct user *actor,
                           const char **id)
{
    int rc = store_lua_actor(L, 1, db, actor);
    *id = store_lua_check_text(L, 2);
    if (rc == STORE_OK && !uuid_is_v7(*id))
        rc = db_fail(db, STORE_NOT_FOUND, "no %s %.40s", kind, *id);
    return rc;
}

int store_lua_opt_actor(lua_State *L, int idx, struct db *db, struct user *out, int *rc)
{
    if (lua_isnoneornil(L, idx))
        return 0;
    *rc = store_lua_actor(L, idx, db, out);
    return 1;
}

const char *store_lua_actor_name(const struct user *u)
{
    if (u == NULL || u->id[0] == '\0')
        return NULL;
    return u->name;
}

int store_lua_audit(struct db *db, const struct user *actor, const char *action, const char *target,
                    const char *address, const char *details)
{
    struct audit_event ev = {.user = store_lua_actor_name(actor),
                             .action = action,
                             .target = target,
                             .address = address,
                             .details = details};
    return audit_append(db, &ev, NULL);
}

int store_lua_audit_end(struct db *db, int rc, const struct user *actor, const char *action,
                        const char *target, const char *address, const char *details)
{
    if (rc == STORE_OK)
        rc = store_lua_audit(db, actor, action, target, address, details);
    return db_tx_end(db, rc);
}
