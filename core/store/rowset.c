#include "store/rowset.h"
#include <stdint.h>
#include <string.h>

void rowset_init(struct rowset *rs, size_t budget)
{
    memset(rs, 0, sizeof *rs);
    store_arena_init(&rs->arena, budget);
}

void rowset_free(struct rowset *rs)
{
    size_t budget = rs->arena.budget;
    store_arena_free(&rs->arena);
    rowset_init(rs, budget);
}

int rowset_columns(struct rowset *rs, size_t n, const char *const *names)
{
    if (rs->ncols == n && rs->names)
        return 0;
    if (rs->ncols != 0 || n == 0 || n > ROWSET_COLUMNS_MAX)
        return -1;
    rs->names = store_arena_alloc(&rs->arena, n * sizeof *rs->names);
    if (rs->names == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((rs->names[i] = store_arena_strdup(&rs->arena, names[i] ? names[i] : "")) == NULL)
            return -1;
    rs->ncols = n;
    return 0;
}

/* Doubles the cell array; the old one stays in the arena until the end
 * (at most as much again as the final array). */
static int rowset_grow(struct rowset *rs)
{
    size_t cap = rs->cap ? rs->cap * 2 : 16;
    if (cap > SIZE_MAX / (rs->ncols * sizeof *rs->cells))
        return -1;
    struct rowset_value *cells = store_arena_alloc(&rs->arena, cap * rs->ncols * sizeof *cells);
    if (cells == NULL)
        return -1;
    if (rs->nrows)
        memcpy(cells, rs->cells, rs->nrows * rs->ncols * sizeof *cells);
    rs->cells = cells;
    rs->cap = cap;
    return 0;
}

struct rowset_value *rowset_add_row(struct rowset *rs)
{
    if (rs->ncols == 0 || (rs->nrows == rs->cap && rowset_grow(rs) != 0))
        return NULL;
    struct rowset_value *row = &rs->cells[rs->nrows * rs->ncols];
    memset(row, 0, rs->ncols * sizeof *row);
    rs->nrows++;
    return row;
}

int rowset_put_bytes(struct rowset *rs, struct rowset_value *v, enum rowset_type type,
                     const void *p, size_t len)
{
    char *copy = store_arena_memdup(&rs->arena, p, len);
    if (copy == NULL)
        return -1;
    v->type = type;
    v->bytes = copy;
    v->len = len;
    return 0;
}

const struct rowset_value *rowset_value(const struct rowset *rs, size_t row, size_t col)
{
    static const struct rowset_value null_value = {.type = ROWSET_NULL};
    if (row >= rs->nrows || col >= rs->ncols)
        return &null_value;
    return &rs->cells[row * rs->ncols + col];
}

const char *rowset_text(const struct rowset *rs, size_t row, size_t col)
{
    const struct rowset_value *v = rowset_value(rs, row, col);
    return v->type == ROWSET_TEXT || v->type == ROWSET_BLOB ? v->bytes : NULL;
}

int64_t rowset_int(const struct rowset *rs, size_t row, size_t col)
{
    const struct rowset_value *v = rowset_value(rs, row, col);
    if (v->type == ROWSET_INTEGER)
        return v->integer;
    return v->type == ROWSET_REAL ? (int64_t)v->real : 0;
}

int rowset_column(const struct rowset *rs, const char *key)
{
    size_t len = strlen(key);
    for (size_t i = 0; i < rs->ncols; i++)
        if (strncmp(rs->names[i], key, len) == 0 &&
            (rs->names[i][len] == '\0' || rs->names[i][len] == ':'))
            return (int)i;
    return -1;
}
