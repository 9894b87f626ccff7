/* Login throttling: after 5 failed logins for one account, or from one
 * address, within 15 minutes, further attempts are refused until the oldest
 * of those failures leaves the window.
 *
 * State lives in SQLite (table login_failures), not in memory: a restart
 * does not hand an attacker a fresh budget, several instances on a shared
 * database see the same counts, and memory cannot be grown without bound by
 * someone cycling through addresses (old rows are purged by retention).  A
 * failed login costs an argon2 verify (~100 ms) anyway, so the extra write
 * is noise.  Refused attempts are not recorded, so refusal ends on time. */
#ifndef O2C_STORE_THROTTLE_H
#define O2C_STORE_THROTTLE_H
#include <stdint.h>
#include "store/db.h"

struct throttle_config {
    int max_failures;  /* default 5 */
    int64_t window_ms; /* default 15 min */
};

void throttle_config_default(struct throttle_config *cfg);

/* STORE_OK when a login for USER_NAME from ADDRESS (either may be NULL) may
 * be tried now; STORE_REFUSED when not, with *RETRY_AFTER_S (seconds,
 * rounded up, >= 1) until it may. */
int throttle_check(struct db *db, const struct throttle_config *cfg, const char *user_name,
                   const char *address, int64_t *retry_after_s);

/* Records a failed login (wrong password or unknown user alike). */
int throttle_record_failure(struct db *db, const char *user_name, const char *address);

/* A successful login clears the account's failures (not the address's: one
 * valid account must not reset the count for guessing at others). */
int throttle_record_success(struct db *db, const char *user_name);

/* Deletes failures older than the window; *COUNT (may be NULL) gets how many. */
int throttle_purge(struct db *db, const struct throttle_config *cfg, int64_t *count);

#endif
