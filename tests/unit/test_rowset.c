/* The row converter's capture (core/store/rowset.h, rowset_sqlite.c): every
 * SQL type arrives as it was stored, whole, and running out of room is an
 * error, never a crash or a cut value. */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "store/db.h"
#include "store/db_internal.h"
#include "store/rowset.h"

struct fixture {
    char dir[64];
    struct db *db;
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/o2c-rowset-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char err[256];
    struct db_config cfg = {.data_dir = f->dir};
    f->db = db_open(&cfg, err, sizeof err);
    if (f->db == NULL)
        fail_msg("db_open(%s): %s", f->dir, err);
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

/* Captures SQL (no parameters but an optional blob at ?1) into RS. */
static int capture(struct fixture *f, const char *sql, const void *blob, size_t len,
                   struct rowset *rs)
{
    if (blob)
        return db_query(f->db, sql, "testing a capture", rs, DB_ARGS(DB_BLOB(blob, len)));
    return db_query(f->db, sql, "testing a capture", rs, DB_NO_ARGS);
}

static void test_each_type_arrives_as_stored(void **state)
{
    struct fixture *f = *state;
    static const char blob[] = {'a', '\0', 'b', '\0', 'c'};
    struct rowset rs;
    rowset_init(&rs, 0);
    assert_int_equal(capture(f,
                             "SELECT NULL AS \"gone:json\", 9007199254740993 AS n, 2.5 AS r,"
                             " 'caf\xc3\xa9' AS t, ?1 AS b",
                             blob, sizeof blob, &rs),
                     STORE_OK);
    assert_int_equal(rs.nrows, 1);
    assert_int_equal(rs.ncols, 5);
    assert_string_equal(rs.names[0], "gone:json");
    assert_int_equal(rowset_column(&rs, "gone"), 0);
    assert_int_equal(rowset_column(&rs, "b"), 4);
    assert_int_equal(rowset_column(&rs, "go"), -1);
    assert_int_equal(rowset_value(&rs, 0, 0)->type, ROWSET_NULL);
    assert_null(rowset_text(&rs, 0, 0));
    assert_int_equal(rowset_value(&rs, 0, 1)->type, ROWSET_INTEGER);
    assert_true(rowset_int(&rs, 0, 1) == INT64_C(9007199254740993)); /* not via a double */
    assert_int_equal(rowset_value(&rs, 0, 2)->type, ROWSET_REAL);
    assert_true(rowset_value(&rs, 0, 2)->real == 2.5);
    assert_int_equal(rowset_value(&rs, 0, 3)->type, ROWSET_TEXT);
    assert_string_equal(rowset_text(&rs, 0, 3), "caf\xc3\xa9");
    const struct rowset_value *b = rowset_value(&rs, 0, 4);
    assert_int_equal(b->type, ROWSET_BLOB);
    assert_int_equal(b->len, sizeof blob); /* NUL bytes inside do not cut it */
    assert_memory_equal(b->bytes, blob, sizeof blob);
    /* Outside the rows: NULL, not a read past the end. */
    assert_int_equal(rowset_value(&rs, 1, 0)->type, ROWSET_NULL);
    assert_int_equal(rowset_value(&rs, 0, 5)->type, ROWSET_NULL);
    rowset_free(&rs);
    assert_int_equal(rs.nrows, 0);
}

static void test_empty_result_keeps_its_columns(void **state)
{
    struct fixture *f = *state;
    struct rowset rs;
    rowset_init(&rs, 0);
    assert_int_equal(
        capture(f, "SELECT name AS \"name:key\", 1 AS one FROM users WHERE 0", NULL, 0, &rs),
        STORE_OK);
    assert_int_equal(rs.nrows, 0);
    assert_int_equal(rs.ncols, 2);
    assert_int_equal(rowset_column(&rs, "one"), 1);
    rowset_free(&rs);
}

static void test_many_rows_and_a_second_query_append(void **state)
{
    struct fixture *f = *state;
    static const char sql[] = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n"
                              " WHERE i < 1000) SELECT i, printf('row %d', i) AS t FROM n";
    struct rowset rs;
    rowset_init(&rs, 0);
    assert_int_equal(capture(f, sql, NULL, 0, &rs), STORE_OK);
    assert_int_equal(capture(f, sql, NULL, 0, &rs), STORE_OK);
    assert_int_equal(rs.nrows, 2000);
    assert_int_equal(rowset_int(&rs, 999, 0), 1000);
    assert_string_equal(rowset_text(&rs, 1999, 1), "row 1000");
    rowset_free(&rs);
}

static void test_past_the_budget_is_an_error_not_a_crash(void **state)
{
    struct fixture *f = *state;
    struct rowset rs;
    rowset_init(&rs, 4096);
    int rc = capture(f, "SELECT zeroblob(100000) AS big", NULL, 0, &rs);
    assert_int_equal(rc, STORE_ERROR);
    assert_non_null(strstr(db_errmsg(f->db), "testing a capture: out of memory"));
    rowset_free(&rs);
    /* The statement was reset: the connection goes on, and so does the rowset. */
    rowset_init(&rs, 4096);
    assert_int_equal(capture(f, "SELECT 'small' AS s", NULL, 0, &rs), STORE_OK);
    assert_string_equal(rowset_text(&rs, 0, 0), "small");
    rowset_free(&rs);
}

static void test_arena_refuses_past_budget_and_recovers(void **state)
{
    (void)state;
    struct store_arena a;
    store_arena_init(&a, 1000);
    assert_non_null(store_arena_alloc(&a, 500));
    assert_null(store_arena_alloc(&a, 600));
    assert_null(store_arena_alloc(&a, SIZE_MAX));
    store_arena_free(&a);
    assert_string_equal(store_arena_memdup(&a, "ab\0c", 4) + 3, "c");
    assert_null(store_arena_strdup(&a, NULL));
    store_arena_free(&a);
}

static void test_a_rowset_takes_at_most_its_columns(void **state)
{
    (void)state;
    const char *names[ROWSET_COLUMNS_MAX + 1] = {0};
    struct rowset rs;
    rowset_init(&rs, 0);
    assert_int_equal(rowset_columns(&rs, ROWSET_COLUMNS_MAX + 1, names), -1);
    assert_null(rowset_add_row(&rs)); /* no columns: no rows */
    assert_int_equal(rowset_columns(&rs, 2, names), 0);
    assert_int_equal(rowset_columns(&rs, 3, names), -1); /* another shape */
    assert_non_null(rowset_add_row(&rs));
    rowset_free(&rs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_each_type_arrives_as_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_result_keeps_its_columns, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_rows_and_a_second_query_append, setup, teardown),
        cmocka_unit_test_setup_teardown(test_past_the_budget_is_an_error_not_a_crash, setup,
                                        teardown),
        cmocka_unit_test(test_arena_refuses_past_budget_and_recovers),
        cmocka_unit_test(test_a_rowset_takes_at_most_its_columns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
