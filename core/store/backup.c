/* Backup and restore of the database file (backup.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "store/backup.h"
#include "store/db_internal.h"

/* Pages per backup step: each step holds a read snapshot only that long. */
#define BACKUP_STEP_PAGES 256
/* After this many restarts (another connection wrote between two steps) the
 * rest is copied in one step: in WAL mode that is one read snapshot, which
 * writers do not wait for, so a busy server cannot keep the copy going forever. */
#define BACKUP_MAX_RESTARTS 3
#define BACKUP_BUSY_MS 5000
#define SCHEDULED_PREFIX "o2c-"
#define SCHEDULED_SUFFIX ".db"

static int fail(char *err, size_t cap, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t cap, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return rc;
}

static int sqlite_rc(int code)
{
    switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return STORE_BUSY;
    case SQLITE_FULL:
        return STORE_FULL;
    default:
        return STORE_ERROR;
    }
}

static int fsync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* The folder PATH is in ("." for a bare name), for fsync after a rename. */
static void parent_dir(char *buf, size_t cap, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        snprintf(buf, cap, ".");
    else if (slash == path)
        snprintf(buf, cap, "/");
    else
        snprintf(buf, cap, "%.*s", (int)(slash - path), path);
}

static int fsync_parent(const char *path)
{
    char dir[4096];
    parent_dir(dir, sizeof dir, path);
    return fsync_path(dir, O_RDONLY | O_DIRECTORY);
}

/* UTC time as 20261128T093000.123Z. */
static void utc_stamp(char *buf, size_t cap, int64_t ms)
{
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char day[24];
    strftime(day, sizeof day, "%Y%m%dT%H%M%S", &tm);
    snprintf(buf, cap, "%s.%03dZ", day, (int)(ms % 1000));
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A new empty file beside PATH (PATH.tmp-XXXXXX, mode 0600: a backup holds
 * password hashes); its name goes to TMP. */
static int make_temp_beside(char *tmp, size_t cap, const char *path, char *err, size_t errcap)
{
    if (snprintf(tmp, cap, "%s.tmp-XXXXXX", path) >= (int)cap)
        return fail(err, errcap, STORE_INVALID, "%s: path too long", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return fail(err, errcap, STORE_ERROR, "cannot create a file beside %s: %s", path,
                    strerror(errno));
    /* Closed before SQLite opens it: closing any descriptor of a file drops
     * the process's POSIX locks on it, SQLite's included. */
    close(fd);
    return STORE_OK;
}

/* Verify */

/* Runs PRAGMA SQL; every row that is not "ok" is a problem.  Writes the
 * first into PROBLEM. */
static int pragma_problems(sqlite3 *conn, const char *sql, char *problem, size_t cap)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(conn, sql, -1, &st, NULL) != SQLITE_OK) {
        snprintf(problem, cap, "%s", sqlite3_errmsg(conn));
        return -1;
    }
    int rc, found = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 0);
        if (text && strcmp(text, "ok") == 0)
            continue;
        if (found++ == 0)
            snprintf(problem, cap, "%s", text ? text : "a row of table ?");
    }
    if (rc != SQLITE_DONE && found == 0)
        snprintf(problem, cap, "%s", sqlite3_errmsg(conn));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE && found == 0 ? 0 : -1;
}

static int schema_version(sqlite3 *conn)
{
    sqlite3_stmt *st;
    int v = -1;
    if (sqlite3_prepare_v2(conn, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The 16 bytes every SQLite database starts with. */
static int has_sqlite_header(const char *file, int64_t *bytes, char *err, size_t cap)
{
    struct stat st;
    if (stat(file, &st) != 0)
        return fail(err, cap, STORE_INVALID, "%s: cannot read it: %s", file, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return fail(err, cap, STORE_INVALID, "%s: not a regular file", file);
    *bytes = (int64_t)st.st_size;
    char magic[16] = {0};
    FILE *f = fopen(file, "rb");
    size_t n = f ? fread(magic, 1, sizeof magic, f) : 0;
    if (f)
        fclose(f);
    if (n != sizeof magic || memcmp(magic, "SQLite format 3", 16) != 0)
        return fail(err, cap, STORE_INVALID,
                    "%s: not an SQLite database (%lld bytes, no SQLite header): not a file "
                    "written by o2c db backup",
                    file, (long long)st.st_size);
    return STORE_OK;
}

/* FILE is the name the messages give (the file the user named). */
static int verify_open(sqlite3 *conn, const char *file, struct backup_info *info, char *err,
                       size_t cap)
{
    char problem[384] = "";
    sqlite3_busy_timeout(conn, BACKUP_BUSY_MS);
    if (pragma_problems(conn, "PRAGMA integrity_check(5)", problem, sizeof problem) != 0)
        return fail(err, cap, STORE_INVALID,
                    "%s: damaged, it fails SQLite's integrity check (%s); use another backup", file,
                    problem);
    if (pragma_problems(conn, "PRAGMA foreign_key_check", problem, sizeof problem) != 0)
        return fail(err, cap, STORE_INVALID,
                    "%s: damaged, it fails the foreign-key check (%s); use another backup", file,
                    problem);
    int version = schema_version(conn);
    if (version <= 0)
        return fail(err, cap, STORE_INVALID,
                    "%s: an SQLite database, but not one of o2c (schema version %d)", file,
                    version);
    if (version > DB_SCHEMA_VERSION)
        return fail(err, cap, STORE_INVALID,
                    "%s: schema version %d is newer than this o2c understands (%d); restore it "
                    "with the o2c version that wrote it, or a newer one",
                    file, version, DB_SCHEMA_VERSION);
    if (info)
        info->schema_version = version;
    return STORE_OK;
}

/* Checks PATH, naming it SHOWN in messages. */
static int verify_as(const char *path, const char *shown, struct backup_info *info, char *err,
                     size_t cap)
{
    int64_t bytes = 0;
    int rc = has_sqlite_header(path, &bytes, err, cap);
    if (rc != STORE_OK)
        return rc;
    sqlite3 *conn = NULL;
    if (sqlite3_open_v2(path, &conn, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        rc = fail(err, cap, STORE_INVALID, "%s: cannot open it: %s", shown,
                  conn ? sqlite3_errmsg(conn) : "out of memory");
    else
        rc = verify_open(conn, shown, info, err, cap);
    sqlite3_close(conn);
    if (rc == STORE_OK && info)
        info->bytes = bytes;
    return rc;
}

int backup_verify(const char *file, struct backup_info *info, char *err, size_t cap)
{
    return verify_as(file, file, info, err, cap);
}

/* Write */

static int step_all(sqlite3_backup *b)
{
    int restarts = 0, busy = 0, last = -1;
    for (;;) {
        int step = sqlite3_backup_step(b, restarts < BACKUP_MAX_RESTARTS ? BACKUP_STEP_PAGES : -1);
        if (step == SQLITE_DONE)
            return step;
        if (step == SQLITE_OK) {
            int left = sqlite3_backup_remaining(b);
            if (last >= 0 && left > last)
                restarts++;
            last = left;
        } else if ((step == SQLITE_BUSY || step == SQLITE_LOCKED) && busy++ < 500) {
            sqlite3_sleep(10);
        } else {
            return step;
        }
    }
}

/* Copies DB_FILE into the (empty) file TMP as a self-contained database. */
static int copy_into(const char *db_file, const char *tmp, char *err, size_t cap)
{
    sqlite3 *src = NULL, *dst = NULL;
    int rc = STORE_OK;
    if (sqlite3_open_v2(db_file, &src, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        rc = fail(err, cap, STORE_ERROR, "cannot open %s: %s", db_file,
                  src ? sqlite3_errmsg(src) : "out of memory");
    } else if (sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        rc = fail(err, cap, STORE_ERROR, "cannot write %s: %s", tmp,
                  dst ? sqlite3_errmsg(dst) : "out of memory");
    } else {
        sqlite3_busy_timeout(src, BACKUP_BUSY_MS);
        sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
        int step = b ? step_all(b) : sqlite3_errcode(dst);
        if (b)
            sqlite3_backup_finish(b);
        if (step != SQLITE_DONE)
            rc = fail(err, cap, sqlite_rc(step), "copying %s to %s: %s", db_file, tmp,
                      b ? sqlite3_errstr(step) : sqlite3_errmsg(dst));
        /* One self-contained file: no -wal beside it. */
        else if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK)
            rc = fail(err, cap, sqlite_rc(sqlite3_errcode(dst)), "writing %s: %s", tmp,
                      sqlite3_errmsg(dst));
    }
    sqlite3_close(dst);
    sqlite3_close(src);
    return rc;
}

/* Gives TMP the name DEST: never over an existing file unless FORCE.  A
 * hard link fails atomically when DEST exists; where the file system has no
 * hard links, DEST was checked just before. */
static int publish(const char *tmp, const char *dest, int force, char *err, size_t cap)
{
    if (!force) {
        if (link(tmp, dest) == 0) {
            unlink(tmp);
            return STORE_OK;
        }
        if (errno == EEXIST)
            return fail(err, cap, STORE_EXISTS,
                        "%s already exists; choose another name, or pass --force to replace it",
                        dest);
        if (errno != EPERM && errno != ENOTSUP && errno != EXDEV)
            return fail(err, cap, STORE_ERROR, "cannot write %s: %s", dest, strerror(errno));
    }
    if (rename(tmp, dest) != 0)
        return fail(err, cap, STORE_ERROR, "cannot write %s: %s", dest, strerror(errno));
    return STORE_OK;
}

int backup_write(const char *db_file, const char *dest, int flags, struct backup_info *info,
                 char *err, size_t cap)
{
    int force = (flags & BACKUP_FORCE) != 0;
    struct stat st;
    if (!force && lstat(dest, &st) == 0)
        return fail(err, cap, STORE_EXISTS,
                    "%s already exists; choose another name, or pass --force to replace it", dest);
    char tmp[4096];
    int rc = make_temp_beside(tmp, sizeof tmp, dest, err, cap);
    if (rc != STORE_OK)
        return rc;
    if ((rc = copy_into(db_file, tmp, err, cap)) == STORE_OK &&
        (rc = backup_verify(tmp, info, err, cap)) != STORE_OK)
        rc = STORE_ERROR; /* the copy of a good database is bad: an I/O fault */
    if (rc == STORE_OK && fsync_path(tmp, O_RDONLY) != 0)
        rc = fail(err, cap, STORE_ERROR, "cannot write %s: %s", tmp, strerror(errno));
    if (rc == STORE_OK && (rc = publish(tmp, dest, force, err, cap)) == STORE_OK &&
        fsync_parent(dest) != 0)
        rc = fail(err, cap, STORE_ERROR, "cannot write %s: %s", dest, strerror(errno));
    if (rc != STORE_OK)
        unlink(tmp);
    return rc;
}

int db_backup(struct db *db, const char *path)
{
    char err[BACKUP_ERR_MAX];
    int rc = backup_write(db_path(db), path, BACKUP_FORCE, NULL, err, sizeof err);
    return rc == STORE_OK ? rc : db_fail(db, rc, "backup: %s", err);
}

/* Restore */

static int copy_bytes(const char *from, const char *to, char *err, size_t cap)
{
    int in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return fail(err, cap, STORE_INVALID, "%s: cannot read it: %s", from, strerror(errno));
    int out = open(to, O_WRONLY | O_TRUNC | O_CLOEXEC);
    int rc = out < 0 ? fail(err, cap, STORE_ERROR, "cannot write %s: %s", to, strerror(errno))
                     : STORE_OK;
    char buf[65536];
    ssize_t n;
    while (rc == STORE_OK && (n = read(in, buf, sizeof buf)) != 0) {
        if (n < 0 || write(out, buf, (size_t)n) != n)
            rc = fail(err, cap, errno == ENOSPC ? STORE_FULL : STORE_ERROR, "copying %s to %s: %s",
                      from, to, strerror(errno));
    }
    if (rc == STORE_OK && fsync(out) != 0)
        rc = fail(err, cap, STORE_ERROR, "cannot write %s: %s", to, strerror(errno));
    if (out >= 0)
        close(out);
    close(in);
    return rc;
}

/* Folds the current database's WAL into it, so the file kept beside the
 * restored one is complete by itself.  Best effort: a database too damaged
 * for this keeps its -wal beside it instead (see keep_current). */
static void fold_wal(const char *current)
{
    sqlite3 *conn = NULL;
    if (sqlite3_open_v2(current, &conn, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(conn, BACKUP_BUSY_MS);
        sqlite3_exec(conn, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL);
    }
    sqlite3_close(conn);
}

static int link_or_rename(const char *from, const char *to)
{
    if (link(from, to) == 0)
        return 0;
    return errno == EPERM || errno == ENOTSUP ? rename(from, to) : -1;
}

/* Gives the current database (and a -wal it still has) the name KEPT too,
 * and removes its -wal and -shm: they must never meet the restored file. */
static int keep_current(const char *current, const char *kept, char *err, size_t cap)
{
    char wal[4200], kept_wal[4200], shm[4200];
    snprintf(wal, sizeof wal, "%s-wal", current);
    snprintf(kept_wal, sizeof kept_wal, "%s-wal", kept);
    snprintf(shm, sizeof shm, "%s-shm", current);
    fold_wal(current);
    struct stat st;
    if (stat(wal, &st) == 0 &&
        (link_or_rename(wal, kept_wal) != 0 || (unlink(wal) != 0 && errno != ENOENT)))
        return fail(err, cap, STORE_ERROR, "cannot keep %s as %s: %s", wal, kept_wal,
                    strerror(errno));
    unlink(shm);
    if (link_or_rename(current, kept) != 0)
        return fail(err, cap, STORE_ERROR, "cannot keep %s as %s: %s", current, kept,
                    strerror(errno));
    return STORE_OK;
}

int backup_restore(const char *data_dir, const char *file, struct backup_info *info, char *kept,
                   size_t kept_cap, char *err, size_t cap)
{
    char current[4096], tmp[4200], stamp[32];
    kept[0] = '\0';
    if (snprintf(current, sizeof current, "%s/%s", data_dir, BACKUP_DB_FILE) >= (int)sizeof current)
        return fail(err, cap, STORE_INVALID, "%s: path too long", data_dir);
    int64_t bytes = 0;
    int rc = has_sqlite_header(file, &bytes, err, cap);
    if (rc != STORE_OK || (rc = make_temp_beside(tmp, sizeof tmp, current, err, cap)) != STORE_OK)
        return rc;
    /* The bytes that become the database are the ones checked. */
    if (rc == STORE_OK && (rc = copy_bytes(file, tmp, err, cap)) == STORE_OK)
        rc = verify_as(tmp, file, info, err, cap);
    struct stat st;
    if (rc == STORE_OK && stat(current, &st) == 0) {
        utc_stamp(stamp, sizeof stamp, wall_ms());
        snprintf(kept, kept_cap, "%s.before-restore-%s", current, stamp);
        rc = keep_current(current, kept, err, cap);
        if (rc != STORE_OK)
            kept[0] = '\0';
    }
    if (rc == STORE_OK && (rename(tmp, current) != 0 || fsync_parent(current) != 0))
        rc = fail(err, cap, STORE_ERROR, "cannot write %s: %s", current, strerror(errno));
    if (rc != STORE_OK)
        unlink(tmp);
    return rc;
}

/* Scheduled backups */

int backup_scheduled_path(char *buf, size_t cap, const char *dir, int64_t now_ms)
{
    char stamp[32];
    utc_stamp(stamp, sizeof stamp, now_ms);
    int n = snprintf(buf, cap, "%s/" SCHEDULED_PREFIX "%s" SCHEDULED_SUFFIX, dir, stamp);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* o2c-20261128T093000.123Z.db, and nothing a person named otherwise.  With
 * TMP: the same name followed by a temporary suffix. */
static int is_scheduled_name(const char *name, int tmp)
{
    static const char stamp[] = "DDDDDDDDTDDDDDD.DDDZ"; /* D: a digit */
    size_t plen = strlen(SCHEDULED_PREFIX), slen = strlen(SCHEDULED_SUFFIX);
    if (strncmp(name, SCHEDULED_PREFIX, plen) != 0)
        return 0;
    const char *s = name + plen;
    for (size_t i = 0; i < sizeof stamp - 1; i++) {
        int ok = stamp[i] == 'D' ? s[i] >= '0' && s[i] <= '9' : s[i] == stamp[i];
        if (!ok)
            return 0; /* also stops at the end of a shorter name */
    }
    const char *rest = s + sizeof stamp - 1;
    if (strncmp(rest, SCHEDULED_SUFFIX, slen) != 0)
        return 0;
    return tmp ? strncmp(rest + slen, ".tmp-", 5) == 0 : rest[slen] == '\0';
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void remove_in(const char *dir, const char *name, int *removed)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) < (int)sizeof path && unlink(path) == 0 &&
        removed)
        (*removed)++;
}

int backup_prune(const char *dir, int keep, int *removed, char *err, size_t cap)
{
    *removed = 0;
    DIR *d = opendir(dir);
    if (d == NULL)
        return fail(err, cap, STORE_ERROR, "cannot read %s: %s", dir, strerror(errno));
    char **names = NULL;
    size_t n = 0, room = 0;
    int rc = STORE_OK;
    struct dirent *e;
    while (rc == STORE_OK && (e = readdir(d)) != NULL) {
        if (is_scheduled_name(e->d_name, 1)) { /* left by a copy that never finished */
            remove_in(dir, e->d_name, NULL);
            continue;
        }
        if (!is_scheduled_name(e->d_name, 0))
            continue;
        if (n == room) {
            room = room ? room * 2 : 32;
            char **grown = realloc(names, room * sizeof *names);
            if (grown == NULL) {
                rc = fail(err, cap, STORE_ERROR, "out of memory");
                break;
            }
            names = grown;
        }
        if ((names[n] = strdup(e->d_name)) == NULL)
            rc = fail(err, cap, STORE_ERROR, "out of memory");
        else
            n++;
    }
    closedir(d);
    if (rc == STORE_OK && n > (size_t)keep) {
        qsort(names, n, sizeof *names, by_name);
        for (size_t i = 0; i < n - (size_t)keep; i++)
            remove_in(dir, names[i], removed);
        if (*removed > 0)
            fsync_path(dir, O_RDONLY | O_DIRECTORY);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}
