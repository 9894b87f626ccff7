/* o2c.session: login, token validation, logout.
 *
 *   session.login(username, password, address?) -> {token=, user=, expires_at=,
 *       expires_at_ms=, idle_expires_at=, idle_expires_at_ms=}
 *     | nil, "wrong user name or password", "invalid"
 *     | nil, message, "refused", retry_after_s          (throttled)
 *     | nil, message, "wait"        (other sign-ins hold the rest of the budget:
 *                                    call again once one has finished)
 *     | nil, message, "busy"                            (hashing queue full)
 *   session.validate(token) -> user, info{expires_at, idle_expires_at, created_at, ..._ms}
 *     | nil                                             (unknown, expired, revoked, disabled)
 *   session.logout(token, address?) -> true | nil, message, "not_found"
 *   session.count() -> live sessions
 *
 * The user tables returned by login and validate are actors (store_lua.h).
 *
 * A login: the attempt is reserved with the throttle first (5 failures or
 * attempts in flight per account and per address in 15 minutes by default:
 * store/throttle.h), so a refusal comes before anything about the password
 * is looked at and depends on the budget alone; then the stored hash is
 * read on the loop, argon2id verifies on the pool (an unknown name is
 * verified against the dummy hash, so both answers are the same and take
 * the same time), and on the loop the reservation is settled (a failure, or
 * dropped with the account's failures on success) in the transaction that
 * writes the audit event and the session.  An admitted guess is always
 * answered truthfully: guesses sent all at once are admitted only while the
 * budget has room (the others are told to wait, and api/session.lua queues
 * them until an attempt settles), so concurrency buys an attacker no extra
 * guesses, and no right password is ever refused after its verify.
 * */
#include <lauxlib.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/password.h"
#include "store/session.h"
#include "store/store_lua_internal.h"
#include "store/throttle.h"

#define LOGIN_FAILED_MESSAGE "wrong user name or password"
#define LOGIN_NAME_MAX 256 /* longer names cannot exist; the throttle key is bounded too */

struct login_op {
    char name[LOGIN_NAME_MAX + 1];
    int name_valid;
    char address[128];
    int has_address;
    char user_id[UUID_STR_LEN]; /* "" for an unknown name */
    char hash[PASSWORD_HASH_MAX];
    char new_hash[PASSWORD_HASH_MAX]; /* the password under today's limits, or "" */
    char attempt[UUID_STR_LEN];       /* the throttle's reservation (throttle.h) */
    int match;
    size_t password_len;
    char password[]; /* password_len bytes and a NUL */
};

static void login_release(void *data)
{
    struct login_op *op = data;
    sodium_memzero(op, sizeof *op + op->password_len + 1);
    free(op);
}

/* Verifies; a right password whose hash has older limits is hashed again
 * here, on the pool, and stored by login_push. */
static void login_work(void *data)
{
    struct login_op *op = data;
    op->match = password_verify(op->hash[0] ? op->hash : NULL, op->password);
    char err[160];
    if (op->match && password_needs_rehash(op->hash) &&
        password_hash(op->password, op->new_hash, err, sizeof err) != 0)
        op->new_hash[0] = '\0'; /* kept as it is; verified again next time */
}

static const char *op_address(const struct login_op *op)
{
    return op->has_address ? op->address : NULL;
}

static const char *op_target(const struct login_op *op)
{
    return op->name_valid ? op->name : NULL;
}

/* Refused attempts cost no hashing, so a client could send thousands a
 * second; the append-only audit log records at most one per account and
 * address per minute (the failures that led to the refusal are all there).
 * A small table of hashed keys: a collision only means one more or one
 * fewer event. */
#define REFUSED_AUDIT_SLOTS 256
#define REFUSED_AUDIT_EVERY_MS 60000

static struct {
    uint64_t key;
    int64_t at;
} refused_audit[REFUSED_AUDIT_SLOTS];

static uint64_t fnv1a(uint64_t h, const char *s)
{
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return (h ^ 0xff) * 1099511628211ULL;
}

static int refused_audit_due(const char *name, const char *address, int64_t now)
{
    uint64_t key = fnv1a(fnv1a(14695981039346656037ULL, name), address);
    size_t slot = (size_t)(key % REFUSED_AUDIT_SLOTS);
    if (refused_audit[slot].key == key && now - refused_audit[slot].at < REFUSED_AUDIT_EVERY_MS &&
        now >= refused_audit[slot].at)
        return 0;
    refused_audit[slot].key = key;
    refused_audit[slot].at = now;
    return 1;
}

/* Pushes the throttled answer and audits it. */
static int login_refused(lua_State *L, struct store_lua *s, const struct login_op *op,
                         int64_t retry_after)
{
    char msg[256], details[64];
    snprintf(msg, sizeof msg, "%s", db_errmsg(s->db));
    snprintf(details, sizeof details, "{\"retry_after_s\":%lld}", (long long)retry_after);
    if (refused_audit_due(op->name, op_address(op), db_now_ms(s->db)))
        store_lua_audit(s->db, NULL, "login.refused", op_target(op), op_address(op), details);
    lua_pushnil(L);
    lua_pushstring(L, msg);
    lua_pushstring(L, store_rc_code(STORE_REFUSED));
    lua_pushinteger(L, retry_after);
    return 4;
}

/* Pushes nil, message, "wait": nothing was tried (throttle_reserve). */
static int login_wait(lua_State *L, struct store_lua *s)
{
    lua_pushnil(L);
    lua_pushstring(L, db_errmsg(s->db));
    lua_pushliteral(L, "wait");
    return 3;
}

static int login_failed(lua_State *L, struct store_lua *s, const struct login_op *op,
                        const char *reason)
{
    int rc = db_tx_begin(s->db);
    if (rc == STORE_OK) {
        char details[64];
        snprintf(details, sizeof details, "{\"reason\":\"%s\"}", reason);
        rc = store_lua_audit_end(s->db, throttle_settle_failure(s->db, op->attempt), NULL,
                                 "login.failed", op_target(op), op_address(op), details);
    }
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    return store_lua_failf(L, STORE_INVALID, LOGIN_FAILED_MESSAGE);
}

static void push_session_info(lua_State *L, const struct session_info *info)
{
    store_lua_set_time(L, "expires_at", info->expires_at);
    store_lua_set_time(L, "idle_expires_at", info->idle_expires_at);
}

static int login_push(lua_State *co, void *data)
{
    struct login_op *op = data;
    struct store_lua *s = store_lua_get(co);
    struct user u;
    if (!op->match)
        return login_failed(co, s, op, op->user_id[0] ? "password" : "unknown user");
    int rc = user_get_by_id(s->db, op->user_id, &u);
    if (rc == STORE_NOT_FOUND || (rc == STORE_OK && u.disabled))
        return login_failed(co, s, op, "disabled");
    if (rc != STORE_OK)
        return store_lua_fail(co, s->db, rc);

    char token[SESSION_TOKEN_LEN + 1];
    struct session_info info;
    if ((rc = db_tx_begin(s->db)) != STORE_OK)
        return store_lua_fail(co, s->db, rc);
    rc = throttle_settle_success(s->db, op->attempt, op->name);
    if (rc == STORE_OK && op->new_hash[0])
        rc = user_upgrade_hash(s->db, u.id, op->hash, op->new_hash);
    if (rc == STORE_OK)
        rc = session_create(s->db, &s->cfg.sessions, u.id, op_address(op), token, &info);
    if ((rc = store_lua_audit_end(s->db, rc, &u, "login", u.name, op_address(op), NULL)) !=
        STORE_OK) {
        sodium_memzero(token, sizeof token);
        return store_lua_fail(co, s->db, rc);
    }
    lua_createtable(co, 0, 6);
    lua_pushstring(co, token);
    sodium_memzero(token, sizeof token);
    lua_setfield(co, -2, "token");
    store_lua_push_actor(co, &u);
    lua_setfield(co, -2, "user");
    push_session_info(co, &info);
    return 1;
}

/* The stored hash of OP's account into OP ("" for an unknown name: the
 * dummy hash is verified instead).  On a storage error the reservation is
 * dropped, since no verify follows. */
static int login_read_hash(struct store_lua *s, struct login_op *op)
{
    struct user u;
    int rc = op->name_valid ? user_password_hash(s->db, op->name, &u, op->hash) : STORE_NOT_FOUND;
    if (rc == STORE_OK) {
        memcpy(op->user_id, u.id, sizeof op->user_id);
    } else if (rc == STORE_NOT_FOUND) {
        op->hash[0] = '\0';
        rc = STORE_OK;
    } else {
        throttle_release(s->db, op->attempt); /* keeps the read's message unless it fails too */
    }
    return rc;
}

/* session.login(username, password, address?) */
static int session_login(lua_State *L)
{
    size_t name_len, password_len;
    const char *name = luaL_checklstring(L, 1, &name_len);
    const char *password = luaL_checklstring(L, 2, &password_len);
    const char *address = store_lua_opt_text(L, 3);
    struct store_lua *s = store_lua_get(L);
    struct login_op *op = calloc(1, sizeof *op + password_len + 1);
    if (op == NULL)
        return luaL_error(L, "out of memory");
    op->password_len = password_len;
    memcpy(op->password, password, password_len + 1);
    snprintf(op->name, sizeof op->name, "%.*s",
             (int)(name_len < LOGIN_NAME_MAX ? name_len : LOGIN_NAME_MAX), name);
    op->name_valid = user_name_valid(op->name) && strlen(op->name) == name_len;
    if (address) {
        snprintf(op->address, sizeof op->address, "%s", address);
        op->has_address = 1;
    }
    int64_t retry = 0;
    int rc =
        throttle_reserve(s->db, &s->cfg.throttle, op->name, op_address(op), op->attempt, &retry);
    if (rc == STORE_OK)
        rc = login_read_hash(s, op);
    /* A password holding a NUL never matches (C would verify only what comes
     * before it); the dummy hash keeps the cost the same. */
    if (rc == STORE_OK && memchr(password, '\0', password_len) != NULL)
        op->hash[0] = '\0';
    if (rc != STORE_OK) {
        int n = rc == STORE_REFUSED    ? login_refused(L, s, op, retry)
                : rc == STORE_CONFLICT ? login_wait(L, s)
                                       : store_lua_fail(L, s->db, rc);
        login_release(op);
        return n;
    }
    /* Answered "busy" without a verify: the attempt costs nothing.  (Should
     * dropping it fail, it counts as one failure: throttle.h.) */
    if (store_lua_hash_full())
        throttle_release(s->db, op->attempt);
    return store_lua_work(L, 1, login_work, login_push, login_release, op);
}

/* session.validate(token) -> user, info | nil */
static int session_validate_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    if (lua_type(L, 1) != LUA_TSTRING) {
        lua_pushnil(L);
        return 1;
    }
    struct user u;
    struct session_info info;
    int rc = session_validate(s->db, &s->cfg.sessions, lua_tostring(L, 1), &u, &info);
    if (rc == STORE_NOT_FOUND) {
        lua_pushnil(L);
        return 1;
    }
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    store_lua_push_actor(L, &u);
    lua_createtable(L, 0, 6);
    push_session_info(L, &info);
    store_lua_set_time(L, "created_at", info.created_at);
    return 2;
}

/* session.logout(token, address?) -> true | nil, message, code */
static int session_logout(lua_State *L)
{
    const char *token = store_lua_check_text(L, 1);
    const char *address = store_lua_opt_text(L, 2);
    struct store_lua *s = store_lua_get(L);
    struct user u;
    int rc = session_validate(s->db, &s->cfg.sessions, token, &u, NULL);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    if ((rc = db_tx_begin(s->db)) == STORE_OK)
        rc = store_lua_audit_end(s->db, session_revoke(s->db, token), &u, "logout", u.name, address,
                                 NULL);
    return store_lua_done(L, s->db, rc);
}

static int session_count_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    int64_t n = 0;
    int rc = session_count(s->db, &s->cfg.sessions, &n);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    lua_pushinteger(L, n);
    return 1;
}

int luaopen_o2c_session(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"login", session_login},
                                     {"validate", session_validate_lua},
                                     {"logout", session_logout},
                                     {"count", session_count_lua},
                                     {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
