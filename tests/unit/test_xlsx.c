/* o2c.xlsx (core/host/xlsx_lua.c): a workbook from Lua tables comes back as
 * .xlsx bytes (a ZIP: "PK"); an invalid sheet name is an answer (nil and a
 * message), misuse raises; neither leaves a temporary file behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "app/app.h"
#include "host/lua_host.h"

static uv_loop_t loop;
static lua_State *L;
static char tmpdir[] = "/tmp/o2c-test-xlsx-XXXXXX";

static int setup(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(tmpdir));
    setenv("TMPDIR", tmpdir, 1);
    assert_int_equal(uv_loop_init(&loop), 0);
    L = app_vm_open(&loop, 64u << 20);
    assert_non_null(L);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    host_close(L);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    rmdir(tmpdir);
    return 0;
}

static int files_left(void)
{
    DIR *d = opendir(tmpdir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* Runs CODE; its first result as a string ("" if none). */
static const char *run(const char *code, int *status)
{
    lua_settop(L, 0);
    *status = luaL_loadstring(L, code);
    if (*status == LUA_OK)
        *status = lua_pcall(L, 0, 1, 0);
    return lua_isstring(L, -1) ? lua_tostring(L, -1) : "";
}

static void test_workbook_bytes(void **state)
{
    (void)state;
    int status;
    const char *out = run("local x = require 'o2c.xlsx'\n"
                          "local b = assert(x.workbook{title = 'T', sheets = {\n"
                          "  {name = 'Areas', columns = {{title = 'Area', width = 30},\n"
                          "     {title = 'Score', number_format = '0.00'}},\n"
                          "   rows = {{'Billing', 3.31}, {'Credit', nil}, {'Cash', 2}}},\n"
                          "  {name = 'Empty', columns = {{title = 'A'}}}}})\n"
                          "return b:sub(1, 2) .. #b",
                          &status);
    assert_int_equal(status, LUA_OK);
    assert_memory_equal(out, "PK", 2);
    assert_true(atoi(out + 2) > 1000);
    assert_int_equal(files_left(), 0);
}

static void test_bad_sheet_name_answers(void **state)
{
    (void)state;
    int status;
    const char *out = run("local b, err = require('o2c.xlsx').workbook{sheets = {\n"
                          "  {name = 'a/b', columns = {{title = 'A'}}}}}\n"
                          "return tostring(b) .. ': ' .. err",
                          &status);
    assert_int_equal(status, LUA_OK);
    assert_non_null(strstr(out, "nil: sheet name 'a/b'"));
    assert_int_equal(files_left(), 0);
}

static void test_misuse_raises_and_cleans_up(void **state)
{
    (void)state;
    int status;
    const char *out = run("return require('o2c.xlsx').workbook{sheets = {{name = 'S'}}}", &status);
    assert_int_not_equal(status, LUA_OK);
    assert_non_null(strstr(out, "needs columns"));
    out = run("return require('o2c.xlsx').workbook{sheets = {{columns = {{title = 'A'}},\n"
              "  rows = {'not a list'}}}}",
              &status);
    assert_int_not_equal(status, LUA_OK);
    assert_non_null(strstr(out, "rows[1] must be a list"));
    assert_int_equal(files_left(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_workbook_bytes),
        cmocka_unit_test(test_bad_sheet_name_answers),
        cmocka_unit_test(test_misuse_raises_and_cleans_up),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
