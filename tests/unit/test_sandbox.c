/* The scripts' sandbox: budgets that pcall cannot swallow, a memory budget
 * that fails the script and not the process, and an environment without
 * io, os.execute, debug, package or binary chunks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include "host/sandbox.h"

static struct sandbox *sb_new(size_t memory, uint64_t instructions, uint32_t ms)
{
    struct sandbox_limits limits = {memory, instructions, ms};
    struct sandbox *sb = sandbox_new(&limits);
    assert_non_null(sb);
    return sb;
}

/* Runs CODE (chunk "test.lua"); returns the status, message or first result on top. */
static int sb_run(struct sandbox *sb, const char *code)
{
    lua_settop(sandbox_state(sb), 0);
    if (sandbox_load(sb, code, strlen(code), "test.lua") != LUA_OK)
        return LUA_ERRSYNTAX;
    return sandbox_pcall(sb, 0, 1);
}

static const char *top(struct sandbox *sb)
{
    const char *s = lua_tostring(sandbox_state(sb), -1);
    return s ? s : "(not a string)";
}

static void test_runaway_inside_pcall_is_stopped(void **state)
{
    (void)state;
    struct sandbox *sb = sb_new(16u << 20, 1000000, 0);
    assert_int_equal(sb_run(sb, "local n = 0\n"
                                "while true do\n"
                                "  pcall(function() while true do n = n + 1 end end)\n"
                                "end"),
                     LUA_ERRRUN);
    assert_non_null(strstr(top(sb), "instruction budget exceeded"));
    assert_non_null(strstr(top(sb), "test.lua:"));
    assert_int_equal(sandbox_last_kill(sb), SANDBOX_KILLED_INSTRUCTIONS);
    /* The state stays usable, with a fresh budget. */
    assert_int_equal(sb_run(sb, "return 40 + 2"), LUA_OK);
    assert_int_equal(lua_tointeger(sandbox_state(sb), -1), 42);
    sandbox_free(sb);
}

static int sb_run_timed(struct sandbox *sb, const char *code)
{
    lua_settop(sandbox_state(sb), 0);
    if (sandbox_load(sb, code, strlen(code), "test.lua") != LUA_OK)
        return LUA_ERRSYNTAX;
    return sandbox_pcall_timed(sb, 0, 1);
}

/* The timer-armed deadline: a loop that pcall and an error handler try to
 * keep alive is stopped at the time limit, named by line; the next call
 * runs normally (no hook left armed), also after many quick calls whose
 * timers never fired. */
static void test_timed_call_stops_a_runaway_at_the_deadline(void **state)
{
    (void)state;
    struct sandbox *sb = sb_new(16u << 20, 1000, 100); /* instructions do not apply */
    assert_int_equal(sb_run_timed(sb, "local n = 0\n"
                                      "for i = 1, 100000 do n = n + i end\n"
                                      "return n"),
                     LUA_OK);
    assert_int_equal(lua_tointeger(sandbox_state(sb), -1), 5000050000);
    assert_int_equal(sb_run_timed(sb, "while true do\n"
                                      "  xpcall(function() while true do end end,\n"
                                      "         function(e) while true do end end)\n"
                                      "end"),
                     LUA_ERRRUN);
    assert_int_equal(sandbox_last_kill(sb), SANDBOX_KILLED_TIME);
    assert_non_null(strstr(top(sb), "time limit exceeded (100 ms)"));
    assert_non_null(strstr(top(sb), "test.lua:"));
    for (int i = 0; i < 1000; i++)
        assert_int_equal(sb_run_timed(sb, "return 40 + 2"), LUA_OK);
    assert_int_equal(lua_tointeger(sandbox_state(sb), -1), 42);
    assert_int_equal(sandbox_last_kill(sb), SANDBOX_ALIVE);
    sandbox_free(sb);
}

static void test_error_handler_cannot_swallow_the_kill(void **state)
{
    (void)state;
    struct sandbox *sb = sb_new(16u << 20, 0, 50);
    assert_int_equal(sb_run(sb, "while true do\n"
                                "  xpcall(function() while true do end end,\n"
                                "         function(e) while true do end end)\n"
                                "end"),
                     LUA_ERRRUN);
    assert_int_equal(sandbox_last_kill(sb), SANDBOX_KILLED_TIME);
    assert_non_null(strstr(top(sb), "time limit exceeded"));
    /* xpcall still works as scripts expect. */
    assert_int_equal(sb_run(sb, "local ok, v = xpcall(function(a) error('x' .. a, 0) end, "
                                "function(e) return 'handled ' .. e end, 1)\n"
                                "local ok2, a, b = xpcall(function() return 1, 2 end, print)\n"
                                "return tostring(ok) .. v .. tostring(ok2) .. a .. b"),
                     LUA_OK);
    assert_string_equal(top(sb), "falsehandled x1true12");
    /* Finalizers run with hooks off: scripts cannot set one. */
    assert_int_equal(sb_run(sb, "setmetatable({}, {__gc = function() while true do end end})"),
                     LUA_ERRRUN);
    assert_non_null(strstr(top(sb), "__gc metamethods are not allowed"));
    sandbox_free(sb);
}

static void test_memory_bomb_fails_the_script_not_the_process(void **state)
{
    (void)state;
    struct sandbox *sb = sb_new(8u << 20, 0, 0);
    assert_int_equal(sb_run(sb, "local t = {}\n"
                                "local ok = pcall(function()\n"
                                "  while true do t[#t + 1] = string.rep('x', 4096) .. #t end\n"
                                "end)\n"
                                "return #t"),
                     LUA_ERRRUN);
    assert_int_equal(sandbox_last_kill(sb), SANDBOX_KILLED_MEMORY);
    assert_non_null(strstr(top(sb), "memory budget exceeded"));
    assert_true(sandbox_memory_used(sb) < (8u << 20));
    assert_int_equal(sb_run(sb, "return #string.rep('y', 1000)"), LUA_OK);
    assert_int_equal(lua_tointeger(sandbox_state(sb), -1), 1000);
    /* One huge allocation is refused the same way. */
    assert_int_not_equal(sb_run(sb, "return string.rep('z', 64 * 1024 * 1024)"), LUA_OK);
    assert_non_null(strstr(top(sb), "memory budget exceeded"));
    sandbox_free(sb);
}

static void test_dangerous_globals_are_absent(void **state)
{
    (void)state;
    struct sandbox *sb = sb_new(16u << 20, 1000000, 1000);
    static const char *const absent[] = {
        "io",        "debug",       "package",        "require",   "dofile",
        "loadfile",  "os.execute",  "os.exit",        "os.getenv", "os.remove",
        "os.rename", "string.dump", "collectgarbage", "coroutine", "loadstring",
        NULL};
    for (const char *const *name = absent; *name; name++) {
        char code[128];
        snprintf(code, sizeof code, "return %s == nil", *name);
        assert_int_equal(sb_run(sb, code), LUA_OK);
        if (!lua_toboolean(sandbox_state(sb), -1))
            fail_msg("%s is reachable from a script", *name);
    }
    assert_int_equal(sb_run(sb, "return type(os.time()) == 'number' and type(os.date('%Y')) == "
                                "'string' and type(os.clock()) == 'number' and math.pi > 3 and "
                                "utf8.char(72) == 'H' and table.concat({'a','b'}) == 'ab'"),
                     LUA_OK);
    assert_true(lua_toboolean(sandbox_state(sb), -1));
    /* Scripts cannot change string methods for the loader. */
    assert_int_equal(sb_run(sb, "return getmetatable('')"), LUA_OK);
    assert_string_equal(top(sb), "string");
    sandbox_free(sb);
}

static void test_load_is_text_only_with_an_explicit_env(void **state)
{
    (void)state;
    struct sandbox *sb = sb_new(16u << 20, 1000000, 1000);
    assert_int_equal(sb_run(sb, "local f, err = load('\\27LuaT\\0\\25\\147', 'x', 'b', {})\n"
                                "return err"),
                     LUA_OK);
    assert_non_null(strstr(top(sb), "binary"));
    assert_int_equal(sb_run(sb, "return load('return 1')"), LUA_ERRRUN);
    assert_non_null(strstr(top(sb), "bad argument #4 to 'load'"));
    assert_int_equal(sb_run(sb, "local env = {x = 5}\n"
                                "return load('return x', '=inner', 't', env)()"),
                     LUA_OK);
    assert_int_equal(lua_tointeger(sandbox_state(sb), -1), 5);
    /* A binary chunk given to the host loader is refused too. */
    const char binary[] = "\x1bLuaT\x00";
    assert_int_not_equal(sandbox_load(sb, binary, sizeof binary - 1, "bin.lua"), LUA_OK);
    sandbox_free(sb);
}

static void test_copy_value_refuses_functions_and_cycles(void **state)
{
    (void)state;
    struct sandbox *a = sb_new(16u << 20, 1000000, 1000);
    struct sandbox *b = sb_new(16u << 20, 1000000, 1000);
    lua_State *la = sandbox_state(a), *lb = sandbox_state(b);
    assert_int_equal(sb_run(a, "return {x = 1, y = {'a', 'b', n = 2.5}, z = true}"), LUA_OK);
    assert_int_equal(sandbox_copy_value(la, -1, lb), 0);
    lua_getfield(lb, -1, "y");
    lua_getfield(lb, -1, "n");
    assert_true(lua_tonumber(lb, -1) == 2.5);
    lua_settop(lb, 0);
    assert_int_equal(sb_run(a, "return {f = function() end}"), LUA_OK);
    assert_int_equal(sandbox_copy_value(la, -1, lb), -1);
    assert_non_null(strstr(lua_tostring(lb, -1), "cannot copy a function"));
    lua_settop(lb, 0);
    assert_int_equal(sb_run(a, "local t = {}; t.self = t; return t"), LUA_OK);
    assert_int_equal(sandbox_copy_value(la, -1, lb), -1);
    assert_non_null(strstr(lua_tostring(lb, -1), "nested too deeply"));
    assert_int_equal(lua_gettop(lb), 1);
    sandbox_free(a);
    sandbox_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_runaway_inside_pcall_is_stopped),
        cmocka_unit_test(test_error_handler_cannot_swallow_the_kill),
        cmocka_unit_test(test_timed_call_stops_a_runaway_at_the_deadline),
        cmocka_unit_test(test_memory_bomb_fails_the_script_not_the_process),
        cmocka_unit_test(test_dangerous_globals_are_absent),
        cmocka_unit_test(test_load_is_text_only_with_an_explicit_env),
        cmocka_unit_test(test_copy_value_refuses_functions_and_cycles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
