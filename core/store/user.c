#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "store/query.h"
#include "store/rowset.h"
#include "store/session.h"
#include "store/user.h"

/* Named for the Lua fields (rowset_lua.h); C reads them by position. */
#define USER_COLUMNS                                                                               \
    "id, name, role, disabled AS \"disabled:bool\", created_at AS \"created_at:time\","            \
    " updated_at AS \"updated_at:omit\", removed_at IS NOT NULL AS \"removed:bool\","              \
    " name AS username"
/* The password hash comes after the user columns. */
#define USER_HASH_COLUMN 8

static const char SQL_USER_INSERT[] =
    "INSERT INTO users (id, name, role, password_hash, disabled, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, 0, ?, ?)";
static const char SQL_USER_BY_NAME[] = "SELECT " USER_COLUMNS " FROM users WHERE name = ?";
static const char SQL_USER_BY_ID[] = "SELECT " USER_COLUMNS " FROM users WHERE id = ?";
static const char SQL_USER_LIST[] = "SELECT " USER_COLUMNS " FROM users ORDER BY name";
static const char SQL_USER_COUNT[] = "SELECT COUNT(*) FROM users";
static const char SQL_USER_OTHER_ADMINS[] =
    "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND name <> ?";
static const char SQL_USER_HASH[] =
    "SELECT " USER_COLUMNS ", password_hash FROM users WHERE name = ?";
/* A removed account changes no more: "AND removed_at IS NULL". */
static const char SQL_USER_SET_HASH[] =
    "UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ? AND removed_at IS NULL";
static const char SQL_USER_UPGRADE_HASH[] =
    "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?";
static const char SQL_USER_SET_DISABLED[] =
    "UPDATE users SET disabled = ?, updated_at = ? WHERE name = ? AND removed_at IS NULL";
static const char SQL_USER_SET_ROLE[] =
    "UPDATE users SET role = ?, updated_at = ? WHERE name = ? AND removed_at IS NULL";
static const char SQL_USER_MARK_REMOVED[] =
    "UPDATE users SET disabled = 1, removed_at = ?, updated_at = ? WHERE id = ?";
static const char SQL_USER_ENABLED_ADMINS_BUT[] =
    "SELECT COUNT(*) FROM users WHERE role = 'admin' AND disabled = 0 AND id <> ?";
static const char SQL_ASSESSMENTS_LIVE_OF[] =
    "SELECT COUNT(*) FROM assessments WHERE owner_id = ? AND deleted_at IS NULL";
/* Deleted ones move too, so nothing stays behind with the tombstone. */
static const char SQL_ASSESSMENTS_REASSIGN[] =
    "UPDATE assessments SET owner_id = ? WHERE owner_id = ?";
static const char SQL_ASSESSMENT_REMOVED_OWNER[] =
    "SELECT u.name FROM assessments a JOIN users u ON u.id = a.owner_id"
    " WHERE a.id = ? AND u.removed_at IS NOT NULL";

const char *user_role_name(enum user_role role)
{
    return role == USER_ROLE_ADMIN ? "admin" : "consultant";
}

int user_role_parse(const char *name, enum user_role *out)
{
    if (name && strcmp(name, "admin") == 0)
        *out = USER_ROLE_ADMIN;
    else if (name && strcmp(name, "consultant") == 0)
        *out = USER_ROLE_CONSULTANT;
    else
        return -1;
    return 0;
}

int user_name_valid(const char *name)
{
    size_t len = name ? strlen(name) : 0;
    if (len == 0 || len > USER_NAME_MAX || !isalnum((unsigned char)name[0]))
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-' && c != '@')
            return 0;
    }
    return 1;
}

void user_from_rowset(const struct rowset *rs, size_t row, size_t col, struct user *u)
{
    const char *id = rowset_text(rs, row, col), *name = rowset_text(rs, row, col + 1);
    snprintf(u->id, sizeof u->id, "%s", id ? id : "");
    snprintf(u->name, sizeof u->name, "%s", name ? name : "");
    u->role = USER_ROLE_CONSULTANT;
    user_role_parse(rowset_text(rs, row, col + 2), &u->role);
    u->disabled = rowset_int(rs, row, col + 3) != 0;
    u->created_at = rowset_int(rs, row, col + 4);
    u->updated_at = rowset_int(rs, row, col + 5);
    u->removed = rowset_int(rs, row, col + 6) != 0; /* 0 past the reader's last column */
}

int user_refuse_removed(struct db *db, const struct user *u)
{
    if (!u->removed)
        return STORE_OK;
    return db_fail(db, STORE_CONFLICT,
                   "user %s was removed: a removed account cannot be changed or enabled again "
                   "(add an account under another name)",
                   u->name);
}

int user_name_taken(struct db *db, const char *name)
{
    struct user u;
    if (user_get_by_name(db, name, &u) == STORE_OK && u.removed)
        return db_fail(db, STORE_EXISTS,
                       "user %s already exists: the name belongs to a removed account and "
                       "stays reserved so its answers and audit events name one person; "
                       "choose another name",
                       name);
    return db_fail(db, STORE_EXISTS, "user %s already exists", name);
}

int user_add(struct db *db, const char *name, enum user_role role, const char *password_hash,
             struct user *out)
{
    if (!user_name_valid(name))
        return db_fail(db, STORE_INVALID,
                       "invalid user name \"%.80s\": use 1-%d letters, digits, . _ - @",
                       name ? name : "", USER_NAME_MAX);
    if (password_hash == NULL || password_hash[0] == '\0')
        return db_fail(db, STORE_INVALID, "user %s: no password hash given", name);
    struct user u = {.role = role};
    uuid_v7_string(u.id);
    snprintf(u.name, sizeof u.name, "%s", name);
    u.created_at = u.updated_at = db_now_ms(db);

    int rc = db_exec(db, SQL_USER_INSERT, "adding a user",
                     DB_ARGS(DB_TEXT(u.id), DB_TEXT(u.name), DB_TEXT(user_role_name(role)),
                             DB_TEXT(password_hash), DB_INT(u.created_at), DB_INT(u.updated_at)));
    if (rc == STORE_EXISTS)
        return user_name_taken(db, name);
    if (rc == STORE_OK && out)
        *out = u;
    return rc;
}

/* The account KEY (by SQL) into OUT and, when HASH is not NULL, its
 * password hash (the column after the user's). */
static int user_get_by(struct db *db, const char *sql, const char *key, struct user *out,
                       char *hash)
{
    struct rowset rs;
    rowset_init(&rs, 0);
    int rc = db_query(db, sql, "reading a user", &rs, DB_ARGS(DB_TEXT(key)));
    if (rc == STORE_OK && rs.nrows == 0)
        rc = db_fail(db, STORE_NOT_FOUND, "no user %.80s", key ? key : "");
    if (rc == STORE_OK && out)
        user_from_rowset(&rs, 0, 0, out);
    if (rc == STORE_OK && hash)
        snprintf(hash, PASSWORD_HASH_MAX, "%s",
                 rowset_text(&rs, 0, USER_HASH_COLUMN) ? rowset_text(&rs, 0, USER_HASH_COLUMN)
                                                       : "");
    rowset_free(&rs);
    return rc;
}

int user_get_by_name(struct db *db, const char *name, struct user *out)
{
    return user_get_by(db, SQL_USER_BY_NAME, name, out, NULL);
}

int user_get_by_id(struct db *db, const char *id, struct user *out)
{
    return user_get_by(db, SQL_USER_BY_ID, id, out, NULL);
}

int user_rows(struct db *db, struct rowset *rs)
{
    return db_query(db, SQL_USER_LIST, "listing users", rs, DB_NO_ARGS);
}

int user_list(struct db *db, user_fn fn, void *ud)
{
    struct rowset rs;
    rowset_init(&rs, 0);
    int rc = user_rows(db, &rs);
    for (size_t i = 0; rc == STORE_OK && i < rs.nrows; i++) {
        struct user u;
        user_from_rowset(&rs, i, 0, &u);
        if (fn(ud, &u) != 0)
            break;
    }
    rowset_free(&rs);
    return rc;
}

int user_count(struct db *db, int64_t *count)
{
    return db_query_first(db, SQL_USER_COUNT, "counting users", count, NULL, 0, NULL, DB_NO_ARGS);
}

int user_is_last_admin(struct db *db, const struct user *u, int *last)
{
    *last = 0;
    if (u->role != USER_ROLE_ADMIN || u->disabled)
        return STORE_OK;
    int64_t others = 0;
    int rc = db_query_first(db, SQL_USER_OTHER_ADMINS, "counting admins", &others, NULL, 0, NULL,
                            DB_ARGS(DB_TEXT(u->name)));
    *last = rc == STORE_OK && others == 0;
    return rc;
}

int user_password_hash(struct db *db, const char *name, struct user *out,
                       char hash[PASSWORD_HASH_MAX])
{
    hash[0] = '\0';
    return user_get_by(db, SQL_USER_HASH, name, out, hash);
}

/* Sets one column of NAME's row to VALUE (SQL: "UPDATE users SET x = ?,
 * updated_at = ? WHERE name = ? AND removed_at IS NULL"); STORE_NOT_FOUND
 * when no account is called NAME, STORE_CONFLICT when it was removed. */
static int user_update(struct db *db, const char *sql, struct db_arg value, const char *name,
                       const char *what)
{
    int rc = db_exec(db, sql, what, DB_ARGS(value, DB_INT(db_now_ms(db)), DB_TEXT(name)));
    struct user u;
    if (rc == STORE_OK && db_changes(db) == 0)
        rc = user_get_by_name(db, name, &u) == STORE_OK
                 ? user_refuse_removed(db, &u)
                 : db_fail(db, STORE_NOT_FOUND, "%s: no user %.80s", what, name);
    return rc;
}

/* user_update and, when REVOKE, ends all of NAME's sessions in the same
 * transaction. */
static int user_update_and_revoke(struct db *db, const char *sql, struct db_arg value,
                                  const char *name, const char *what, int revoke, int64_t *revoked)
{
    if (revoked)
        *revoked = 0;
    int rc = db_tx_begin(db);
    if (rc != STORE_OK)
        return rc;
    rc = user_update(db, sql, value, name, what);
    struct user u;
    if (rc == STORE_OK && revoke && (rc = user_get_by_name(db, name, &u)) == STORE_OK)
        rc = session_revoke_user(db, u.id, revoked);
    return db_tx_end(db, rc);
}

int user_set_password(struct db *db, const char *name, const char *password_hash, int64_t *revoked)
{
    if (password_hash == NULL || password_hash[0] == '\0')
        return db_fail(db, STORE_INVALID, "user %.80s: no password hash given", name);
    return user_update_and_revoke(db, SQL_USER_SET_HASH, DB_TEXT(password_hash), name,
                                  "setting a password", 1, revoked);
}

int user_upgrade_hash(struct db *db, const char *id, const char *old_hash, const char *new_hash)
{
    return db_exec(db, SQL_USER_UPGRADE_HASH, "re-hashing a password",
                   DB_ARGS(DB_TEXT(new_hash), DB_TEXT(id), DB_TEXT(old_hash)));
}

int user_set_disabled(struct db *db, const char *name, int disabled, int64_t *revoked)
{
    return user_update_and_revoke(db, SQL_USER_SET_DISABLED, DB_INT(disabled ? 1 : 0), name,
                                  disabled ? "disabling a user" : "enabling a user", disabled,
                                  revoked);
}

int user_set_role(struct db *db, const char *name, enum user_role role)
{
    return user_update(db, SQL_USER_SET_ROLE, DB_TEXT(user_role_name(role)), name,
                       "setting a role");
}

/* Removal */

static int user_count_of(struct db *db, const char *sql, const char *what, const char *id,
                         int64_t *count)
{
    *count = 0;
    return db_query_first(db, sql, what, count, NULL, 0, NULL, DB_ARGS(DB_TEXT(id)));
}

/* STORE_OK when TARGET may be removed: not the last enabled admin, and
 * (when REASSIGN_TO) the account in HEIR can take its assessments. */
static int user_removal_allowed(struct db *db, const struct user *target, const char *reassign_to,
                                struct user *heir)
{
    int64_t admins = 0;
    int rc = STORE_OK;
    if (!target->removed && target->role == USER_ROLE_ADMIN &&
        (rc = user_count_of(db, SQL_USER_ENABLED_ADMINS_BUT, "counting admins", target->id,
                            &admins)) == STORE_OK &&
        admins == 0)
        return db_fail(db, STORE_REFUSED,
                       "%s is the only enabled admin and cannot be removed; make another "
                       "admin first",
                       target->name);
    if (rc != STORE_OK || reassign_to == NULL)
        return rc;
    if (strcmp(reassign_to, target->name) == 0)
        return db_fail(db, STORE_INVALID,
                       "cannot give %s's assessments to %s itself: name "
                       "another account",
                       target->name, reassign_to);
    if ((rc = user_get_by_name(db, reassign_to, heir)) == STORE_NOT_FOUND)
        return db_fail(db, STORE_INVALID, "cannot give %s's assessments to %.80s: no such account",
                       target->name, reassign_to);
    if (rc == STORE_OK && heir->disabled)
        return db_fail(db, STORE_INVALID,
                       "cannot give %s's assessments to %s: that account is %s; name an "
                       "enabled account",
                       target->name, heir->name, heir->removed ? "removed" : "disabled");
    return rc;
}

/* The steps of user_remove, inside its transaction. */
static int user_remove_locked(struct db *db, const char *name, const char *reassign_to,
                              struct user_removal *out)
{
    struct user heir;
    int64_t live = 0, now = db_now_ms(db);
    int rc = user_get_by_name(db, name, &out->user);
    if (rc != STORE_OK)
        return rc;
    out->was_removed = out->user.removed;
    if (out->was_removed && reassign_to == NULL)
        return db_fail(db, STORE_CONFLICT,
                       "user %s was already removed; to give its read-only assessments to "
                       "another account, name it (o2c user remove %s --reassign-to NAME, or "
                       "?reassign_to=NAME in the API)",
                       name, name);
    if ((rc = user_removal_allowed(db, &out->user, reassign_to, &heir)) != STORE_OK ||
        (rc = user_count_of(db, SQL_ASSESSMENTS_LIVE_OF, "counting assessments", out->user.id,
                            &live)) != STORE_OK)
        return rc;
    if (reassign_to) {
        rc = db_exec(db, SQL_ASSESSMENTS_REASSIGN, "reassigning assessments",
                     DB_ARGS(DB_TEXT(heir.id), DB_TEXT(out->user.id)));
        out->reassigned = live;
    } else {
        out->read_only = live;
    }
    if (rc == STORE_OK && !out->was_removed) {
        rc = db_exec(db, SQL_USER_MARK_REMOVED, "removing a user",
                     DB_ARGS(DB_INT(now), DB_INT(now), DB_TEXT(out->user.id)));
        if (rc == STORE_OK)
            rc = session_revoke_user(db, out->user.id, &out->revoked);
        out->user.disabled = out->user.removed = 1;
        out->user.updated_at = now;
    }
    return rc;
}

int user_remove(struct db *db, const char *name, const char *reassign_to, struct user_removal *out)
{
    memset(out, 0, sizeof *out);
    int rc = db_tx_begin(db);
    if (rc != STORE_OK)
        return rc;
    return db_tx_end(db, user_remove_locked(db, name, reassign_to, out));
}

void user_removal_details(const struct user_removal *r, const char *reassign_to, char *buf,
                          size_t cap)
{
    if (reassign_to)
        snprintf(buf, cap,
                 "\"reassigned_to\":\"%s\",\"assessments\":%lld,\"revoked_sessions\":%lld",
                 reassign_to, (long long)r->reassigned, (long long)r->revoked);
    else
        snprintf(buf, cap, "\"read_only_assessments\":%lld,\"revoked_sessions\":%lld",
                 (long long)r->read_only, (long long)r->revoked);
}

int user_assessment_writable(struct db *db, const char *assessment_id)
{
    char owner[USER_NAME_MAX + 1] = "";
    int found = 0;
    int rc = db_query_first(db, SQL_ASSESSMENT_REMOVED_OWNER, "reading an assessment's owner", NULL,
                            owner, sizeof owner, &found, DB_ARGS(DB_TEXT(assessment_id)));
    if (rc != STORE_OK || !found)
        return rc;
    return db_fail(db, STORE_REFUSED,
                   "assessment %.40s is read-only: its owner %s was removed. An admin can give "
                   "it to another account (o2c user remove %s --reassign-to NAME, or DELETE "
                   "/api/v1/users/%s?reassign_to=NAME) to change it again",
                   assessment_id, owner, owner, owner);
}

int user_ensure_admin(struct db *db, const char *password, char generated[25], int *created)
{
    *created = 0;
    generated[0] = '\0';
    int64_t count = 0;
    int rc = user_count(db, &count);
    if (rc != STORE_OK || count > 0)
        return rc;
    const char *secret = password;
    if (secret == NULL || secret[0] == '\0') {
        password_generate(generated);
        secret = generated;
    }
    char hash[PASSWORD_HASH_MAX], why[128];
    if (password_hash(secret, hash, why, sizeof why) != 0)
        return db_fail(db, STORE_REFUSED, "first-run admin (O2C_ADMIN_PASSWORD): %s", why);
    rc = user_add(db, "admin", USER_ROLE_ADMIN, hash, NULL);
    if (rc == STORE_EXISTS) /* another instance won the race: fine */
        return STORE_OK;
    *created = rc == STORE_OK;
    return rc;
}
