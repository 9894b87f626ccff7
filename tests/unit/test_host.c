/* The Lua host: tasks on coroutines with o2c.timer.sleep, cancellation,
 * errors that end at the task, and the loop closing with no handle open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "app/app.h"
#include "host/lua_host.h"
#include "host/sandbox.h"
#include "host/task.h"

struct fixture {
    uv_loop_t loop;
    lua_State *L;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->L = app_vm_open(&f->loop, 64u << 20);
    assert_non_null(f->L);
    *state = f;
    return 0;
}

static void count_open(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        (*(int *)arg)++;
}

static int open_handles(uv_loop_t *loop)
{
    int n = 0;
    uv_walk(loop, count_open, &n);
    return n;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    task_cancel_all();
    host_close(f->L);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(open_handles(&f->loop), 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

static void run_lua(lua_State *L, const char *code)
{
    if (luaL_loadstring(L, code) != LUA_OK || host_pcall(L, 0, 0) != LUA_OK)
        fail_msg("lua: %s", lua_tostring(L, -1));
}

static lua_Integer global_int(lua_State *L, const char *name)
{
    lua_getglobal(L, name);
    lua_Integer v = lua_tointeger(L, -1);
    lua_pop(L, 1);
    return v;
}

static void test_sleeping_tasks_resume_in_deadline_order(void **state)
{
    struct fixture *f = *state;
    /* 500 tasks with distinct delays, spawned in a scrambled order. */
    run_lua(f->L, "local timer, task = require 'o2c.timer', require 'o2c.task'\n"
                  "order = {}\n"
                  "for i = 1, 500 do\n"
                  "  local d = (i * 7919) % 500\n"
                  "  task.spawn(function() timer.sleep(d); order[#order + 1] = d end)\n"
                  "end\n"
                  "spawned = task.count()");
    assert_int_equal(global_int(f->L, "spawned"), 500);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    run_lua(f->L, "sorted = 1; for i = 2, #order do if order[i] < order[i-1] then sorted = 0 end "
                  "end; n = #order");
    assert_int_equal(global_int(f->L, "n"), 500);
    assert_int_equal(global_int(f->L, "sorted"), 1);
    assert_int_equal(task_count(), 0);
}

static void test_cancelled_task_leaves_no_timer(void **state)
{
    struct fixture *f = *state;
    run_lua(f->L,
            "local timer, task = require 'o2c.timer', require 'o2c.task'\n"
            "closed, finished = 0, 0\n"
            "victim = task.spawn(function()\n"
            "  local guard <close> = setmetatable({}, {__close = function() closed = 1 end})\n"
            "  timer.sleep(60000); finished = 1\n"
            "end)");
    assert_int_equal(task_count(), 1);
    assert_int_equal(open_handles(&f->loop), 1); /* the 60 s timer */
    run_lua(f->L, "assert(victim:alive()); assert(victim:cancel()); assert(not victim:alive())");
    assert_int_equal(task_count(), 0);
    assert_int_equal(open_handles(&f->loop), 0);
    uint64_t t0 = uv_hrtime();
    uv_run(&f->loop, UV_RUN_DEFAULT); /* returns at once: nothing left to wait for */
    assert_true(uv_hrtime() - t0 < 5000000000u);
    assert_int_equal(global_int(f->L, "closed"), 1);
    assert_int_equal(global_int(f->L, "finished"), 0);
}

static char exit_error[4096];
static int exit_status = -1;

static void record_exit(struct task *t, lua_State *co, int status, int nres, const char *error,
                        void *ud)
{
    (void)t;
    (void)co;
    (void)nres;
    (void)ud;
    exit_status = status;
    snprintf(exit_error, sizeof exit_error, "%s", error ? error : "");
}

static void test_error_ends_at_the_task(void **state)
{
    struct fixture *f = *state;
    run_lua(f->L, "local timer, task = require 'o2c.timer', require 'o2c.task'\n"
                  "others = 0\n"
                  "for i = 1, 10 do task.spawn(function() timer.sleep(5); others = others + 1 end) "
                  "end");
    assert_int_equal(luaL_loadstring(f->L, "local timer = require 'o2c.timer'\n"
                                           "return function() timer.sleep(1)\n"
                                           "  local x = nil; return x.field end"),
                     LUA_OK);
    lua_call(f->L, 0, 1);
    assert_non_null(task_spawn(f->L, 0, record_exit, NULL));
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(exit_status, LUA_ERRRUN);
    assert_non_null(strstr(exit_error, "attempt to index a nil value"));
    assert_non_null(strstr(exit_error, "stack traceback"));
    assert_int_equal(global_int(f->L, "others"), 10);
}

static void test_yield_outside_task_is_an_error(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(luaL_loadstring(f->L, "require('o2c.timer').sleep(1)"), LUA_OK);
    assert_int_not_equal(host_pcall(f->L, 0, 0), LUA_OK);
    assert_non_null(strstr(lua_tostring(f->L, -1), "must run in a task"));
    lua_pop(f->L, 1);
    /* A bare coroutine.yield in a task is refused rather than hanging. */
    assert_int_equal(luaL_loadstring(f->L, "return function() coroutine.yield() end"), LUA_OK);
    lua_call(f->L, 0, 1);
    exit_status = -1;
    task_spawn(f->L, 0, record_exit, NULL);
    assert_int_equal(exit_status, LUA_ERRRUN);
    assert_non_null(strstr(exit_error, "yielded without waiting"));
}

/* A C function in the product VM that runs a runaway script in a sandbox. */
static int lua_run_runaway(lua_State *L)
{
    struct sandbox_limits limits = {8u << 20, 2000000, 0};
    struct sandbox *sb = sandbox_new(&limits);
    const char *code = luaL_checkstring(L, 1);
    sandbox_load(sb, code, strlen(code), "runaway.lua");
    int status = sandbox_pcall(sb, 0, 0);
    lua_pushboolean(L, status == LUA_OK);
    lua_pushstring(L, lua_tostring(sandbox_state(sb), -1));
    sandbox_free(sb);
    return 2;
}

static void test_runaway_script_stopped_while_tasks_go_on(void **state)
{
    struct fixture *f = *state;
    lua_register(f->L, "run_runaway", lua_run_runaway);
    run_lua(f->L,
            "local timer, task = require 'o2c.timer', require 'o2c.task'\n"
            "done = 0\n"
            "for i = 1, 20 do task.spawn(function() timer.sleep(i); done = done + 1 end) end\n"
            "task.spawn(function()\n"
            "  timer.sleep(3)\n"
            "  local ok, msg = run_runaway('while true do pcall(function() "
            "while true do end end) end')\n"
            "  runaway_ok, runaway_msg = ok, msg\n"
            "end)");
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(global_int(f->L, "done"), 20);
    lua_getglobal(f->L, "runaway_msg");
    const char *msg = lua_tostring(f->L, -1);
    assert_non_null(msg);
    assert_non_null(strstr(msg, "runaway.lua:1: instruction budget exceeded"));
    lua_pop(f->L, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sleeping_tasks_resume_in_deadline_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_task_leaves_no_timer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_ends_at_the_task, setup, teardown),
        cmocka_unit_test_setup_teardown(test_yield_outside_task_is_an_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_runaway_script_stopped_while_tasks_go_on, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
