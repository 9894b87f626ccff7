#include <string.h>
#include "store/db_internal.h"
#include "store/throttle.h"

/* Keys are bounded so a huge user name cannot bloat the table. */
#define THROTTLE_KEY_MAX 256

static const char SQL_THROTTLE_NTH_RECENT[] =
    "SELECT at FROM login_failures WHERE scope = ? AND key = ? AND at > ?"
    " ORDER BY at DESC LIMIT 1 OFFSET ?";
static const char SQL_THROTTLE_INSERT[] =
    "INSERT INTO login_failures (scope, key, at) VALUES (?, ?, ?)";
static const char SQL_THROTTLE_CLEAR[] =
    "DELETE FROM login_failures WHERE scope = 'user' AND key = ?";
static const char SQL_THROTTLE_PURGE[] = "DELETE FROM login_failures WHERE at <= ?";

void throttle_config_default(struct throttle_config *cfg)
{
    cfg->max_failures = 5;
    cfg->window_ms = 15 * 60 * 1000LL;
}

/* Milliseconds until KEY may try again (0: now).  The limit is reached when
 * the max_failures-th most recent failure is still inside the window; it
 * lifts when that one leaves it. */
static void throttle_bind_key(sqlite3_stmt *st, int idx, const char *key)
{
    size_t len = strlen(key);
    sqlite3_bind_text(st, idx, key, (int)(len > THROTTLE_KEY_MAX ? THROTTLE_KEY_MAX : len),
                      SQLITE_STATIC);
}

static int throttle_wait_ms(struct db *db, const struct throttle_config *cfg, const char *scope,
                            const char *key, int64_t now, int64_t *wait_ms)
{
    *wait_ms = 0;
    if (key == NULL || key[0] == '\0')
        return STORE_OK;
    sqlite3_stmt *st = db_stmt(db, SQL_THROTTLE_NTH_RECENT);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, scope);
    throttle_bind_key(st, 2, key);
    sqlite3_bind_int64(st, 3, now - cfg->window_ms);
    sqlite3_bind_int(st, 4, cfg->max_failures - 1);
    int step = sqlite3_step(st), rc = STORE_OK;
    if (step == SQLITE_ROW)
        *wait_ms = sqlite3_column_int64(st, 0) + cfg->window_ms - now;
    else if (step != SQLITE_DONE)
        rc = db_sqlite_fail(db, "reading login failures");
    db_stmt_done(st);
    return rc;
}

int throttle_check(struct db *db, const struct throttle_config *cfg, const char *user_name,
                   const char *address, int64_t *retry_after_s)
{
    *retry_after_s = 0;
    int64_t now = db_now_ms(db), by_user, by_address;
    int rc = throttle_wait_ms(db, cfg, "user", user_name, now, &by_user);
    if (rc == STORE_OK)
        rc = throttle_wait_ms(db, cfg, "address", address, now, &by_address);
    if (rc != STORE_OK)
        return rc;
    int64_t wait = by_user > by_address ? by_user : by_address;
    if (wait <= 0)
        return STORE_OK;
    *retry_after_s = (wait + 999) / 1000;
    return db_fail(db, STORE_REFUSED, "too many failed logins for %s; retry in %lld s",
                   by_user >= by_address ? "this account" : "this address",
                   (long long)*retry_after_s);
}

static int throttle_insert(struct db *db, const char *scope, const char *key, int64_t now)
{
    if (key == NULL || key[0] == '\0')
        return STORE_OK;
    sqlite3_stmt *st = db_stmt(db, SQL_THROTTLE_INSERT);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, scope);
    throttle_bind_key(st, 2, key);
    sqlite3_bind_int64(st, 3, now);
    return db_step_done(db, st, "recording a failed login");
}

int throttle_record_failure(struct db *db, const char *user_name, const char *address)
{
    int64_t now = db_now_ms(db);
    int rc = db_tx_begin(db);
    if (rc != STORE_OK)
        return rc;
    if ((rc = throttle_insert(db, "user", user_name, now)) != STORE_OK ||
        (rc = throttle_insert(db, "address", address, now)) != STORE_OK) {
        db_tx_rollback(db);
        return rc;
    }
    return db_tx_commit(db);
}

int throttle_record_success(struct db *db, const char *user_name)
{
    sqlite3_stmt *st = db_stmt(db, SQL_THROTTLE_CLEAR);
    if (st == NULL)
        return STORE_ERROR;
    if (user_name == NULL || user_name[0] == '\0')
        return STORE_OK;
    throttle_bind_key(st, 1, user_name);
    return db_step_done(db, st, "clearing login failures");
}

int throttle_purge(struct db *db, const struct throttle_config *cfg, int64_t *count)
{
    sqlite3_stmt *st = db_stmt(db, SQL_THROTTLE_PURGE);
    if (st == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, db_now_ms(db) - cfg->window_ms);
    int rc = db_step_done(db, st, "purging login failures");
    if (count)
        *count = rc == STORE_OK ? db_changes(db) : 0;
    return rc;
}
