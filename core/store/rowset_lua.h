/* The one converter from captured rows (rowset.h) to Lua values.
 *
 * A column's name says how it is pushed: "key" plainly (integer, number or
 * string; NULL leaves the field out), and after a colon:
 *   key:time  Unix ms as key = "2026-11-28T09:00:00.123Z" and key_ms = ms
 *             (0 or NULL: both left out)
 *   key:json  JSON text decoded (NULL or "": left out)
 *   key:list  a JSON list decoded, NULL as {}, marked as a list
 *   key:bool  an integer as a boolean
 *   key:key   rowset_push_map's key for the row, not a field
 *   key:omit  read by C only, never pushed
 * Engines alias their columns to these names; the converter never knows
 * which engine filled the rowset.
 *
 * Push only after the statement and transaction are over: decoding and
 * pushing may raise. */
#ifndef O2C_STORE_ROWSET_LUA_H
#define O2C_STORE_ROWSET_LUA_H
#include <lua.h>
#include "store/rowset.h"

/* Pushes a userdata holding an empty rowset (BUDGET bytes, 0: no limit)
 * that its __gc frees, so an error while pushing leaks nothing. */
struct rowset *rowset_lua_new(lua_State *L, size_t budget);

/* Row ROW as a table. */
void rowset_push_row(lua_State *L, const struct rowset *rs, size_t row);
/* The first MAX rows (all when MAX exceeds them) as a list of tables. */
void rowset_push_list(lua_State *L, const struct rowset *rs, size_t max);
/* {[key] = row table} keyed by the ":key" column. */
void rowset_push_map(lua_State *L, const struct rowset *rs);
/* A page {items = the first LIMIT rows, next = column COL of the last of
 * them}, NEXT only when RS holds more than LIMIT rows (read one more than
 * the page to know). */
void rowset_push_page(lua_State *L, const struct rowset *rs, size_t limit, size_t col);
/* Column COL of every row as a list of plain values. */
void rowset_push_column(lua_State *L, const struct rowset *rs, size_t col);

#endif
