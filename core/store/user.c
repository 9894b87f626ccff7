#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "store/db_internal.h"
#include "store/rowset.h"
#include "store/session.h"
#include "store/user.h"

/* Named for the Lua fields (rowset_lua.h); C reads them by position. */
#define USER_COLUMNS                                                                               \
    "id, name, role, disabled AS \"disabled:bool\", created_at AS \"created_at:time\","            \
    " updated_at AS \"updated_at:omit\""

static const char SQL_USER_INSERT[] =
    "INSERT INTO users (id, name, role, password_hash, disabled, created_at, updated_at)"
    " VALUES (?, ?, ?, ?, 0, ?, ?)";
static const char SQL_USER_BY_NAME[] = "SELECT " USER_COLUMNS " FROM users WHERE name = ?";
static const char SQL_USER_BY_ID[] = "SELECT " USER_COLUMNS " FROM users WHERE id = ?";
static const char SQL_USER_LIST[] = "SELECT " USER_COLUMNS " FROM users ORDER BY name";
static const char SQL_USER_COUNT[] = "SELECT COUNT(*) FROM users";
static const char SQL_USER_HASH[] =
    "SELECT " USER_COLUMNS ", password_hash FROM users WHERE name = ?";
static const char SQL_USER_SET_HASH[] =
    "UPDATE users SET password_hash = ?, updated_at = ? WHERE name = ?";
static const char SQL_USER_UPGRADE_HASH[] =
    "UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ?";
static const char SQL_USER_SET_DISABLED[] =
    "UPDATE users SET disabled = ?, updated_at = ? WHERE name = ?";
static const char SQL_USER_SET_ROLE[] = "UPDATE users SET role = ?, updated_at = ? WHERE name = ?";

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

/* Reads the USER_COLUMNS at the start of the current row. */
static void user_from_row(sqlite3_stmt *st, struct user *u)
{
    db_col_copy(st, 0, u->id, sizeof u->id);
    db_col_copy(st, 1, u->name, sizeof u->name);
    const char *role = db_col_text(st, 2);
    u->role = role && strcmp(role, "admin") == 0 ? USER_ROLE_ADMIN : USER_ROLE_CONSULTANT;
    u->disabled = sqlite3_column_int(st, 3);
    u->created_at = sqlite3_column_int64(st, 4);
    u->updated_at = sqlite3_column_int64(st, 5);
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

    sqlite3_stmt *st = db_stmt(db, SQL_USER_INSERT);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, u.id);
    db_bind_text(st, 2, u.name);
    db_bind_text(st, 3, user_role_name(role));
    db_bind_text(st, 4, password_hash);
    sqlite3_bind_int64(st, 5, u.created_at);
    sqlite3_bind_int64(st, 6, u.updated_at);
    int rc = db_step_done(db, st, "adding a user");
    if (rc == STORE_EXISTS)
        return db_fail(db, STORE_EXISTS, "user %s already exists", name);
    if (rc == STORE_OK && out)
        *out = u;
    return rc;
}

static int user_get_by(struct db *db, const char *sql, const char *key, struct user *out)
{
    sqlite3_stmt *st = db_stmt(db, sql);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, key);
    int step = sqlite3_step(st), rc = STORE_OK;
    if (step == SQLITE_ROW)
        user_from_row(st, out);
    else if (step == SQLITE_DONE)
        rc = db_fail(db, STORE_NOT_FOUND, "no user %.80s", key ? key : "");
    else
        rc = db_sqlite_fail(db, "reading a user");
    db_stmt_done(st);
    return rc;
}

int user_get_by_name(struct db *db, const char *name, struct user *out)
{
    return user_get_by(db, SQL_USER_BY_NAME, name, out);
}

int user_get_by_id(struct db *db, const char *id, struct user *out)
{
    return user_get_by(db, SQL_USER_BY_ID, id, out);
}

int user_rows(struct db *db, const char *name, struct rowset *rs)
{
    sqlite3_stmt *st = db_stmt(db, name ? SQL_USER_BY_NAME : SQL_USER_LIST);
    if (st == NULL)
        return STORE_ERROR;
    if (name)
        db_bind_text(st, 1, name);
    int rc = rowset_capture_sqlite(db, st, rs, name ? "reading a user" : "listing users");
    if (rc == STORE_OK && name && rs->nrows == 0)
        rc = db_fail(db, STORE_NOT_FOUND, "no user %.80s", name);
    return rc;
}

int user_list(struct db *db, user_fn fn, void *ud)
{
    struct rowset rs;
    rowset_init(&rs, 0);
    int rc = user_rows(db, NULL, &rs);
    for (size_t i = 0; rc == STORE_OK && i < rs.nrows; i++) {
        struct user u = {.disabled = rowset_int(&rs, i, 3) != 0,
                         .created_at = rowset_int(&rs, i, 4),
                         .updated_at = rowset_int(&rs, i, 5)};
        snprintf(u.id, sizeof u.id, "%s", rowset_text(&rs, i, 0));
        snprintf(u.name, sizeof u.name, "%s", rowset_text(&rs, i, 1));
        user_role_parse(rowset_text(&rs, i, 2), &u.role);
        if (fn(ud, &u) != 0)
            break;
    }
    rowset_free(&rs);
    return rc;
}

int user_count(struct db *db, int64_t *count)
{
    sqlite3_stmt *st = db_stmt(db, SQL_USER_COUNT);
    if (st == NULL)
        return STORE_ERROR;
    int rc = STORE_OK;
    if (sqlite3_step(st) == SQLITE_ROW)
        *count = sqlite3_column_int64(st, 0);
    else
        rc = db_sqlite_fail(db, "counting users");
    db_stmt_done(st);
    return rc;
}

int user_password_hash(struct db *db, const char *name, struct user *out,
                       char hash[PASSWORD_HASH_MAX])
{
    hash[0] = '\0';
    sqlite3_stmt *st = db_stmt(db, SQL_USER_HASH);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, name);
    int step = sqlite3_step(st), rc = STORE_OK;
    if (step == SQLITE_ROW) {
        if (out)
            user_from_row(st, out);
        db_col_copy(st, 6, hash, PASSWORD_HASH_MAX);
    } else if (step == SQLITE_DONE) {
        rc = db_fail(db, STORE_NOT_FOUND, "no user %.80s", name ? name : "");
    } else {
        rc = db_sqlite_fail(db, "reading a password hash");
    }
    db_stmt_done(st);
    return rc;
}

/* Runs the UPDATE in ST (already bound) and reports STORE_NOT_FOUND when no
 * account is called NAME. */
static int user_update(struct db *db, sqlite3_stmt *st, const char *name, const char *what)
{
    int rc = db_step_done(db, st, what);
    if (rc == STORE_OK && db_changes(db) == 0)
        rc = db_fail(db, STORE_NOT_FOUND, "%s: no user %.80s", what, name);
    return rc;
}

/* Runs an update of NAME's row (bound in ST) and, when REVOKE, ends all of
 * NAME's sessions in the same transaction. */
static int user_update_and_revoke(struct db *db, sqlite3_stmt *st, const char *name,
                                  const char *what, int revoke, int64_t *revoked)
{
    if (revoked)
        *revoked = 0;
    int rc = db_tx_begin(db);
    if (rc != STORE_OK)
        return rc;
    rc = user_update(db, st, name, what);
    struct user u;
    if (rc == STORE_OK && revoke && (rc = user_get_by_name(db, name, &u)) == STORE_OK)
        rc = session_revoke_user(db, u.id, revoked);
    if (rc != STORE_OK) {
        db_tx_rollback(db);
        return rc;
    }
    return db_tx_commit(db);
}

int user_set_password(struct db *db, const char *name, const char *password_hash, int64_t *revoked)
{
    if (password_hash == NULL || password_hash[0] == '\0')
        return db_fail(db, STORE_INVALID, "user %.80s: no password hash given", name);
    sqlite3_stmt *st = db_stmt(db, SQL_USER_SET_HASH);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, password_hash);
    sqlite3_bind_int64(st, 2, db_now_ms(db));
    db_bind_text(st, 3, name);
    return user_update_and_revoke(db, st, name, "setting a password", 1, revoked);
}

int user_upgrade_hash(struct db *db, const char *id, const char *old_hash, const char *new_hash)
{
    sqlite3_stmt *st = db_stmt(db, SQL_USER_UPGRADE_HASH);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, new_hash);
    db_bind_text(st, 2, id);
    db_bind_text(st, 3, old_hash);
    return db_step_done(db, st, "re-hashing a password");
}

int user_set_disabled(struct db *db, const char *name, int disabled, int64_t *revoked)
{
    sqlite3_stmt *st = db_stmt(db, SQL_USER_SET_DISABLED);
    if (st == NULL)
        return STORE_ERROR;
    sqlite3_bind_int(st, 1, disabled ? 1 : 0);
    sqlite3_bind_int64(st, 2, db_now_ms(db));
    db_bind_text(st, 3, name);
    return user_update_and_revoke(db, st, name, disabled ? "disabling a user" : "enabling a user",
                                  disabled, revoked);
}

int user_set_role(struct db *db, const char *name, enum user_role role)
{
    sqlite3_stmt *st = db_stmt(db, SQL_USER_SET_ROLE);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, user_role_name(role));
    sqlite3_bind_int64(st, 2, db_now_ms(db));
    db_bind_text(st, 3, name);
    return user_update(db, st, name, "setting a role");
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
