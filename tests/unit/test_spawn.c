/* The child-process runner (core/host/spawn.c) with real programs from
 * coreutils: output captured, input fed, files in the working folder, the
 * time limit and the output limit kill the child, a missing program is
 * reported before anything starts; and o2c.spawn.run from a Lua task,
 * including a task cancelled while its child runs.  Every test ends with
 * no libuv handle left open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>
#include "app/app.h"
#include "host/lua_host.h"
#include "host/spawn.h"
#include "host/task.h"

struct outcome {
    int calls;
    enum spawn_status status;
    int64_t exit_code;
    char *out;
    size_t out_len;
    char err[1024];
    char message[512];
};

static uv_loop_t loop;

static int setup(void **state)
{
    (void)state;
    assert_int_equal(uv_loop_init(&loop), 0);
    return 0;
}

static void count_open(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        (*(int *)arg)++;
}

static int teardown(void **state)
{
    (void)state;
    uv_run(&loop, UV_RUN_DEFAULT);
    int open = 0;
    uv_walk(&loop, count_open, &open);
    assert_int_equal(open, 0);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

static void on_done(struct spawn_job *job, struct spawn_result *res, void *ud)
{
    struct outcome *o = ud;
    (void)job;
    o->calls++;
    o->status = res->status;
    o->exit_code = res->exit_code;
    o->out = res->out; /* taken */
    o->out_len = res->out_len;
    res->out = NULL;
    snprintf(o->err, sizeof o->err, "%s", res->err ? res->err : "");
    snprintf(o->message, sizeof o->message, "%s", res->message);
}

/* Runs REQ to its end on the loop. */
static void run(const struct spawn_request *req, struct outcome *o)
{
    memset(o, 0, sizeof *o);
    struct spawn_result now;
    struct spawn_job *job = spawn_start(&loop, req, on_done, o, &now);
    if (!job) {
        o->status = now.status;
        snprintf(o->message, sizeof o->message, "%s", now.message);
        return;
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(o->calls, 1);
}

static void test_output_captured_from_input(void **state)
{
    (void)state;
    const char *input = "line one\nline two\n";
    struct spawn_request req = {.program = "cat", .input = input, .input_len = strlen(input)};
    struct outcome o;
    run(&req, &o);
    assert_int_equal(o.status, SPAWN_EXITED);
    assert_int_equal(o.exit_code, 0);
    assert_int_equal(o.out_len, strlen(input));
    assert_memory_equal(o.out, input, o.out_len);
    free(o.out);
}

static void test_large_input_and_output(void **state)
{
    (void)state;
    /* More than a pipe holds (64 KiB) both ways. */
    size_t n = 3u << 20;
    char *input = malloc(n);
    for (size_t i = 0; i < n; i++)
        input[i] = (char)('a' + i % 26);
    struct spawn_request req = {.program = "cat", .input = input, .input_len = n};
    struct outcome o;
    run(&req, &o);
    assert_int_equal(o.status, SPAWN_EXITED);
    assert_int_equal(o.out_len, n);
    assert_memory_equal(o.out, input, n);
    free(o.out);
    free(input);
}

static void test_exit_code_and_stderr(void **state)
{
    (void)state;
    const char *args[] = {"/no/such/file", NULL};
    struct spawn_request req = {.program = "cat", .args = args};
    struct outcome o;
    run(&req, &o);
    assert_int_equal(o.status, SPAWN_EXITED);
    assert_int_equal(o.exit_code, 1);
    assert_non_null(strstr(o.err, "/no/such/file"));
    free(o.out);
}

static void test_files_in_the_working_folder(void **state)
{
    (void)state;
    const char *args[] = {"chart.txt", NULL};
    struct spawn_file files[] = {{"chart.txt", "from a file", 11}};
    struct spawn_request req = {.program = "cat", .args = args, .files = files, .nfiles = 1};
    struct outcome o;
    run(&req, &o);
    assert_int_equal(o.status, SPAWN_EXITED);
    assert_int_equal(o.exit_code, 0);
    assert_int_equal(o.out_len, 11);
    assert_memory_equal(o.out, "from a file", 11);
    free(o.out);

    /* The folder is the child's cwd and HOME, and it is gone afterwards. */
    const char *pwd_args[] = {"-c", "pwd; echo $HOME; env | wc -l", NULL};
    struct spawn_request req2 = {.program = "sh", .args = pwd_args};
    run(&req2, &o);
    assert_int_equal(o.status, SPAWN_EXITED);
    char dir[512] = "", home[512] = "";
    int env_lines = 0;
    assert_int_equal(sscanf(o.out, "%511s %511s %d", dir, home, &env_lines), 3);
    assert_string_equal(dir, home);
    assert_non_null(strstr(dir, "o2c-spawn-"));
    assert_true(env_lines <= 6); /* PATH HOME TMPDIR LANG, plus what sh sets (PWD, ...) */
    struct stat st;
    assert_int_not_equal(stat(dir, &st), 0);
    free(o.out);
}

static void test_time_limit_kills(void **state)
{
    (void)state;
    const char *args[] = {"30", NULL};
    struct spawn_request req = {.program = "sleep", .args = args, .timeout_ms = 200};
    struct outcome o;
    run(&req, &o);
    assert_int_equal(o.status, SPAWN_TIMEOUT);
    assert_non_null(strstr(o.message, "time limit"));
    free(o.out);
}

static void test_time_limit_kills_the_group(void **state)
{
    (void)state;
    /* The shell's child keeps stdout open after the shell is gone. */
    const char *args[] = {"-c", "sleep 30 & exit 0", NULL};
    struct spawn_request req = {.program = "sh", .args = args, .timeout_ms = 300};
    struct outcome o;
    run(&req, &o);
    assert_int_equal(o.status, SPAWN_TIMEOUT);
    free(o.out);
}

static void test_size_limit_stops(void **state)
{
    (void)state;
    struct spawn_request req = {.program = "yes", .max_output = 100000, .timeout_ms = 30000};
    struct outcome o;
    run(&req, &o);
    assert_int_equal(o.status, SPAWN_TOO_LARGE);
    assert_true(o.out_len <= 100000);
    assert_non_null(strstr(o.message, "100000 bytes"));
    free(o.out);
}

static void test_missing_program_reported(void **state)
{
    (void)state;
    struct spawn_request req = {.program = "o2c-no-such-program"};
    struct outcome o;
    run(&req, &o);
    assert_int_equal(o.status, SPAWN_NOT_FOUND);
    assert_string_equal(spawn_status_name(o.status), "not_found");
    assert_non_null(strstr(o.message, "o2c-no-such-program is not installed"));
    char path[256];
    assert_int_equal(spawn_find_program("o2c-no-such-program", path, sizeof path), -1);
    assert_int_equal(spawn_find_program("sh", path, sizeof path), 0);
}

static void test_only_bare_names(void **state)
{
    (void)state;
    struct spawn_request req = {.program = "/bin/sh"};
    struct outcome o;
    run(&req, &o);
    assert_int_equal(o.status, SPAWN_ERROR);
    assert_non_null(strstr(o.message, "not a program name"));
    struct spawn_file files[] = {{"../escape", "x", 1}};
    struct spawn_request req2 = {.program = "cat", .files = files, .nfiles = 1};
    run(&req2, &o);
    assert_int_equal(o.status, SPAWN_ERROR);
    assert_non_null(strstr(o.message, "plain name"));
}

/* ------------------------------------------------------------------------ */
/* o2c.spawn from Lua tasks */

struct lua_outcome {
    int done;
    int status;
    char text[1024];
};

static void on_task_exit(struct task *t, lua_State *co, int status, int nres, const char *error,
                         void *ud)
{
    struct lua_outcome *o = ud;
    (void)t;
    o->done++;
    o->status = status;
    if (status != LUA_OK)
        snprintf(o->text, sizeof o->text, "%s", error ? error : "?");
    else if (nres > 0 && lua_type(co, -nres) == LUA_TSTRING)
        snprintf(o->text, sizeof o->text, "%s", lua_tostring(co, -nres));
}

static struct task *lua_task(lua_State *L, const char *code, struct lua_outcome *o)
{
    memset(o, 0, sizeof *o);
    if (luaL_loadstring(L, code) != LUA_OK)
        fail_msg("lua: %s", lua_tostring(L, -1));
    return task_spawn(L, 0, on_task_exit, o);
}

static void test_lua_run(void **state)
{
    (void)state;
    lua_State *L = app_vm_open(&loop, 64u << 20);
    assert_non_null(L);
    struct lua_outcome o;
    lua_task(L,
             "local spawn = require 'o2c.spawn'\n"
             "local res = assert(spawn.run{program = 'cat', args = {'-'}, input = 'hi'})\n"
             "local none, msg, code = spawn.run{program = 'o2c-no-such-program'}\n"
             "local slow, tmsg, tcode = spawn.run{program = 'sleep', args = {'30'}, "
             "timeout_ms = 100}\n"
             "assert(spawn.find('sh') and not spawn.find('o2c-no-such-program'))\n"
             "return table.concat({res.exit_code, res.stdout, tostring(none), msg, code, "
             "tostring(slow), tcode}, '|')",
             &o);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(o.done, 1);
    assert_int_equal(o.status, LUA_OK);
    assert_string_equal(o.text, "0|hi|nil|o2c-no-such-program is not installed (not found in "
                                "PATH)|not_found|nil|timeout");
    host_close(L);
}

static void test_lua_cancelled_task_kills_the_child(void **state)
{
    (void)state;
    lua_State *L = app_vm_open(&loop, 64u << 20);
    struct lua_outcome o;
    struct task *t = lua_task(L, "require('o2c.spawn').run{program = 'sleep', args = {'30'}}", &o);
    assert_non_null(t);
    uv_run(&loop, UV_RUN_NOWAIT);
    task_cancel(t);
    /* Runs until the killed child is reaped and every handle closed. */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(o.done, 1);
    assert_int_not_equal(o.status, LUA_OK);
    host_close(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_output_captured_from_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_large_input_and_output, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exit_code_and_stderr, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files_in_the_working_folder, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_limit_kills, setup, teardown),
        cmocka_unit_test_setup_teardown(test_time_limit_kills_the_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limit_stops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_program_reported, setup, teardown),
        cmocka_unit_test_setup_teardown(test_only_bare_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lua_cancelled_task_kills_the_child, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
