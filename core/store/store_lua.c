/* o2c.store: the attachment of the database to the product VM, actors, the
 * helpers every storage binding shares (time, JSON, errors, audit), and the
 * module table itself.  The functions of each area live beside their C
 * module: store_assessment_lua.c, store_report_lua.c,
 * store_attachment_lua.c, user_lua.c, audit_lua.c. */
#include <lauxlib.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "host/lua_host.h"
#include "store/authz.h"
#include "store/store_lua_internal.h"

static const char store_lua_key = 's';    /* registry: the struct store_lua userdata */
static const char store_actors_key = 'a'; /* registry: weak table actor -> issued id */
static const char store_json_key = 'j';   /* registry: core/lua/json.lua's module */

/* Attachment */

void store_lua_config_from(struct store_lua_config *out, const struct config *cfg)
{
    memset(out, 0, sizeof *out);
    session_config_default(&out->sessions);
    throttle_config_default(&out->throttle);
    retention_config_default(&out->retention);
    out->attachments_per_assessment = 50;
    if (cfg == NULL)
        return;
    out->sessions.idle_timeout_ms = (int64_t)(cfg->sessions.idle_timeout_s * 1000);
    out->sessions.absolute_timeout_ms = (int64_t)(cfg->sessions.absolute_timeout_s * 1000);
    /* A touch interval longer than a (short, test) idle timeout would let
     * an active session expire. */
    if (out->sessions.touch_interval_ms > out->sessions.idle_timeout_ms / 4)
        out->sessions.touch_interval_ms = out->sessions.idle_timeout_ms / 4;
    out->retention.finished_job_ms = (int64_t)(cfg->retention.jobs_days * 86400000.0);
    out->retention.deleted_assessment_ms =
        (int64_t)(cfg->retention.deleted_assessments_days * 86400000.0);
    out->attachments_per_assessment = cfg->limits.attachments_per_assessment;
}

void store_lua_attach(lua_State *L, struct db *db, const struct config *cfg)
{
    if (db == NULL) {
        lua_pushnil(L);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &store_lua_key);
        return;
    }
    struct store_lua *s = lua_newuserdatauv(L, sizeof *s, 0);
    s->db = db;
    store_lua_config_from(&s->cfg, cfg);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &store_lua_key);
    /* Actor tables issued by the binding, weakly keyed: table -> id. */
    lua_newtable(L);
    lua_createtable(L, 0, 1);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &store_actors_key);
    store_lua_warm_dummy_hash();
}

void store_lua_set_throttle(lua_State *L, const struct throttle_config *throttle)
{
    struct store_lua *s = store_lua_peek(L);
    if (s)
        s->cfg.throttle = *throttle;
}

struct store_lua *store_lua_peek(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &store_lua_key);
    struct store_lua *s = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return s;
}

struct store_lua *store_lua_get(lua_State *L)
{
    struct store_lua *s = store_lua_peek(L);
    if (s == NULL)
        luaL_error(L, "o2c.store: no database is attached to this VM (store_lua_attach)");
    return s;
}

/* Errors */

int store_lua_fail(lua_State *L, struct db *db, int rc)
{
    lua_pushnil(L);
    const char *msg = db ? db_errmsg(db) : "";
    lua_pushstring(L, msg[0] ? msg : store_rc_code(rc));
    lua_pushstring(L, store_rc_code(rc));
    return 3;
}

int store_lua_failf(lua_State *L, int rc, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    lua_pushnil(L);
    lua_pushstring(L, msg);
    lua_pushstring(L, store_rc_code(rc));
    return 3;
}

int store_lua_tx_end(struct db *db, int rc)
{
    if (rc == STORE_OK)
        return db_tx_commit(db);
    db_tx_rollback(db);
    return rc;
}

/* Time */

void store_lua_iso(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    int milli = (int)(ms % 1000);
    if (milli < 0) {
        milli += 1000;
        secs--;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03dZ", date, milli);
}

void store_lua_set_time(lua_State *L, const char *name, int64_t ms)
{
    if (ms == 0)
        return;
    char iso[32], key[64];
    store_lua_iso(ms, iso);
    lua_pushstring(L, iso);
    lua_setfield(L, -2, name);
    snprintf(key, sizeof key, "%s_ms", name);
    lua_pushinteger(L, (lua_Integer)ms);
    lua_setfield(L, -2, key);
}

/* Reads exactly N digits at *P into *OUT. */
static int parse_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

/* The time part after the date: "Thh:mm[:ss[.fff]]" then "Z" or "+hh:mm". */
static int parse_clock(const char *p, struct tm *tm, int *milli, int *offset_s)
{
    if (parse_digits(&p, 2, &tm->tm_hour) || *p++ != ':' || parse_digits(&p, 2, &tm->tm_min))
        return -1;
    if (*p == ':' && (p++, parse_digits(&p, 2, &tm->tm_sec)))
        return -1;
    if (*p == '.') {
        p++;
        int digits = 0, frac = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0)
            return -1;
        for (; digits < 3; digits++)
            frac *= 10;
        *milli = frac;
    }
    if (*p == 'Z' || *p == 'z')
        return p[1] == '\0' ? 0 : -1;
    if (*p != '+' && *p != '-')
        return -1;
    int sign = *p++ == '-' ? -1 : 1, hh, mm;
    if (parse_digits(&p, 2, &hh) || *p++ != ':' || parse_digits(&p, 2, &mm) || *p != '\0')
        return -1;
    *offset_s = sign * (hh * 3600 + mm * 60);
    return 0;
}

int store_lua_parse_time(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    int year, month, day, milli = 0, offset_s = 0;
    const char *p = s;
    if (s == NULL || parse_digits(&p, 4, &year) || *p++ != '-' || parse_digits(&p, 2, &month) ||
        *p++ != '-' || parse_digits(&p, 2, &day))
        return -1;
    if (month < 1 || month > 12 || day < 1 || day > 31)
        return -1;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        if (parse_clock(p + 1, &tm, &milli, &offset_s) != 0)
            return -1;
    } else if (*p != '\0') {
        return -1;
    }
    if (tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    time_t secs = timegm(&tm);
    *ms = ((int64_t)secs - offset_s) * 1000 + milli;
    return 0;
}

/* JSON */

static void store_lua_json_module(lua_State *L)
{
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &store_json_key) == LUA_TTABLE)
        return;
    lua_pop(L, 1);
    if (host_require(L, "json") != LUA_OK)
        lua_error(L);
    lua_pushvalue(L, -1);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &store_json_key);
}

const char *store_lua_encode(lua_State *L, int idx, const char *what, size_t *len)
{
    idx = lua_absindex(L, idx);
    store_lua_json_module(L);
    lua_getfield(L, -1, "encode");
    lua_remove(L, -2);
    lua_pushvalue(L, idx);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK)
        luaL_error(L, "%s cannot be stored as JSON: %s", what, lua_tostring(L, -1));
    return lua_tolstring(L, -1, len);
}

/* Whole numbers decoded as floats (lua-cjson) become integers, so a stored
 * 3 comes back as 3, not 3.0. */
static void store_lua_integers(lua_State *L, int idx, int depth)
{
    if (depth > 64)
        return;
    idx = lua_absindex(L, idx);
    luaL_checkstack(L, 4, "decoding JSON");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        /* Stack: key, value. */
        if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
            lua_Number n = lua_tonumber(L, -1);
            lua_Integer i;
            if (lua_numbertointeger(n, &i) && (lua_Number)i == n) {
                lua_pushvalue(L, -2);
                lua_pushinteger(L, i);
                lua_rawset(L, idx); /* assigning an existing field: allowed in lua_next */
            }
        } else if (lua_type(L, -1) == LUA_TTABLE) {
            store_lua_integers(L, -1, depth + 1);
        }
        lua_pop(L, 1);
    }
}

void store_lua_decode(lua_State *L, const char *text, size_t len)
{
    store_lua_json_module(L);
    lua_getfield(L, -1, "decode");
    lua_remove(L, -2);
    lua_pushlstring(L, text ? text : "null", text ? len : 4);
    lua_call(L, 1, 2);
    if (lua_isnil(L, -2) && !lua_isnil(L, -1))
        luaL_error(L, "stored JSON is invalid: %s", lua_tostring(L, -1));
    lua_pop(L, 1);
    if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1)) {
        lua_Number n = lua_tonumber(L, -1);
        lua_Integer i;
        if (lua_numbertointeger(n, &i) && (lua_Number)i == n) {
            lua_pop(L, 1);
            lua_pushinteger(L, i);
        }
    } else if (lua_type(L, -1) == LUA_TTABLE) {
        store_lua_integers(L, -1, 0);
        /* A stored list stays a list: empty, it encodes back as []. */
        size_t i = 0;
        while (i < len && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t'))
            i++;
        if (i < len && text[i] == '[')
            store_lua_mark_array(L, -1);
    }
}

void store_lua_mark_array(lua_State *L, int idx)
{
    idx = lua_absindex(L, idx);
    store_lua_json_module(L);
    lua_getfield(L, -1, "array_mt");
    lua_setmetatable(L, idx);
    lua_pop(L, 1);
}

/* Arena */

struct store_arena_block {
    struct store_arena_block *next;
    size_t used, cap;
    max_align_t data[];
};

struct store_arena {
    struct store_arena_block *head;
    int oom;
};

#define STORE_ARENA_BLOCK 16384

static int store_arena_gc(lua_State *L)
{
    store_arena_free(lua_touserdata(L, 1));
    return 0;
}

struct store_arena *store_arena_push(lua_State *L)
{
    struct store_arena *a = lua_newuserdatauv(L, sizeof *a, 0);
    a->head = NULL;
    a->oom = 0;
    if (luaL_newmetatable(L, "o2c.store.arena")) {
        lua_pushcfunction(L, store_arena_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return a;
}

void *store_arena_alloc(struct store_arena *a, size_t size)
{
    size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    struct store_arena_block *b = a->head;
    if (b == NULL || b->cap - b->used < size) {
        size_t cap = size > STORE_ARENA_BLOCK ? size : STORE_ARENA_BLOCK;
        b = malloc(sizeof *b + cap);
        if (b == NULL) {
            a->oom = 1;
            return NULL;
        }
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    return p;
}

char *store_arena_memdup(struct store_arena *a, const void *p, size_t len)
{
    char *copy = store_arena_alloc(a, len + 1);
    if (copy) {
        memcpy(copy, p, len);
        copy[len] = '\0';
    }
    return copy;
}

char *store_arena_strdup(struct store_arena *a, const char *s)
{
    return s ? store_arena_memdup(a, s, strlen(s)) : NULL;
}

int store_arena_oom(const struct store_arena *a)
{
    return a->oom;
}

void store_arena_free(struct store_arena *a)
{
    while (a->head) {
        struct store_arena_block *next = a->head->next;
        free(a->head);
        a->head = next;
    }
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

/* Users and actors */

static void store_lua_user_fields(lua_State *L, const struct user *u)
{
    lua_createtable(L, 0, 8);
    lua_pushstring(L, u->id);
    lua_setfield(L, -2, "id");
    lua_pushstring(L, u->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, user_role_name(u->role));
    lua_setfield(L, -2, "role");
    lua_pushboolean(L, u->disabled);
    lua_setfield(L, -2, "disabled");
    store_lua_set_time(L, "created_at", u->created_at);
}

void store_lua_push_user(lua_State *L, const struct user *u)
{
    store_lua_user_fields(L, u);
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
    store_lua_user_fields(L, u);
    store_lua_issue(L, u->id);
}

void store_lua_push_system_actor(lua_State *L)
{
    const struct user *sys = authz_system_user();
    store_lua_user_fields(L, sys);
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "system");
    store_lua_issue(L, ""); /* no account has an empty id */
}

int store_lua_actor(lua_State *L, int idx, struct db *db, struct user *out)
{
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx))
        luaL_argerror(L, idx, "expected an actor (the user table from session.validate)");
    lua_rawgetp(L, LUA_REGISTRYINDEX, &store_actors_key);
    lua_pushvalue(L, idx);
    lua_rawget(L, -2);
    const char *id = lua_tostring(L, -1);
    if (id == NULL)
        luaL_argerror(L, idx,
                      "this actor was not issued by o2c.session or store.system_actor() "
                      "(a handler cannot build its own)");
    int rc;
    if (id[0] == '\0') {
        *out = *authz_system_user();
        rc = STORE_OK;
    } else {
        rc = user_get_by_id(db, id, out);
    }
    lua_pop(L, 2);
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
