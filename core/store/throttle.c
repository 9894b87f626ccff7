#include <string.h>
#include "store/query.h"
#include "store/throttle.h"

/* Keys are bounded so a huge user name cannot bloat the table. */
#define THROTTLE_KEY_MAX 256

/* Failures: rows recorded as such, and attempts in flight for longer than
 * THROTTLE_IN_FLIGHT_MS (never settled). */
static const char SQL_THROTTLE_NTH_FAILURE[] =
    "SELECT at FROM login_failures WHERE scope = ? AND key = ? AND at > ?"
    " AND (attempt IS NULL OR at <= ?) ORDER BY at DESC LIMIT 1 OFFSET ?";
static const char SQL_THROTTLE_COUNT[] =
    "SELECT count(*) FROM login_failures WHERE scope = ? AND key = ? AND at > ?";
static const char SQL_THROTTLE_INSERT[] =
    "INSERT INTO login_failures (scope, key, at, attempt) VALUES (?, ?, ?, ?)";
static const char SQL_THROTTLE_ATTEMPT_FAILED[] =
    "UPDATE login_failures SET attempt = NULL, at = ? WHERE attempt = ?";
static const char SQL_THROTTLE_ATTEMPT_DROP[] = "DELETE FROM login_failures WHERE attempt = ?";
static const char SQL_THROTTLE_CLEAR[] =
    "DELETE FROM login_failures WHERE scope = 'user' AND key = ?"
    " AND (attempt IS NULL OR at <= ?)";
static const char SQL_THROTTLE_PURGE[] = "DELETE FROM login_failures WHERE at <= ?";

void throttle_config_default(struct throttle_config *cfg)
{
    cfg->max_failures = 5;
    cfg->window_ms = 15 * 60 * 1000LL;
}

#define THROTTLE_KEY(key) DB_TEXT_MAX((key), THROTTLE_KEY_MAX)

/* Where one key (an account or an address) stands in the window. */
struct throttle_state {
    int64_t wait_ms; /* until it may try again (0: now) */
    int full;        /* failures and attempts in flight, together, use the whole budget */
};

/* The limit is reached when the max_failures-th most recent failure is
 * still inside the window; it lifts when that one leaves it. */
static int throttle_state(struct db *db, const struct throttle_config *cfg, const char *scope,
                          const char *key, int64_t now, struct throttle_state *st)
{
    *st = (struct throttle_state){0};
    if (key == NULL || key[0] == '\0')
        return STORE_OK;
    int64_t at = 0, count = 0;
    int found = 0;
    int rc =
        db_query_first(db, SQL_THROTTLE_NTH_FAILURE, "reading login failures", &at, NULL, 0, &found,
                       DB_ARGS(DB_TEXT(scope), THROTTLE_KEY(key), DB_INT(now - cfg->window_ms),
                               DB_INT(now - THROTTLE_IN_FLIGHT_MS), DB_INT(cfg->max_failures - 1)));
    if (rc == STORE_OK)
        rc = db_query_first(
            db, SQL_THROTTLE_COUNT, "counting login attempts", &count, NULL, 0, NULL,
            DB_ARGS(DB_TEXT(scope), THROTTLE_KEY(key), DB_INT(now - cfg->window_ms)));
    if (found)
        st->wait_ms = at + cfg->window_ms - now;
    st->full = count >= cfg->max_failures;
    return rc;
}

/* STORE_REFUSED (with the wait) while the account or the address has used
 * its failures; STORE_CONFLICT while attempts in flight fill what failures
 * leave of either budget. */
static int throttle_verdict(struct db *db, const struct throttle_state *user,
                            const struct throttle_state *address, int64_t *retry_after_s)
{
    int64_t wait = user->wait_ms > address->wait_ms ? user->wait_ms : address->wait_ms;
    if (wait > 0) {
        *retry_after_s = (wait + 999) / 1000;
        return db_fail(db, STORE_REFUSED, "too many failed logins for %s; retry in %lld s",
                       user->wait_ms >= address->wait_ms ? "this account" : "this address",
                       (long long)*retry_after_s);
    }
    if (user->full || address->full)
        return db_fail(db, STORE_CONFLICT,
                       "other sign-ins for %s are being checked; try again when one has finished",
                       user->full ? "this account" : "this address");
    return STORE_OK;
}

/* The attempt's row for KEY in SCOPE. */
static int throttle_insert(struct db *db, const char *scope, const char *key, int64_t now,
                           const char *attempt)
{
    if (key == NULL || key[0] == '\0')
        return STORE_OK;
    return db_exec(db, SQL_THROTTLE_INSERT, "reserving a login attempt",
                   DB_ARGS(DB_TEXT(scope), THROTTLE_KEY(key), DB_INT(now), DB_TEXT(attempt)));
}

/* The check and the insert share one write transaction (BEGIN IMMEDIATE
 * takes the lock first), so no other connection's reservation can slip in
 * between: that is the whole point. */
int throttle_reserve(struct db *db, const struct throttle_config *cfg, const char *user_name,
                     const char *address, char attempt[UUID_STR_LEN], int64_t *retry_after_s)
{
    *retry_after_s = 0;
    attempt[0] = '\0';
    int rc = db_tx_begin(db);
    if (rc != STORE_OK)
        return rc;
    int64_t now = db_now_ms(db);
    struct throttle_state by_user, by_address;
    char id[UUID_STR_LEN];
    uuid_v7_string(id);
    rc = throttle_state(db, cfg, "user", user_name, now, &by_user);
    if (rc == STORE_OK)
        rc = throttle_state(db, cfg, "address", address, now, &by_address);
    if (rc == STORE_OK)
        rc = throttle_verdict(db, &by_user, &by_address, retry_after_s);
    if (rc == STORE_OK)
        rc = throttle_insert(db, "user", user_name, now, id);
    if (rc == STORE_OK)
        rc = throttle_insert(db, "address", address, now, id);
    if ((rc = db_tx_end(db, rc)) == STORE_OK)
        memcpy(attempt, id, UUID_STR_LEN);
    return rc;
}

int throttle_settle_failure(struct db *db, const char *attempt)
{
    if (attempt == NULL || attempt[0] == '\0')
        return STORE_OK;
    return db_exec(db, SQL_THROTTLE_ATTEMPT_FAILED, "recording a failed login",
                   DB_ARGS(DB_INT(db_now_ms(db)), DB_TEXT(attempt)));
}

int throttle_release(struct db *db, const char *attempt)
{
    if (attempt == NULL || attempt[0] == '\0')
        return STORE_OK;
    return db_exec(db, SQL_THROTTLE_ATTEMPT_DROP, "dropping a login attempt",
                   DB_ARGS(DB_TEXT(attempt)));
}

/* The account's failures are cleared, not the address's: one valid account
 * must not reset the count for guessing at others; nor other attempts
 * still in flight, which settle on their own. */
int throttle_settle_success(struct db *db, const char *attempt, const char *user_name)
{
    int rc = db_tx_begin(db);
    if (rc != STORE_OK)
        return rc;
    rc = throttle_release(db, attempt);
    if (rc == STORE_OK && user_name && user_name[0])
        rc = db_exec(
            db, SQL_THROTTLE_CLEAR, "clearing login failures",
            DB_ARGS(THROTTLE_KEY(user_name), DB_INT(db_now_ms(db) - THROTTLE_IN_FLIGHT_MS)));
    return db_tx_end(db, rc);
}

int throttle_purge(struct db *db, const struct throttle_config *cfg, int64_t *count)
{
    return db_exec_count(db, SQL_THROTTLE_PURGE, "purging login failures", count,
                         DB_ARGS(DB_INT(db_now_ms(db) - cfg->window_ms)));
}
