/* Running one statement with its parameters, engine-neutral: the SQL text
 * (with ? placeholders) and typed arguments go in, a status, a count of
 * changed rows or a rowset (rowset.h) come out.  SQLite implements it in
 * rowset_sqlite.c; another engine implements the same functions, so no
 * caller of this header sees an engine type.
 *
 * SQL must be a string with static storage (a `static const char SQL_...[]`):
 * engines may cache the prepared statement by its address.
 *
 *   db_exec(db, SQL_X, "doing x", DB_ARGS(DB_TEXT(id), DB_INT(now)));
 *   db_query(db, SQL_Y, "reading y", rs, DB_ARGS(DB_TEXT(id)));
 *   db_query(db, SQL_Z, "listing z", rs, DB_NO_ARGS); */
#ifndef O2C_STORE_QUERY_H
#define O2C_STORE_QUERY_H
#include <stddef.h>
#include <stdint.h>
#include "store/db.h"

struct rowset;

enum db_arg_type { DB_ARG_NULL = 0, DB_ARG_TEXT, DB_ARG_INT, DB_ARG_BLOB };

struct db_arg {
    enum db_arg_type type;
    const void *bytes; /* text (NULL binds SQL NULL) or blob */
    size_t len;        /* blob bytes; text: 0 up to the NUL, else at most LEN bytes */
    int64_t integer;
};

#define DB_TEXT(s) ((struct db_arg){.type = DB_ARG_TEXT, .bytes = (const char *)(s)})
/* Text cut to at most N bytes (N > 0). */
#define DB_TEXT_MAX(s, n) ((struct db_arg){.type = DB_ARG_TEXT, .bytes = (s), .len = (n)})
#define DB_INT(n) ((struct db_arg){.type = DB_ARG_INT, .integer = (int64_t)(n)})
#define DB_BLOB(p, n) ((struct db_arg){.type = DB_ARG_BLOB, .bytes = (p), .len = (n)})
#define DB_NULL ((struct db_arg){.type = DB_ARG_NULL})
/* The argument list and its length, for the ARGS, N pair below. */
#define DB_ARGS(...)                                                                               \
    (const struct db_arg[]){__VA_ARGS__},                                                          \
        sizeof((const struct db_arg[]){__VA_ARGS__}) / sizeof(struct db_arg)
#define DB_NO_ARGS NULL, 0

/* Runs SQL (no rows expected: INSERT/UPDATE/DELETE).  STORE_OK, or the
 * mapped error with WHAT in the message (STORE_EXISTS for a unique
 * violation, STORE_INVALID for a foreign key or check, STORE_BUSY, ...). */
int db_exec(struct db *db, const char *sql, const char *what, const struct db_arg *args, size_t n);
/* db_exec that gives the number of rows SQL changed in *CHANGED (may be
 * NULL; 0 on failure). */
int db_exec_count(struct db *db, const char *sql, const char *what, int64_t *changed,
                  const struct db_arg *args, size_t n);
/* Appends every row of SQL to RS.  STORE_OK, or the error while doing WHAT
 * (STORE_ERROR when out of memory or past RS's budget). */
int db_query(struct db *db, const char *sql, const char *what, struct rowset *rs,
             const struct db_arg *args, size_t n);
/* The first column of the first row of SQL as an integer into *OUT (0 for
 * NULL) and, when TEXT is not NULL, as text into TEXT of CAP bytes (""
 * for NULL; truncated).  *FOUND (may be NULL) says whether a row came;
 * without one OUT and TEXT are left as they are. */
int db_query_first(struct db *db, const char *sql, const char *what, int64_t *out, char *text,
                   size_t cap, int *found, const struct db_arg *args, size_t n);

/* Records a failure: sets the message and returns RC. */
int db_fail(struct db *db, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Number of rows the last db_exec on this connection changed. */
int64_t db_changes(struct db *db);

#endif
