/* Scheduled backups' names and pruning (core/store/backup.c): only files
 * named as o2c names its scheduled backups are ever removed, oldest first,
 * and temporary files of a copy that never finished go too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "store/backup.h"
#include "store/db.h"

static void touch(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
}

static int exists(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static void remove_all(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)) != NULL) {
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.')
            unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static void test_scheduled_names_sort_by_time(void **state)
{
    (void)state;
    char a[128], b[128];
    /* 2026-11-28T09:30:00.123Z and one millisecond after the next second */
    assert_int_equal(backup_scheduled_path(a, sizeof a, "/b", INT64_C(1795858200123)), 0);
    assert_int_equal(backup_scheduled_path(b, sizeof b, "/b", INT64_C(1795858201001)), 0);
    assert_string_equal(a, "/b/o2c-20261128T093000.123Z.db");
    assert_string_equal(b, "/b/o2c-20261128T093001.001Z.db");
    assert_true(strcmp(a, b) < 0);
    char tiny[8];
    assert_int_equal(backup_scheduled_path(tiny, sizeof tiny, "/b", 0), -1);
}

static void test_prune_keeps_the_newest_and_what_people_named(void **state)
{
    (void)state;
    char dir[] = "/tmp/o2c-test-backup-XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *scheduled[] = {"o2c-20261128T090000.000Z.db", "o2c-20261128T100000.000Z.db",
                               "o2c-20261127T235959.999Z.db", "o2c-20261128T110000.000Z.db"};
    for (int i = 0; i < 4; i++)
        touch(dir, scheduled[i]);
    touch(dir, "o2c-mine.db");                            /* named by a person */
    touch(dir, "o2c-20261128T090000.000Z.db.keep");       /* not our suffix */
    touch(dir, "o2c-20261128T08000.000Z.db");             /* a digit short */
    touch(dir, "o2c-20261128T080000.000Z.db.tmp-Ab12Cd"); /* a copy that died */
    int removed = -1;
    char err[BACKUP_ERR_MAX];
    assert_int_equal(backup_prune(dir, 2, &removed, err, sizeof err), STORE_OK);
    assert_int_equal(removed, 2);
    assert_false(exists(dir, scheduled[2]));
    assert_false(exists(dir, scheduled[0]));
    assert_true(exists(dir, scheduled[1]));
    assert_true(exists(dir, scheduled[3]));
    assert_true(exists(dir, "o2c-mine.db"));
    assert_true(exists(dir, "o2c-20261128T090000.000Z.db.keep"));
    assert_true(exists(dir, "o2c-20261128T08000.000Z.db"));
    assert_false(exists(dir, "o2c-20261128T080000.000Z.db.tmp-Ab12Cd"));
    /* Nothing more to remove. */
    assert_int_equal(backup_prune(dir, 2, &removed, err, sizeof err), STORE_OK);
    assert_int_equal(removed, 0);
    remove_all(dir);
    assert_int_equal(backup_prune(dir, 2, &removed, err, sizeof err), STORE_ERROR);
    assert_non_null(strstr(err, dir));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scheduled_names_sort_by_time),
        cmocka_unit_test(test_prune_keeps_the_newest_and_what_people_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
