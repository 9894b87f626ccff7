#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "store/rowset.h"
#include "store/store_internal.h"

#define ATTACHMENT_DIR "attachments"
#define ATTACHMENT_TMP_PREFIX ".tmp-"

static const char SQL_ATTACHMENT_UPSERT[] =
    "INSERT INTO attachments (assessment_id, name, content_hash, media_type, size, created_by,"
    " created_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (assessment_id, name) DO UPDATE SET content_hash = excluded.content_hash,"
    " media_type = excluded.media_type, size = excluded.size,"
    " created_by = excluded.created_by, created_at = excluded.created_at";
static const char SQL_ATTACHMENT_DELETE[] =
    "DELETE FROM attachments WHERE assessment_id = ? AND name = ?";
static const char SQL_ATTACHMENT_HASH_USED[] =
    "SELECT 1 FROM attachments WHERE content_hash = ? LIMIT 1";

static int blob_hash_ok(const char *hash)
{
    if (hash == NULL || strlen(hash) != STORE_HASH_HEX - 1)
        return 0;
    for (const char *p = hash; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

/* <DATA_DIR>/attachments into BUF, created when missing; 0, or -1 with
 * the reason in ERR. */
static int blob_dir(const char *data_dir, char *buf, size_t cap, char *err, size_t errlen)
{
    if (db_join_path(buf, cap, data_dir, ATTACHMENT_DIR) != 0) {
        snprintf(err, errlen, "attachment dir path too long");
        return -1;
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", buf, strerror(errno));
        return -1;
    }
    return 0;
}

int store_blob_path(struct db *db, const char *hash, char *buf, size_t cap)
{
    if (!blob_hash_ok(hash))
        return db_fail(db, STORE_INVALID, "invalid content hash \"%.80s\"", hash ? hash : "");
    int n = snprintf(buf, cap, "%s/" ATTACHMENT_DIR "/%s", db_data_dir(db), hash);
    if (n < 0 || (size_t)n >= cap)
        return db_fail(db, STORE_ERROR, "attachment path too long");
    return STORE_OK;
}

static int write_all(int fd, const unsigned char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Temp file, fsync, rename, fsync of the directory: after a crash the name
 * either does not exist or holds the complete content. */
static int blob_write_file(const char *dir, const char *path, const void *data, size_t len,
                           char *err, size_t errlen)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s/" ATTACHMENT_TMP_PREFIX "XXXXXX", dir);
    int fd = mkostemp(tmp, O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    int ok = write_all(fd, data, len) == 0 && fsync(fd) == 0;
    int saved = errno;
    ok = close(fd) == 0 && ok;
    if (ok && rename(tmp, path) == 0 && db_fsync_dir(dir) == 0)
        return 0;
    saved = ok ? errno : saved;
    unlink(tmp);
    snprintf(err, errlen, "cannot write attachment %s: %s", path, strerror(saved));
    return saved == ENOSPC || saved == EDQUOT ? -2 : -1;
}

int store_blob_write_file(const char *data_dir, const void *data, size_t len,
                          char hash[STORE_HASH_HEX], char *err, size_t errlen)
{
    unsigned char h[32];
    crypto_generichash(h, sizeof h, data, len, NULL, 0);
    sodium_bin2hex(hash, STORE_HASH_HEX, h, sizeof h);
    char dir[4096], path[4200];
    if (blob_dir(data_dir, dir, sizeof dir, err, errlen) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/%s", dir, hash);
    struct stat st;
    /* Same content already stored: refresh its time so retention's grace
     * period protects it until the caller's row refers to it. */
    if (stat(path, &st) == 0 && (size_t)st.st_size == len &&
        utimensat(AT_FDCWD, path, NULL, 0) == 0)
        return 0;
    return blob_write_file(dir, path, data, len, err, errlen);
}

int store_attachment_put(struct db *db, const struct user *actor, const char *assessment_id,
                         const char *name, const char *media_type, const char *hash, int64_t size)
{
    if (!store_text_ok(name, STORE_ATTACHMENT_NAME_MAX))
        return db_fail(db, STORE_INVALID, "attachment name must be 1-%d bytes",
                       STORE_ATTACHMENT_NAME_MAX);
    if (!store_text_ok(media_type, STORE_MEDIA_TYPE_MAX) || !blob_hash_ok(hash) || size < 0)
        return db_fail(db, STORE_INVALID, "attachment %s: bad media type, hash or size", name);
    int rc = db_tx_begin(db);
    if (rc != STORE_OK)
        return rc;
    rc = store_assessment_access(db, actor, assessment_id, NULL);
    if (rc == STORE_OK)
        rc = user_assessment_writable(db, assessment_id);
    if (rc == STORE_OK)
        rc = db_exec(db, SQL_ATTACHMENT_UPSERT, "storing an attachment",
                     DB_ARGS(DB_TEXT(assessment_id), DB_TEXT(name), DB_TEXT(hash),
                             DB_TEXT(media_type), DB_INT(size), DB_TEXT(actor->id),
                             DB_INT(db_now_ms(db))));
    return db_tx_end(db, rc);
}

int store_attachment_delete(struct db *db, const struct user *actor, const char *assessment_id,
                            const char *name)
{
    int rc = store_assessment_access(db, actor, assessment_id, NULL);
    if (rc == STORE_OK)
        rc = user_assessment_writable(db, assessment_id);
    if (rc != STORE_OK)
        return rc;
    rc = db_exec(db, SQL_ATTACHMENT_DELETE, "deleting an attachment",
                 DB_ARGS(DB_TEXT(assessment_id), DB_TEXT(name)));
    if (rc == STORE_OK && db_changes(db) == 0)
        rc = db_fail(db, STORE_NOT_FOUND, "no attachment %.128s", name ? name : "");
    return rc;
}

/* Orphans */

/* An entry of the attachment dir that nobody needs: a content file no row
 * refers to, or a temp file a crash left behind, older than the grace period
 * (a younger one may belong to a put still in progress). */
static int blob_is_orphan(struct db *db, const char *dir, const char *name, int64_t cutoff_ms,
                          char *path, size_t cap, int *orphan)
{
    *orphan = 0;
    int temp = strncmp(name, ATTACHMENT_TMP_PREFIX, strlen(ATTACHMENT_TMP_PREFIX)) == 0;
    if (!temp && !blob_hash_ok(name))
        return STORE_OK; /* not ours: leave it alone */
    struct stat st;
    if (snprintf(path, cap, "%s/%s", dir, name) >= (int)cap || lstat(path, &st) != 0 ||
        !S_ISREG(st.st_mode))
        return STORE_OK;
    int64_t mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    if (mtime_ms > cutoff_ms)
        return STORE_OK;
    int used = 0, rc = STORE_OK;
    if (!temp)
        rc = db_query_first(db, SQL_ATTACHMENT_HASH_USED, "checking an attachment's use", NULL,
                            NULL, 0, &used, DB_ARGS(DB_TEXT(name)));
    *orphan = rc == STORE_OK && !used;
    return rc;
}

int store_attachment_orphans(struct db *db, int64_t min_age_ms, store_path_fn fn, void *ud)
{
    char dir[4096], err[4200];
    if (blob_dir(db_data_dir(db), dir, sizeof dir, err, sizeof err) != 0)
        return db_fail(db, STORE_ERROR, "%s", err);
    DIR *d = opendir(dir);
    if (d == NULL)
        return db_fail(db, STORE_ERROR, "cannot list %s: %s", dir, strerror(errno));
    int rc = STORE_OK;
    int64_t cutoff = db_now_ms(db) - min_age_ms;
    struct dirent *e;
    while (rc == STORE_OK && (e = readdir(d)) != NULL) {
        char path[4400];
        int orphan = 0;
        rc = blob_is_orphan(db, dir, e->d_name, cutoff, path, sizeof path, &orphan);
        if (rc == STORE_OK && orphan && fn(ud, path) != 0)
            break;
    }
    closedir(d);
    return rc;
}
