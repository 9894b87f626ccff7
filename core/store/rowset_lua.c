#include "store/rowset_lua.h"
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include "store/store_lua_internal.h"

enum column_kind { COL_PLAIN, COL_TIME, COL_JSON, COL_LIST, COL_BOOL, COL_KEY, COL_OMIT };

struct column_shape {
    char key[64];
    enum column_kind kind;
};

static int rowset_gc(lua_State *L)
{
    rowset_free(lua_touserdata(L, 1));
    return 0;
}

struct rowset *rowset_lua_new(lua_State *L, size_t budget)
{
    struct rowset *rs = lua_newuserdatauv(L, sizeof *rs, 0);
    rowset_init(rs, budget);
    if (luaL_newmetatable(L, "o2c.store.rowset")) {
        lua_pushcfunction(L, rowset_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return rs;
}

/* "key:kind" -> key and kind; an unknown kind raises (a bug in the SQL). */
static void column_shape(lua_State *L, const char *name, struct column_shape *out)
{
    static const char *const kinds[] = {"", "time", "json", "list", "bool", "key", "omit"};
    const char *colon = strchr(name, ':');
    size_t len = colon ? (size_t)(colon - name) : strlen(name);
    snprintf(out->key, sizeof out->key, "%.*s", (int)len, name);
    out->kind = COL_PLAIN;
    if (colon == NULL)
        return;
    for (size_t k = 1; k < sizeof kinds / sizeof kinds[0]; k++)
        if (strcmp(colon + 1, kinds[k]) == 0) {
            out->kind = (enum column_kind)k;
            return;
        }
    luaL_error(L, "o2c.store: column \"%s\" has an unknown kind", name);
}

static void column_shapes(lua_State *L, const struct rowset *rs, struct column_shape *shapes)
{
    for (size_t i = 0; i < rs->ncols; i++)
        column_shape(L, rs->names[i], &shapes[i]);
}

static void push_plain(lua_State *L, const struct rowset_value *v)
{
    switch (v->type) {
    case ROWSET_INTEGER:
        lua_pushinteger(L, (lua_Integer)v->integer);
        break;
    case ROWSET_REAL:
        lua_pushnumber(L, v->real);
        break;
    case ROWSET_TEXT:
    case ROWSET_BLOB:
        lua_pushlstring(L, v->bytes, v->len);
        break;
    default:
        lua_pushnil(L);
    }
}

/* Sets the field(s) of V in the table on top, as SHAPE says. */
static void set_field(lua_State *L, const struct column_shape *shape, const struct rowset_value *v)
{
    int is_text = v->type == ROWSET_TEXT || v->type == ROWSET_BLOB;
    switch (shape->kind) {
    case COL_TIME:
        store_lua_set_time(L, shape->key, v->type == ROWSET_INTEGER ? v->integer : 0);
        return;
    case COL_JSON:
        if (!is_text || v->len == 0)
            return;
        store_lua_decode(L, v->bytes, v->len);
        break;
    case COL_LIST:
        if (is_text)
            store_lua_decode(L, v->bytes, v->len);
        else
            lua_newtable(L);
        store_lua_mark_array(L, -1);
        break;
    case COL_BOOL:
        if (v->type == ROWSET_NULL)
            return;
        lua_pushboolean(L, v->integer != 0);
        break;
    case COL_KEY:
    case COL_OMIT:
        return;
    default:
        if (v->type == ROWSET_NULL)
            return;
        push_plain(L, v);
    }
    lua_setfield(L, -2, shape->key);
}

static void push_shaped_row(lua_State *L, const struct rowset *rs, size_t row,
                            const struct column_shape *shapes)
{
    luaL_checkstack(L, 4, "pushing a row");
    lua_createtable(L, 0, (int)rs->ncols);
    for (size_t i = 0; i < rs->ncols; i++)
        set_field(L, &shapes[i], rowset_value(rs, row, i));
}

void rowset_push_row(lua_State *L, const struct rowset *rs, size_t row)
{
    struct column_shape shapes[ROWSET_COLUMNS_MAX];
    column_shapes(L, rs, shapes);
    push_shaped_row(L, rs, row, shapes);
}

void rowset_push_list(lua_State *L, const struct rowset *rs, size_t max)
{
    struct column_shape shapes[ROWSET_COLUMNS_MAX];
    column_shapes(L, rs, shapes);
    size_t n = rs->nrows < max ? rs->nrows : max;
    lua_createtable(L, (int)n, 0);
    for (size_t r = 0; r < n; r++) {
        push_shaped_row(L, rs, r, shapes);
        lua_rawseti(L, -2, (lua_Integer)r + 1);
    }
    store_lua_mark_array(L, -1);
}

void rowset_push_map(lua_State *L, const struct rowset *rs)
{
    struct column_shape shapes[ROWSET_COLUMNS_MAX];
    column_shapes(L, rs, shapes);
    size_t key = 0;
    while (key < rs->ncols && shapes[key].kind != COL_KEY)
        key++;
    if (key == rs->ncols)
        luaL_error(L, "o2c.store: a map of rows needs a \":key\" column");
    lua_createtable(L, 0, (int)rs->nrows);
    for (size_t r = 0; r < rs->nrows; r++) {
        push_plain(L, rowset_value(rs, r, key));
        push_shaped_row(L, rs, r, shapes);
        lua_rawset(L, -3);
    }
}

void rowset_push_column(lua_State *L, const struct rowset *rs, size_t col)
{
    lua_createtable(L, (int)rs->nrows, 0);
    for (size_t r = 0; r < rs->nrows; r++) {
        push_plain(L, rowset_value(rs, r, col));
        lua_rawseti(L, -2, (lua_Integer)r + 1);
    }
    store_lua_mark_array(L, -1);
}

void rowset_push_page(lua_State *L, const struct rowset *rs, size_t limit, size_t col)
{
    lua_createtable(L, 0, 2);
    rowset_push_list(L, rs, limit);
    lua_setfield(L, -2, "items");
    if (limit > 0 && rs->nrows > limit) {
        push_plain(L, rowset_value(rs, limit - 1, col));
        lua_setfield(L, -2, "next");
    }
}
