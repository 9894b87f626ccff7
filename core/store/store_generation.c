#include "store/rowset.h"
#include "store/store_internal.h"

static const char SQL_GENERATION_INSERT[] =
    "INSERT INTO generations (hash, sources, created_at) VALUES (?, ?, ?)"
    " ON CONFLICT (hash) DO NOTHING";
static const char SQL_GENERATION_GET[] = "SELECT sources FROM generations WHERE hash = ?";
static const char SQL_GENERATION_EXISTS[] = "SELECT 1 FROM generations WHERE hash = ?";

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

int store_generation_rows(struct db *db, const char *hash, struct rowset *rs)
{
    sqlite3_stmt *st = db_stmt(db, SQL_GENERATION_GET);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, hash);
    int rc = rowset_capture_sqlite(db, st, rs, "reading a generation");
    if (rc == STORE_OK && rs->nrows == 0)
        rc = db_fail(db, STORE_NOT_FOUND, "no generation %.80s stored", hash ? hash : "");
    return rc;
}

int store_generation_exists(struct db *db, const char *hash)
{
    sqlite3_stmt *st = db_stmt(db, SQL_GENERATION_EXISTS);
    if (st == NULL)
        return 0;
    db_bind_text(st, 1, hash);
    int found = sqlite3_step(st) == SQLITE_ROW;
    db_stmt_done(st);
    return found;
}
