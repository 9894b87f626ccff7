/* o2c.http: the HTTP client's Lua binding (http_client_lua.c).  The host
 * creates the client and attaches it to the product VM (before or after
 * opening the module).  The VM must never hold a freed client: close the VM
 * first, or attach NULL at the latest from the client's close callback.
 * luaopen_o2c_http leaves the module table on the stack. */
#ifndef O2C_NET_HTTP_CLIENT_LUA_H
#define O2C_NET_HTTP_CLIENT_LUA_H
#include <lua.h>
#include "net/http_client.h"

int luaopen_o2c_http(lua_State *L);
void http_client_lua_attach(lua_State *L, struct http_client *client);

/* What o2c.http.request(req) does for the request table at REQ_IDX (same
 * checks, same yield, same results: `return http_client_lua_request_with(...)`
 * from a C function running in a task), with the N EXTRA headers sent too,
 * replacing any of the same name in req.headers.  They never enter a Lua
 * value, so a secret can be sent without Lua code seeing it; they are copied
 * before this returns. */
int http_client_lua_request_with(lua_State *L, int req_idx, const struct http_header *extra,
                                 size_t n);

#endif
