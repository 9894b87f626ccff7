#include "store/store_internal.h"

static const char SQL_GENERATION_INSERT[] =
    "INSERT INTO generations (hash, sources, created_at) VALUES (?, ?, ?)"
    " ON CONFLICT (hash) DO NOTHING";
static const char SQL_GENERATION_EXISTS[] = "SELECT 1 FROM generations WHERE hash = ?";

int store_generation_put(struct db *db, const char *hash, const void *sources, size_t len,
                         int *created)
{
    if (created)
        *created = 0;
    if (!store_text_ok(hash, STORE_GENERATION_MAX))
        return db_fail(db, STORE_INVALID, "generation hash must be 1-%d bytes",
                       STORE_GENERATION_MAX);
    int rc = db_exec(db, SQL_GENERATION_INSERT, "storing a generation",
                     DB_ARGS(DB_TEXT(hash), DB_BLOB(sources, len), DB_INT(db_now_ms(db))));
    if (rc == STORE_OK && created)
        *created = db_changes(db) == 1;
    return rc;
}

int store_generation_exists(struct db *db, const char *hash)
{
    int found = 0;
    db_query_first(db, SQL_GENERATION_EXISTS, "looking for a generation", NULL, NULL, 0, &found,
                   DB_ARGS(DB_TEXT(hash)));
    return found;
}
