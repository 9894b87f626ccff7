/* User accounts: roles admin and consultant.  Accounts are never deleted:
 * they are disabled (which ends their sessions, and can be undone) or
 * removed.  A removed account stays as a tombstone (disabled for good,
 * with removed_at set) so its name still shows on answers, reports and the
 * audit log; its assessments are given to another account or stay
 * read-only, visible to admins.  Passwords arrive here already hashed
 * (password.h), because hashing belongs on the thread pool. */
#ifndef O2C_STORE_USER_H
#define O2C_STORE_USER_H
#include <stddef.h>
#include <stdint.h>
#include "store/db.h"
#include "store/password.h"
#include "store/uuid.h"

#define USER_NAME_MAX 64

enum user_role {
    USER_ROLE_CONSULTANT = 0,
    USER_ROLE_ADMIN = 1,
};

struct user {
    char id[UUID_STR_LEN];
    char name[USER_NAME_MAX + 1];
    enum user_role role;
    int disabled;
    int removed; /* a tombstone: disabled, cannot be enabled or changed */
    int64_t created_at, updated_at;
};

const char *user_role_name(enum user_role role);
/* "admin" | "consultant" -> *OUT; -1 for anything else. */
int user_role_parse(const char *name, enum user_role *out);

/* 1 when NAME is 1..64 of [A-Za-z0-9._@-], starting with a letter or digit. */
int user_name_valid(const char *name);

/* Creates an account.  STORE_EXISTS when NAME is taken, STORE_INVALID for a
 * bad name or an empty hash.  OUT (may be NULL) receives the new user. */
int user_add(struct db *db, const char *name, enum user_role role, const char *password_hash,
             struct user *out);

/* STORE_EXISTS for a NAME in use, saying so when a removed account keeps it. */
int user_name_taken(struct db *db, const char *name);

int user_get_by_name(struct db *db, const char *name, struct user *out);
int user_get_by_id(struct db *db, const char *id, struct user *out);

/* Calls FN for every account in name order; FN returns non-zero to stop.
 * FN must not call back into the store. */
typedef int (*user_fn)(void *ud, const struct user *u);
int user_list(struct db *db, user_fn fn, void *ud);
int user_count(struct db *db, int64_t *count);
/* Every account (removed ones too) in name order as rows {id, name, role,
 * disabled, created_at, removed, username} of RS (rowset.h). */
struct rowset;
int user_rows(struct db *db, struct rowset *rs);
/* 1 in *LAST when U is the only enabled admin (disabling or demoting it
 * would leave nobody to manage accounts). */
int user_is_last_admin(struct db *db, const struct user *u, int *last);
/* Fills U from the user columns {id, name, role, disabled, created_at,
 * updated_at[, removed]} starting at column COL of row ROW: how C gets a
 * struct user from any reader's rows (without the removed column, a
 * reader's users count as not removed). */
void user_from_rowset(const struct rowset *rs, size_t row, size_t col, struct user *u);

/* The stored hash for NAME (copied to HASH) and the account (OUT, may be
 * NULL).  STORE_NOT_FOUND for an unknown name: the caller then verifies
 * against password_dummy_hash() so both cases take the same time. */
int user_password_hash(struct db *db, const char *name, struct user *out,
                       char hash[PASSWORD_HASH_MAX]);

/* Replaces the hash and revokes every session of the account, in one
 * transaction.  *REVOKED (may be NULL) receives how many sessions ended. */
int user_set_password(struct db *db, const char *name, const char *password_hash, int64_t *revoked);

/* Replaces the hash of user ID by NEW_HASH (same password, today's limits)
 * only while it is still OLD_HASH: a password changed meanwhile wins.  No
 * session is revoked.  Call inside the sign-in's transaction. */
int user_upgrade_hash(struct db *db, const char *id, const char *old_hash, const char *new_hash);

/* Disables (revoking every session, one transaction) or re-enables.  This
 * and the other changes above refuse a removed account (STORE_CONFLICT). */
int user_set_disabled(struct db *db, const char *name, int disabled, int64_t *revoked);

int user_set_role(struct db *db, const char *name, enum user_role role);

/* STORE_CONFLICT, with a message saying so, when U was removed. */
int user_refuse_removed(struct db *db, const struct user *u);

/* What user_remove did. */
struct user_removal {
    struct user user;   /* the tombstone */
    int was_removed;    /* NAME had been removed before: only its assessments moved */
    int64_t reassigned; /* live assessments given to REASSIGN_TO */
    int64_t read_only;  /* live assessments kept, read-only */
    int64_t revoked;    /* sessions ended */
};

/* Removes account NAME in one transaction: marks it removed (a tombstone,
 * see above), ends its sessions and either gives all its assessments to
 * REASSIGN_TO (an enabled account other than NAME) or, with REASSIGN_TO
 * NULL, leaves them read-only.  Nothing is deleted.  NAME removed before
 * may be passed again with REASSIGN_TO to move what it left.
 * STORE_NOT_FOUND: no NAME; STORE_REFUSED: NAME is an admin and no other
 * enabled admin exists; STORE_INVALID: REASSIGN_TO unknown, disabled,
 * removed or NAME itself; STORE_CONFLICT: NAME already removed and no
 * REASSIGN_TO. */
int user_remove(struct db *db, const char *name, const char *reassign_to, struct user_removal *out);

/* What a removal did as audit-detail fields, without braces (names are
 * checked characters, no escaping needed):
 * "reassigned_to":"x","assessments":N,"revoked_sessions":N or
 * "read_only_assessments":N,"revoked_sessions":N. */
void user_removal_details(const struct user_removal *r, const char *reassign_to, char *buf,
                          size_t cap);

/* STORE_REFUSED when assessment ID belongs to a removed account (read-only
 * until an admin reassigns it); STORE_OK otherwise, an unknown ID included
 * (the caller's access check answers that).  Call before any change. */
int user_assessment_writable(struct db *db, const char *assessment_id);

/* First run: when no account exists, creates "admin" with PASSWORD, or with
 * a random one written to GENERATED (25 bytes) for the caller to print once
 * to the terminal.  *CREATED says whether it happened.  Hashes synchronously:
 * call it at start-up, before the loop serves.  STORE_REFUSED when PASSWORD
 * fails the policy. */
int user_ensure_admin(struct db *db, const char *password, char generated[25], int *created);

#endif
