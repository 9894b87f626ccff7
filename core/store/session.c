#include <sodium.h>
#include <string.h>
#include "store/query.h"
#include "store/rowset.h"
#include "store/session.h"

#define SESSION_HASH_HEX (crypto_generichash_BYTES * 2 + 1)

static const char SQL_SESSION_INSERT[] =
    "INSERT INTO sessions (token_hash, user_id, created_at, last_seen_at, address)"
    " VALUES (?, ?, ?, ?, ?)";
static const char SQL_SESSION_LOOKUP[] =
    "SELECT s.created_at, s.last_seen_at,"
    " u.id, u.name, u.role, u.disabled, u.created_at, u.updated_at"
    " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?";
static const char SQL_SESSION_TOUCH[] =
    "UPDATE sessions SET last_seen_at = ? WHERE token_hash = ? AND last_seen_at < ?";
static const char SQL_SESSION_DELETE[] = "DELETE FROM sessions WHERE token_hash = ?";
static const char SQL_SESSION_DELETE_USER[] = "DELETE FROM sessions WHERE user_id = ?";
static const char SQL_SESSION_DELETE_EXPIRED[] =
    "DELETE FROM sessions WHERE created_at <= ? OR last_seen_at <= ?";
static const char SQL_SESSION_COUNT_LIVE[] =
    "SELECT COUNT(*) FROM sessions WHERE created_at > ? AND last_seen_at > ?";

void session_config_default(struct session_config *cfg)
{
    cfg->idle_timeout_ms = 8 * 3600 * 1000LL;
    cfg->absolute_timeout_ms = 7 * 24 * 3600 * 1000LL;
    cfg->touch_interval_ms = 60 * 1000LL;
}

/* Hex BLAKE2b-256 of the token text.  Unkeyed is enough: the input has 256
 * bits of entropy, so nothing can be guessed back from the hash. */
static int session_token_hash(const char *token, char out[SESSION_HASH_HEX])
{
    if (token == NULL || strlen(token) != SESSION_TOKEN_LEN)
        return -1;
    unsigned char h[crypto_generichash_BYTES];
    crypto_generichash(h, sizeof h, (const unsigned char *)token, SESSION_TOKEN_LEN, NULL, 0);
    sodium_bin2hex(out, SESSION_HASH_HEX, h, sizeof h);
    return 0;
}

static void session_fill_info(const struct session_config *cfg, int64_t created, int64_t seen,
                              struct session_info *info)
{
    if (info == NULL)
        return;
    info->created_at = created;
    info->last_seen_at = seen;
    info->expires_at = created + cfg->absolute_timeout_ms;
    info->idle_expires_at = seen + cfg->idle_timeout_ms;
    if (info->idle_expires_at > info->expires_at)
        info->idle_expires_at = info->expires_at;
}

int session_create(struct db *db, const struct session_config *cfg, const char *user_id,
                   const char *address, char token[SESSION_TOKEN_LEN + 1],
                   struct session_info *info)
{
    unsigned char raw[32];
    char hash[SESSION_HASH_HEX];
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(token, SESSION_TOKEN_LEN + 1, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    session_token_hash(token, hash);

    int64_t now = db_now_ms(db);
    int rc = db_exec(
        db, SQL_SESSION_INSERT, "creating a session",
        DB_ARGS(DB_TEXT(hash), DB_TEXT(user_id), DB_INT(now), DB_INT(now), DB_TEXT(address)));
    if (rc == STORE_INVALID) /* foreign key: no such user */
        rc = db_fail(db, STORE_NOT_FOUND, "creating a session: no user with id %.40s", user_id);
    if (rc != STORE_OK) {
        sodium_memzero(token, SESSION_TOKEN_LEN + 1);
        return rc;
    }
    session_fill_info(cfg, now, now, info);
    return STORE_OK;
}

static int session_delete_hash(struct db *db, const char *hash)
{
    return db_exec(db, SQL_SESSION_DELETE, "deleting a session", DB_ARGS(DB_TEXT(hash)));
}

int session_validate(struct db *db, const struct session_config *cfg, const char *token,
                     struct user *user, struct session_info *info)
{
    char hash[SESSION_HASH_HEX];
    if (session_token_hash(token, hash) != 0)
        return db_fail(db, STORE_NOT_FOUND, "malformed session token");
    struct rowset rs;
    rowset_init(&rs, 0);
    int rc = db_query(db, SQL_SESSION_LOOKUP, "validating a session", &rs, DB_ARGS(DB_TEXT(hash)));
    if (rc == STORE_OK && rs.nrows == 0)
        rc = db_fail(db, STORE_NOT_FOUND, "unknown or revoked session");
    int64_t created = rowset_int(&rs, 0, 0), seen = rowset_int(&rs, 0, 1);
    if (rc == STORE_OK)
        user_from_rowset(&rs, 0, 2, user);
    rowset_free(&rs);
    if (rc != STORE_OK)
        return rc;

    int64_t now = db_now_ms(db);
    const char *why = NULL;
    if (now >= created + cfg->absolute_timeout_ms)
        why = "session expired (absolute timeout)";
    else if (now >= seen + cfg->idle_timeout_ms)
        why = "session expired (idle timeout)";
    else if (user->disabled)
        why = "session of a disabled user";
    if (why) {
        memset(user, 0, sizeof *user);
        session_delete_hash(db, hash);
        return db_fail(db, STORE_NOT_FOUND, "%s", why);
    }
    /* The idle expiry slides once per touch interval; the statement's guard
     * keeps a late, concurrent touch from moving it back.  A failed touch
     * (database busy) must not fail the request: the session is valid; the
     * next request slides the idle time instead. */
    if (now - seen >= cfg->touch_interval_ms &&
        db_exec(db, SQL_SESSION_TOUCH, "refreshing a session",
                DB_ARGS(DB_INT(now), DB_TEXT(hash), DB_INT(now))) == STORE_OK)
        seen = now;
    session_fill_info(cfg, created, seen, info);
    return STORE_OK;
}

int session_revoke(struct db *db, const char *token)
{
    char hash[SESSION_HASH_HEX];
    if (session_token_hash(token, hash) != 0)
        return db_fail(db, STORE_NOT_FOUND, "malformed session token");
    int rc = session_delete_hash(db, hash);
    if (rc == STORE_OK && db_changes(db) == 0)
        rc = db_fail(db, STORE_NOT_FOUND, "unknown or already revoked session");
    return rc;
}

int session_revoke_user(struct db *db, const char *user_id, int64_t *count)
{
    return db_exec_count(db, SQL_SESSION_DELETE_USER, "revoking a user's sessions", count,
                         DB_ARGS(DB_TEXT(user_id)));
}

int session_cleanup(struct db *db, const struct session_config *cfg, int64_t *count)
{
    int64_t now = db_now_ms(db);
    return db_exec_count(
        db, SQL_SESSION_DELETE_EXPIRED, "deleting expired sessions", count,
        DB_ARGS(DB_INT(now - cfg->absolute_timeout_ms), DB_INT(now - cfg->idle_timeout_ms)));
}

int session_count(struct db *db, const struct session_config *cfg, int64_t *count)
{
    int64_t now = db_now_ms(db);
    return db_query_first(
        db, SQL_SESSION_COUNT_LIVE, "counting sessions", count, NULL, 0, NULL,
        DB_ARGS(DB_INT(now - cfg->absolute_timeout_ms), DB_INT(now - cfg->idle_timeout_ms)));
}
