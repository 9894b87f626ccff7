/* o2c.xlsx: an Excel workbook from Lua tables, written by libxlsxwriter.
 *
 *   local bytes, err = o2c.xlsx.workbook{
 *     title = "Order-to-Cash maturity assessment: Acme",   -- document property
 *     sheets = {
 *       { name = "Areas",                                   -- at most 31 characters
 *         columns = { { title = "Area", width = 40 },
 *                     { title = "Score", width = 10, number_format = "0.00" } },
 *         rows = { { "Billing and invoicing", 3.31 }, ... } },
 *     },
 *   }
 *
 * A Lua number becomes a number cell (never text), a string a text cell, a
 * boolean a boolean; anything else (nil, json.null) leaves the cell empty.
 * The header row is bold, frozen and filtered.  Returns the .xlsx bytes, or
 * nil and a message (e.g. an invalid sheet name).  libxlsxwriter only writes
 * to a file: the workbook goes through a private temporary file, removed
 * before this returns. */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xlsxwriter.h>
#include "host/modules.h"

#define XLSX_MAX_COLUMNS 64
#define XLSX_MAX_FORMATS 64

struct xlsx_build {
    lxw_workbook *wb;
    lxw_format *header;
    lxw_format *wrap;
    char error[256];
};

static int xlsx_fail(struct xlsx_build *b, const char *fmt, const char *what, lxw_error err)
{
    snprintf(b->error, sizeof b->error, fmt, what, lxw_strerror(err));
    return -1;
}

static lua_Number xlsx_opt_number(lua_State *L, int idx, const char *key, lua_Number dflt)
{
    lua_Number n = dflt;
    if (lua_getfield(L, idx, key) == LUA_TNUMBER)
        n = lua_tonumber(L, -1);
    lua_pop(L, 1);
    return n;
}

/* The column's format (number format, wrapped text), made once per column. */
static lxw_format *xlsx_column_format(lua_State *L, struct xlsx_build *b, int col_idx)
{
    lxw_format *f = NULL;
    if (lua_getfield(L, col_idx, "number_format") == LUA_TSTRING) {
        f = workbook_add_format(b->wb);
        format_set_num_format(f, lua_tostring(L, -1));
    }
    lua_pop(L, 1);
    if (lua_getfield(L, col_idx, "wrap") == LUA_TBOOLEAN && lua_toboolean(L, -1)) {
        if (!f)
            f = workbook_add_format(b->wb);
        format_set_text_wrap(f);
        format_set_align(f, LXW_ALIGN_VERTICAL_TOP);
    }
    lua_pop(L, 1);
    return f;
}

/* Header row and column widths; fills FORMATS; returns the column count. */
static int xlsx_columns(lua_State *L, struct xlsx_build *b, lxw_worksheet *ws, int sheet_idx,
                        lxw_format **formats)
{
    if (lua_getfield(L, sheet_idx, "columns") != LUA_TTABLE)
        luaL_error(L, "o2c.xlsx.workbook: each sheet needs columns = {{title = ...}, ...}");
    int cols = lua_gettop(L);
    int n = (int)luaL_len(L, cols);
    if (n < 1 || n > XLSX_MAX_COLUMNS)
        luaL_error(L, "o2c.xlsx.workbook: a sheet has 1 to %d columns", XLSX_MAX_COLUMNS);
    for (int c = 0; c < n; c++) {
        if (lua_geti(L, cols, c + 1) != LUA_TTABLE)
            luaL_error(L, "o2c.xlsx.workbook: columns[%d] must be a table", c + 1);
        int col = lua_gettop(L);
        lua_getfield(L, col, "title");
        const char *title = luaL_optstring(L, -1, "");
        worksheet_write_string(ws, 0, (lxw_col_t)c, title, b->header);
        lua_pop(L, 1);
        formats[c] = xlsx_column_format(L, b, col);
        worksheet_set_column(ws, (lxw_col_t)c, (lxw_col_t)c, xlsx_opt_number(L, col, "width", 14),
                             formats[c]);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    worksheet_freeze_panes(ws, 1, 0);
    return n;
}

static int xlsx_cell(lua_State *L, struct xlsx_build *b, lxw_worksheet *ws, lxw_row_t r,
                     lxw_col_t c, lxw_format *f)
{
    lxw_error err = LXW_NO_ERROR;
    switch (lua_type(L, -1)) {
    case LUA_TNUMBER:
        err = worksheet_write_number(ws, r, c, lua_tonumber(L, -1), f);
        break;
    case LUA_TSTRING:
        err = worksheet_write_string(ws, r, c, lua_tostring(L, -1), f);
        break;
    case LUA_TBOOLEAN:
        err = worksheet_write_boolean(ws, r, c, lua_toboolean(L, -1), f);
        break;
    default:
        break; /* empty */
    }
    if (err != LXW_NO_ERROR) {
        char where[64];
        snprintf(where, sizeof where, "row %u, column %u", (unsigned)r + 1, (unsigned)c + 1);
        return xlsx_fail(b, "%s: %s", where, err);
    }
    return 0;
}

static int xlsx_rows(lua_State *L, struct xlsx_build *b, lxw_worksheet *ws, int sheet_idx,
                     int ncols, lxw_format **formats)
{
    int type = lua_getfield(L, sheet_idx, "rows");
    if (type != LUA_TTABLE && type != LUA_TNIL)
        luaL_error(L, "o2c.xlsx.workbook: rows must be a list of lists");
    int rows = lua_gettop(L);
    lua_Integer n = type == LUA_TTABLE ? luaL_len(L, rows) : 0;
    if (n > LXW_ROW_MAX - 1)
        luaL_error(L, "o2c.xlsx.workbook: too many rows");
    for (lua_Integer r = 1; r <= n; r++) {
        if (lua_geti(L, rows, r) != LUA_TTABLE)
            luaL_error(L, "o2c.xlsx.workbook: rows[%I] must be a list", r);
        for (int c = 0; c < ncols; c++) {
            lua_geti(L, -1, c + 1);
            int rc = xlsx_cell(L, b, ws, (lxw_row_t)r, (lxw_col_t)c, formats[c]);
            lua_pop(L, 1);
            if (rc != 0)
                return -1;
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    worksheet_autofilter(ws, 0, 0, (lxw_row_t)n, (lxw_col_t)(ncols - 1));
    return 0;
}

static int xlsx_sheets(lua_State *L, struct xlsx_build *b)
{
    if (lua_getfield(L, 1, "sheets") != LUA_TTABLE)
        luaL_error(L, "o2c.xlsx.workbook: sheets = {{name =, columns =, rows =}, ...} is required");
    int sheets = lua_gettop(L);
    lua_Integer n = luaL_len(L, sheets);
    if (n < 1)
        luaL_error(L, "o2c.xlsx.workbook: at least one sheet");
    for (lua_Integer i = 1; i <= n; i++) {
        if (lua_geti(L, sheets, i) != LUA_TTABLE)
            luaL_error(L, "o2c.xlsx.workbook: sheets[%I] must be a table", i);
        int sheet = lua_gettop(L);
        lua_getfield(L, sheet, "name");
        const char *name = luaL_optstring(L, -1, NULL);
        lxw_error name_err = name ? workbook_validate_sheet_name(b->wb, name) : LXW_NO_ERROR;
        if (name_err != LXW_NO_ERROR)
            return xlsx_fail(b, "sheet name '%s': %s", name, name_err);
        lxw_worksheet *ws = workbook_add_worksheet(b->wb, name);
        lua_pop(L, 1);
        if (!ws)
            return xlsx_fail(b, "%s: %s", "cannot add a sheet", LXW_ERROR_MEMORY_MALLOC_FAILED);
        lxw_format *formats[XLSX_MAX_COLUMNS];
        int ncols = xlsx_columns(L, b, ws, sheet, formats);
        if (xlsx_rows(L, b, ws, sheet, ncols, formats) != 0)
            return -1;
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    return 0;
}

/* (table, build) -> 0 or -1: the sheets, under lua_pcall. */
static int xlsx_sheets_protected(lua_State *L)
{
    struct xlsx_build *b = lua_touserdata(L, 2);
    lua_settop(L, 1);
    lua_pushinteger(L, xlsx_sheets(L, b));
    return 1;
}

/* Reads PATH whole onto L's stack; 0 or -1 with the reason in B. */
static int xlsx_push_file(lua_State *L, struct xlsx_build *b, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(b->error, sizeof b->error, "cannot read the workbook back: %s", strerror(errno));
        return -1;
    }
    luaL_Buffer buf;
    luaL_buffinit(L, &buf);
    char chunk[16384];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        luaL_addlstring(&buf, chunk, n);
    int failed = ferror(f);
    fclose(f);
    luaL_pushresult(&buf);
    if (failed) {
        lua_pop(L, 1);
        snprintf(b->error, sizeof b->error, "cannot read the workbook back");
        return -1;
    }
    return 0;
}

static int xlsx_workbook(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    char path[512];
    snprintf(path, sizeof path, "%s/o2c-xlsx-XXXXXX", tmp);
    int fd = mkstemp(path);
    if (fd < 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot make a temporary file in %s: %s", tmp, strerror(errno));
        return 2;
    }
    close(fd);
    struct xlsx_build b = {0};
    lxw_workbook_options opts = {.tmpdir = (char *)tmp};
    b.wb = workbook_new_opt(path, &opts);
    if (!b.wb) {
        unlink(path);
        return luaL_error(L, "o2c.xlsx.workbook: out of memory");
    }
    b.header = workbook_add_format(b.wb);
    format_set_bold(b.header);
    format_set_bottom(b.header, LXW_BORDER_THIN);
    format_set_bg_color(b.header, 0xF3F4F6);
    lxw_doc_properties props = {0};
    if (lua_getfield(L, 1, "title") == LUA_TSTRING)
        props.title = (char *)lua_tostring(L, -1);
    workbook_set_properties(b.wb, &props); /* copied: TITLE may go after this */
    lua_pop(L, 1);

    /* Misuse raises inside: caught here so the workbook and its file go first. */
    lua_pushcfunction(L, xlsx_sheets_protected);
    lua_pushvalue(L, 1);
    lua_pushlightuserdata(L, &b);
    int status = lua_pcall(L, 2, 1, 0);
    int built = status == LUA_OK ? (int)lua_tointeger(L, -1) : -1;
    if (status == LUA_OK)
        lua_pop(L, 1);
    lxw_error closed = workbook_close(b.wb);
    if (status != LUA_OK) {
        unlink(path);
        return lua_error(L);
    }
    if (built == 0 && closed != LXW_NO_ERROR)
        built = xlsx_fail(&b, "%s: %s", "cannot write the workbook", closed);
    if (built == 0)
        built = xlsx_push_file(L, &b, path);
    unlink(path);
    if (built != 0) {
        lua_pushnil(L);
        lua_pushstring(L, b.error);
        return 2;
    }
    return 1;
}

int luaopen_o2c_xlsx(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"workbook", xlsx_workbook}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
