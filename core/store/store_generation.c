#include "store/store_internal.h"

static const char SQL_GENERATION_INSERT[] =
    "INSERT INTO generations (hash, sources, created_at) VALUES (?, ?, ?)"
    " ON CONFLICT (hash) DO NOTHING";
static const char SQL_GENERATION_GET[] = "SELECT sources FROM generations WHERE hash = ?";

int store_generation_put(struct db *db, const char *hash, const void *sources, size_t len,
                         int *created)
{
    if (created)
        *created = 0;
    if (!store_text_ok(hash, STORE_GENERATION_MAX))
        return db_fail(db, STORE_INVALID, "generation hash must be 1-%d bytes",
                       STORE_GENERATION_MAX);
    sqlite3_stmt *st = db_stmt(db, SQL_GENERATION_INSERT);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, hash);
    sqlite3_bind_blob64(st, 2, len ? sources : "", len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, db_now_ms(db));
    int rc = db_step_done(db, st, "storing a generation");
    if (rc == STORE_OK && created)
        *created = db_changes(db) == 1;
    return rc;
}

/* FN == NULL: existence check only. */
static int generation_read(struct db *db, const char *hash, store_blob_fn fn, void *ud)
{
    sqlite3_stmt *st = db_stmt(db, SQL_GENERATION_GET);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, hash);
    int step = sqlite3_step(st), rc = STORE_OK;
    if (step == SQLITE_ROW) {
        if (fn)
            fn(ud, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    } else if (step == SQLITE_DONE) {
        rc = db_fail(db, STORE_NOT_FOUND, "no generation %.80s stored", hash ? hash : "");
    } else {
        rc = db_sqlite_fail(db, "reading a generation");
    }
    db_stmt_done(st);
    return rc;
}

int store_generation_get(struct db *db, const char *hash, store_blob_fn fn, void *ud)
{
    return generation_read(db, hash, fn, ud);
}

int store_generation_exists(struct db *db, const char *hash)
{
    return generation_read(db, hash, NULL, NULL) == STORE_OK;
}
