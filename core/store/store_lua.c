/* o2c.store: the module table, registering the functions of each area
 * (store_assessment_lua.c, store_report_lua.c, store_attachment_lua.c,
 * user_lua.c, audit_lua.c) and the few of general use below.  The helpers
 * the bindings share live apart: store_lua_attach.c, store_lua_check.c,
 * store_lua_time.c, store_lua_json.c, store_lua_actor.c and rowset_lua.c. */
#include <lauxlib.h>
#include <stdio.h>
#include "store/store_lua_internal.h"

/* Module functions of general use */

/* store.check() -> true | nil, message: the cheap query behind /readyz. */
static int store_check(lua_State *L)
{
    struct store_lua *s = store_lua_peek(L);
    if (s == NULL)
        return store_lua_failf(L, STORE_ERROR, "no database is attached");
    int version = db_schema_version(s->db);
    if (version != DB_SCHEMA_VERSION)
        return store_lua_failf(L, STORE_ERROR, "database %s: schema version %d, expected %d",
                               db_path(s->db), version, DB_SCHEMA_VERSION);
    lua_pushboolean(L, 1);
    return 1;
}

static void push_retention_counts(lua_State *L, const struct retention_counts *c)
{
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, c->sessions);
    lua_setfield(L, -2, "sessions");
    lua_pushinteger(L, c->login_failures);
    lua_setfield(L, -2, "login_failures");
    lua_pushinteger(L, c->jobs);
    lua_setfield(L, -2, "jobs");
    lua_pushinteger(L, c->assessments);
    lua_setfield(L, -2, "assessments");
    lua_pushinteger(L, c->orphan_files);
    lua_setfield(L, -2, "orphan_files");
}

int store_retention_run_audited(struct db *db, const struct store_lua_config *settings,
                                struct retention_counts *counts)
{
    int rc =
        retention_run(db, &settings->retention, &settings->sessions, &settings->throttle, counts);
    char details[256];
    snprintf(details, sizeof details,
             "{\"ok\":%s,\"sessions\":%lld,\"login_failures\":%lld,\"jobs\":%lld,"
             "\"assessments\":%lld,\"orphan_files\":%lld}",
             rc == STORE_OK ? "true" : "false", (long long)counts->sessions,
             (long long)counts->login_failures, (long long)counts->jobs,
             (long long)counts->assessments, (long long)counts->orphan_files);
    int arc = store_lua_audit(db, NULL, "retention.run", NULL, NULL, details);
    return rc != STORE_OK ? rc : arc;
}

/* store.retention_run() -> counts | nil, message, code */
static int store_retention_run(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct retention_counts counts;
    int rc = store_retention_run_audited(s->db, &s->cfg, &counts);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    push_retention_counts(L, &counts);
    return 1;
}

static int store_system_actor(lua_State *L)
{
    store_lua_get(L);
    store_lua_push_system_actor(L);
    return 1;
}

int luaopen_o2c_store(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"check", store_check},
                                     {"retention_run", store_retention_run},
                                     {"system_actor", store_system_actor},
                                     {NULL, NULL}};
    luaL_newlib(L, funcs);
    store_lua_user_funcs(L);
    store_lua_assessment_funcs(L);
    store_lua_report_funcs(L);
    store_lua_attachment_funcs(L);
    store_lua_audit_funcs(L);
    return 1;
}
