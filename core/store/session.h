/* Sessions: 256-bit random tokens, handed to the client once and stored only
 * as their BLAKE2b hash, so a copy of the database lets nobody in.
 *
 * Expiry: idle (sliding, default 8 h since the last request) and absolute
 * (default 7 days since login), both taken from the config at check time, so
 * a shorter configured timeout applies to existing sessions at once.  Every
 * request validates its token: one primary-key lookup joined to the user,
 * through a cached statement.  The sliding idle time is written back at most
 * once per touch interval (default 60 s), so most requests only read. */
#ifndef O2C_STORE_SESSION_H
#define O2C_STORE_SESSION_H
#include <stdint.h>
#include "store/db.h"
#include "store/user.h"

#define SESSION_TOKEN_LEN 43 /* base64url of 32 bytes, no padding */

struct session_config {
    int64_t idle_timeout_ms;     /* default 8 h */
    int64_t absolute_timeout_ms; /* default 7 d */
    int64_t touch_interval_ms;   /* default 60 s: granularity of the sliding idle time */
};

void session_config_default(struct session_config *cfg);

struct session_info {
    int64_t created_at;
    int64_t last_seen_at;
    int64_t idle_expires_at;
    int64_t expires_at; /* absolute: the session never outlives this */
};

/* Creates a session for USER_ID and writes its token (SESSION_TOKEN_LEN
 * characters + NUL) to TOKEN.  ADDRESS (may be NULL) is kept for the admin's
 * view.  INFO may be NULL. */
int session_create(struct db *db, const struct session_config *cfg, const char *user_id,
                   const char *address, char token[SESSION_TOKEN_LEN + 1],
                   struct session_info *info);

/* The user behind TOKEN.  STORE_NOT_FOUND for an unknown, malformed,
 * expired (then deleted) or revoked token, or a disabled user.  INFO may be
 * NULL. */
int session_validate(struct db *db, const struct session_config *cfg, const char *token,
                     struct user *user, struct session_info *info);

/* Logout.  STORE_NOT_FOUND when TOKEN names no session. */
int session_revoke(struct db *db, const char *token);

/* Ends every session of USER_ID; *COUNT (may be NULL) receives how many. */
int session_revoke_user(struct db *db, const char *user_id, int64_t *count);

/* Deletes expired sessions; *COUNT (may be NULL) receives how many. */
int session_cleanup(struct db *db, const struct session_config *cfg, int64_t *count);

/* Live sessions (for /metrics). */
int session_count(struct db *db, const struct session_config *cfg, int64_t *count);

#endif
