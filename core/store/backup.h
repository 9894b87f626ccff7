/* Backup and restore of the database file.
 *
 * A backup is one self-contained SQLite file (no -wal beside it), copied
 * with SQLite's online backup API on a connection of its own, so it may run
 * on any thread while the server's connection goes on reading and writing.
 * It is written to a temporary file in the destination's folder, checked
 * (backup_verify), fsynced and only then given its name: a backup under its
 * final name is always complete and verified.
 *
 * A restore copies the file into the data folder, checks that copy, keeps
 * the current database under a new name beside it and renames the copy into
 * place.  The caller holds the data folder's exclusive lock (data_lock.h),
 * so no server has the database open meanwhile. */
#ifndef O2C_STORE_BACKUP_H
#define O2C_STORE_BACKUP_H
#include <stddef.h>
#include <stdint.h>

#define BACKUP_ERR_MAX 768

/* The file's name in the data folder (db.c opens the same). */
#define BACKUP_DB_FILE "o2c.db"

enum backup_flags {
    BACKUP_FORCE = 1, /* replace an existing destination */
};

struct backup_info {
    int schema_version;
    int64_t bytes;
};

/* Copies the database DB_FILE to DEST.  STORE_EXISTS when DEST exists and
 * FLAGS lacks BACKUP_FORCE (nothing is written then); STORE_ERROR (or
 * STORE_BUSY, STORE_FULL) with the reason in ERR otherwise.  INFO (may be
 * NULL) receives what the check of the copy found. */
int backup_write(const char *db_file, const char *dest, int flags, struct backup_info *info,
                 char *err, size_t cap);

/* Whether FILE can be restored: an SQLite database that passes the integrity
 * and foreign-key checks, with an o2c schema version from 1 to
 * DB_SCHEMA_VERSION.  STORE_OK, or STORE_INVALID with the reason in ERR.
 * FILE is opened read-write (SQLite may need its lock files), never changed. */
int backup_verify(const char *file, struct backup_info *info, char *err, size_t cap);

/* Replaces DATA_DIR/o2c.db with a copy of FILE once that copy passes
 * backup_verify.  The database it replaces is kept beside it as
 * o2c.db.before-restore-<UTC time>; its path goes to KEPT ("" when there was
 * none).  On failure the current database is untouched. */
int backup_restore(const char *data_dir, const char *file, struct backup_info *info, char *kept,
                   size_t kept_cap, char *err, size_t cap);

/* Scheduled backups are named o2c-<UTC time to the millisecond>.db, so their
 * names sort by age.  Writes DIR/<name for NOW_MS> to BUF; -1 if too long. */
int backup_scheduled_path(char *buf, size_t cap, const char *dir, int64_t now_ms);

/* Removes the oldest scheduled backups in DIR until KEEP remain, and any
 * temporary file a crashed copy left; *REMOVED counts the backups removed. */
int backup_prune(const char *dir, int keep, int *removed, char *err, size_t cap);

#endif
