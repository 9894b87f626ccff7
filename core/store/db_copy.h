/* `o2c db copy`: a SQLite database into an empty PostgreSQL one.
 *
 * The target is migrated to this build's schema, then every table is copied
 * as it is (ids, revisions, times, JSON text and blobs byte for byte) in
 * foreign-key order, the identity columns are moved past the copied ids,
 * and the row count of every table is compared on both sides, all in one
 * PostgreSQL transaction: on any failure nothing is left in the target.
 * The source is read inside one read transaction, so a server writing to it
 * meanwhile cannot tear the copy. */
#ifndef O2C_STORE_DB_COPY_H
#define O2C_STORE_DB_COPY_H
#include <stddef.h>
#include <stdint.h>

struct db;

#define DB_COPY_TABLES 17

struct db_copy_result {
    size_t ntables;
    struct {
        const char *name;
        int64_t rows; /* the same on both sides once verified */
    } tables[DB_COPY_TABLES];
    int target_version_before; /* the target's schema version before (0: empty) */
};

/* Copies FROM (SQLite, at this build's schema version) into TO (PostgreSQL,
 * with no o2c rows in it).  STORE_OK with *OUT filled, or a STORE_* code
 * with ERR saying what was wrong and what to do (never the URL):
 * STORE_EXISTS when the target holds o2c rows, STORE_INVALID for a source
 * at another schema version or failing its checks. */
int db_copy(struct db *from, struct db *to, struct db_copy_result *out, char *err, size_t errlen);

/* 1 when URL names a PostgreSQL database (postgresql:// or postgres://). */
int db_url_is_pg(const char *url);

/* "database NAME on HOST[:PORT]" from URL into OUT, without user or
 * password: something safe to print.  -1 when URL cannot be parsed (or
 * this build has no PostgreSQL). */
int db_url_describe(const char *url, char *out, size_t cap);

#endif
