/* Argument checks and failure answers shared by the storage bindings:
 * option-table readers that refuse NUL bytes, the nil, message, code
 * triple of an expected failure, and the push that ends a read. */
#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include "store/query.h"
#include "store/rowset_lua.h"
#include "store/store.h"
#include "store/store_lua_internal.h"

/* Errors */

static int push_failure(lua_State *L, int rc, const char *msg)
{
    lua_pushnil(L);
    lua_pushstring(L, msg[0] ? msg : store_rc_code(rc));
    lua_pushstring(L, store_rc_code(rc));
    return 3;
}

int store_lua_fail(lua_State *L, struct db *db, int rc)
{
    return push_failure(L, rc, db ? db_errmsg(db) : "");
}

int store_lua_failf(lua_State *L, int rc, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return push_failure(L, rc, msg);
}

int store_lua_push_rows(lua_State *L, struct db *db, int rc, const struct rowset *rs,
                        enum store_lua_shape shape)
{
    if (rc != STORE_OK)
        return store_lua_fail(L, db, rc);
    if (shape == STORE_LUA_ROW)
        rowset_push_row(L, rs, 0);
    else if (shape == STORE_LUA_MAP)
        rowset_push_map(L, rs);
    else
        rowset_push_list(L, rs, SIZE_MAX);
    return 1;
}

int store_lua_assessment_read(lua_State *L, const char *sql, const char *what, const char *none,
                              enum store_lua_shape shape)
{
    struct store_lua *s = store_lua_get(L);
    struct user actor;
    const char *id;
    int rc = store_lua_actor_and_id(L, s->db, "assessment", &actor, &id);
    struct rowset *rs = rowset_lua_new(L, 0);
    if (rc == STORE_OK)
        rc = store_assessment_query(s->db, &actor, id, sql, what, rs, DB_ARGS(DB_TEXT(id)));
    if (rc == STORE_OK && none && rs->nrows == 0)
        rc = db_fail(s->db, STORE_NOT_FOUND, "no %s stored for assessment %.40s", none, id);
    return store_lua_push_rows(L, s->db, rc, rs, shape);
}

int store_lua_done(lua_State *L, struct db *db, int rc)
{
    if (rc != STORE_OK)
        return store_lua_fail(L, db, rc);
    lua_pushboolean(L, 1);
    return 1;
}

/* Option tables */

const char *store_lua_field_string(lua_State *L, int idx, const char *key, int required,
                                   size_t *len)
{
    int type = lua_getfield(L, idx, key);
    const char *s = NULL;
    size_t n = 0;
    if (type == LUA_TSTRING)
        s = lua_tolstring(L, -1, &n);
    else if (type != LUA_TNIL || required)
        luaL_error(L, "field '%s' must be a string (got %s)", key, luaL_typename(L, -1));
    if (s && memchr(s, '\0', n) != NULL)
        luaL_error(L, "field '%s' holds a NUL byte; the store keeps no NUL in text", key);
    if (len)
        *len = n;
    lua_pop(L, 1); /* the string stays alive: the table at IDX holds it */
    return s;
}

const char *store_lua_check_text(lua_State *L, int idx)
{
    size_t len;
    const char *s = luaL_checklstring(L, idx, &len);
    if (memchr(s, '\0', len) != NULL)
        luaL_argerror(L, idx, "text holds a NUL byte; the store keeps no NUL in text");
    return s;
}

const char *store_lua_opt_text(lua_State *L, int idx)
{
    return lua_isnoneornil(L, idx) ? NULL : store_lua_check_text(L, idx);
}

int64_t store_lua_field_int(lua_State *L, int idx, const char *key, int64_t dflt)
{
    int type = lua_getfield(L, idx, key);
    int64_t v = dflt;
    if (type != LUA_TNIL) {
        int isnum = 0;
        lua_Integer n = lua_tointegerx(L, -1, &isnum);
        if (!isnum)
            luaL_error(L, "field '%s' must be a whole number (got %s)", key,
                       luaL_tolstring(L, -1, NULL));
        v = (int64_t)n;
    }
    lua_pop(L, 1);
    return v;
}
