#include <string.h>
#include "store/authz.h"

int authz_is_admin(const struct user *user)
{
    return user != NULL && !user->disabled && user->role == USER_ROLE_ADMIN;
}

int authz_can_access_owner(const struct user *user, const char *owner_id)
{
    if (user == NULL || user->disabled || owner_id == NULL)
        return 0;
    if (user->role == USER_ROLE_ADMIN)
        return 1;
    return user->id[0] != '\0' && strcmp(user->id, owner_id) == 0;
}

const char *authz_list_owner(const struct user *user)
{
    if (user == NULL || user->disabled)
        return ""; /* no owner id is empty: matches nothing */
    return user->role == USER_ROLE_ADMIN ? NULL : user->id;
}

const struct user *authz_system_user(void)
{
    static const struct user system_user = {
        .id = "", .name = "system", .role = USER_ROLE_ADMIN, .disabled = 0};
    return &system_user;
}
