/* The database and the store: migrations, pragmas, check/backup/vacuum,
 * nested transactions, assessments, answers and revision conflicts, scores,
 * generations, reports/sections/jobs, attachments, audit, retention.
 *
 * The same tests run on both engines: on SQLite as they are, and (ctest's
 * unit/test_store-pg, through tests/lib/pg.sh) on a real PostgreSQL 15
 * when O2C_TEST_PG_URL names one.  Each test there starts from an empty
 * schema; the few about SQLite's file (WAL, PRAGMAs, backup, corruption)
 * are skipped, saying so. */
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <uv.h>
#ifdef O2C_HAVE_PQ
#include <libpq-fe.h>
#endif
#include "store/audit.h"
#include "store/authz.h"
#include "store/db.h"
#include "store/retention.h"
#include "store/rowset.h"
#include "store/session.h"
#include "store/store.h"
#include "store/user.h"
#include "store_view.h"

#define HOUR (3600 * 1000LL)
#define DAY (24 * HOUR)

/* The store's row readers (store.h) seen as the per-record callbacks these
 * tests were written against: each record's fields by column name. */
static const char *col_text(const struct rowset *rs, size_t row, const char *key)
{
    int col = rowset_column(rs, key);
    assert_true(col >= 0);
    return rowset_text(rs, row, (size_t)col);
}

static int64_t col_int(const struct rowset *rs, size_t row, const char *key)
{
    int col = rowset_column(rs, key);
    assert_true(col >= 0);
    return rowset_int(rs, row, (size_t)col);
}

typedef void (*row_fn)(void *ud, const struct rowset *rs, size_t row);

/* Calls FN for each row of RS after RC == STORE_OK, frees RS; returns RC. */
static int each_row(int rc, struct rowset *rs, row_fn fn, void *ud)
{
    for (size_t i = 0; rc == STORE_OK && fn && i < rs->nrows; i++)
        fn(ud, rs, i);
    rowset_free(rs);
    return rc;
}

struct answer {
    const char *question_id, *value_json, *note, *updated_by;
    int64_t revision;
};

struct answer_call {
    int (*fn)(void *ud, const struct answer *a);
    void *ud;
};

static void answer_row(void *ud, const struct rowset *rs, size_t i)
{
    struct answer_call *c = ud;
    struct answer a = {col_text(rs, i, "question_id"), col_text(rs, i, "value"),
                       col_text(rs, i, "note"), col_text(rs, i, "by"), col_int(rs, i, "revision")};
    c->fn(c->ud, &a);
}

static int store_answers_get(struct db *db, const struct user *actor, const char *id,
                             int (*fn)(void *ud, const struct answer *a), void *ud)
{
    struct rowset rs;
    rowset_init(&rs, 0);
    struct answer_call c = {fn, ud};
    return each_row(view_answers(db, actor, id, &rs), &rs, answer_row, &c);
}

struct fixture {
    char dir[64];
    struct db *db;
    int64_t now;
    struct user admin, alice, bob;
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

static void rm_rf(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The PostgreSQL database under test, or NULL for SQLite. */
static const char *pg_url;

/* Empties the PostgreSQL database (a fresh schema) for the next test. */
static void pg_reset(void)
{
#ifdef O2C_HAVE_PQ
    PGconn *pq = PQconnectdb(pg_url);
    if (PQstatus(pq) != CONNECTION_OK)
        fail_msg("cannot reach %s: %s", pg_url, PQerrorMessage(pq));
    PGresult *r = PQexec(pq, "SET client_min_messages = warning;"
                             "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("resetting the schema: %s", PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(pq);
#else
    fail_msg("this build has no libpq");
#endif
}

/* Runs SQL on the test's own connection to the database under test, as an
 * outsider would (not through the store).  0 when it ran; else *MSG (if
 * given) gets the engine's error message. */
static int raw_exec(const char *dir, const char *sql, char *msg, size_t cap)
{
    int rc = 0;
#ifdef O2C_HAVE_PQ
    if (pg_url) {
        PGconn *pq = PQconnectdb(pg_url);
        PGresult *r = PQexec(pq, sql);
        ExecStatusType st = PQresultStatus(r);
        rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK ? 0 : -1;
        if (rc && msg)
            snprintf(msg, cap, "%s", PQresultErrorMessage(r));
        PQclear(r);
        PQfinish(pq);
        return rc;
    }
#endif
    char path[256], *err = NULL;
    snprintf(path, sizeof path, "%s/o2c.db", dir);
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    rc = sqlite3_exec(raw, sql, NULL, NULL, &err) == SQLITE_OK ? 0 : -1;
    if (rc && msg)
        snprintf(msg, cap, "%s", err ? err : "");
    sqlite3_free(err);
    sqlite3_close(raw);
    return rc;
}

/* Skips a test about SQLite's file when the engine is PostgreSQL. */
#define SQLITE_ONLY()                                                                              \
    do {                                                                                           \
        if (pg_url) {                                                                              \
            print_message("(about SQLite's file: skipped on PostgreSQL)\n");                       \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

static struct db *open_db(const char *dir, int no_migrate)
{
    char err[512];
    struct db_config cfg = {
        .url = pg_url, .loop = uv_default_loop(), .data_dir = dir, .no_migrate = no_migrate};
    struct db *db = db_open(&cfg, err, sizeof err);
    if (db == NULL)
        fail_msg("db_open(%s): %s", dir, err);
    return db;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/o2c-test-store-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    if (pg_url)
        pg_reset();
    f->db = open_db(f->dir, 0);
    f->now = 1750000000000LL;
    db_set_clock(f->db, fake_clock, f);
    /* The store takes any non-empty hash; real hashing is tested apart. */
    assert_int_equal(user_add(f->db, "admin", USER_ROLE_ADMIN, "h", &f->admin), STORE_OK);
    assert_int_equal(user_add(f->db, "alice", USER_ROLE_CONSULTANT, "h", &f->alice), STORE_OK);
    assert_int_equal(user_add(f->db, "bob", USER_ROLE_CONSULTANT, "h", &f->bob), STORE_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    db_close(f->db);
    rm_rf(f->dir);
    free(f);
    return 0;
}

#define OK(call)                                                                                   \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != STORE_OK)                                                                       \
            fail_msg("%s -> %s: %s", #call, store_rc_code(rc_), db_errmsg(f->db));                 \
    } while (0)

static void make_assessment(struct fixture *f, const struct user *owner, struct assessment_view *a)
{
    OK(create_assessment(f->db, owner, "o2c", "ACME", "{\"ar\":3}", a));
}

/* Database */

static void test_db_fresh_is_at_latest_schema(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(db_schema_version(f->db), DB_SCHEMA_VERSION);
    int applied = -1;
    OK(db_migrate(f->db, &applied));
    assert_int_equal(applied, 0);
    OK(db_check(f->db));
}

static void test_db_reopen_is_idempotent(void **state)
{
    struct fixture *f = *state;
    struct assessment_view a;
    make_assessment(f, &f->alice, &a);
    db_close(f->db);
    for (int i = 0; i < 3; i++) {
        f->db = open_db(f->dir, 0);
        assert_int_equal(db_schema_version(f->db), DB_SCHEMA_VERSION);
        int applied = -1;
        OK(db_migrate(f->db, &applied));
        assert_int_equal(applied, 0);
        struct assessment_view back;
        OK(view_assessment(f->db, &f->alice, a.id, &back));
        assert_string_equal(back.client, "ACME");
        int64_t n = 0;
        OK(user_count(f->db, &n));
        assert_int_equal(n, 3);
        db_close(f->db);
    }
    f->db = open_db(f->dir, 0);
    db_set_clock(f->db, fake_clock, f);
}

static void test_db_creates_missing_data_dir_and_uses_wal(void **state)
{
    SQLITE_ONLY();
    struct fixture *f = *state;
    char nested[128];
    snprintf(nested, sizeof nested, "%s/a/b/c", f->dir);
    struct db *db = open_db(nested, 0);
    struct stat st;
    assert_int_equal(stat(nested, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(db_path(db), &raw), SQLITE_OK);
    sqlite3_stmt *q;
    assert_int_equal(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(q), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(q, 0), "wal");
    sqlite3_finalize(q);
    sqlite3_close(raw);
    db_close(db);
}

static void test_db_refuses_newer_schema(void **state)
{
    struct fixture *f = *state;
    db_close(f->db);
    assert_int_equal(raw_exec(f->dir,
                              pg_url ? "INSERT INTO o2c_schema (version) VALUES (99)"
                                     : "PRAGMA user_version = 99",
                              NULL, 0),
                     0);
    char err[512];
    struct db_config cfg = {.url = pg_url, .loop = uv_default_loop(), .data_dir = f->dir};
    f->db = db_open(&cfg, err, sizeof err);
    assert_null(f->db);
    assert_non_null(strstr(err, "schema version 99 is newer"));
    /* Opened as is (db check), the check names the mismatch. */
    f->db = open_db(f->dir, 1);
    assert_int_equal(db_check(f->db), STORE_ERROR);
    assert_non_null(strstr(db_errmsg(f->db), "schema version 99"));
}

static void test_db_open_reports_unusable_dir(void **state)
{
    SQLITE_ONLY();
    struct fixture *f = *state;
    char file[128], err[512];
    snprintf(file, sizeof file, "%s/plain-file", f->dir);
    int fd = open(file, O_CREAT | O_WRONLY, 0600);
    close(fd);
    struct db_config cfg = {.data_dir = file};
    assert_null(db_open(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "cannot create data dir"));
    cfg.data_dir = "";
    assert_null(db_open(&cfg, err, sizeof err));
    assert_non_null(strstr(err, "no data dir"));
}

static void test_db_check_detects_corruption(void **state)
{
    SQLITE_ONLY();
    struct fixture *f = *state;
    struct assessment_view a;
    for (int i = 0; i < 200; i++)
        make_assessment(f, &f->alice, &a);
    OK(db_vacuum(f->db)); /* everything into the main file, WAL emptied */
    db_close(f->db);
    f->db = NULL;
    char path[128];
    snprintf(path, sizeof path, "%s/o2c.db", f->dir);
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    char junk[4096];
    memset(junk, 0x5a, sizeof junk);
    /* Pages 3..6: tables and indexes, not the header. */
    for (int page = 2; page < 6; page++)
        assert_int_equal(pwrite(fd, junk, sizeof junk, (off_t)page * 4096), (ssize_t)sizeof junk);
    close(fd);
    char err[512];
    struct db_config cfg = {.data_dir = f->dir, .no_migrate = 1};
    f->db = db_open(&cfg, err, sizeof err);
    if (f->db == NULL)
        return; /* refusing to open a corrupt file is fine too */
    assert_int_not_equal(db_check(f->db), STORE_OK);
    assert_true(strlen(db_errmsg(f->db)) > 0);
}

static void test_db_backup_while_writing(void **state)
{
    SQLITE_ONLY();
    struct fixture *f = *state;
    struct assessment_view a;
    make_assessment(f, &f->alice, &a);
    /* A second connection holds a write transaction open during the backup. */
    struct db *other = open_db(f->dir, 0);
    OK(db_tx_begin(other));
    struct assessment_view b;
    assert_int_equal(create_assessment(other, &f->alice, "o2c", "Uncommitted", NULL, &b), STORE_OK);
    char backup[128];
    snprintf(backup, sizeof backup, "%s/backups/copy.db", f->dir);
    char bdir[128];
    snprintf(bdir, sizeof bdir, "%s/backups", f->dir);
    assert_int_equal(mkdir(bdir, 0700), 0);
    OK(db_backup(f->db, backup));
    OK(db_tx_commit(other));
    db_close(other);

    char tmp[160];
    snprintf(tmp, sizeof tmp, "%s.tmp", backup);
    assert_int_not_equal(access(tmp, F_OK), 0);
    char err[512];
    struct db_config cfg = {.data_dir = bdir, .file_name = "copy.db"};
    struct db *copy = db_open(&cfg, err, sizeof err);
    assert_non_null(copy);
    assert_int_equal(db_check(copy), STORE_OK);
    struct assessment_view back;
    assert_int_equal(view_assessment(copy, &f->alice, a.id, &back), STORE_OK);
    assert_int_equal(view_assessment(copy, &f->alice, b.id, &back), STORE_NOT_FOUND);
    db_close(copy);
}

static void test_db_backup_reports_bad_path(void **state)
{
    SQLITE_ONLY();
    struct fixture *f = *state;
    assert_int_equal(db_backup(f->db, "/nonexistent-dir/x/backup.db"), STORE_ERROR);
    assert_non_null(strstr(db_errmsg(f->db), "/nonexistent-dir/x/backup.db"));
}

static void test_db_nested_transaction_rolls_back_inner_only(void **state)
{
    struct fixture *f = *state;
    struct assessment_view outer, inner;
    OK(db_tx_begin(f->db));
    make_assessment(f, &f->alice, &outer);
    OK(db_tx_begin(f->db));
    make_assessment(f, &f->alice, &inner);
    db_tx_rollback(f->db);
    OK(db_tx_commit(f->db));
    struct assessment_view back;
    OK(view_assessment(f->db, &f->alice, outer.id, &back));
    assert_int_equal(view_assessment(f->db, &f->alice, inner.id, &back), STORE_NOT_FOUND);
    /* A whole rollback leaves nothing. */
    OK(db_tx_begin(f->db));
    make_assessment(f, &f->alice, &inner);
    db_tx_rollback(f->db);
    assert_int_equal(view_assessment(f->db, &f->alice, inner.id, &back), STORE_NOT_FOUND);
    assert_int_equal(db_tx_commit(f->db), STORE_ERROR); /* nothing open */
}

/* Assessments */

static void test_assessment_create_and_get(void **state)
{
    struct fixture *f = *state;
    struct assessment_view a, back;
    make_assessment(f, &f->alice, &a);
    assert_true(uuid_is_v7(a.id));
    assert_int_equal(a.revision, 0);
    OK(view_assessment(f->db, &f->alice, a.id, &back));
    assert_string_equal(back.id, a.id);
    assert_string_equal(back.type, "o2c");
    assert_string_equal(back.client, "ACME");
    assert_string_equal(back.owner_id, f->alice.id);
    assert_string_equal(back.owner_name, "alice");
    assert_string_equal(back.targets, "{\"ar\":3}");
    assert_int_equal(back.created_at, f->now);
    assert_int_equal(back.updated_at, f->now); /* live: o2c.store shows no deleted_at */
    OK(create_assessment(f->db, &f->alice, "o2c", "No targets", NULL, &a));
    assert_string_equal(a.targets, "{}");
}

static void test_assessment_create_validates(void **state)
{
    struct fixture *f = *state;
    struct assessment_view a;
    char big[STORE_CLIENT_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(create_assessment(f->db, &f->alice, "", "c", NULL, &a), STORE_INVALID);
    assert_int_equal(create_assessment(f->db, &f->alice, "O2C!", "c", NULL, &a), STORE_INVALID);
    assert_non_null(strstr(db_errmsg(f->db), "O2C!"));
    assert_int_equal(create_assessment(f->db, &f->alice, "o2c", "", NULL, &a), STORE_INVALID);
    assert_int_equal(create_assessment(f->db, &f->alice, "o2c", big, NULL, &a), STORE_INVALID);
    assert_int_equal(create_assessment(f->db, NULL, "o2c", "c", NULL, &a), STORE_INVALID);
    assert_int_equal(create_assessment(f->db, authz_system_user(), "o2c", "c", NULL, &a),
                     STORE_INVALID);
}

struct id_list {
    char ids[64][UUID_STR_LEN];
    int n;
};

static void collect_assessment(void *ud, const struct rowset *rs, size_t i)
{
    struct id_list *l = ud;
    snprintf(l->ids[l->n++], UUID_STR_LEN, "%s", col_text(rs, i, "id"));
}

static int store_assessment_list(struct db *db, const struct user *actor,
                                 const struct store_page *page, row_fn fn, void *ud)
{
    struct rowset rs;
    rowset_init(&rs, 0);
    return each_row(store_assessment_rows(db, actor, NULL, page, &rs), &rs, fn, ud);
}

static void test_assessment_list_own_all_and_pages(void **state)
{
    struct fixture *f = *state;
    struct assessment_view a[7];
    for (int i = 0; i < 5; i++)
        make_assessment(f, &f->alice, &a[i]);
    make_assessment(f, &f->bob, &a[5]);
    make_assessment(f, &f->bob, &a[6]);

    struct id_list l = {0};
    struct store_page page = {.limit = 2};
    OK(store_assessment_list(f->db, &f->alice, &page, collect_assessment, &l));
    assert_int_equal(l.n, 2);
    assert_string_equal(l.ids[0], a[4].id); /* newest first */
    assert_string_equal(l.ids[1], a[3].id);
    page.before_id = l.ids[1];
    struct id_list l2 = {0};
    OK(store_assessment_list(f->db, &f->alice, &page, collect_assessment, &l2));
    assert_int_equal(l2.n, 2);
    assert_string_equal(l2.ids[0], a[2].id);
    assert_string_equal(l2.ids[1], a[1].id);

    struct id_list all = {0};
    OK(store_assessment_list(f->db, &f->admin, NULL, collect_assessment, &all));
    assert_int_equal(all.n, 7);
    int64_t n = 0;
    OK(count_assessments(f->db, &f->alice, &n));
    assert_int_equal(n, 5);
    OK(count_assessments(f->db, &f->bob, &n));
    assert_int_equal(n, 2);
    OK(count_assessments(f->db, &f->admin, &n));
    assert_int_equal(n, 7);
}

static void test_assessment_soft_delete(void **state)
{
    struct fixture *f = *state;
    struct assessment_view a, back;
    make_assessment(f, &f->alice, &a);
    assert_int_equal(store_assessment_delete(f->db, &f->bob, a.id), STORE_NOT_FOUND);
    OK(store_assessment_delete(f->db, &f->alice, a.id));
    assert_int_equal(view_assessment(f->db, &f->alice, a.id, &back), STORE_NOT_FOUND);
    assert_int_equal(view_assessment(f->db, &f->admin, a.id, &back), STORE_NOT_FOUND);
    assert_int_equal(store_assessment_delete(f->db, &f->alice, a.id), STORE_NOT_FOUND);
    int64_t n = -1;
    OK(count_assessments(f->db, &f->admin, &n));
    assert_int_equal(n, 0);
}

static void test_assessment_access_rules(void **state)
{
    struct fixture *f = *state;
    struct assessment_view a, back;
    make_assessment(f, &f->alice, &a);
    OK(view_assessment(f->db, &f->alice, a.id, &back));
    OK(view_assessment(f->db, &f->admin, a.id, &back));
    assert_int_equal(view_assessment(f->db, &f->bob, a.id, &back), STORE_NOT_FOUND);
    assert_string_equal(back.id, ""); /* nothing leaks on refusal */
    assert_int_equal(view_assessment(f->db, NULL, a.id, &back), STORE_NOT_FOUND);
    struct user disabled_alice = f->alice;
    disabled_alice.disabled = 1;
    assert_int_equal(view_assessment(f->db, &disabled_alice, a.id, &back), STORE_NOT_FOUND);
    struct id_list l = {0};
    OK(store_assessment_list(f->db, &disabled_alice, NULL, collect_assessment, &l));
    assert_int_equal(l.n, 0);
    OK(store_assessment_list(f->db, &f->bob, NULL, collect_assessment, &l));
    assert_int_equal(l.n, 0);
    assert_int_equal(view_assessment(f->db, &f->alice, "not-an-id", &back), STORE_NOT_FOUND);
}

/* Answers */

struct answer_rows {
    int n;
    char qid[16][32];
    char value[16][64];
    char note[16][64];
    char by[16][32];
    int64_t revision[16];
};

static int collect_answer(void *ud, const struct answer *a)
{
    struct answer_rows *r = ud;
    snprintf(r->qid[r->n], 32, "%s", a->question_id);
    snprintf(r->value[r->n], 64, "%s", a->value_json);
    snprintf(r->note[r->n], 64, "%s", a->note ? a->note : "(null)");
    snprintf(r->by[r->n], 32, "%s", a->updated_by);
    r->revision[r->n] = a->revision;
    r->n++;
    return 0;
}

static void test_answers_save_and_read_back(void **state)
{
    struct fixture *f = *state;
    struct assessment_view a;
    make_assessment(f, &f->alice, &a);
    struct answer_input in[] = {
        {"q2", "\"yes\"", NULL},
        {"q1", "3", "checked with the CFO"},
    };
    int64_t rev = -1;
    OK(store_save_answers(f->db, &f->alice, a.id, 0, in, 2, &rev));
    assert_int_equal(rev, 1);
    struct answer_rows r = {0};
    OK(store_answers_get(f->db, &f->alice, a.id, collect_answer, &r));
    assert_int_equal(r.n, 2);
    assert_string_equal(r.qid[0], "q1");
    assert_string_equal(r.value[0], "3");
    assert_string_equal(r.note[0], "checked with the CFO");
    assert_string_equal(r.by[0], "alice");
    assert_string_equal(r.qid[1], "q2");
    assert_string_equal(r.note[1], "(null)");
    assert_int_equal(r.revision[1], 1);

    /* Admin updates one and removes the other. */
    struct answer_input next[] = {{"q1", "4", NULL}, {"q2", NULL, NULL}};
    OK(store_save_answers(f->db, &f->admin, a.id, 1, next, 2, &rev));
    assert_int_equal(rev, 2);
    memset(&r, 0, sizeof r);
    OK(store_answers_get(f->db, &f->alice, a.id, collect_answer, &r));
    assert_int_equal(r.n, 1);
    assert_string_equal(r.value[0], "4");
    assert_string_equal(r.by[0], "admin");
    assert_int_equal(r.revision[0], 2);
    struct assessment_view back;
    OK(view_assessment(f->db, &f->alice, a.id, &back));
    assert_int_equal(back.revision, 2);
}

static void test_answers_stale_revision_conflicts(void **state)
{
    struct fixture *f = *state;
    struct assessment_view a;
    make_assessment(f, &f->alice, &a);
    struct answer_input first = {"q1", "1", NULL}, second = {"q1", "2", NULL};
    int64_t rev;
    OK(store_save_answers(f->db, &f->alice, a.id, 0, &first, 1, &rev));
    assert_int_equal(rev, 1);
    /* A second editor still on revision 0: refused, told the current one. */
    assert_int_equal(store_save_answers(f->db, &f->admin, a.id, 0, &second, 1, &rev),
                     STORE_CONFLICT);
    assert_int_equal(rev, 1);
    assert_non_null(strstr(db_errmsg(f->db), "revision 1"));
    /* A future revision is stale too. */
    assert_int_equal(store_save_answers(f->db, &f->alice, a.id, 7, &second, 1, &rev),
                     STORE_CONFLICT);
    assert_int_equal(rev, 1);
    struct answer_rows r = {0};
    OK(store_answers_get(f->db, &f->alice, a.id, collect_answer, &r));
    assert_string_equal(r.value[0], "1"); /* nothing overwritten */
    OK(store_save_answers(f->db, &f->admin, a.id, 1, &second, 1, &rev));
    assert_int_equal(rev, 2);
}

static void test_answers_refused_cases(void **state)
{
    struct fixture *f = *state;
    struct assessment_view a;
    make_assessment(f, &f->alice, &a);
    struct answer_input ok = {"q1", "1", NULL};
    int64_t rev;
    assert_int_equal(store_save_answers(f->db, &f->bob, a.id, 0, &ok, 1, &rev), STORE_NOT_FOUND);
    struct answer_input bad_q = {"", "1", NULL};
    assert_int_equal(store_save_answers(f->db, &f->alice, a.id, 0, &bad_q, 1, &rev), STORE_INVALID);
    struct answer_input empty_value = {"q1", "", NULL};
    assert_int_equal(store_save_answers(f->db, &f->alice, a.id, 0, &empty_value, 1, &rev),
                     STORE_INVALID);
    /* A failure in the middle leaves nothing: the revision did not move. */
    struct answer_input mixed[] = {{"q1", "1", NULL}, {NULL, "2", NULL}};
    assert_int_equal(store_save_answers(f->db, &f->alice, a.id, 0, mixed, 2, &rev), STORE_INVALID);
    struct assessment_view back;
    OK(view_assessment(f->db, &f->alice, a.id, &back));
    assert_int_equal(back.revision, 0);
    struct answer_rows r = {0};
    assert_int_equal(store_answers_get(f->db, &f->bob, a.id, collect_answer, &r), STORE_NOT_FOUND);
    OK(store_assessment_delete(f->db, &f->alice, a.id));
    assert_int_equal(store_save_answers(f->db, &f->alice, a.id, 0, &ok, 1, &rev), STORE_NOT_FOUND);
}

static void test_answers_inside_callers_transaction(void **state)
{
    struct fixture *f = *state;
    struct assessment_view a;
    make_assessment(f, &f->alice, &a);
    struct answer_input in = {"q1", "1", NULL};
    int64_t rev;
    /* Save + audit as one unit; rolling back undoes both. */
    OK(db_tx_begin(f->db));
    OK(store_save_answers(f->db, &f->alice, a.id, 0, &in, 1, &rev));
    struct audit_event ev = {.user = "alice", .action = "answers.saved", .target = a.id};
    OK(audit_append(f->db, &ev, NULL));
    db_tx_rollback(f->db);
    struct assessment_view back;
    OK(view_assessment(f->db, &f->alice, a.id, &back));
    assert_int_equal(back.revision, 0);
}

/* Scores and generations */

struct blob_copy {
    char data[64];
    size_t len;
};

static void copy_blob(void *ud, const struct rowset *rs, size_t i)
{
    struct blob_copy *b = ud;
    const struct rowset_value *v = rowset_value(rs, i, 0);
    b->len = v->len;
    memcpy(b->data, v->bytes, v->len < sizeof b->data ? v->len : sizeof b->data);
}

static int store_generation_get(struct db *db, const char *hash, row_fn fn, void *ud)
{
    struct rowset rs;
    rowset_init(&rs, 0);
    int rc = db_query(db, VIEW_SQL_GENERATION, "reading a generation", &rs, DB_ARGS(DB_TEXT(hash)));
    if (rc == STORE_OK && rs.nrows == 0)
        rc = STORE_NOT_FOUND;
    return each_row(rc, &rs, fn, ud);
}

static void test_generation_put_once_and_get(void **state)
{
    struct fixture *f = *state;
    int created = -1;
    OK(store_generation_put(f->db, "gen-1", "sources\0with nul", 16, &created));
    assert_int_equal(created, 1);
    OK(store_generation_put(f->db, "gen-1", "other", 5, &created));
    assert_int_equal(created, 0);
    struct blob_copy b = {0};
    OK(store_generation_get(f->db, "gen-1", copy_blob, &b));
    assert_int_equal(b.len, 16);
    assert_memory_equal(b.data, "sources\0with nul", 16);
    assert_true(store_generation_exists(f->db, "gen-1"));
    assert_false(store_generation_exists(f->db, "gen-2"));
    assert_int_equal(store_generation_get(f->db, "gen-2", copy_blob, &b), STORE_NOT_FOUND);
    assert_int_equal(store_generation_put(f->db, "", "x", 1, NULL), STORE_INVALID);
}

struct score_copy {
    char id[UUID_STR_LEN], generation[32], scores[64];
    int64_t revision;
};

static void copy_score(void *ud, const struct rowset *rs, size_t i)
{
    struct score_copy *c = ud;
    snprintf(c->id, sizeof c->id, "%s", col_text(rs, i, "id"));
    snprintf(c->generation, sizeof c->generation, "%s", col_text(rs, i, "generation"));
    snprintf(c->scores, sizeof c->scores, "%s", col_text(rs, i, "scores"));
    c->revision = col_int(rs, i, "revision");
}

static int store_score_latest(struct db *db, const struct user *actor, const char *id, row_fn fn,
                              void *ud)
{
    struct rowset rs;
    rowset_init(&rs, 0);
    int rc = store_assessment_query(db, actor, id, VIEW_SQL_SCORE_LATEST, "reading scores", &rs,
                                    DB_ARGS(DB_TEXT(id)));
    if (rc == STORE_OK && rs.nrows == 0)
        rc = STORE_NOT_FOUND;
    return each_row(rc, &rs, fn, ud);
}

static void test_scores_need_generation_and_latest_wins(void **state)
{
    struct fixture *f = *state;
    struct assessment_view a;
    make_assessment(f, &f->alice, &a);
    char id1[UUID_STR_LEN], id2[UUID_STR_LEN];
    assert_int_equal(store_score_put(f->db, a.id, 0, "gen-x", "{}", id1), STORE_INVALID);
    assert_non_null(strstr(db_errmsg(f->db), "store_generation_put"));
    struct score_copy c = {0};
    assert_int_equal(store_score_latest(f->db, &f->alice, a.id, copy_score, &c), STORE_NOT_FOUND);
    OK(store_generation_put(f->db, "gen-x", "src", 3, NULL));
    OK(store_score_put(f->db, a.id, 0, "gen-x", "{\"ar\":1}", id1));
    OK(store_score_put(f->db, a.id, 1, "gen-x", "{\"ar\":2}", id2));
    OK(store_score_latest(f->db, &f->alice, a.id, copy_score, &c));
    assert_string_equal(c.id, id2);
    assert_string_equal(c.scores, "{\"ar\":2}");
    assert_string_equal(c.generation, "gen-x");
    assert_int_equal(c.revision, 1);
    assert_int_equal(store_score_latest(f->db, &f->bob, a.id, copy_score, &c), STORE_NOT_FOUND);
}

/* Reports */

struct report_view {
    char status[16], requested_by[32];
    int n;
    char section[8][16], sstatus[8][16], error[8][64], text[8][64], provider[8][16];
    int attempts[8];
    int64_t tokens_in[8], tokens_out[8];
};

static void view_report(void *ud, const struct rowset *rs, size_t row)
{
    struct report_view *v = ud;
    snprintf(v->status, sizeof v->status, "%s", col_text(rs, row, "status"));
    snprintf(v->requested_by, sizeof v->requested_by, "%s", col_text(rs, row, "requested_by"));
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

static void view_section(void *ud, const struct rowset *rs, size_t row)
{
    struct report_view *v = ud;
    int i = v->n++;
    snprintf(v->section[i], 16, "%s", col_text(rs, row, "id"));
    snprintf(v->sstatus[i], 16, "%s", col_text(rs, row, "status"));
    snprintf(v->error[i], 64, "%s", or_empty(col_text(rs, row, "error")));
    snprintf(v->text[i], 64, "%s", or_empty(col_text(rs, row, "text")));
    snprintf(v->provider[i], 16, "%s", or_empty(col_text(rs, row, "provider")));
    v->attempts[i] = (int)col_int(rs, row, "attempts");
    v->tokens_in[i] = col_int(rs, row, "tokens_in");
    v->tokens_out[i] = col_int(rs, row, "tokens_out");
}

/* The report as stored ("partial" is how o2c.store shows a failed one
 * with a section done: test_store_lua.c) and its sections, read with the
 * access rule of store_report_access. */
static const char SQL_TEST_REPORT[] = "SELECT r.status, u.name AS requested_by FROM reports r"
                                      " JOIN users u ON u.id = r.requested_by WHERE r.id = ?";
static const char SQL_TEST_SECTIONS[] =
    "SELECT section_id AS id, status, error, text, provider, attempts, tokens_in, tokens_out"
    " FROM report_sections WHERE report_id = ? ORDER BY position";

static int store_report_get(struct db *db, const struct user *actor, const char *id,
                            row_fn report_fn, row_fn section_fn, void *ud)
{
    struct rowset report, sections;
    rowset_init(&report, 0);
    rowset_init(&sections, 0);
    int rc = store_report_access(db, actor, id);
    if (rc == STORE_OK)
        rc = db_query(db, SQL_TEST_REPORT, "reading a report", &report, DB_ARGS(DB_TEXT(id)));
    if (rc == STORE_OK)
        rc = db_query(db, SQL_TEST_SECTIONS, "reading sections", &sections, DB_ARGS(DB_TEXT(id)));
    each_row(rc, &report, report_fn, ud);
    return each_row(rc, &sections, section_fn, ud);
}

struct job_list {
    int n;
    char id[8][UUID_STR_LEN], report[8][UUID_STR_LEN], status[8][16];
};

static void collect_job(void *ud, const struct rowset *rs, size_t i)
{
    struct job_list *l = ud;
    snprintf(l->id[l->n], UUID_STR_LEN, "%s", col_text(rs, i, "id"));
    snprintf(l->report[l->n], UUID_STR_LEN, "%s", col_text(rs, i, "report_id"));
    snprintf(l->status[l->n], 16, "%s", col_text(rs, i, "status"));
    l->n++;
}

static int jobs_unfinished(struct db *db, row_fn fn, void *ud)
{
    struct rowset rs;
    rowset_init(&rs, 0);
    int rc = db_query(db, VIEW_SQL_JOBS_UNFINISHED, "listing jobs", &rs, DB_NO_ARGS);
    return each_row(rc, &rs, fn, ud);
}

static int section_begin(struct db *db, const char *rid, const char *sid)
{
    return store_section_set(db, rid, sid, &(struct section_change){.status = "running"});
}

static int section_done(struct db *db, const char *rid, const char *sid, const char *text)
{
    return store_section_set(db, rid, sid,
                             &(struct section_change){.status = "done", .text = text});
}

static int section_fail(struct db *db, const char *rid, const char *sid, const char *error)
{
    return store_section_set(db, rid, sid,
                             &(struct section_change){.status = "failed", .error = error});
}

static void create_report(struct fixture *f, const char *assessment_id, char rid[UUID_STR_LEN],
                          char jid[UUID_STR_LEN])
{
    static const char *const sections[] = {"summary", "findings", "roadmap"};
    OK(store_generation_put(f->db, "gen-r", "src", 3, NULL));
    struct report_request req = {.assessment_id = assessment_id,
                                 .revision = 0,
                                 .generation = "gen-r",
                                 .section_ids = sections,
                                 .n_sections = 3,
                                 .provider = "offline"};
    OK(store_report_create(f->db, &f->alice, &req, rid, jid));
}

static void test_report_lifecycle(void **state)
{
    struct fixture *f = *state;
    struct assessment_view a;
    make_assessment(f, &f->alice, &a);
    char rid[UUID_STR_LEN], jid[UUID_STR_LEN];
    create_report(f, a.id, rid, jid);

    struct report_view v = {0};
    OK(store_report_get(f->db, &f->alice, rid, view_report, view_section, &v));
    assert_string_equal(v.status, "queued");
    assert_string_equal(v.requested_by, "alice");
    assert_int_equal(v.n, 3);
    assert_string_equal(v.section[0], "summary");
    assert_string_equal(v.section[2], "roadmap");
    assert_string_equal(v.sstatus[1], "queued");

    struct job_list jobs = {0};
    OK(jobs_unfinished(f->db, collect_job, &jobs));
    assert_int_equal(jobs.n, 1);
    assert_string_equal(jobs.id[0], jid);
    assert_string_equal(jobs.report[0], rid);
    OK(store_report_start(f->db, rid));

    struct section_change retrying = {.status = "retrying",
                                      .error = "429 rate limited",
                                      .provider = "anthropic",
                                      .model = "claude",
                                      .tokens_in = 100};
    struct section_change done = {
        .status = "done", .text = "All good.", .tokens_in = 120, .tokens_out = 300};
    OK(section_begin(f->db, rid, "summary"));
    OK(store_section_set(f->db, rid, "summary", &retrying));
    OK(section_begin(f->db, rid, "summary"));
    OK(store_section_set(f->db, rid, "summary", &done));
    OK(section_begin(f->db, rid, "findings"));
    OK(section_done(f->db, rid, "findings", "Findings."));
    const char *status = NULL;
    assert_int_equal(store_report_finish(f->db, rid, &status), STORE_CONFLICT); /* roadmap */
    OK(section_begin(f->db, rid, "roadmap"));
    OK(section_fail(f->db, rid, "roadmap", "timeout after 3 attempts"));
    OK(store_report_finish(f->db, rid, &status));
    assert_string_equal(status, "failed");

    memset(&v, 0, sizeof v);
    OK(store_report_get(f->db, &f->alice, rid, view_report, view_section, &v));
    assert_string_equal(v.status, "failed"); /* shown as "partial": a section is done */
    assert_string_equal(v.sstatus[0], "done");
    assert_int_equal(v.attempts[0], 2);
    assert_int_equal(v.tokens_in[0], 220);
    assert_int_equal(v.tokens_out[0], 300);
    assert_string_equal(v.provider[0], "anthropic");
    assert_string_equal(v.text[0], "All good.");
    assert_string_equal(v.error[0], "");
    assert_string_equal(v.sstatus[2], "failed");
    assert_string_equal(v.error[2], "timeout after 3 attempts");
    memset(&jobs, 0, sizeof jobs);
    OK(jobs_unfinished(f->db, collect_job, &jobs));
    assert_int_equal(jobs.n, 0);

    /* Retry: only the failed section; it and the job are queued again. */
    char retry_job[UUID_STR_LEN];
    assert_int_equal(store_section_retry(f->db, &f->alice, rid, "summary", retry_job),
                     STORE_CONFLICT);
    assert_int_equal(store_section_retry(f->db, &f->bob, rid, "roadmap", retry_job),
                     STORE_NOT_FOUND);
    OK(store_section_retry(f->db, &f->alice, rid, "roadmap", retry_job));
    assert_string_equal(retry_job, jid);
    memset(&jobs, 0, sizeof jobs);
    OK(jobs_unfinished(f->db, collect_job, &jobs));
    assert_int_equal(jobs.n, 1);
    OK(section_begin(f->db, rid, "roadmap"));
    OK(section_done(f->db, rid, "roadmap", "Roadmap."));
    OK(store_report_finish(f->db, rid, &status));
    assert_string_equal(status, "done");
    memset(&v, 0, sizeof v);
    OK(store_report_get(f->db, &f->alice, rid, view_report, view_section, &v));
    assert_string_equal(v.status, "done");
    assert_int_equal(v.attempts[2], 2);
    assert_string_equal(v.error[2], "");
}

static void test_report_refusals(void **state)
{
    struct fixture *f = *state;
    struct assessment_view a;
    make_assessment(f, &f->alice, &a);
    char rid[UUID_STR_LEN], jid[UUID_STR_LEN];
    create_report(f, a.id, rid, jid);
    struct report_view v = {0};
    assert_int_equal(store_report_get(f->db, &f->bob, rid, view_report, view_section, &v),
                     STORE_NOT_FOUND);
    OK(store_report_get(f->db, &f->admin, rid, view_report, NULL, &v));
    assert_int_equal(section_begin(f->db, rid, "nope"), STORE_NOT_FOUND);
    assert_int_equal(section_fail(f->db, rid, "summary", ""), STORE_INVALID);
    static const char *const dup[] = {"a", "a"};
    struct report_request req = {
        .assessment_id = a.id, .generation = "gen-r", .section_ids = dup, .n_sections = 2};
    assert_int_equal(store_report_create(f->db, &f->alice, &req, rid, jid), STORE_INVALID);
    req.n_sections = 1;
    req.generation = "never-stored";
    assert_int_equal(store_report_create(f->db, &f->alice, &req, rid, jid), STORE_INVALID);
    req.generation = "gen-r";
    assert_int_equal(store_report_create(f->db, &f->bob, &req, rid, jid), STORE_NOT_FOUND);
    /* A deleted assessment's reports are gone for everyone. */
    create_report(f, a.id, rid, jid);
    OK(store_assessment_delete(f->db, &f->alice, a.id));
    assert_int_equal(store_report_get(f->db, &f->admin, rid, NULL, NULL, NULL), STORE_NOT_FOUND);
}

/* Attachments */

static void read_file(const char *path, char *buf, size_t cap, ssize_t *len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    *len = read(fd, buf, cap);
    close(fd);
}

struct name_list {
    int n;
    char name[8][STORE_ATTACHMENT_NAME_MAX + 1];
};

static void collect_attachment(void *ud, const struct rowset *rs, size_t i)
{
    struct name_list *l = ud;
    snprintf(l->name[l->n++], sizeof l->name[0], "%s", col_text(rs, i, "name"));
}

static int store_attachment_list(struct db *db, const struct user *actor, const char *id, row_fn fn,
                                 void *ud)
{
    struct rowset rs;
    rowset_init(&rs, 0);
    return each_row(view_attachment_rows(db, actor, id, NULL, &rs), &rs, fn, ud);
}

static int collect_path(void *ud, const char *path)
{
    struct name_list *l = ud;
    const char *base = strrchr(path, '/');
    snprintf(l->name[l->n++], 80, "%s", base ? base + 1 : path);
    return 0;
}

static void test_attachment_blob_and_metadata(void **state)
{
    struct fixture *f = *state;
    struct assessment_view a;
    make_assessment(f, &f->alice, &a);
    char hash[STORE_HASH_HEX], again[STORE_HASH_HEX], path[256], buf[64];
    OK(blob_write(f->db, "\x89PNG fake image", 15, hash));
    assert_int_equal(strlen(hash), 64);
    OK(blob_write(f->db, "\x89PNG fake image", 15, again));
    assert_string_equal(hash, again);
    OK(store_blob_path(f->db, hash, path, sizeof path));
    ssize_t len;
    read_file(path, buf, sizeof buf, &len);
    assert_int_equal(len, 15);
    assert_memory_equal(buf, "\x89PNG fake image", 15);
    assert_int_equal(store_blob_path(f->db, "../../etc/passwd", path, sizeof path), STORE_INVALID);

    struct attachment_view at;
    OK(put_attachment(f->db, &f->alice, a.id, "chart.png", "image/png", hash, 15, &at));
    assert_string_equal(at.content_hash, hash);
    assert_string_equal(at.created_by, "alice");
    assert_int_equal(at.size, 15);
    OK(put_attachment(f->db, &f->alice, a.id, "b.png", "image/png", hash, 15, NULL));
    struct name_list l = {0};
    OK(store_attachment_list(f->db, &f->alice, a.id, collect_attachment, &l));
    assert_int_equal(l.n, 2);
    memset(&l, 0, sizeof l);
    OK(store_attachment_list(f->db, &f->admin, a.id, collect_attachment, &l));
    assert_int_equal(l.n, 2);
    assert_string_equal(l.name[0], "b.png");
    OK(view_attachment(f->db, &f->alice, a.id, "chart.png", &at));
    assert_string_equal(at.media_type, "image/png");
    assert_int_equal(view_attachment(f->db, &f->bob, a.id, "chart.png", &at), STORE_NOT_FOUND);
    assert_int_equal(put_attachment(f->db, &f->bob, a.id, "x.png", "image/png", hash, 15, NULL),
                     STORE_NOT_FOUND);
    assert_int_equal(put_attachment(f->db, &f->alice, a.id, "x.png", "image/png", "zz", 15, NULL),
                     STORE_INVALID);
    assert_int_equal(store_attachment_delete(f->db, &f->bob, a.id, "b.png"), STORE_NOT_FOUND);
    OK(store_attachment_delete(f->db, &f->alice, a.id, "b.png"));
    assert_int_equal(store_attachment_delete(f->db, &f->alice, a.id, "b.png"), STORE_NOT_FOUND);

    /* Still referenced by chart.png: not an orphan, however old.  File ages
     * are measured on the wall clock (mtime). */
    f->now = (int64_t)time(NULL) * 1000 + 10 * DAY;
    struct name_list orphans = {0};
    OK(store_attachment_orphans(f->db, HOUR, collect_path, &orphans));
    assert_int_equal(orphans.n, 0);
    OK(store_attachment_delete(f->db, &f->alice, a.id, "chart.png"));
    OK(store_attachment_orphans(f->db, HOUR, collect_path, &orphans));
    assert_int_equal(orphans.n, 1);
    assert_string_equal(orphans.name[0], hash);
}

/* Audit */

struct audit_rows {
    int n;
    int64_t seq[16];
    char action[16][32], user[16][16], json[16][256];
};

static int collect_audit(void *ud, const struct audit_event *ev)
{
    struct audit_rows *r = ud;
    r->seq[r->n] = ev->seq;
    snprintf(r->action[r->n], 32, "%s", ev->action);
    snprintf(r->user[r->n], 16, "%s", ev->user ? ev->user : "-");
    audit_format_json(ev, r->json[r->n], sizeof r->json[r->n]);
    r->n++;
    return 0;
}

static void test_audit_append_and_query(void **state)
{
    struct fixture *f = *state;
    int64_t seq1, seq2, seq3;
    struct audit_event e1 = {.user = "alice", .action = "login", .address = "10.0.0.1"};
    struct audit_event e2 = {.user = NULL, .action = "retention.run", .details = "{\"jobs\":2}"};
    struct audit_event e3 = {.user = "alice",
                             .action = "answers.saved",
                             .target = "a\"1",
                             .details = "{\"questions\":[\"q1\"]}"};
    OK(audit_append(f->db, &e1, &seq1));
    f->now += 1000;
    OK(audit_append(f->db, &e2, &seq2));
    f->now += 1000;
    OK(audit_append(f->db, &e3, &seq3));
    assert_true(seq1 < seq2 && seq2 < seq3);

    struct audit_rows r = {0};
    OK(audit_query(f->db, NULL, collect_audit, &r));
    assert_int_equal(r.n, 3);
    assert_string_equal(r.action[1], "retention.run");
    memset(&r, 0, sizeof r);
    struct audit_filter by_user = {.user = "alice"};
    OK(audit_query(f->db, &by_user, collect_audit, &r));
    assert_int_equal(r.n, 2);
    assert_string_equal(r.action[1], "answers.saved");
    memset(&r, 0, sizeof r);
    struct audit_filter since = {.since_ms = f->now - 1000};
    OK(audit_query(f->db, &since, collect_audit, &r));
    assert_int_equal(r.n, 2);
    memset(&r, 0, sizeof r);
    struct audit_filter page = {.after_seq = seq1, .limit = 1};
    OK(audit_query(f->db, &page, collect_audit, &r));
    assert_int_equal(r.n, 1);
    assert_int_equal(r.seq[0], seq2);

    memset(&r, 0, sizeof r);
    OK(audit_query(f->db, &by_user, collect_audit, &r));
    char expect[256];
    snprintf(expect, sizeof expect,
             "{\"seq\":%lld,\"at\":%lld,\"user\":\"alice\",\"action\":\"answers.saved\","
             "\"target\":\"a\\\"1\",\"address\":null,\"details\":{\"questions\":[\"q1\"]}}",
             (long long)seq3, (long long)f->now);
    assert_string_equal(r.json[1], expect);
    struct audit_event bad = {.action = ""};
    assert_int_equal(audit_append(f->db, &bad, NULL), STORE_INVALID);
}

/* The triggers refuse changes even to someone with a raw SQL connection. */
static void test_audit_is_append_only(void **state)
{
    struct fixture *f = *state;
    struct audit_event e = {.user = "alice", .action = "login"};
    OK(audit_append(f->db, &e, NULL));
    char msg[512];
    assert_int_not_equal(
        raw_exec(f->dir, "UPDATE audit_log SET user_name = 'mallory'", msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "append-only"));
    assert_int_not_equal(raw_exec(f->dir, "DELETE FROM audit_log", msg, sizeof msg), 0);
    assert_non_null(strstr(msg, "append-only"));
    struct audit_rows r = {0};
    OK(audit_query(f->db, NULL, collect_audit, &r));
    assert_int_equal(r.n, 1);
    assert_string_equal(r.user[0], "alice");
}

/* Retention */

static void test_retention_purges_by_age(void **state)
{
    struct fixture *f = *state;
    struct session_config scfg;
    struct throttle_config tcfg;
    struct retention_config rcfg;
    session_config_default(&scfg);
    throttle_config_default(&tcfg);
    retention_config_default(&rcfg);
    int64_t wall = (int64_t)time(NULL) * 1000;
    f->now = wall - 60 * DAY;

    struct assessment_view old, recent, live;
    make_assessment(f, &f->alice, &old);
    make_assessment(f, &f->alice, &recent);
    make_assessment(f, &f->alice, &live);
    struct answer_input in = {"q1", "1", NULL};
    int64_t rev;
    OK(store_save_answers(f->db, &f->alice, old.id, 0, &in, 1, &rev));
    char hash[STORE_HASH_HEX], live_hash[STORE_HASH_HEX];
    OK(blob_write(f->db, "old bytes", 9, hash));
    OK(blob_write(f->db, "live bytes", 10, live_hash));
    OK(put_attachment(f->db, &f->alice, old.id, "a.png", "image/png", hash, 9, NULL));
    OK(put_attachment(f->db, &f->alice, live.id, "b.png", "image/png", live_hash, 10, NULL));
    char rid[UUID_STR_LEN], jid[UUID_STR_LEN];
    create_report(f, live.id, rid, jid);
    OK(section_begin(f->db, rid, "summary"));
    OK(section_done(f->db, rid, "summary", "s"));
    OK(section_begin(f->db, rid, "findings"));
    OK(section_done(f->db, rid, "findings", "f"));
    OK(section_begin(f->db, rid, "roadmap"));
    OK(section_done(f->db, rid, "roadmap", "r"));
    OK(store_report_finish(f->db, rid, NULL));
    char token[SESSION_TOKEN_LEN + 1];
    OK(session_create(f->db, &scfg, f->alice.id, NULL, token, NULL));
    char attempt[UUID_STR_LEN];
    int64_t retry;
    OK(throttle_reserve(f->db, &tcfg, "alice", "10.0.0.9", attempt, &retry));
    OK(throttle_settle_failure(f->db, attempt));

    OK(store_assessment_delete(f->db, &f->alice, old.id));
    f->now = wall - 5 * DAY;
    OK(store_assessment_delete(f->db, &f->alice, recent.id));
    f->now = wall + 2 * HOUR; /* the files (mtime: wall clock) are past the 1 h grace */

    struct retention_counts c;
    OK(retention_run(f->db, &rcfg, &scfg, &tcfg, &c));
    assert_int_equal(c.sessions, 1);
    assert_int_equal(c.login_failures, 2);
    assert_int_equal(c.jobs, 1);
    assert_int_equal(c.assessments, 1); /* old one; the recent one is kept */
    assert_int_equal(c.orphan_files, 1);
    char path[256];
    OK(store_blob_path(f->db, hash, path, sizeof path));
    assert_int_not_equal(access(path, F_OK), 0);
    OK(store_blob_path(f->db, live_hash, path, sizeof path));
    assert_int_equal(access(path, F_OK), 0);
    struct report_view v = {0};
    OK(store_report_get(f->db, &f->alice, rid, view_report, NULL, &v));

    /* A second run finds nothing more. */
    OK(retention_run(f->db, &rcfg, &scfg, &tcfg, &c));
    assert_int_equal(c.sessions + c.login_failures + c.jobs + c.assessments + c.orphan_files, 0);
    OK(db_check(f->db));
}

int main(void)
{
    pg_url = getenv("O2C_TEST_PG_URL");
    if (pg_url && !pg_url[0])
        pg_url = NULL;
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_db_fresh_is_at_latest_schema),
        T(test_db_reopen_is_idempotent),
        T(test_db_creates_missing_data_dir_and_uses_wal),
        T(test_db_refuses_newer_schema),
        T(test_db_open_reports_unusable_dir),
        T(test_db_check_detects_corruption),
        T(test_db_backup_while_writing),
        T(test_db_backup_reports_bad_path),
        T(test_db_nested_transaction_rolls_back_inner_only),
        T(test_assessment_create_and_get),
        T(test_assessment_create_validates),
        T(test_assessment_list_own_all_and_pages),
        T(test_assessment_soft_delete),
        T(test_assessment_access_rules),
        T(test_answers_save_and_read_back),
        T(test_answers_stale_revision_conflicts),
        T(test_answers_refused_cases),
        T(test_answers_inside_callers_transaction),
        T(test_generation_put_once_and_get),
        T(test_scores_need_generation_and_latest_wins),
        T(test_report_lifecycle),
        T(test_report_refusals),
        T(test_attachment_blob_and_metadata),
        T(test_audit_append_and_query),
        T(test_audit_is_append_only),
        T(test_retention_purges_by_age),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
