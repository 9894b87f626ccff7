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

/* Milliseconds until KEY may try again (0: now).  The limit is reached when
 * the max_failures-th most recent failure is still inside the window; it
 * lifts when that one leaves it. */
static int throttle_wait_ms(struct db *db, const struct throttle_config *cfg, const char *scope,
                            const char *key, int64_t now, int64_t *wait_ms)
{
    *wait_ms = 0;
    if (key == NULL || key[0] == '\0')
        return STORE_OK;
    int64_t at = 0;
    int found = 0;
    int rc =
        db_query_first(db, SQL_THROTTLE_NTH_FAILURE, "reading login failures", &at, NULL, 0, &found,
                       DB_ARGS(DB_TEXT(scope), THROTTLE_KEY(key), DB_INT(now - cfg->window_ms),
                               DB_INT(now - THROTTLE_IN_FLIGHT_MS), DB_INT(cfg->max_failures - 1)));
    if (rc == STORE_OK && found)
        *wait_ms = at + cfg->window_ms - now;
    return rc;
}

/* 1 in *FULL when KEY's failures and attempts in flight, together, have
 * used the whole budget. */
static int throttle_budget_full(struct db *db, const struct throttle_config *cfg, const char *scope,
                                const char *key, int64_t now, int *full)
{
    *full = 0;
    if (key == NULL || key[0] == '\0')
        return STORE_OK;
    int64_t count = 0;
    int rc =
        db_query_first(db, SQL_THROTTLE_COUNT, "counting login attempts", &count, NULL, 0, NULL,
                       DB_ARGS(DB_TEXT(scope), THROTTLE_KEY(key), DB_INT(now - cfg->window_ms)));
    *full = count >= cfg->max_failures;
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

/* STORE_CONFLICT when attempts in flight fill what failures leave of the
 * budget of the account or the address. */
static int throttle_check_in_flight(struct db *db, const struct throttle_config *cfg,
                                    const char *user_name, const char *address)
{
    int64_t now = db_now_ms(db);
    int by_user, by_address;
    int rc = throttle_budget_full(db, cfg, "user", user_name, now, &by_user);
    if (rc == STORE_OK)
        rc = throttle_budget_full(db, cfg, "address", address, now, &by_address);
    if (rc != STORE_OK || !(by_user || by_address))
        return rc;
    return db_fail(db, STORE_CONFLICT,
                   "other sign-ins for %s are being checked; try again when one has finished",
                   by_user ? "this account" : "this address");
}

/* One row for KEY in SCOPE; ATTEMPT NULL records a failure, else an attempt
 * in flight. */
static int throttle_insert(struct db *db, const char *scope, const char *key, int64_t now,
                           const char *attempt)
{
    if (key == NULL || key[0] == '\0')
        return STORE_OK;
    return db_exec(db, SQL_THROTTLE_INSERT,
                   attempt ? "reserving a login attempt" : "recording a failed login",
                   DB_ARGS(DB_TEXT(scope), THROTTLE_KEY(key), DB_INT(now), DB_TEXT(attempt)));
}

/* Both rows of one failure or attempt, in one transaction. */
static int throttle_insert_pair(struct db *db, const char *user_name, const char *address,
                                int64_t now, const char *attempt)
{
    int rc = db_tx_begin(db);
    if (rc != STORE_OK)
        return rc;
    rc = throttle_insert(db, "user", user_name, now, attempt);
    if (rc == STORE_OK)
        rc = throttle_insert(db, "address", address, now, attempt);
    return db_tx_end(db, rc);
}

int throttle_record_failure(struct db *db, const char *user_name, const char *address)
{
    return throttle_insert_pair(db, user_name, address, db_now_ms(db), NULL);
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
    char id[UUID_STR_LEN];
    uuid_v7_string(id);
    rc = throttle_check(db, cfg, user_name, address, retry_after_s);
    if (rc == STORE_OK)
        rc = throttle_check_in_flight(db, cfg, user_name, address);
    if (rc == STORE_OK)
        rc = throttle_insert_pair(db, user_name, address, db_now_ms(db), id);
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

int throttle_settle_success(struct db *db, const char *attempt, const char *user_name)
{
    int rc = db_tx_begin(db);
    if (rc != STORE_OK)
        return rc;
    if ((rc = throttle_release(db, attempt)) == STORE_OK)
        rc = throttle_record_success(db, user_name);
    return db_tx_end(db, rc);
}

int throttle_record_success(struct db *db, const char *user_name)
{
    if (user_name == NULL || user_name[0] == '\0')
        return STORE_OK;
    return db_exec(db, SQL_THROTTLE_CLEAR, "clearing login failures",
                   DB_ARGS(THROTTLE_KEY(user_name), DB_INT(db_now_ms(db) - THROTTLE_IN_FLIGHT_MS)));
}

int throttle_purge(struct db *db, const struct throttle_config *cfg, int64_t *count)
{
    int rc = db_exec(db, SQL_THROTTLE_PURGE, "purging login failures",
                     DB_ARGS(DB_INT(db_now_ms(db) - cfg->window_ms)));
    if (count)
        *count = rc == STORE_OK ? db_changes(db) : 0;
    return rc;
}
