/* rowset_pg.h: PGresult cells by type OID into rowset values. */
#include "store/rowset_pg.h"
#include <stdlib.h>
#include <string.h>

/* Built-in type OIDs (catalog/pg_type.dat; fixed across versions). */
enum {
    PG_BOOLOID = 16,
    PG_BYTEAOID = 17,
    PG_INT8OID = 20,
    PG_INT2OID = 21,
    PG_INT4OID = 23,
    PG_OIDOID = 26,
    PG_FLOAT4OID = 700,
    PG_FLOAT8OID = 701,
    PG_NUMERICOID = 1700,
};

static enum rowset_type type_of(Oid oid)
{
    switch (oid) {
    case PG_BOOLOID:
    case PG_INT2OID:
    case PG_INT4OID:
    case PG_INT8OID:
    case PG_OIDOID:
        return ROWSET_INTEGER;
    case PG_FLOAT4OID:
    case PG_FLOAT8OID:
    case PG_NUMERICOID:
        return ROWSET_REAL;
    case PG_BYTEAOID:
        return ROWSET_BLOB;
    default:
        return ROWSET_TEXT;
    }
}

static int capture_columns(const PGresult *res, struct rowset *rs)
{
    const char *names[ROWSET_COLUMNS_MAX];
    int n = PQnfields(res);
    if (n <= 0 || n > ROWSET_COLUMNS_MAX)
        return -1;
    for (int i = 0; i < n; i++)
        names[i] = PQfname(res, i);
    return rowset_columns(rs, (size_t)n, names);
}

/* A bytea's text form ("\x4142..." or the old escape format) as bytes. */
static int put_bytea(struct rowset *rs, struct rowset_value *v, const char *text)
{
    size_t len = 0;
    unsigned char *bytes = PQunescapeBytea((const unsigned char *)text, &len);
    if (bytes == NULL)
        return -1;
    int rc = rowset_put_bytes(rs, v, ROWSET_BLOB, bytes, len);
    PQfreemem(bytes);
    return rc;
}

static int put_cell(const PGresult *res, int row, int col, struct rowset *rs,
                    struct rowset_value *v)
{
    if (PQgetisnull(res, row, col))
        return 0; /* the row starts as NULLs */
    const char *text = PQgetvalue(res, row, col);
    Oid oid = PQftype(res, col);
    switch (type_of(oid)) {
    case ROWSET_INTEGER:
        v->type = ROWSET_INTEGER;
        v->integer = oid == PG_BOOLOID ? text[0] == 't' : strtoll(text, NULL, 10);
        return 0;
    case ROWSET_REAL:
        v->type = ROWSET_REAL;
        v->real = strtod(text, NULL); /* also "NaN", "Infinity" */
        return 0;
    case ROWSET_BLOB:
        return put_bytea(rs, v, text);
    default:
        return rowset_put_bytes(rs, v, ROWSET_TEXT, text, (size_t)PQgetlength(res, row, col));
    }
}

int rowset_capture_pg(const PGresult *res, struct rowset *rs)
{
    if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK || capture_columns(res, rs) != 0)
        return -1;
    int nrows = PQntuples(res), ncols = PQnfields(res);
    for (int r = 0; r < nrows; r++) {
        struct rowset_value *row = rowset_add_row(rs);
        if (row == NULL)
            return -1;
        for (int c = 0; c < ncols; c++)
            if (put_cell(res, r, c, rs, &row[c]) != 0)
                return -1;
    }
    return 0;
}
