/* o2c.http from Lua tasks, against the same loopback server as the C tests
 * (test_http_client.c, included for its server and fixture).  Each test runs
 * a Lua chunk in a task of a real product VM (host_open) and checks how the
 * task ended; teardown checks that no libuv handle is left. */
#define HTTP_CLIENT_TEST_SERVER_ONLY
#include "test_http_client.c"

#include <lauxlib.h>
#include <lua.h>
#include "host/lua_host.h"
#include "host/task.h"
#include "net/http_client_lua.h"

struct outcome {
    int done;
    int status;
    char text[2048];
};

static lua_State *L;

static void on_task_exit(struct task *t, lua_State *co, int status, int nres, const char *error,
                         void *ud)
{
    struct outcome *o = ud;
    (void)t;
    o->done++;
    o->status = status;
    if (status != LUA_OK)
        snprintf(o->text, sizeof o->text, "%s", error ? error : "?");
    else if (nres > 0 && lua_type(co, -nres) == LUA_TSTRING)
        snprintf(o->text, sizeof o->text, "%s", lua_tostring(co, -nres));
    else
        snprintf(o->text, sizeof o->text, "(no string result)");
}

static void on_lua_client_closed(struct http_client *client, void *ud)
{
    (void)client;
    (void)ud;
    /* The VM must never hold a freed client. */
    http_client_lua_attach(L, NULL);
    fx->client_closed = 1;
}

static int lua_setup(void **state)
{
    setup(state);
    /* A small body cap so "too_large" is cheap to provoke. */
    struct http_client_config config = {.max_response_bytes = 1000};
    http_client_close(fx->client, NULL, NULL);
    fx->client = new_client(&config);
    L = host_open(&fx->loop, 0, NULL);
    assert_non_null(L);
    host_preload(L, "o2c.http", luaopen_o2c_http);
    http_client_lua_attach(L, fx->client);
    return 0;
}

static int lua_teardown(void **state)
{
    task_cancel_all();
    host_close(L);
    L = NULL;
    return teardown(state);
}

/* Spawns a task running CHUNK with (base URL, refused URL) as arguments. */
static struct task *spawn(const char *chunk, struct outcome *o)
{
    char base[64], refused[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", fx->srv.port);
    snprintf(refused, sizeof refused, "http://127.0.0.1:%d/nothing", unused_port());
    assert_int_equal(luaL_loadstring(L, chunk), LUA_OK);
    lua_pushstring(L, base);
    lua_pushstring(L, refused);
    return task_spawn(L, 2, on_task_exit, o);
}

static void run_chunk(const char *chunk, const char *expect)
{
    struct outcome o = {0};
    spawn(chunk, &o);
    run_until(&o.done, 1);
    if (o.status != LUA_OK || strcmp(o.text, expect) != 0)
        fail_msg("task ended with status %d: %s", o.status, o.text);
}

static void test_lua_request_returns_response(void **state)
{
    (void)state;
    run_chunk("local base = ...\n"
              "local http = require('o2c.http')\n"
              "local res, err = http.request{method = 'POST', url = base .. '/echo',\n"
              "  headers = {['X-Test'] = 'lua', ['Content-Type'] = 'text/plain'},\n"
              "  body = 'pay\\0load', timeout_ms = 5000, connect_timeout_ms = 1000}\n"
              "assert(res, err)\n"
              "assert(res.status == 200, res.status)\n"
              "assert(res.headers['x-echo-method'] == 'POST')\n"
              "assert(res.headers['x-echo-test'] == 'lua')\n"
              "assert(res.headers['retry-after'] == '7')\n"
              "assert(res.headers['anthropic-ratelimit-requests-remaining'] == '42')\n"
              "assert(res.headers['x-dup'] == 'a, b', res.headers['x-dup'])\n"
              "assert(res.body == 'pay\\0load')\n"
              "local r2 = http.request{url = base .. '/status/429', headers = {['X-Test'] = 5}}\n"
              "assert(r2.status == 429 and r2.body == 'status')\n"
              "assert(r2.headers['retry-after-ms'] == '1500')\n"
              "local r3 = http.request{url = base .. '/echo', headers = {['X-Test'] = 5}}\n"
              "assert(r3.headers['x-echo-test'] == '5' and r3.headers['x-echo-method'] == 'GET')\n"
              "local s = http.stats()\n"
              "assert(s.finished == 3 and s.active == 0, s.finished)\n"
              "return 'ok'\n",
              "ok");
}

static void test_lua_failures_return_nil_message_code(void **state)
{
    (void)state;
    run_chunk("local base, refused = ...\n"
              "local http = require('o2c.http')\n"
              "local res, err, code = http.request{url = refused}\n"
              "assert(res == nil and code == 'connect', tostring(code))\n"
              "assert(err:find('GET http://127.0.0.1:', 1, true), err)\n"
              "res, err, code = http.request{url = base .. '/stall', timeout_ms = 200}\n"
              "assert(res == nil and code == 'timeout', tostring(code))\n"
              "res, err, code = http.request{url = base .. '/big/5000'}\n"
              "assert(res == nil and code == 'too_large', tostring(code))\n"
              "res, err, code = http.request{url = base .. '/drop'}\n"
              "assert(res == nil and code == 'connect', tostring(code))\n"
              "return 'ok'\n",
              "ok");
}

static void test_lua_misuse_raises(void **state)
{
    (void)state;
    run_chunk(
        "local base = ...\n"
        "local http = require('o2c.http')\n"
        "local function fails(req, pattern)\n"
        "  local ok, err = pcall(http.request, req)\n"
        "  assert(not ok and err:find(pattern, 1, true), tostring(err))\n"
        "end\n"
        "fails({}, 'url is required')\n"
        "fails({url = 'ftp://x/'}, 'http:// or https://')\n"
        "fails({url = base, timeout_ms = 'soon'}, 'timeout_ms must be an integer')\n"
        "fails({url = base, headers = {['Bad Name'] = 'x'}}, 'invalid header name')\n"
        "fails({url = base, headers = {X = 'a\\r\\nY: b'}}, 'CR or LF')\n"
        "fails({url = base, headers = {X = {}}}, 'header X must be a string')\n"
        "-- a nested coroutine is not the task: it cannot wait\n"
        "local co = coroutine.wrap(function() return http.request{url = base .. '/echo'} end)\n"
        "local ok, err = pcall(co)\n"
        "assert(not ok and err:find('must be called from a task', 1, true), tostring(err))\n"
        "return 'ok'\n",
        "ok");
    /* Outside any task (top level of the VM). */
    char chunk[128];
    snprintf(chunk, sizeof chunk,
             "return require('o2c.http').request{url = 'http://127.0.0.1:%d/echo'}", fx->srv.port);
    assert_int_equal(luaL_loadstring(L, chunk), LUA_OK);
    assert_int_not_equal(host_pcall(L, 0, 0), LUA_OK);
    assert_non_null(strstr(lua_tostring(L, -1), "must be called from a task"));
    lua_pop(L, 1);
    struct http_client_stats s;
    http_client_get_stats(fx->client, &s);
    assert_int_equal(s.started, 0);
}

static void test_lua_parallel_tasks(void **state)
{
    (void)state;
    enum { N = 12 };
    struct outcome o[N];
    memset(o, 0, sizeof o);
    for (int i = 0; i < N; i++) {
        char chunk[512];
        snprintf(chunk, sizeof chunk,
                 "local base = ...\n"
                 "local res = require('o2c.http').request{url = base .. '/echo',\n"
                 "  headers = {['X-Test'] = 'task%d'}}\n"
                 "return res.headers['x-echo-test']\n",
                 i);
        spawn(chunk, &o[i]);
    }
    for (int i = 0; i < N; i++) {
        run_until(&o[i].done, 1);
        char want[16];
        snprintf(want, sizeof want, "task%d", i);
        assert_int_equal(o[i].status, LUA_OK);
        assert_string_equal(o[i].text, want);
    }
    assert_true(fx->srv.accepted <= HTTP_CLIENT_DEFAULT_MAX_HOST_CONNECTIONS);
}

static void test_lua_cancelled_task_aborts_transfer(void **state)
{
    (void)state;
    struct outcome o = {0};
    struct task *t = spawn("local base = ...\n"
                           "require('o2c.http').request{url = base .. '/stall'}\n"
                           "return 'resumed'\n",
                           &o);
    assert_non_null(t);
    run_until(&fx->srv.stalled, 1);
    task_cancel(t);
    assert_int_equal(o.done, 1);
    assert_string_equal(o.text, "cancelled");
    struct http_client_stats s;
    http_client_get_stats(fx->client, &s);
    assert_int_equal(s.cancelled, 1);
    assert_int_equal(s.active, 0);
    /* The transfer is gone: the server sees its connection close. */
    run_until_server_idle();
    assert_int_equal(o.done, 1);
}

static void test_lua_client_closed_while_waiting(void **state)
{
    (void)state;
    struct outcome o = {0};
    spawn("local base = ...\n"
          "local http = require('o2c.http')\n"
          "local res, err, code = http.request{url = base .. '/stall'}\n"
          "assert(res == nil and code == 'error', tostring(code))\n"
          "-- the client is closing: a new request fails without waiting\n"
          "local res2, err2, code2 = http.request{url = base .. '/echo'}\n"
          "assert(res2 == nil and code2 == 'error' and err2:find('closed'), tostring(err2))\n"
          "return err\n",
          &o);
    run_until(&fx->srv.stalled, 1);
    http_client_close(fx->client, on_lua_client_closed, NULL);
    assert_int_equal(o.done, 1);
    if (o.status != LUA_OK)
        fail_msg("%s", o.text);
    assert_non_null(strstr(o.text, "HTTP client closed"));
    run_until(&fx->client_closed, 1);
    /* Detached: requests now raise instead of touching a freed client. */
    run_chunk("local base = ...\n"
              "local ok, err = pcall(require('o2c.http').request, {url = base})\n"
              "assert(not ok and err:find('no HTTP client', 1, true), err)\n"
              "return 'ok'\n",
              "ok");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lua_request_returns_response, lua_setup, lua_teardown),
        cmocka_unit_test_setup_teardown(test_lua_failures_return_nil_message_code, lua_setup,
                                        lua_teardown),
        cmocka_unit_test_setup_teardown(test_lua_misuse_raises, lua_setup, lua_teardown),
        cmocka_unit_test_setup_teardown(test_lua_parallel_tasks, lua_setup, lua_teardown),
        cmocka_unit_test_setup_teardown(test_lua_cancelled_task_aborts_transfer, lua_setup,
                                        lua_teardown),
        cmocka_unit_test_setup_teardown(test_lua_client_closed_while_waiting, lua_setup,
                                        lua_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
