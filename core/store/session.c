#include <sodium.h>
#include <string.h>
#include "store/db_internal.h"
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
    sqlite3_stmt *st = db_stmt(db, SQL_SESSION_INSERT);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, hash);
    db_bind_text(st, 2, user_id);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, now);
    db_bind_text(st, 5, address);
    int rc = db_step_done(db, st, "creating a session");
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
    sqlite3_stmt *st = db_stmt(db, SQL_SESSION_DELETE);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, hash);
    return db_step_done(db, st, "deleting a session");
}

/* Slides the idle expiry forward (the caller does it once per touch
 * interval); the guard keeps a late, concurrent touch from moving it back. */
static int session_touch(struct db *db, const char *hash, int64_t now)
{
    sqlite3_stmt *st = db_stmt(db, SQL_SESSION_TOUCH);
    if (st == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, now);
    db_bind_text(st, 2, hash);
    sqlite3_bind_int64(st, 3, now);
    return db_step_done(db, st, "refreshing a session");
}

int session_validate(struct db *db, const struct session_config *cfg, const char *token,
                     struct user *user, struct session_info *info)
{
    char hash[SESSION_HASH_HEX];
    if (session_token_hash(token, hash) != 0)
        return db_fail(db, STORE_NOT_FOUND, "malformed session token");
    sqlite3_stmt *st = db_stmt(db, SQL_SESSION_LOOKUP);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, hash);
    int step = sqlite3_step(st);
    if (step != SQLITE_ROW) {
        int rc = step == SQLITE_DONE ? db_fail(db, STORE_NOT_FOUND, "unknown or revoked session")
                                     : db_sqlite_fail(db, "validating a session");
        db_stmt_done(st);
        return rc;
    }
    int64_t created = sqlite3_column_int64(st, 0), seen = sqlite3_column_int64(st, 1);
    db_col_copy(st, 2, user->id, sizeof user->id);
    db_col_copy(st, 3, user->name, sizeof user->name);
    const char *role = db_col_text(st, 4);
    user->role = role && strcmp(role, "admin") == 0 ? USER_ROLE_ADMIN : USER_ROLE_CONSULTANT;
    user->disabled = sqlite3_column_int(st, 5);
    user->created_at = sqlite3_column_int64(st, 6);
    user->updated_at = sqlite3_column_int64(st, 7);
    db_stmt_done(st);

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
    /* A failed touch (database busy) must not fail the request: the session
     * is valid; the next request slides the idle time instead. */
    int due = now - seen >= cfg->touch_interval_ms;
    if (due && session_touch(db, hash, now) == STORE_OK)
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
    sqlite3_stmt *st = db_stmt(db, SQL_SESSION_DELETE_USER);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, user_id);
    int rc = db_step_done(db, st, "revoking a user's sessions");
    if (count)
        *count = rc == STORE_OK ? db_changes(db) : 0;
    return rc;
}

int session_cleanup(struct db *db, const struct session_config *cfg, int64_t *count)
{
    int64_t now = db_now_ms(db);
    sqlite3_stmt *st = db_stmt(db, SQL_SESSION_DELETE_EXPIRED);
    if (st == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, now - cfg->absolute_timeout_ms);
    sqlite3_bind_int64(st, 2, now - cfg->idle_timeout_ms);
    int rc = db_step_done(db, st, "deleting expired sessions");
    if (count)
        *count = rc == STORE_OK ? db_changes(db) : 0;
    return rc;
}

int session_count(struct db *db, const struct session_config *cfg, int64_t *count)
{
    int64_t now = db_now_ms(db);
    sqlite3_stmt *st = db_stmt(db, SQL_SESSION_COUNT_LIVE);
    if (st == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, now - cfg->absolute_timeout_ms);
    sqlite3_bind_int64(st, 2, now - cfg->idle_timeout_ms);
    int rc = STORE_OK;
    if (sqlite3_step(st) == SQLITE_ROW)
        *count = sqlite3_column_int64(st, 0);
    else
        rc = db_sqlite_fail(db, "counting sessions");
    db_stmt_done(st);
    return rc;
}
