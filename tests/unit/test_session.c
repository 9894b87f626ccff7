/* Sessions and accounts: token format and storage, idle and absolute expiry
 * under an injected clock, sliding refresh, revocation by logout, password
 * change and disable, cleanup; users add/get/list/role, first-run admin. */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <sqlite3.h>
#include "store/db.h"
#include "store/password.h"
#include "store/session.h"
#include "store/user.h"

#define MINUTE (60 * 1000LL)
#define HOUR (60 * MINUTE)
#define DAY (24 * HOUR)

struct fixture {
    char dir[64];
    struct db *db;
    int64_t now;
    struct session_config cfg;
    struct user alice, bob;
};

static int64_t fake_clock(void *ud)
{
    return ((struct fixture *)ud)->now;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/o2c-test-session-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char err[512];
    struct db_config cfg = {.data_dir = f->dir};
    f->db = db_open(&cfg, err, sizeof err);
    if (f->db == NULL)
        fail_msg("db_open: %s", err);
    f->now = 1750000000000LL;
    db_set_clock(f->db, fake_clock, f);
    session_config_default(&f->cfg);
    assert_int_equal(user_add(f->db, "alice", USER_ROLE_CONSULTANT, "h", &f->alice), STORE_OK);
    assert_int_equal(user_add(f->db, "bob", USER_ROLE_ADMIN, "h", &f->bob), STORE_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    db_close(f->db);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

#define OK(call)                                                                                   \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != STORE_OK)                                                                       \
            fail_msg("%s -> %s: %s", #call, store_rc_code(rc_), db_errmsg(f->db));                 \
    } while (0)

static int validate(struct fixture *f, const char *token, struct session_info *info)
{
    struct user u;
    return session_validate(f->db, &f->cfg, token, &u, info);
}

/* Sessions */

static void test_session_create_and_validate(void **state)
{
    struct fixture *f = *state;
    char token[SESSION_TOKEN_LEN + 1];
    struct session_info info;
    OK(session_create(f->db, &f->cfg, f->alice.id, "10.1.2.3", token, &info));
    assert_int_equal(strlen(token), SESSION_TOKEN_LEN);
    for (const char *p = token; *p; p++)
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p));
    assert_int_equal(info.expires_at, f->now + 7 * DAY);
    assert_int_equal(info.idle_expires_at, f->now + 8 * HOUR);

    struct user u;
    OK(session_validate(f->db, &f->cfg, token, &u, &info));
    assert_string_equal(u.id, f->alice.id);
    assert_string_equal(u.name, "alice");
    assert_int_equal(u.role, USER_ROLE_CONSULTANT);

    char other[SESSION_TOKEN_LEN + 1];
    OK(session_create(f->db, &f->cfg, f->alice.id, NULL, other, NULL));
    assert_string_not_equal(token, other);
    assert_int_equal(session_create(f->db, &f->cfg, "no-such-user", NULL, other, NULL),
                     STORE_NOT_FOUND);
}

/* Only a hash is stored: the token text appears nowhere in the database. */
static void test_session_token_stored_only_as_hash(void **state)
{
    struct fixture *f = *state;
    char token[SESSION_TOKEN_LEN + 1];
    OK(session_create(f->db, &f->cfg, f->alice.id, NULL, token, NULL));
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(db_path(f->db), &raw), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(raw, "SELECT token_hash FROM sessions", -1, &q, NULL),
                     SQLITE_OK);
    int rows = 0;
    while (sqlite3_step(q) == SQLITE_ROW) {
        const char *h = (const char *)sqlite3_column_text(q, 0);
        assert_int_equal(strlen(h), 64);
        assert_null(strstr(h, token));
        rows++;
    }
    assert_int_equal(rows, 1);
    sqlite3_finalize(q);
    sqlite3_close(raw);
}

static void test_session_rejects_malformed_and_unknown(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(validate(f, NULL, NULL), STORE_NOT_FOUND);
    assert_int_equal(validate(f, "", NULL), STORE_NOT_FOUND);
    assert_int_equal(validate(f, "short", NULL), STORE_NOT_FOUND);
    char forged[SESSION_TOKEN_LEN + 1];
    memset(forged, 'A', SESSION_TOKEN_LEN);
    forged[SESSION_TOKEN_LEN] = '\0';
    assert_int_equal(validate(f, forged, NULL), STORE_NOT_FOUND);
    char token[SESSION_TOKEN_LEN + 1];
    OK(session_create(f->db, &f->cfg, f->alice.id, NULL, token, NULL));
    token[5] = token[5] == 'x' ? 'y' : 'x';
    assert_int_equal(validate(f, token, NULL), STORE_NOT_FOUND);
}

static void test_session_idle_expiry(void **state)
{
    struct fixture *f = *state;
    char token[SESSION_TOKEN_LEN + 1];
    OK(session_create(f->db, &f->cfg, f->alice.id, NULL, token, NULL));
    int64_t start = f->now;
    f->now = start + 8 * HOUR - 1;
    OK(validate(f, token, NULL)); /* just in time; slides the idle window */
    f->now = start + 16 * HOUR - 2;
    OK(validate(f, token, NULL));
    f->now += 8 * HOUR; /* idle exactly the timeout */
    assert_int_equal(validate(f, token, NULL), STORE_NOT_FOUND);
    assert_non_null(strstr(db_errmsg(f->db), "idle"));
    f->now -= 8 * HOUR; /* gone for good, even if the clock goes back */
    assert_int_equal(validate(f, token, NULL), STORE_NOT_FOUND);

    char fresh[SESSION_TOKEN_LEN + 1];
    OK(session_create(f->db, &f->cfg, f->alice.id, NULL, fresh, NULL));
    f->now += 8 * HOUR;
    assert_int_equal(validate(f, fresh, NULL), STORE_NOT_FOUND);
}

static void test_session_absolute_expiry_despite_activity(void **state)
{
    struct fixture *f = *state;
    char token[SESSION_TOKEN_LEN + 1];
    OK(session_create(f->db, &f->cfg, f->alice.id, NULL, token, NULL));
    int64_t start = f->now;
    struct session_info info;
    for (int64_t t = start + HOUR; t < start + 7 * DAY; t += 4 * HOUR) {
        f->now = t;
        OK(validate(f, token, &info));
        assert_int_equal(info.expires_at, start + 7 * DAY);
        assert_true(info.idle_expires_at <= info.expires_at);
    }
    f->now = start + 7 * DAY - 1;
    OK(validate(f, token, NULL));
    f->now = start + 7 * DAY;
    assert_int_equal(validate(f, token, NULL), STORE_NOT_FOUND);
    assert_non_null(strstr(db_errmsg(f->db), "absolute"));
}

/* The idle time slides at most once per touch interval (one write a minute,
 * not one per request), and a shorter configured timeout applies at once. */
static void test_session_touch_interval_and_config(void **state)
{
    struct fixture *f = *state;
    char token[SESSION_TOKEN_LEN + 1];
    OK(session_create(f->db, &f->cfg, f->alice.id, NULL, token, NULL));
    int64_t start = f->now;
    struct session_info info;
    f->now = start + 30 * 1000;
    OK(validate(f, token, &info));
    assert_int_equal(info.last_seen_at, start);
    f->now = start + 61 * 1000;
    OK(validate(f, token, &info));
    assert_int_equal(info.last_seen_at, start + 61 * 1000);
    assert_int_equal(info.idle_expires_at, start + 61 * 1000 + 8 * HOUR);

    f->cfg.idle_timeout_ms = 10 * MINUTE;
    f->now += 10 * MINUTE;
    assert_int_equal(validate(f, token, NULL), STORE_NOT_FOUND);
}

static void test_session_logout(void **state)
{
    struct fixture *f = *state;
    char a[SESSION_TOKEN_LEN + 1], b[SESSION_TOKEN_LEN + 1];
    OK(session_create(f->db, &f->cfg, f->alice.id, NULL, a, NULL));
    OK(session_create(f->db, &f->cfg, f->alice.id, NULL, b, NULL));
    OK(session_revoke(f->db, a));
    assert_int_equal(validate(f, a, NULL), STORE_NOT_FOUND);
    OK(validate(f, b, NULL)); /* the other device stays logged in */
    assert_int_equal(session_revoke(f->db, a), STORE_NOT_FOUND);
    assert_int_equal(session_revoke(f->db, "garbage"), STORE_NOT_FOUND);
}

static void test_session_password_change_revokes_all(void **state)
{
    struct fixture *f = *state;
    char a1[SESSION_TOKEN_LEN + 1], a2[SESSION_TOKEN_LEN + 1], b[SESSION_TOKEN_LEN + 1];
    OK(session_create(f->db, &f->cfg, f->alice.id, NULL, a1, NULL));
    OK(session_create(f->db, &f->cfg, f->alice.id, NULL, a2, NULL));
    OK(session_create(f->db, &f->cfg, f->bob.id, NULL, b, NULL));
    int64_t revoked = 0;
    OK(user_set_password(f->db, "alice", "new-hash", &revoked));
    assert_int_equal(revoked, 2);
    assert_int_equal(validate(f, a1, NULL), STORE_NOT_FOUND);
    assert_int_equal(validate(f, a2, NULL), STORE_NOT_FOUND);
    OK(validate(f, b, NULL));
    char hash[PASSWORD_HASH_MAX];
    OK(user_password_hash(f->db, "alice", NULL, hash));
    assert_string_equal(hash, "new-hash");
    assert_int_equal(user_set_password(f->db, "nobody", "x", NULL), STORE_NOT_FOUND);
    assert_int_equal(user_set_password(f->db, "alice", "", NULL), STORE_INVALID);
}

static void test_session_disable_revokes_and_blocks(void **state)
{
    struct fixture *f = *state;
    char a[SESSION_TOKEN_LEN + 1];
    OK(session_create(f->db, &f->cfg, f->alice.id, NULL, a, NULL));
    int64_t revoked = 0;
    OK(user_set_disabled(f->db, "alice", 1, &revoked));
    assert_int_equal(revoked, 1);
    assert_int_equal(validate(f, a, NULL), STORE_NOT_FOUND);
    struct user u;
    OK(user_get_by_name(f->db, "alice", &u));
    assert_int_equal(u.disabled, 1);
    /* Even a session created afterwards by mistake does not let them in. */
    OK(session_create(f->db, &f->cfg, f->alice.id, NULL, a, NULL));
    assert_int_equal(validate(f, a, NULL), STORE_NOT_FOUND);
    assert_non_null(strstr(db_errmsg(f->db), "disabled"));
    OK(user_set_disabled(f->db, "alice", 0, &revoked));
    assert_int_equal(revoked, 0);
    OK(session_create(f->db, &f->cfg, f->alice.id, NULL, a, NULL));
    OK(validate(f, a, NULL));
}

static void test_session_cleanup_and_count(void **state)
{
    struct fixture *f = *state;
    char t[4][SESSION_TOKEN_LEN + 1];
    int64_t start = f->now;
    OK(session_create(f->db, &f->cfg, f->alice.id, NULL, t[0], NULL)); /* will idle out */
    f->now = start + 6 * DAY;
    OK(session_create(f->db, &f->cfg, f->alice.id, NULL, t[1], NULL)); /* stays */
    OK(session_create(f->db, &f->cfg, f->bob.id, NULL, t[2], NULL));   /* stays */
    int64_t n = 0;
    OK(session_count(f->db, &f->cfg, &n));
    assert_int_equal(n, 2);
    OK(session_cleanup(f->db, &f->cfg, &n));
    assert_int_equal(n, 1);
    f->now = start + 6 * DAY + 9 * HOUR;
    OK(session_cleanup(f->db, &f->cfg, &n));
    assert_int_equal(n, 2);
    OK(session_cleanup(f->db, &f->cfg, &n));
    assert_int_equal(n, 0);
}

/* Users */

struct names {
    int n;
    char name[8][USER_NAME_MAX + 1];
};

static int collect_user(void *ud, const struct user *u)
{
    struct names *l = ud;
    snprintf(l->name[l->n++], USER_NAME_MAX + 1, "%s", u->name);
    return 0;
}

static void test_user_add_get_list_role(void **state)
{
    struct fixture *f = *state;
    struct user u, back;
    OK(user_add(f->db, "carol.smith@example", USER_ROLE_CONSULTANT, "h", &u));
    assert_true(uuid_is_v7(u.id));
    assert_int_equal(user_add(f->db, "carol.smith@example", USER_ROLE_ADMIN, "h", NULL),
                     STORE_EXISTS);
    assert_non_null(strstr(db_errmsg(f->db), "already exists"));
    assert_int_equal(user_add(f->db, "", USER_ROLE_ADMIN, "h", NULL), STORE_INVALID);
    assert_int_equal(user_add(f->db, "bad name", USER_ROLE_ADMIN, "h", NULL), STORE_INVALID);
    assert_int_equal(user_add(f->db, "-dash", USER_ROLE_ADMIN, "h", NULL), STORE_INVALID);
    assert_int_equal(user_add(f->db, "nohash", USER_ROLE_ADMIN, "", NULL), STORE_INVALID);
    OK(user_get_by_name(f->db, "carol.smith@example", &back));
    assert_string_equal(back.id, u.id);
    OK(user_get_by_id(f->db, u.id, &back));
    assert_string_equal(back.name, "carol.smith@example");
    assert_int_equal(user_get_by_name(f->db, "nobody", &back), STORE_NOT_FOUND);
    OK(user_set_role(f->db, "carol.smith@example", USER_ROLE_ADMIN));
    OK(user_get_by_name(f->db, "carol.smith@example", &back));
    assert_int_equal(back.role, USER_ROLE_ADMIN);
    assert_int_equal(user_set_role(f->db, "nobody", USER_ROLE_ADMIN), STORE_NOT_FOUND);
    struct names l = {0};
    OK(user_list(f->db, collect_user, &l));
    assert_int_equal(l.n, 3);
    assert_string_equal(l.name[0], "alice");
    assert_string_equal(l.name[2], "carol.smith@example");
    enum user_role r;
    assert_int_equal(user_role_parse("admin", &r), 0);
    assert_int_equal(r, USER_ROLE_ADMIN);
    assert_int_equal(user_role_parse("root", &r), -1);
    char hash[PASSWORD_HASH_MAX];
    assert_int_equal(user_password_hash(f->db, "nobody", NULL, hash), STORE_NOT_FOUND);
    assert_string_equal(hash, "");
}

static void test_user_first_run_admin(void **state)
{
    struct fixture *f = *state;
    /* A fresh database of its own: the fixture already has users. */
    char dir[64], err[512], generated[25];
    snprintf(dir, sizeof dir, "/tmp/o2c-test-admin-XXXXXX");
    assert_non_null(mkdtemp(dir));
    struct db_config cfg = {.data_dir = dir};
    struct db *db = db_open(&cfg, err, sizeof err);
    assert_non_null(db);
    int created = -1;
    assert_int_equal(user_ensure_admin(db, "short", generated, &created), STORE_REFUSED);
    assert_int_equal(created, 0);
    assert_int_equal(user_ensure_admin(db, NULL, generated, &created), STORE_OK);
    assert_int_equal(created, 1);
    assert_int_equal(strlen(generated), 24);
    struct user admin;
    char hash[PASSWORD_HASH_MAX];
    assert_int_equal(user_password_hash(db, "admin", &admin, hash), STORE_OK);
    assert_int_equal(admin.role, USER_ROLE_ADMIN);
    assert_true(password_verify(hash, generated));
    /* Second start: nothing happens. */
    assert_int_equal(user_ensure_admin(db, "another-long-password", generated, &created), STORE_OK);
    assert_int_equal(created, 0);
    db_close(db);
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    /* The fixture's database has users: also a no-op. */
    assert_int_equal(user_ensure_admin(f->db, "a-long-enough-password", generated, &created),
                     STORE_OK);
    assert_int_equal(created, 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_session_create_and_validate),
        T(test_session_token_stored_only_as_hash),
        T(test_session_rejects_malformed_and_unknown),
        T(test_session_idle_expiry),
        T(test_session_absolute_expiry_despite_activity),
        T(test_session_touch_interval_and_config),
        T(test_session_logout),
        T(test_session_password_change_revokes_all),
        T(test_session_disable_revokes_and_blocks),
        T(test_session_cleanup_and_count),
        T(test_user_add_get_list_role),
        T(test_user_first_run_admin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
