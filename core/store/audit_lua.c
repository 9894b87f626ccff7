/* The audit log from Lua: o2c.audit, and the same functions in o2c.store.
 *
 *   store.audit(actor_or_nil, action, details_table?, address?, target?) -> seq
 *   store.audit_query{since=?, user=?, after=?, limit=?} -> {items=, next=}
 *   audit.record(...) = store.audit      audit.query{...} = store.audit_query
 *
 * SINCE is an ISO-8601 time or date, or Unix ms; AFTER the NEXT of the
 * previous page; LIMIT 1..1000 (default 100).  Items are in order:
 * {seq, at, at_ms, user, action, target, address, details}. */
#include <lauxlib.h>
#include <string.h>
#include "store/audit.h"
#include "store/query.h"
#include "store/rowset_lua.h"
#include "store/store_lua_internal.h"

#define AUDIT_PAGE_DEFAULT 100
#define AUDIT_PAGE_MAX 1000

static int store_audit_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct user actor;
    int rc = STORE_OK;
    int has_actor = store_lua_opt_actor(L, 1, s->db, &actor, &rc);
    const char *action = store_lua_check_text(L, 2);
    const char *details = NULL;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        details = store_lua_encode(L, 3, "audit details", NULL);
    }
    const char *address = store_lua_opt_text(L, 4);
    const char *target = store_lua_opt_text(L, 5);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    struct audit_event ev = {.user = store_lua_actor_name(has_actor ? &actor : NULL),
                             .action = action,
                             .target = target,
                             .address = address,
                             .details = details};
    int64_t seq = 0;
    if ((rc = audit_append(s->db, &ev, &seq)) != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    lua_pushinteger(L, (lua_Integer)seq); /* the event's seq */
    return 1;
}

static int64_t query_since(lua_State *L, int idx)
{
    int type = lua_getfield(L, idx, "since");
    int64_t ms = 0;
    if (type == LUA_TSTRING) {
        if (store_lua_parse_time(lua_tostring(L, -1), &ms) != 0)
            luaL_error(L, "audit_query: since must be an ISO-8601 time or date (got \"%s\")",
                       lua_tostring(L, -1));
    } else if (type == LUA_TNUMBER) {
        ms = (int64_t)lua_tointeger(L, -1);
    } else if (type != LUA_TNIL) {
        luaL_error(L, "audit_query: since must be a time string or Unix ms");
    }
    lua_pop(L, 1);
    return ms;
}

static int store_audit_query_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct audit_filter f = {0};
    int64_t limit = AUDIT_PAGE_DEFAULT;
    if (!lua_isnoneornil(L, 1)) {
        luaL_checktype(L, 1, LUA_TTABLE);
        f.since_ms = query_since(L, 1);
        f.user = store_lua_field_string(L, 1, "user", 0, NULL);
        f.after_seq = store_lua_field_int(L, 1, "after", 0);
        limit = store_lua_field_int(L, 1, "limit", AUDIT_PAGE_DEFAULT);
    }
    if (limit < 1)
        limit = 1;
    if (limit > AUDIT_PAGE_MAX)
        limit = AUDIT_PAGE_MAX;
    f.limit = (int)limit + 1; /* one more tells whether there is a next page */
    struct rowset *rs = rowset_lua_new(L, 0);
    int rc = audit_rows(s->db, &f, rs);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    rowset_push_page(L, rs, (size_t)limit, (size_t)rowset_column(rs, "seq"));
    return 1;
}

void store_lua_audit_funcs(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"audit", store_audit_lua}, {"audit_query", store_audit_query_lua}, {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
}

int luaopen_o2c_audit(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"record", store_audit_lua}, {"query", store_audit_query_lua}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
