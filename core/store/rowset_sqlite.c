/* SQLite's side of rowset.h and query.h: statements run with their
 * arguments, their rows copied into a rowset.  On a PostgreSQL database
 * each call goes to query_pg.c instead. */
#include <string.h>
#include "store/db_internal.h"
#include "store/rowset.h"

static int capture_columns(sqlite3_stmt *st, struct rowset *rs)
{
    const char *names[ROWSET_COLUMNS_MAX];
    int n = sqlite3_column_count(st);
    if (n <= 0 || n > ROWSET_COLUMNS_MAX)
        return -1;
    for (int i = 0; i < n; i++)
        names[i] = sqlite3_column_name(st, i);
    return rowset_columns(rs, (size_t)n, names);
}

static int capture_row(sqlite3_stmt *st, struct rowset *rs)
{
    struct rowset_value *row = rowset_add_row(rs);
    if (row == NULL)
        return -1;
    for (size_t i = 0; i < rs->ncols; i++) {
        struct rowset_value *v = &row[i];
        int col = (int)i;
        switch (sqlite3_column_type(st, col)) {
        case SQLITE_INTEGER:
            v->type = ROWSET_INTEGER;
            v->integer = sqlite3_column_int64(st, col);
            break;
        case SQLITE_FLOAT:
            v->type = ROWSET_REAL;
            v->real = sqlite3_column_double(st, col);
            break;
        case SQLITE_TEXT: {
            const unsigned char *p = sqlite3_column_text(st, col);
            if (p == NULL ||
                rowset_put_bytes(rs, v, ROWSET_TEXT, p, (size_t)sqlite3_column_bytes(st, col)) != 0)
                return -1;
            break;
        }
        case SQLITE_BLOB: {
            const void *p = sqlite3_column_blob(st, col);
            size_t len = (size_t)sqlite3_column_bytes(st, col);
            if ((p == NULL && len) || rowset_put_bytes(rs, v, ROWSET_BLOB, p ? p : "", len) != 0)
                return -1;
            break;
        }
        default:
            break; /* NULL */
        }
    }
    return 0;
}

/* Steps ST (bound) to its end, copying every row into RS, then resets ST. */
static int rowset_capture_sqlite(struct db *db, sqlite3_stmt *st, struct rowset *rs,
                                 const char *what)
{
    int step = SQLITE_DONE, oom = capture_columns(st, rs) != 0;
    while (!oom && (step = sqlite3_step(st)) == SQLITE_ROW)
        oom = capture_row(st, rs) != 0;
    int rc = STORE_OK;
    if (oom)
        rc = db_fail(db, STORE_ERROR, "%s: out of memory (or more than the result may hold)", what);
    else if (step != SQLITE_DONE)
        rc = db_sqlite_fail(db, what);
    sqlite3_reset(st); /* so no read snapshot stays open */
    return rc;
}

/* Copies column COL as text into BUF of CAP bytes ("" for NULL; truncates). */
static void db_col_copy(sqlite3_stmt *st, int col, char *buf, size_t cap)
{
    const unsigned char *s = sqlite3_column_text(st, col);
    size_t n = s ? (size_t)sqlite3_column_bytes(st, col) : 0;
    if (n >= cap)
        n = cap - 1;
    if (n)
        memcpy(buf, s, n);
    buf[n] = '\0';
}

/* The cached statement for SQL with ARGS bound, or NULL (error recorded). */
static sqlite3_stmt *bound_stmt(struct db *db, const char *sql, const struct db_arg *args, size_t n)
{
    sqlite3_stmt *st = db_stmt(db, sql);
    for (size_t i = 0; st && i < n; i++) {
        const struct db_arg *a = &args[i];
        int idx = (int)i + 1, rc = SQLITE_OK;
        if (a->type == DB_ARG_INT)
            rc = sqlite3_bind_int64(st, idx, a->integer);
        else if (a->type == DB_ARG_BLOB)
            rc = sqlite3_bind_blob64(st, idx, a->len ? a->bytes : "", a->len, SQLITE_STATIC);
        else if (a->type == DB_ARG_TEXT && a->bytes)
            rc = sqlite3_bind_text(st, idx, a->bytes, a->len ? (int)strnlen(a->bytes, a->len) : -1,
                                   SQLITE_STATIC);
        if (rc != SQLITE_OK) {
            db_sqlite_fail(db, "binding a statement's arguments");
            sqlite3_reset(st);
            return NULL;
        }
    }
    return st;
}

int db_exec(struct db *db, const char *sql, const char *what, const struct db_arg *args, size_t n)
{
#ifdef O2C_HAVE_PQ
    if (db_is_pg(db))
        return db_pg_call_exec(db, sql, what, args, n);
#endif
    sqlite3_stmt *st = bound_stmt(db, sql, args, n);
    if (st == NULL)
        return STORE_ERROR;
    int rc = sqlite3_step(st) == SQLITE_DONE ? STORE_OK : db_sqlite_fail(db, what);
    sqlite3_reset(st);
    return rc;
}

int db_exec_count(struct db *db, const char *sql, const char *what, int64_t *changed,
                  const struct db_arg *args, size_t n)
{
    int rc = db_exec(db, sql, what, args, n);
    if (changed)
        *changed = rc == STORE_OK ? db_changes(db) : 0;
    return rc;
}

int db_query(struct db *db, const char *sql, const char *what, struct rowset *rs,
             const struct db_arg *args, size_t n)
{
#ifdef O2C_HAVE_PQ
    if (db_is_pg(db))
        return db_pg_call_query(db, sql, what, rs, args, n);
#endif
    sqlite3_stmt *st = bound_stmt(db, sql, args, n);
    return st ? rowset_capture_sqlite(db, st, rs, what) : STORE_ERROR;
}

int db_query_first(struct db *db, const char *sql, const char *what, int64_t *out, char *text,
                   size_t cap, int *found, const struct db_arg *args, size_t n)
{
#ifdef O2C_HAVE_PQ
    if (db_is_pg(db))
        return db_pg_call_query_first(db, sql, what, out, text, cap, found, args, n);
#endif
    sqlite3_stmt *st = bound_stmt(db, sql, args, n);
    if (st == NULL)
        return STORE_ERROR;
    int step = sqlite3_step(st), rc = STORE_OK;
    if (found)
        *found = step == SQLITE_ROW;
    if (step == SQLITE_ROW) {
        if (out)
            *out = sqlite3_column_int64(st, 0);
        if (text)
            db_col_copy(st, 0, text, cap);
    } else if (step != SQLITE_DONE) {
        rc = db_sqlite_fail(db, what);
    }
    sqlite3_reset(st);
    return rc;
}
