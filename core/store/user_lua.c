/* o2c.store user functions: accounts, with argon2id hashing on the thread
 * pool (the calling task waits; the loop keeps serving).
 *
 *   store.user_add{name=, role=, password=, actor=?, address=?} -> user
 *   store.user_get(name) -> user          store.user_list() -> {user...}
 *   store.user_set_password(name, password, actor?, address?) -> true, revoked_sessions
 *   store.user_set_disabled(name, bool, actor?, address?) -> true, revoked_sessions
 *   store.user_set_role(name, role, actor?, address?) -> true
 *   store.user_remove(name, reassign_to?, actor?, address?)
 *       -> {user=, reassigned_to=?, assessments_reassigned=, assessments_read_only=,
 *           revoked_sessions=}
 *
 * Users here are plain tables {id, username, name (the same, deprecated),
 * role, disabled, removed, created_at}, not actors.  ACTOR, when given, must be an enabled admin
 * (else "not_found", as for any admin-only thing) and is who the audit log names; without it the
 * change is recorded as the system's.  Every change and its audit event are one transaction.
 * Disabling, demoting or removing the last enabled admin is refused; a removed account cannot be
 * changed. */
#include <lauxlib.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/authz.h"
#include "store/query.h"
#include "store/password.h"
#include "store/rowset_lua.h"
#include "store/store_lua_internal.h"

enum hash_kind { HASH_ADD, HASH_SET_PASSWORD };

struct hash_op {
    enum hash_kind kind;
    char *password; /* malloc'd copy, wiped when released */
    size_t password_len;
    char hash[PASSWORD_HASH_MAX];
    char err[160];
    int ok;
    char name[USER_NAME_MAX + 1];
    enum user_role role;
    struct user actor;
    int has_actor;
    char address[128];
};

static void hash_op_release(void *data)
{
    struct hash_op *op = data;
    if (op->password) {
        sodium_memzero(op->password, op->password_len);
        free(op->password);
    }
    sodium_memzero(op->hash, sizeof op->hash);
    free(op);
}

static void hash_op_work(void *data)
{
    struct hash_op *op = data;
    op->ok = password_hash(op->password, op->hash, op->err, sizeof op->err) == 0;
}

/* Reads the optional admin actor at IDX into OP; returns a store code. */
static int user_lua_admin(lua_State *L, int idx, struct db *db, struct user *actor, int *has)
{
    int rc = STORE_OK;
    *has = store_lua_opt_actor(L, idx, db, actor, &rc);
    if (*has && rc == STORE_OK && !authz_is_admin(actor))
        rc = db_fail(db, STORE_NOT_FOUND, "managing accounts needs an admin");
    return rc;
}

static int hash_op_push(lua_State *co, void *data)
{
    struct hash_op *op = data;
    struct store_lua *s = store_lua_get(co);
    if (!op->ok)
        return store_lua_failf(co, STORE_REFUSED, "%s", op->err[0] ? op->err : "hashing failed");
    char details[160];
    struct user u;
    int64_t revoked = 0;
    int rc = db_tx_begin(s->db);
    if (rc != STORE_OK)
        return store_lua_fail(co, s->db, rc);
    const char *action = op->kind == HASH_ADD ? "user.added" : "user.password_changed";
    if (op->kind == HASH_ADD) {
        snprintf(details, sizeof details, "{\"role\":\"%s\"}", user_role_name(op->role));
        rc = user_add(s->db, op->name, op->role, op->hash, &u);
    } else {
        rc = user_set_password(s->db, op->name, op->hash, &revoked);
        snprintf(details, sizeof details, "{\"revoked_sessions\":%lld}", (long long)revoked);
    }
    rc = store_lua_audit_end(s->db, rc, op->has_actor ? &op->actor : NULL, action, op->name,
                             op->address[0] ? op->address : NULL, details);
    if (rc != STORE_OK)
        return store_lua_fail(co, s->db, rc);
    if (op->kind == HASH_ADD) {
        store_lua_push_user(co, &u);
        return 1;
    }
    lua_pushboolean(co, 1);
    lua_pushinteger(co, revoked);
    return 2;
}

/* Validates, then hashes PASSWORD on the pool; OP is filled by the caller. */
static int user_lua_hash(lua_State *L, struct hash_op *op, const char *password)
{
    char why[160];
    if (password_check_policy(password, why, sizeof why) != 0) {
        hash_op_release(op);
        return store_lua_failf(L, STORE_REFUSED, "%s", why);
    }
    op->password_len = strlen(password) + 1;
    op->password = malloc(op->password_len);
    if (op->password == NULL) {
        hash_op_release(op);
        return luaL_error(L, "out of memory");
    }
    memcpy(op->password, password, op->password_len);
    return store_lua_work(L, 1, hash_op_work, hash_op_push, hash_op_release, op);
}

/* The work for account NAME, done for ACTOR (when HAS_ACTOR) from ADDRESS
 * (may be NULL). */
static struct hash_op *hash_op_new(lua_State *L, enum hash_kind kind, const char *name,
                                   const struct user *actor, int has_actor, const char *address)
{
    struct hash_op *op = calloc(1, sizeof *op);
    if (op == NULL)
        luaL_error(L, "out of memory");
    op->kind = kind;
    snprintf(op->name, sizeof op->name, "%s", name);
    op->actor = *actor;
    op->has_actor = has_actor;
    snprintf(op->address, sizeof op->address, "%s", address ? address : "");
    return op;
}

/* store.user_add{name=, role=, password=, actor=?, address=?} */
static int store_user_add(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    struct store_lua *s = store_lua_get(L);
    const char *name = store_lua_field_string(L, 1, "name", 1, NULL);
    const char *role = store_lua_field_string(L, 1, "role", 1, NULL);
    const char *password = store_lua_field_string(L, 1, "password", 1, NULL);
    const char *address = store_lua_field_string(L, 1, "address", 0, NULL);
    struct user actor, existing;
    int has_actor;
    lua_getfield(L, 1, "actor");
    int rc = user_lua_admin(L, -1, s->db, &actor, &has_actor);
    lua_pop(L, 1);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    enum user_role r;
    if (user_role_parse(role, &r) != 0)
        return store_lua_failf(L, STORE_INVALID, "role must be admin or consultant (got \"%.40s\")",
                               role);
    if (!user_name_valid(name))
        return store_lua_failf(L, STORE_INVALID,
                               "invalid user name \"%.80s\": use 1-%d letters, digits, . _ - @",
                               name, USER_NAME_MAX);
    /* Checked before hashing, so a taken name costs no 100 ms; user_add
     * checks again (a unique index) after. */
    if ((rc = user_get_by_name(s->db, name, &existing)) == STORE_OK)
        return store_lua_fail(L, s->db, user_name_taken(s->db, name));
    if (rc != STORE_NOT_FOUND)
        return store_lua_fail(L, s->db, rc);
    struct hash_op *op = hash_op_new(L, HASH_ADD, name, &actor, has_actor, address);
    op->role = r;
    return user_lua_hash(L, op, password);
}

/* store.user_set_password(name, password, actor?, address?) */
static int store_user_set_password(lua_State *L)
{
    const char *name = store_lua_check_text(L, 1);
    const char *password = store_lua_check_text(L, 2);
    const char *address = store_lua_opt_text(L, 4);
    struct store_lua *s = store_lua_get(L);
    struct user actor, existing;
    int has_actor;
    int rc = user_lua_admin(L, 3, s->db, &actor, &has_actor);
    if (rc == STORE_OK)
        rc = user_get_by_name(s->db, name, &existing);
    if (rc == STORE_OK) /* before the 100 ms of hashing */
        rc = user_refuse_removed(s->db, &existing);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    struct hash_op *op =
        hash_op_new(L, HASH_SET_PASSWORD, existing.name, &actor, has_actor, address);
    return user_lua_hash(L, op, password);
}

static int store_user_get(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct user u;
    int rc = user_get_by_name(s->db, store_lua_check_text(L, 1), &u);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    store_lua_push_user(L, &u);
    return 1;
}

static int store_user_list(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct rowset *rs = rowset_lua_new(L, 0);
    return store_lua_push_rows(L, s->db, user_rows(s->db, rs), rs, STORE_LUA_LIST);
}

/* Common start of set_disabled / set_role: the actor (at 3) and the target
 * NAME; a change LEAVES_ADMIN_ROLE (disabling, demoting) is refused for
 * the last enabled admin.  0 to go on, else the count of the failure
 * pushed. */
static int user_change_start(lua_State *L, struct store_lua *s, const char *name,
                             int leaves_admin_role, struct user *actor, int *has_actor)
{
    struct user target;
    int last = 0, rc = user_lua_admin(L, 3, s->db, actor, has_actor);
    if (rc == STORE_OK)
        rc = user_get_by_name(s->db, name, &target);
    if (rc == STORE_OK && leaves_admin_role)
        rc = user_is_last_admin(s->db, &target, &last);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    if (last)
        return store_lua_failf(L, STORE_REFUSED,
                               "%s is the only enabled admin; make another admin first", name);
    return 0;
}

static int store_user_set_disabled(lua_State *L)
{
    const char *name = store_lua_check_text(L, 1);
    luaL_checktype(L, 2, LUA_TBOOLEAN);
    int disabled = lua_toboolean(L, 2);
    const char *address = store_lua_opt_text(L, 4);
    struct store_lua *s = store_lua_get(L);
    struct user actor;
    int has_actor, n = user_change_start(L, s, name, disabled, &actor, &has_actor), rc;
    if (n > 0)
        return n;
    int64_t revoked = 0;
    char details[64];
    if ((rc = db_tx_begin(s->db)) != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    rc = user_set_disabled(s->db, name, disabled, &revoked);
    snprintf(details, sizeof details, "{\"revoked_sessions\":%lld}", (long long)revoked);
    rc = store_lua_audit_end(s->db, rc, has_actor ? &actor : NULL,
                             disabled ? "user.disabled" : "user.enabled", name, address, details);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    lua_pushboolean(L, 1);
    lua_pushinteger(L, revoked);
    return 2;
}

static int store_user_set_role(lua_State *L)
{
    const char *name = store_lua_check_text(L, 1);
    const char *role = store_lua_check_text(L, 2);
    const char *address = store_lua_opt_text(L, 4);
    struct store_lua *s = store_lua_get(L);
    enum user_role r;
    if (user_role_parse(role, &r) != 0)
        return store_lua_failf(L, STORE_INVALID, "role must be admin or consultant (got \"%.40s\")",
                               role);
    struct user actor;
    int has_actor, n = user_change_start(L, s, name, r != USER_ROLE_ADMIN, &actor, &has_actor), rc;
    if (n > 0)
        return n;
    char details[64];
    snprintf(details, sizeof details, "{\"role\":\"%s\"}", user_role_name(r));
    if ((rc = db_tx_begin(s->db)) == STORE_OK)
        rc = store_lua_audit_end(s->db, user_set_role(s->db, name, r), has_actor ? &actor : NULL,
                                 "user.role_changed", name, address, details);
    return store_lua_done(L, s->db, rc);
}

/* The answer of store.user_remove: what happened, for the caller to show. */
static void user_lua_push_removal(lua_State *L, const struct user_removal *r,
                                  const char *reassign_to)
{
    lua_createtable(L, 0, 5);
    store_lua_push_user(L, &r->user);
    lua_setfield(L, -2, "user");
    if (reassign_to) {
        lua_pushstring(L, reassign_to);
        lua_setfield(L, -2, "reassigned_to");
    }
    lua_pushinteger(L, r->reassigned);
    lua_setfield(L, -2, "assessments_reassigned");
    lua_pushinteger(L, r->read_only);
    lua_setfield(L, -2, "assessments_read_only");
    lua_pushinteger(L, r->revoked);
    lua_setfield(L, -2, "revoked_sessions");
}

/* store.user_remove(name, reassign_to?, actor?, address?) */
static int store_user_remove(lua_State *L)
{
    const char *name = store_lua_check_text(L, 1);
    const char *reassign_to = store_lua_opt_text(L, 2);
    const char *address = store_lua_opt_text(L, 4);
    struct store_lua *s = store_lua_get(L);
    struct user actor;
    struct user_removal removal;
    int has_actor, rc = user_lua_admin(L, 3, s->db, &actor, &has_actor);
    if (rc == STORE_OK && (rc = db_tx_begin(s->db)) == STORE_OK) {
        char fields[200], details[224];
        rc = user_remove(s->db, name, reassign_to, &removal);
        user_removal_details(&removal, reassign_to, fields, sizeof fields);
        snprintf(details, sizeof details, "{%s}", fields);
        /* A second pass over a removed account only moves what it left. */
        rc = store_lua_audit_end(s->db, rc, has_actor ? &actor : NULL,
                                 removal.was_removed ? "user.assessments_reassigned"
                                                     : "user.removed",
                                 name, address, details);
    }
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    user_lua_push_removal(L, &removal, reassign_to);
    return 1;
}

void store_lua_user_funcs(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"user_add", store_user_add},
                                     {"user_get", store_user_get},
                                     {"user_list", store_user_list},
                                     {"user_set_password", store_user_set_password},
                                     {"user_set_disabled", store_user_set_disabled},
                                     {"user_set_role", store_user_set_role},
                                     {"user_remove", store_user_remove},
                                     {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
}
