/* Login throttling: after 5 failed logins for one account, or from one
 * address, within 15 minutes, further attempts are refused until the oldest
 * of those failures leaves the window.
 *
 * An attempt is counted when it starts, not when its argon2 verify ends, so
 * guesses sent all at once cannot outrun the limit:
 *   throttle_reserve   at the start, in one transaction, for the account and
 *                      for the address: max_failures failures in the window
 *                      -> STORE_REFUSED (with the time until the oldest
 *                      leaves it); failures and attempts in flight together
 *                      at max_failures -> STORE_CONFLICT: wait until one of
 *                      those settles and ask again; else an "attempt" row is
 *                      added for each and its id returned.  Nothing about
 *                      the password has been looked at yet;
 *   throttle_settle_failure  the attempt becomes a recorded failure;
 *   throttle_settle_success  the attempt is dropped and the account's
 *                      recorded failures cleared;
 *   throttle_release   the attempt was never verified (queue full, storage
 *                      error): it is dropped and costs nothing.
 * So failures plus verifies under way never exceed max_failures per account
 * (or address) in the window, whatever the interleaving, and a refusal
 * depends on the budget alone: an admitted guess is answered truthfully.
 * Attempts in flight make others wait rather than refuse them: they settle
 * within a verify (~100 ms), and may well succeed; a 15-minute refusal
 * because five colleagues behind one proxy signed in at once would be wrong.
 *
 * An attempt still in flight after THROTTLE_IN_FLIGHT_MS was never settled
 * (the process was killed mid-verify, or storage failed at the settle): it
 * counts as a failure from then on, lapses with the window like one, and
 * retention purges it.  A verify takes ~100 ms and waits at most the hash
 * queue (64 x ~100 ms), so 60 s never cuts a live one short; counting it as
 * a failure rather than dropping it keeps a crash from handing guesses back
 * to the budget, and costs the account one of five failures, like a typo.
 *
 * State lives in SQLite (table login_failures; an attempt in flight has its
 * `attempt` id set), not in memory: a restart does not hand an attacker a
 * fresh budget, several instances on a shared database see the same counts
 * (the reserve is a BEGIN IMMEDIATE transaction, so check-and-add is atomic
 * across processes too; on PostgreSQL it must serialise per key likewise,
 * e.g. with a transaction-level advisory lock on the key), and memory cannot
 * be grown without bound by someone cycling through addresses (old rows are
 * purged by retention).  A failed login costs an argon2 verify (~100 ms)
 * anyway, so the extra writes are noise.  Refused attempts are not recorded,
 * so refusal ends on time. */
#ifndef O2C_STORE_THROTTLE_H
#define O2C_STORE_THROTTLE_H
#include <stdint.h>
#include "store/db.h"
#include "store/uuid.h"

/* An attempt in flight longer than this is taken for a failure (above). */
#define THROTTLE_IN_FLIGHT_MS 60000

struct throttle_config {
    int max_failures;  /* default 5 */
    int64_t window_ms; /* default 15 min */
};

void throttle_config_default(struct throttle_config *cfg);

/* Reserves an attempt for USER_NAME from ADDRESS (either may be NULL):
 * STORE_OK with its id in ATTEMPT, for one of the settle calls below;
 * STORE_REFUSED while the failures fill the budget, with *RETRY_AFTER_S
 * (seconds, rounded up, >= 1) until they no longer do; STORE_CONFLICT when
 * attempts in flight hold the rest of the budget (ask again once one has
 * settled).  Only STORE_OK adds anything. */
int throttle_reserve(struct db *db, const struct throttle_config *cfg, const char *user_name,
                     const char *address, char attempt[UUID_STR_LEN], int64_t *retry_after_s);

/* The attempt was a failed login (wrong password, unknown user, disabled). */
int throttle_settle_failure(struct db *db, const char *attempt);

/* The attempt succeeded: dropped, and the account's failures cleared
 * (ATTEMPT "" or NULL: only the latter). */
int throttle_settle_success(struct db *db, const char *attempt, const char *user_name);

/* The attempt was never verified: dropped, as if it had not been made. */
int throttle_release(struct db *db, const char *attempt);

/* Deletes rows older than the window, attempts never settled included;
 * *COUNT (may be NULL) gets how many. */
int throttle_purge(struct db *db, const struct throttle_config *cfg, int64_t *count);

#endif
