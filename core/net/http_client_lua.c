/* o2c.http: the HTTP client for Lua tasks (the cosocket model).
 *
 *   local res, err, code = o2c.http.request{
 *       method = "POST", url = "https://...", headers = {["content-type"] = "..."},
 *       body = "...", timeout_ms = 60000, connect_timeout_ms = 5000,
 *       low_speed_limit = 1, low_speed_time = 30,   -- bytes/s over seconds
 *   }
 *   -- res = {status = 200, headers = {["retry-after"] = "2", ...}, body = "..."}
 *   -- or nil, "POST https://...: Connection refused", "connect"
 *   --   code: "timeout" | "connect" | "too_large" | "error"
 *
 * The calling task yields until the transfer ends; an HTTP error status is
 * still a response (res.status = 429), only transport failures return nil.
 * Misuse (no url, bad header name, not inside a task) raises.  When the task
 * dies first, the host calls the wait's done(cancelled=1), which aborts the
 * transfer: nothing resumes a dead task. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <lauxlib.h>
#include <lua.h>
#include "host/task.h"
#include "net/http_client_lua.h"

static const char http_lua_client_key = 'c';

/* One request in flight.  Owned by the task's wait: freed by its done(). */
struct http_lua_call {
    struct task *task;
    struct http_transfer *xfer; /* NULL once the transfer ended */
    enum http_client_error error;
    char *message;
    long status;
    char *body;
    size_t body_len;
    char *headers; /* "name\0value\0" pairs, names lowercased */
    size_t nheaders;
};

void http_client_lua_attach(lua_State *L, struct http_client *client)
{
    if (client)
        lua_pushlightuserdata(L, client);
    else
        lua_pushnil(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &http_lua_client_key);
}

static struct http_client *http_lua_client(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &http_lua_client_key);
    struct http_client *client = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return client;
}

static void http_lua_call_free(struct http_lua_call *call)
{
    free(call->message);
    free(call->body);
    free(call->headers);
    free(call);
}

/* Copies what the task will see out of RES (valid only during this call). */
static void http_lua_keep_response(struct http_lua_call *call, struct http_response *res)
{
    size_t size = 0;
    for (size_t i = 0; i < res->nheaders; i++)
        size += strlen(res->headers[i].name) + strlen(res->headers[i].value) + 2;
    call->headers = malloc(size ? size : 1);
    if (!call->headers) {
        call->error = HTTP_CLIENT_ERR_OTHER;
        call->message = strdup("out of memory copying response headers");
        return;
    }
    char *p = call->headers;
    for (size_t i = 0; i < res->nheaders; i++) {
        for (const char *n = res->headers[i].name; *n; n++)
            *p++ = (char)tolower((unsigned char)*n);
        *p++ = '\0';
        size_t vlen = strlen(res->headers[i].value) + 1;
        memcpy(p, res->headers[i].value, vlen);
        p += vlen;
    }
    call->nheaders = res->nheaders;
    call->status = res->status;
    call->body = http_response_take_body(res, &call->body_len);
}

/* http_client done callback: runs from the loop, then resumes the task. */
static void http_lua_on_done(struct http_transfer *xfer, struct http_response *res, void *ud)
{
    struct http_lua_call *call = ud;
    (void)xfer;
    call->xfer = NULL;
    call->error = res->error;
    if (res->error == HTTP_CLIENT_OK)
        http_lua_keep_response(call, res);
    else
        call->message = strdup(res->message);
    task_wake(call->task);
}

static const char *http_lua_error_code(enum http_client_error error)
{
    switch (error) {
    case HTTP_CLIENT_ERR_CONNECT:
    case HTTP_CLIENT_ERR_TIMEOUT:
    case HTTP_CLIENT_ERR_TOO_LARGE:
        return http_client_error_name(error);
    default:
        return "error";
    }
}

/* task_wait push: CO gets `res` or `nil, message, code`. */
static int http_lua_push(lua_State *co, void *data)
{
    struct http_lua_call *call = data;
    luaL_checkstack(co, 6, "o2c.http");
    if (call->error != HTTP_CLIENT_OK) {
        lua_pushnil(co);
        lua_pushstring(co, call->message ? call->message : "HTTP request failed");
        lua_pushstring(co, http_lua_error_code(call->error));
        return 3;
    }
    lua_createtable(co, 0, 3);
    lua_pushinteger(co, (lua_Integer)call->status);
    lua_setfield(co, -2, "status");
    lua_createtable(co, 0, (int)call->nheaders);
    const char *p = call->headers;
    for (size_t i = 0; i < call->nheaders; i++) {
        const char *name = p, *value = p + strlen(p) + 1;
        p = value + strlen(value) + 1;
        /* Stack: res, headers.  A repeated header joins as "a, b". */
        if (lua_getfield(co, -1, name) == LUA_TSTRING)
            lua_pushfstring(co, "%s, %s", lua_tostring(co, -1), value);
        else
            lua_pushstring(co, value);
        lua_setfield(co, -3, name);
        lua_pop(co, 1);
    }
    lua_setfield(co, -2, "headers");
    lua_pushlstring(co, call->body ? call->body : "", call->body_len);
    lua_setfield(co, -2, "body");
    return 1;
}

/* task_wait done: the task resumed (CANCELLED=0) or died (1: abort). */
static void http_lua_wait_done(void *data, int cancelled)
{
    struct http_lua_call *call = data;
    if (cancelled && call->xfer)
        http_client_cancel(call->xfer);
    http_lua_call_free(call);
}

static long http_lua_opt_ms(lua_State *L, int req, const char *key)
{
    long value = 0;
    int type = lua_getfield(L, req, key);
    if (type != LUA_TNIL) {
        int isnum = 0;
        lua_Integer n = lua_tointegerx(L, -1, &isnum);
        if (!isnum || n < 0 || n > 86400000)
            luaL_error(L, "o2c.http.request: %s must be an integer from 0 to 86400000 (got %s)",
                       key, luaL_tolstring(L, -1, NULL));
        value = (long)n;
    }
    lua_pop(L, 1);
    return value;
}

static const char *http_lua_opt_string(lua_State *L, int req, const char *key, size_t *len)
{
    int type = lua_getfield(L, req, key);
    const char *s = NULL;
    if (type == LUA_TSTRING)
        s = lua_tolstring(L, -1, len);
    else if (type != LUA_TNIL)
        luaL_error(L, "o2c.http.request: %s must be a string (got %s)", key, luaL_typename(L, -1));
    lua_pop(L, 1); /* the string stays alive: the table at REQ holds it */
    return s;
}

/* Whether NAME is one of the N EXTRA headers (which then replace it). */
static int http_lua_is_extra(const char *name, const struct http_header *extra, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcasecmp(name, extra[i].name) == 0)
            return 1;
    return 0;
}

/* Reads the headers table of the request at REQ_IDX into REQ, then EXTRA
 * (N of them) after it.  Header strings stay anchored by the table; numbers
 * are converted into strings kept on the stack. */
static void http_lua_read_headers(lua_State *L, int req_idx, struct http_client_request *req,
                                  const struct http_header *extra, size_t n_extra)
{
    int type = lua_getfield(L, req_idx, "headers");
    luaL_argcheck(L, type == LUA_TNIL || type == LUA_TTABLE, req_idx,
                  "headers must be a table of name = value");
    int table = lua_gettop(L);
    size_t n = n_extra;
    if (type == LUA_TTABLE)
        for (lua_pushnil(L); lua_next(L, table); lua_pop(L, 1))
            n++;
    struct http_header *headers = lua_newuserdatauv(L, n * sizeof *headers + 1, 0);
    size_t i = 0;
    if (type == LUA_TTABLE)
        lua_pushnil(L);
    while (type == LUA_TTABLE && lua_next(L, table)) {
        /* Stack: ..., headers table, array, key, value */
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "o2c.http.request: header names must be strings");
        int vt = lua_type(L, -1);
        if (vt != LUA_TSTRING && vt != LUA_TNUMBER)
            luaL_error(L, "o2c.http.request: header %s must be a string (got %s)",
                       lua_tostring(L, -2), luaL_typename(L, -1));
        if (http_lua_is_extra(lua_tostring(L, -2), extra, n_extra)) {
            lua_pop(L, 1);
            continue;
        }
        headers[i].name = lua_tostring(L, -2);
        if (vt == LUA_TSTRING) {
            headers[i].value = lua_tostring(L, -1);
            lua_pop(L, 1);
        } else {
            /* Keep the converted string on the stack, below the key that
             * lua_next needs on top: ..., key, value -> ..., str, key */
            luaL_checkstack(L, 2, "o2c.http.request: too many headers");
            luaL_tolstring(L, -1, NULL);
            lua_replace(L, -2);
            lua_insert(L, -2);
            headers[i].value = lua_tostring(L, -2);
        }
        i++;
    }
    for (size_t k = 0; k < n_extra; k++)
        headers[i++] = extra[k];
    req->headers = headers;
    req->nheaders = i;
}

int http_client_lua_request_with(lua_State *L, int req_idx, const struct http_header *extra,
                                 size_t n_extra)
{
    req_idx = lua_absindex(L, req_idx);
    luaL_checktype(L, req_idx, LUA_TTABLE);
    struct http_client *client = http_lua_client(L);
    if (!client)
        return luaL_error(L, "o2c.http.request: no HTTP client (host has not attached one)");
    struct task *task = task_from_state(L);
    if (!task)
        return luaL_error(L, "o2c.http.request: must be called from a task");

    struct http_client_request req = {0};
    req.url = http_lua_opt_string(L, req_idx, "url", NULL);
    if (!req.url)
        return luaL_error(L, "o2c.http.request: url is required");
    req.method = http_lua_opt_string(L, req_idx, "method", NULL);
    req.body = http_lua_opt_string(L, req_idx, "body", &req.body_len);
    req.timeout_ms = http_lua_opt_ms(L, req_idx, "timeout_ms");
    req.connect_timeout_ms = http_lua_opt_ms(L, req_idx, "connect_timeout_ms");
    req.low_speed_limit = http_lua_opt_ms(L, req_idx, "low_speed_limit");
    req.low_speed_time_s = http_lua_opt_ms(L, req_idx, "low_speed_time");
    http_lua_read_headers(L, req_idx, &req, extra, n_extra);

    struct http_lua_call *call = calloc(1, sizeof *call);
    if (!call)
        return luaL_error(L, "o2c.http.request: out of memory");
    call->task = task;
    call->xfer = http_client_request(client, &req, http_lua_on_done, call);
    if (!call->xfer) {
        free(call);
        if (!http_client_is_closing(client))
            return luaL_error(L, "o2c.http.request: %s", http_client_last_error(client));
        lua_pushnil(L);
        lua_pushstring(L, http_client_last_error(client));
        lua_pushstring(L, "error");
        return 3;
    }
    struct task_wait wait = {http_lua_push, http_lua_wait_done, call};
    return task_yield(L, &wait);
}

static int http_lua_request(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    return http_client_lua_request_with(L, 1, NULL, 0);
}

/* o2c.http.stats() -> {started=, finished=, failed=, cancelled=, active=,
 * connections_opened=, connections_reused=} */
static int http_lua_stats(lua_State *L)
{
    struct http_client *client = http_lua_client(L);
    struct http_client_stats s = {0};
    if (client)
        http_client_get_stats(client, &s);
    lua_createtable(L, 0, 7);
    const struct {
        const char *name;
        uint64_t value;
    } fields[] = {
        {"started", s.started},
        {"finished", s.finished},
        {"failed", s.failed},
        {"cancelled", s.cancelled},
        {"active", s.active},
        {"connections_opened", s.connections_opened},
        {"connections_reused", s.connections_reused},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        lua_pushinteger(L, (lua_Integer)fields[i].value);
        lua_setfield(L, -2, fields[i].name);
    }
    return 1;
}

int luaopen_o2c_http(lua_State *L)
{
    static const luaL_Reg functions[] = {
        {"request", http_lua_request},
        {"stats", http_lua_stats},
        {NULL, NULL},
    };
    luaL_newlib(L, functions);
    return 1;
}
