/* A captured result: rows x columns of typed values, copied into an arena.
 *
 * Why: a store reader runs inside a statement (and often a transaction),
 * where nothing may raise a Lua error; the rows are captured first, the
 * statement and transaction end, and only then are they pushed to Lua
 * (rowset_lua.h).  The rowset does not know which engine filled it: each
 * engine's db_query (query.h) fills it through rowset_columns,
 * rowset_add_row and rowset_put_bytes.
 *
 * Column names carry how a column reaches Lua ("created_at:time",
 * "targets:json", ...: rowset_lua.h); C readers use column positions. */
#ifndef O2C_STORE_ROWSET_H
#define O2C_STORE_ROWSET_H
#include <stddef.h>
#include <stdint.h>
#include "store/store_arena.h"

#define ROWSET_COLUMNS_MAX 32

enum rowset_type { ROWSET_NULL = 0, ROWSET_INTEGER, ROWSET_REAL, ROWSET_TEXT, ROWSET_BLOB };

struct rowset_value {
    enum rowset_type type;
    int64_t integer;
    double real;
    const char *bytes; /* text and blob: LEN bytes and a NUL after them */
    size_t len;
};

struct rowset {
    struct store_arena arena; /* names, cells and bytes */
    size_t ncols, nrows, cap;
    const char **names;
    struct rowset_value *cells; /* row-major, nrows * ncols */
};

/* An empty rowset whose copies may take BUDGET bytes (0: no limit). */
void rowset_init(struct rowset *rs, size_t budget);
/* Frees all rows and columns; the rowset is empty again (same budget). */
void rowset_free(struct rowset *rs);

/* Filling (for engines).  All return 0, or -1 when out of memory. */

/* Sets the N column names (copied) of an empty rowset; a rowset with the
 * same N columns already keeps its names, so a second query appends. */
int rowset_columns(struct rowset *rs, size_t n, const char *const *names);
/* A new row of NULLs to fill, or NULL. */
struct rowset_value *rowset_add_row(struct rowset *rs);
/* Makes V the text or blob (TYPE) of LEN bytes at P, copied. */
int rowset_put_bytes(struct rowset *rs, struct rowset_value *v, enum rowset_type type,
                     const void *p, size_t len);

/* Reading */

const struct rowset_value *rowset_value(const struct rowset *rs, size_t row, size_t col);
/* The position of the column named KEY (the part before any ":kind"),
 * or -1. */
int rowset_column(const struct rowset *rs, const char *key);
/* The text of a text or blob cell, NULL for anything else. */
const char *rowset_text(const struct rowset *rs, size_t row, size_t col);
/* The integer of a cell (a real is truncated), 0 for NULL or text. */
int64_t rowset_int(const struct rowset *rs, size_t row, size_t col);

#endif
