/* o2c.markdown: to_html(text [, {heading_offset = 0..5}]) -> html, or nil
 * and the reason (a text over MARKDOWN_MAX_INPUT).  GitHub-flavoured Markdown, safe mode: see
 * host/markdown.h.  o2c.markdown.max_input is that limit in bytes. */
#include <lauxlib.h>
#include <stdlib.h>
#include "host/markdown.h"
#include "host/modules.h"

#define HTML_BOX "o2c.markdown.html"

/* The rendered HTML lives in a box whose __gc frees it, so that a memory
 * error while Lua copies it cannot leak it. */
static int html_box_gc(lua_State *L)
{
    char **box = luaL_checkudata(L, 1, HTML_BOX);
    free(*box);
    *box = NULL;
    return 0;
}

static int markdown_lua_to_html(lua_State *L)
{
    size_t len, html_len;
    const char *text = luaL_checklstring(L, 1, &len);
    int offset = 0;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "heading_offset");
        offset = (int)luaL_optinteger(L, -1, 0);
        luaL_argcheck(L, offset >= 0 && offset <= 5, 2, "heading_offset must be 0 to 5");
        lua_pop(L, 1);
    }
    char **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    luaL_setmetatable(L, HTML_BOX);
    char err[160];
    *box = markdown_to_html(text, len, offset, &html_len, err, sizeof err);
    if (!*box) {
        luaL_pushfail(L);
        lua_pushstring(L, err);
        return 2;
    }
    lua_pushlstring(L, *box, html_len);
    free(*box);
    *box = NULL;
    return 1;
}

int luaopen_o2c_markdown(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"to_html", markdown_lua_to_html}, {NULL, NULL}};
    if (luaL_newmetatable(L, HTML_BOX)) {
        lua_pushcfunction(L, html_box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    lua_pushinteger(L, MARKDOWN_MAX_INPUT);
    lua_setfield(L, -2, "max_input");
    return 1;
}
