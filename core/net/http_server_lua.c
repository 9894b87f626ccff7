/* The HTTP server's Lua side: every complete request becomes a task running
 * `require("server").handle(req)` in the product VM, with REQ a userdata
 * over struct http_request.
 *
 * Ownership: the userdata is anchored in the registry while its task runs;
 * when the task ends (returned, raised, or cancelled) the request is
 * released, answering 500 first if the handler never responded. */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include "host/log.h"
#include "host/lua_host.h"
#include "host/task.h"
#include "net/http_server_lua.h"

#define REQUEST_MT "o2c.request"
#define HEADERS_MAX 64

struct lua_request {
    struct http_request *req; /* NULL once released */
    struct task *task;
    int anchor; /* registry ref keeping this userdata alive while the task runs */
    int responded;
    int cancel_on_close;
    lua_State *L;
};

static struct lua_request *check_request(lua_State *L)
{
    struct lua_request *lr = luaL_checkudata(L, 1, REQUEST_MT);
    if (!lr->req)
        luaL_error(L, "this request is finished");
    return lr;
}

static int req_method(lua_State *L)
{
    lua_pushstring(L, http_request_method(check_request(L)->req));
    return 1;
}

static int req_path(lua_State *L)
{
    lua_pushstring(L, http_request_path(check_request(L)->req));
    return 1;
}

static int req_query(lua_State *L)
{
    const char *q = http_request_query(check_request(L)->req);
    if (q)
        lua_pushstring(L, q);
    else
        lua_pushnil(L);
    return 1;
}

static int req_header(lua_State *L)
{
    struct lua_request *lr = check_request(L);
    const char *v = http_request_header(lr->req, luaL_checkstring(L, 2));
    if (v)
        lua_pushstring(L, v);
    else
        lua_pushnil(L);
    return 1;
}

static int req_body(lua_State *L)
{
    size_t len;
    const char *body = http_request_body(check_request(L)->req, &len);
    lua_pushlstring(L, body, len);
    return 1;
}

static int req_remote(lua_State *L)
{
    lua_pushstring(L, http_request_remote(check_request(L)->req));
    return 1;
}

static int req_id(lua_State *L)
{
    lua_pushstring(L, http_request_id(check_request(L)->req));
    return 1;
}

static int req_closed(lua_State *L)
{
    struct lua_request *lr = luaL_checkudata(L, 1, REQUEST_MT);
    lua_pushboolean(L, !lr->req || http_request_closed(lr->req));
    return 1;
}

static int req_set_route(lua_State *L)
{
    http_request_set_route(check_request(L)->req, luaL_checkstring(L, 2));
    return 0;
}

static int req_cancel_on_close(lua_State *L)
{
    check_request(L)->cancel_on_close = lua_toboolean(L, 2);
    return 0;
}

/* Reads the {name = value} table at IDX into HEADERS; a value may also be a
 * list of strings (several Set-Cookie lines).  The strings stay referenced
 * by the table on the Lua stack, so they live until the call returns. */
static size_t read_headers(lua_State *L, int idx, struct http_header *headers)
{
    size_t n = 0;
    if (lua_isnoneornil(L, idx))
        return 0;
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "response header names must be strings");
        const char *name = lua_tostring(L, -2);
        if (lua_type(L, -1) == LUA_TTABLE) {
            lua_Integer count = luaL_len(L, -1);
            for (lua_Integer i = 1; i <= count; i++) {
                if (n == HEADERS_MAX)
                    luaL_error(L, "more than %d response headers", HEADERS_MAX);
                lua_rawgeti(L, -1, i);
                if (lua_type(L, -1) != LUA_TSTRING)
                    luaL_error(L, "response header %s: values must be strings", name);
                headers[n].name = name;
                headers[n].value = lua_tostring(L, -1);
                lua_pop(L, 1); /* still referenced by the list */
                n++;
            }
        } else if (lua_type(L, -1) == LUA_TSTRING) {
            if (n == HEADERS_MAX)
                luaL_error(L, "more than %d response headers", HEADERS_MAX);
            headers[n].name = name;
            headers[n].value = lua_tostring(L, -1);
            n++;
        } else {
            luaL_error(L, "response header %s: value must be a string or a list", name);
        }
        lua_pop(L, 1);
    }
    return n;
}

static int push_result(lua_State *L, int rc)
{
    if (rc == HTTP_OK) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_pushstring(L, rc == HTTP_ERR_CLOSED  ? "closed"
                      : rc == HTTP_ERR_SLOW  ? "slow client dropped"
                      : rc == HTTP_ERR_NOMEM ? "out of memory"
                                             : "already responded");
    return 2;
}

/* req:respond(status, headers, body) */
static int req_respond(lua_State *L)
{
    struct lua_request *lr = check_request(L);
    int status = (int)luaL_checkinteger(L, 2);
    struct http_header headers[HEADERS_MAX];
    size_t n = read_headers(L, 3, headers);
    size_t len = 0;
    const char *body = luaL_optlstring(L, 4, "", &len);
    lr->responded = 1;
    return push_result(L, http_respond(lr->req, status, headers, n, body, len));
}

static int req_stream_begin(lua_State *L)
{
    struct lua_request *lr = check_request(L);
    int status = (int)luaL_checkinteger(L, 2);
    struct http_header headers[HEADERS_MAX];
    size_t n = read_headers(L, 3, headers);
    lr->responded = 1;
    return push_result(L, http_stream_begin(lr->req, status, headers, n));
}

static int req_stream_write(lua_State *L)
{
    struct lua_request *lr = check_request(L);
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    return push_result(L, http_stream_write(lr->req, data, len));
}

static int req_stream_end(lua_State *L)
{
    return push_result(L, http_stream_end(check_request(L)->req));
}

static void request_on_close(struct http_request *req, void *ud)
{
    (void)req;
    struct lua_request *lr = ud;
    if (lr->cancel_on_close && lr->task)
        task_cancel(lr->task); /* on_exit releases the request */
}

static void request_finish(struct lua_request *lr)
{
    if (!lr->req)
        return;
    http_request_on_close(lr->req, NULL, NULL);
    http_request_release(lr->req);
    lr->req = NULL;
}

static void respond_internal_error(struct lua_request *lr)
{
    lua_State *L = lr->L;
    const char *id = http_request_id(lr->req);
    lua_createtable(L, 0, 1);
    lua_createtable(L, 0, 3);
    lua_pushliteral(L, "internal");
    lua_setfield(L, -2, "code");
    lua_pushliteral(L, "internal error: the server logged the details under this request id");
    lua_setfield(L, -2, "message");
    lua_createtable(L, 0, 1);
    lua_pushstring(L, id);
    lua_setfield(L, -2, "request_id");
    lua_setfield(L, -2, "details");
    lua_setfield(L, -2, "error");
    host_json_encode(L, -1);
    size_t len;
    const char *body = lua_tolstring(L, -1, &len);
    struct http_header h[] = {{"Content-Type", "application/json"}, {"Cache-Control", "no-store"}};
    http_respond(lr->req, 500, h, 2, body, len);
    lua_pop(L, 1);
}

static void request_task_exit(struct task *t, lua_State *co, int status, int nres,
                              const char *error, void *ud)
{
    (void)t;
    (void)co;
    (void)nres;
    struct lua_request *lr = ud;
    lr->task = NULL;
    if (status != LUA_OK && lr->req) {
        int cancelled = error && strcmp(error, "cancelled") == 0;
        if (!cancelled)
            log_msg(LOG_ERROR, "request failed", "request_id", http_request_id(lr->req), "path",
                    http_request_path(lr->req), "error", error, NULL);
        if (!lr->responded && !http_request_closed(lr->req))
            respond_internal_error(lr);
    }
    request_finish(lr);
    luaL_unref(lr->L, LUA_REGISTRYINDEX, lr->anchor);
}

void http_lua_handle(struct http_request *req, void *ud)
{
    struct http_lua_server *hs = ud;
    lua_State *L = hs->L;
    lua_rawgeti(L, LUA_REGISTRYINDEX, hs->handler_ref);
    struct lua_request *lr = lua_newuserdatauv(L, sizeof *lr, 0);
    memset(lr, 0, sizeof *lr);
    lr->req = req;
    lr->L = L;
    luaL_setmetatable(L, REQUEST_MT);
    lua_pushvalue(L, -1);
    lr->anchor = luaL_ref(L, LUA_REGISTRYINDEX);
    http_request_on_close(req, request_on_close, lr);
    lr->task = task_spawn(L, 1, request_task_exit, lr);
    if (lr->task)
        task_set_label(lr->task, http_request_id(req));
}

static int req_tostring(lua_State *L)
{
    struct lua_request *lr = luaL_checkudata(L, 1, REQUEST_MT);
    if (lr->req)
        lua_pushfstring(L, "request %s %s", http_request_method(lr->req),
                        http_request_path(lr->req));
    else
        lua_pushliteral(L, "request (finished)");
    return 1;
}

void http_lua_register(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"method", req_method},
        {"path", req_path},
        {"query", req_query},
        {"header", req_header},
        {"body", req_body},
        {"remote", req_remote},
        {"id", req_id},
        {"closed", req_closed},
        {"set_route", req_set_route},
        {"cancel_on_close", req_cancel_on_close},
        {"respond", req_respond},
        {"stream_begin", req_stream_begin},
        {"stream_write", req_stream_write},
        {"stream_end", req_stream_end},
        {NULL, NULL},
    };
    luaL_newmetatable(L, REQUEST_MT);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, req_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
}

/* o2c.server: stats() of the server serve runs (for /metrics and status). */
static struct http_server *lua_server;

void http_lua_set_server(struct http_server *srv)
{
    lua_server = srv;
}

static int server_stats(lua_State *L)
{
    struct http_server_stats st;
    memset(&st, 0, sizeof st);
    if (lua_server)
        http_server_get_stats(lua_server, &st);
    lua_createtable(L, 0, 7);
    lua_pushinteger(L, (lua_Integer)st.connections_open);
    lua_setfield(L, -2, "connections_open");
    lua_pushinteger(L, (lua_Integer)st.connections_total);
    lua_setfield(L, -2, "connections_total");
    lua_pushinteger(L, (lua_Integer)st.connections_rejected);
    lua_setfield(L, -2, "connections_rejected");
    lua_pushinteger(L, (lua_Integer)st.connections_rejected_address);
    lua_setfield(L, -2, "connections_rejected_address");
    lua_pushinteger(L, (lua_Integer)st.requests_total);
    lua_setfield(L, -2, "requests_total");
    lua_pushinteger(L, (lua_Integer)st.requests_active);
    lua_setfield(L, -2, "requests_active");
    lua_pushinteger(L, (lua_Integer)st.timeouts);
    lua_setfield(L, -2, "timeouts");
    return 1;
}

int luaopen_o2c_server(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"stats", server_stats}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
