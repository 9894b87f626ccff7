/* UUIDv7 ids: format, version and variant bits, time field, strict ordering
 * (also within one millisecond, across threads and when the clock steps back). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "store/uuid.h"

static void test_uuid_string_format(void **state)
{
    (void)state;
    char s[UUID_STR_LEN];
    uuid_v7_string(s);
    assert_int_equal(strlen(s), 36);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(s[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", s[i]));
    }
    assert_int_equal(s[14], '7');           /* version nibble */
    assert_non_null(strchr("89ab", s[19])); /* RFC variant 10xx */
    assert_true(uuid_is_v7(s));
}

/* The 48-bit Unix ms at the front of a v7 id. */
static int64_t unix_ms_of(const struct uuid *u)
{
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = ms << 8 | u->b[i];
    return (int64_t)ms;
}

static void test_uuid_version_variant_and_time(void **state)
{
    (void)state;
    struct uuid u;
    int64_t ms = 3000000000123LL; /* ahead of the wall clock: used as given */
    uuid_v7_at(&u, ms);
    assert_int_equal((u.b[6] >> 4), 7);
    assert_int_equal(u.b[8] & 0xc0, 0x80);
    assert_int_equal(unix_ms_of(&u), ms);
}

static void test_uuid_parse_round_trip(void **state)
{
    (void)state;
    char s[UUID_STR_LEN], back[UUID_STR_LEN];
    uuid_v7_string(s);
    struct uuid u;
    assert_int_equal(uuid_parse(s, &u), 0);
    uuid_format(&u, back);
    assert_string_equal(s, back);
    assert_int_equal(uuid_parse("01890a5d-ac96-774b-bcce-b302099a8057", &u), 0);
    assert_int_equal(uuid_parse("01890A5D-AC96-774B-BCCE-B302099A8057", &u), 0);
}

static void test_uuid_rejects_malformed(void **state)
{
    (void)state;
    struct uuid u;
    assert_int_equal(uuid_parse(NULL, &u), -1);
    assert_int_equal(uuid_parse("", &u), -1);
    assert_int_equal(uuid_parse("01890a5d-ac96-774b-bcce-b302099a805", &u), -1);
    assert_int_equal(uuid_parse("01890a5d-ac96-774b-bcce-b302099a80577", &u), -1);
    assert_int_equal(uuid_parse("01890a5dxac96-774b-bcce-b302099a8057", &u), -1);
    assert_int_equal(uuid_parse("01890a5d-ac96-774b-bcce-b302099a805g", &u), -1);
    assert_int_equal(uuid_parse("01890a5d-ac96-774b-bcce-b302099a-057", &u), -1);
    assert_int_equal(uuid_parse("01890a5d-ac96-774b-bcce-b302099a--57", &u), -1);
    assert_int_equal(uuid_parse("01890a5d-ac96-774b-bcce--302099a8057", &u), -1);
    assert_int_equal(uuid_parse("../../etc/passwd-0000-0000-000000000", &u), -1);
    assert_false(uuid_is_v7("01890a5d-ac96-474b-bcce-b302099a8057")); /* v4 */
    assert_false(uuid_is_v7("01890a5d-ac96-774b-ccce-b302099a8057")); /* bad variant */
    assert_true(uuid_is_v7("01890a5d-ac96-774b-bcce-b302099a8057"));
}

/* Many ids in one millisecond, and with the clock stepping back: each one
 * sorts after the previous, as bytes and as strings. */
static void test_uuid_monotonic_same_ms_and_clock_back(void **state)
{
    (void)state;
    int64_t base = 4000000000000LL; /* far ahead of the wall clock */
    char prev[UUID_STR_LEN] = "", cur[UUID_STR_LEN];
    for (int i = 0; i < 100000; i++) {
        struct uuid u;
        int64_t ms = base + (i / 1000) - (i % 7 == 0 ? 5 : 0);
        uuid_v7_at(&u, ms);
        uuid_format(&u, cur);
        assert_true(strcmp(prev, cur) < 0);
        assert_int_equal((u.b[6] >> 4), 7);
        memcpy(prev, cur, sizeof cur);
    }
}

static void test_uuid_unique_in_bulk(void **state)
{
    (void)state;
    enum { N = 20000 };
    char(*ids)[UUID_STR_LEN] = malloc(N * sizeof *ids);
    assert_non_null(ids);
    for (int i = 0; i < N; i++)
        uuid_v7_string(ids[i]);
    for (int i = 1; i < N; i++)
        assert_true(strcmp(ids[i - 1], ids[i]) < 0);
    free(ids);
}

#define THREADS 8
#define PER_THREAD 5000

static void *uuid_worker(void *arg)
{
    char(*out)[UUID_STR_LEN] = arg;
    for (int i = 0; i < PER_THREAD; i++)
        uuid_v7_string(out[i]);
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* Each thread's ids are ordered, and no id repeats across threads. */
static void test_uuid_threads_unique_and_ordered(void **state)
{
    (void)state;
    char(*ids)[UUID_STR_LEN] = malloc(THREADS * PER_THREAD * sizeof *ids);
    assert_non_null(ids);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, uuid_worker, ids + i * PER_THREAD), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < THREADS; i++)
        for (int j = 1; j < PER_THREAD; j++)
            assert_true(strcmp(ids[i * PER_THREAD + j - 1], ids[i * PER_THREAD + j]) < 0);
    qsort(ids, THREADS * PER_THREAD, sizeof *ids, cmp_id);
    for (int i = 1; i < THREADS * PER_THREAD; i++)
        assert_true(strcmp(ids[i - 1], ids[i]) != 0);
    free(ids);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid_string_format),
        cmocka_unit_test(test_uuid_parse_round_trip),
        cmocka_unit_test(test_uuid_rejects_malformed),
        cmocka_unit_test(test_uuid_unique_in_bulk),
        cmocka_unit_test(test_uuid_threads_unique_and_ordered),
        /* These two move the id clock into the future: they run last. */
        cmocka_unit_test(test_uuid_version_variant_and_time),
        cmocka_unit_test(test_uuid_monotonic_same_ms_and_clock_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
