/* Passwords (argon2id, policy, dummy hash), login throttling windows with an
 * injected clock, and the authorization rules. */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "store/authz.h"
#include "store/db.h"
#include "store/password.h"
#include "store/throttle.h"

#define MINUTE (60 * 1000LL)

struct fixture {
    char dir[64];
    struct db *db;
    int64_t now;
    struct throttle_config cfg;
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
    snprintf(f->dir, sizeof f->dir, "/tmp/o2c-test-auth-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char err[512];
    struct db_config cfg = {.data_dir = f->dir};
    f->db = db_open(&cfg, err, sizeof err);
    if (f->db == NULL)
        fail_msg("db_open: %s", err);
    f->now = 1750000000000LL;
    db_set_clock(f->db, fake_clock, f);
    throttle_config_default(&f->cfg);
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

/* Passwords */

static void test_password_policy(void **state)
{
    (void)state;
    char err[128], hash[PASSWORD_HASH_MAX];
    assert_int_equal(password_check_policy("eleven-char", err, sizeof err), -1);
    assert_non_null(strstr(err, "at least 12"));
    assert_int_equal(password_check_policy("twelve-chars", err, sizeof err), 0);
    assert_int_equal(password_check_policy(NULL, err, sizeof err), -1);
    char *huge = malloc(PASSWORD_MAX_LEN + 2);
    memset(huge, 'p', PASSWORD_MAX_LEN + 1);
    huge[PASSWORD_MAX_LEN + 1] = '\0';
    assert_int_equal(password_check_policy(huge, err, sizeof err), -1);
    assert_int_equal(password_hash(huge, hash, err, sizeof err), -1);
    assert_false(password_verify(password_dummy_hash(), huge));
    free(huge);
    assert_int_equal(password_hash("short", hash, err, sizeof err), -1);
}

static void test_password_hash_and_verify(void **state)
{
    (void)state;
    char err[128], hash[PASSWORD_HASH_MAX], hash2[PASSWORD_HASH_MAX];
    assert_int_equal(password_hash("correct horse battery", hash, err, sizeof err), 0);
    assert_non_null(strstr(hash, "$argon2id$"));
    assert_true(password_verify(hash, "correct horse battery"));
    assert_false(password_verify(hash, "correct horse batterY"));
    assert_false(password_verify(hash, ""));
    assert_false(password_needs_rehash(hash));
    /* Salted: the same password hashes differently each time. */
    assert_int_equal(password_hash("correct horse battery", hash2, err, sizeof err), 0);
    assert_string_not_equal(hash, hash2);
}

/* Unknown user: verified against the dummy hash (same work), never matches. */
static void test_password_unknown_user_uses_dummy(void **state)
{
    (void)state;
    const char *dummy = password_dummy_hash();
    assert_non_null(strstr(dummy, "$argon2id$"));
    assert_ptr_equal(dummy, password_dummy_hash());
    assert_false(password_verify(NULL, "whatever-password"));
    assert_false(password_verify("", "whatever-password"));
    char generated[25];
    password_generate(generated);
    assert_int_equal(strlen(generated), 24);
}

/* Throttling */

/* A failed login, reserved and settled as a login does it. */
static void fail_once(struct fixture *f, const char *user, const char *addr)
{
    char attempt[UUID_STR_LEN];
    int64_t retry = 0;
    OK(throttle_reserve(f->db, &f->cfg, user, addr, attempt, &retry));
    OK(throttle_settle_failure(f->db, attempt));
}

/* N failed logins, a second apart. */
static void fail_n(struct fixture *f, const char *user, const char *addr, int n)
{
    for (int i = 0; i < n; i++) {
        fail_once(f, user, addr);
        f->now += 1000;
    }
}

/* What a login for USER from ADDR would be told now; an admitted attempt
 * is dropped again, so asking changes nothing. */
static int may_try(struct fixture *f, const char *user, const char *addr, int64_t *retry)
{
    char attempt[UUID_STR_LEN];
    int rc = throttle_reserve(f->db, &f->cfg, user, addr, attempt, retry);
    if (rc == STORE_OK)
        OK(throttle_release(f->db, attempt));
    return rc;
}

/* A successful login that had no reservation: only the account's
 * failures are cleared. */
static void succeed(struct fixture *f, const char *user)
{
    OK(throttle_settle_success(f->db, NULL, user));
}

static void test_throttle_account_window(void **state)
{
    struct fixture *f = *state;
    int64_t retry = -1, start = f->now;
    fail_n(f, "alice", "10.0.0.1", 4);
    OK(may_try(f, "alice", "10.0.0.2", &retry));
    assert_int_equal(retry, 0);
    fail_n(f, "alice", "10.0.0.2", 1); /* 5th failure at start + 4 s */
    assert_int_equal(may_try(f, "alice", "10.0.0.3", &retry), STORE_REFUSED);
    /* Lifts when the first failure (at start) leaves the 15-minute window. */
    assert_int_equal(retry, (start + 15 * MINUTE - f->now + 999) / 1000);
    assert_non_null(strstr(db_errmsg(f->db), "account"));
    assert_int_equal(may_try(f, "bob", "10.0.0.3", &retry), STORE_OK);
    f->now = start + 15 * MINUTE - 1;
    assert_int_equal(may_try(f, "alice", NULL, &retry), STORE_REFUSED);
    assert_int_equal(retry, 1);
    f->now = start + 15 * MINUTE;
    OK(may_try(f, "alice", NULL, &retry));
    /* One more failure: five inside the window again, refused until the
     * second-oldest (start + 1 s) leaves it. */
    fail_once(f, "alice", NULL);
    assert_int_equal(may_try(f, "alice", NULL, &retry), STORE_REFUSED);
    assert_int_equal(retry, 1);
}

static void test_throttle_address_window(void **state)
{
    struct fixture *f = *state;
    int64_t retry = 0;
    /* One address trying five different accounts. */
    const char *users[] = {"u1", "u2", "u3", "u4", "u5"};
    for (int i = 0; i < 5; i++)
        fail_n(f, users[i], "192.0.2.7", 1);
    assert_int_equal(may_try(f, "u6", "192.0.2.7", &retry), STORE_REFUSED);
    assert_true(retry > 0 && retry <= 15 * 60);
    assert_non_null(strstr(db_errmsg(f->db), "address"));
    OK(may_try(f, "u6", "192.0.2.8", &retry));
    OK(may_try(f, "u1", NULL, &retry));
}

static void test_throttle_success_clears_account_not_address(void **state)
{
    struct fixture *f = *state;
    int64_t retry = 0;
    fail_n(f, "alice", "198.51.100.1", 4);
    succeed(f, "alice");
    fail_n(f, "alice", "198.51.100.2", 4);
    OK(may_try(f, "alice", "198.51.100.3", &retry));
    fail_n(f, "mallory", "198.51.100.1", 1); /* address .1 now at 5 */
    assert_int_equal(may_try(f, "alice", "198.51.100.1", &retry), STORE_REFUSED);
    succeed(f, "alice");
    assert_int_equal(may_try(f, "alice", "198.51.100.1", &retry), STORE_REFUSED);
}

static void test_throttle_purge_and_config(void **state)
{
    struct fixture *f = *state;
    int64_t n = 0, retry = 0;
    fail_n(f, "alice", "203.0.113.5", 3);
    f->now += 15 * MINUTE;
    fail_n(f, "alice", "203.0.113.5", 1);
    OK(throttle_purge(f->db, &f->cfg, &n));
    assert_int_equal(n, 6); /* three old failures, each by account and by address */
    f->cfg.max_failures = 1;
    assert_int_equal(may_try(f, "alice", NULL, &retry), STORE_REFUSED);
    /* Giant names are bounded and still counted. */
    char big[2000];
    memset(big, 'n', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    fail_n(f, big, NULL, 1);
    assert_int_equal(may_try(f, big, NULL, &retry), STORE_REFUSED);
}

/* Reservations: an attempt counts from its start. */

static void reserve_n(struct fixture *f, const char *user, const char *addr_prefix, int n,
                      char ids[][UUID_STR_LEN])
{
    for (int i = 0; i < n; i++) {
        char addr[32];
        int64_t retry = -1;
        snprintf(addr, sizeof addr, "%s%d", addr_prefix, i);
        OK(throttle_reserve(f->db, &f->cfg, user, addr, ids[i], &retry));
        assert_int_equal(retry, 0);
        assert_int_equal(strlen(ids[i]), UUID_STR_LEN - 1);
    }
}

static void test_throttle_in_flight_attempts_count(void **state)
{
    struct fixture *f = *state;
    char ids[8][UUID_STR_LEN], extra[UUID_STR_LEN] = "x";
    int64_t retry = -1;
    /* Five verifies under way, none settled: a sixth is not admitted, and
     * told to wait for one of them rather than refused for 15 minutes. */
    reserve_n(f, "alice", "10.1.0.", 5, ids);
    assert_int_equal(throttle_reserve(f->db, &f->cfg, "alice", "10.1.0.9", extra, &retry),
                     STORE_CONFLICT);
    assert_string_equal(extra, "");
    assert_int_equal(retry, 0);
    assert_non_null(strstr(db_errmsg(f->db), "this account"));
    /* Nothing was added by the refusal; other accounts are untouched. */
    OK(throttle_reserve(f->db, &f->cfg, "bob", "10.1.0.9", extra, &retry));
    OK(throttle_release(f->db, extra));
    /* Two fail, one is dropped unverified: four rows, room for one more. */
    OK(throttle_settle_failure(f->db, ids[0]));
    OK(throttle_settle_failure(f->db, ids[1]));
    OK(throttle_release(f->db, ids[2]));
    OK(throttle_reserve(f->db, &f->cfg, "alice", "10.1.0.7", ids[5], &retry));
    assert_int_equal(throttle_reserve(f->db, &f->cfg, "alice", "10.1.0.8", extra, &retry),
                     STORE_CONFLICT);
    /* The rest fail: five failures, now a refusal with the window's wait. */
    OK(throttle_settle_failure(f->db, ids[3]));
    OK(throttle_settle_failure(f->db, ids[4]));
    OK(throttle_settle_failure(f->db, ids[5]));
    assert_int_equal(throttle_reserve(f->db, &f->cfg, "alice", "10.1.0.8", extra, &retry),
                     STORE_REFUSED);
    assert_int_equal(retry, 15 * 60);
    assert_non_null(strstr(db_errmsg(f->db), "account"));
    /* Settling twice changes nothing. */
    OK(throttle_settle_failure(f->db, ids[0]));
    OK(throttle_release(f->db, ids[0]));
    assert_int_equal(may_try(f, "alice", NULL, &retry), STORE_REFUSED);
}

static void test_throttle_in_flight_by_address(void **state)
{
    struct fixture *f = *state;
    char ids[5][UUID_STR_LEN], extra[UUID_STR_LEN];
    int64_t retry = 0;
    const char *users[] = {"u1", "u2", "u3", "u4", "u5"};
    for (int i = 0; i < 5; i++)
        OK(throttle_reserve(f->db, &f->cfg, users[i], "192.0.2.7", ids[i], &retry));
    assert_int_equal(throttle_reserve(f->db, &f->cfg, "u6", "192.0.2.7", extra, &retry),
                     STORE_CONFLICT);
    assert_non_null(strstr(db_errmsg(f->db), "this address"));
    OK(throttle_reserve(f->db, &f->cfg, "u6", "192.0.2.8", extra, &retry));
    /* Successes leave the address's budget as it was before them. */
    for (int i = 0; i < 5; i++)
        OK(throttle_settle_success(f->db, ids[i], users[i]));
    OK(throttle_reserve(f->db, &f->cfg, "u6", "192.0.2.7", extra, &retry));
}

static void test_throttle_settle_success(void **state)
{
    struct fixture *f = *state;
    char ids[6][UUID_STR_LEN], extra[UUID_STR_LEN];
    int64_t retry = 0;
    fail_n(f, "alice", NULL, 2);
    reserve_n(f, "alice", "10.2.0.", 3, ids);
    assert_int_equal(throttle_reserve(f->db, &f->cfg, "alice", "10.2.0.9", extra, &retry),
                     STORE_CONFLICT);
    /* One succeeds: its row and the two recorded failures go; the two other
     * attempts still in flight keep counting until they settle. */
    OK(throttle_settle_success(f->db, ids[0], "alice"));
    reserve_n(f, "alice", "10.3.0.", 3, &ids[3]);
    assert_int_equal(throttle_reserve(f->db, &f->cfg, "alice", "10.2.0.9", extra, &retry),
                     STORE_CONFLICT);
    for (int i = 1; i < 6; i++)
        OK(throttle_settle_failure(f->db, ids[i]));
    assert_int_equal(may_try(f, "alice", NULL, &retry), STORE_REFUSED);
}

static void test_throttle_stale_attempts(void **state)
{
    struct fixture *f = *state;
    char ids[5][UUID_STR_LEN], extra[UUID_STR_LEN];
    int64_t retry = 0, n = 0, start = f->now;
    /* Five attempts whose process died mid-verify: waited on for a minute,
     * then taken for failures until they leave the window. */
    reserve_n(f, "alice", "10.4.0.", 5, ids);
    f->now = start + THROTTLE_IN_FLIGHT_MS - 1;
    assert_int_equal(throttle_reserve(f->db, &f->cfg, "alice", NULL, extra, &retry),
                     STORE_CONFLICT);
    f->now = start + THROTTLE_IN_FLIGHT_MS;
    assert_int_equal(throttle_reserve(f->db, &f->cfg, "alice", NULL, extra, &retry), STORE_REFUSED);
    assert_int_equal(retry, (15 * MINUTE - THROTTLE_IN_FLIGHT_MS) / 1000);
    f->now = start + 15 * MINUTE;
    OK(throttle_purge(f->db, &f->cfg, &n));
    assert_int_equal(n, 10); /* by account and by address */
    OK(throttle_reserve(f->db, &f->cfg, "alice", NULL, extra, &retry));
    /* A success also clears stale attempts, which count as failures. */
    reserve_n(f, "alice", "10.5.0.", 3, ids);
    f->now += THROTTLE_IN_FLIGHT_MS;
    OK(throttle_settle_success(f->db, extra, "alice"));
    reserve_n(f, "alice", "10.6.0.", 5, ids);
}

/* Authorization */

static void test_authz_rules(void **state)
{
    (void)state;
    struct user admin = {.id = "id-admin", .name = "admin", .role = USER_ROLE_ADMIN};
    struct user alice = {.id = "id-alice", .name = "alice", .role = USER_ROLE_CONSULTANT};
    struct user bob = {.id = "id-bob", .name = "bob", .role = USER_ROLE_CONSULTANT};
    struct user off_admin = admin, off_alice = alice, blank = {.role = USER_ROLE_CONSULTANT};
    off_admin.disabled = off_alice.disabled = 1;
    const char *owner = "id-alice"; /* an assessment's owner_id */

    assert_true(authz_can_access_owner(&alice, owner));
    assert_true(authz_can_access_owner(&admin, owner));
    assert_false(authz_can_access_owner(&bob, owner));
    assert_false(authz_can_access_owner(&off_alice, owner));
    assert_false(authz_can_access_owner(&off_admin, owner));
    assert_false(authz_can_access_owner(NULL, owner));
    assert_false(authz_can_access_owner(&alice, NULL));
    assert_false(authz_can_access_owner(&blank, "")); /* an empty id owns nothing */
    assert_true(authz_can_access_owner(authz_system_user(), owner));

    assert_true(authz_is_admin(&admin));
    assert_false(authz_is_admin(&off_admin));
    assert_false(authz_is_admin(&alice));
    assert_false(authz_is_admin(NULL));

    assert_null(authz_list_owner(&admin));
    assert_string_equal(authz_list_owner(&alice), "id-alice");
    assert_string_equal(authz_list_owner(&off_admin), "");
    assert_string_equal(authz_list_owner(NULL), "");
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_password_policy),
        cmocka_unit_test(test_password_hash_and_verify),
        cmocka_unit_test(test_password_unknown_user_uses_dummy),
        T(test_throttle_account_window),
        T(test_throttle_address_window),
        T(test_throttle_success_clears_account_not_address),
        T(test_throttle_purge_and_config),
        T(test_throttle_in_flight_attempts_count),
        T(test_throttle_in_flight_by_address),
        T(test_throttle_settle_success),
        T(test_throttle_stale_attempts),
        cmocka_unit_test(test_authz_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
