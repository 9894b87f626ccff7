/* Authorization, in one place.  Every route asks here (the store functions
 * taking an actor do it for them):
 *   - an admin sees and changes every assessment;
 *   - a consultant only their own;
 *   - a disabled account nothing.
 * What may not be accessed is reported as "not found", never "forbidden",
 * so ids of other people's work leak nothing. */
#ifndef O2C_STORE_AUTHZ_H
#define O2C_STORE_AUTHZ_H
#include "store/user.h"

/* 1 when USER may read and change the assessments of OWNER_ID. */
int authz_can_access_owner(const struct user *user, const char *owner_id);

/* 1 for an enabled admin: user management, audit, all assessments. */
int authz_is_admin(const struct user *user);

/* Whose assessments USER lists: NULL for all (admin), else USER's own id. */
const char *authz_list_owner(const struct user *user);

/* The actor for background work (job runner, retention): acts as an admin,
 * is no account, and cannot log in. */
const struct user *authz_system_user(void);

#endif
