/* PostgreSQL's side of rowset.h: a PGresult's rows copied into a rowset.
 *
 * Types go by the column's type OID: int2/int4/int8/oid -> integer,
 * float4/float8/numeric -> real, bool -> integer 1/0 (as SQLite stores
 * it), bytea -> blob (its bytes, NULs and all), NULL -> null, anything else
 * (text, varchar, json, timestamps, uuid, ...) -> its text.  Text-format
 * results only (what pg_conn asks for). */
#ifndef O2C_STORE_ROWSET_PG_H
#define O2C_STORE_ROWSET_PG_H
#include <libpq-fe.h>
#include "store/rowset.h"

/* Appends RES's rows to RS (its column names set from RES, or the same
 * number already there).  Returns 0, or -1 when out of memory, beyond the
 * rowset's budget, with more than ROWSET_COLUMNS_MAX columns, or when RES
 * holds no rows to read (not PGRES_TUPLES_OK). */
int rowset_capture_pg(const PGresult *res, struct rowset *rs);

#endif
