/* Glue between the HTTP server and the product VM (see http_server_lua.c). */
#ifndef O2C_NET_HTTP_SERVER_LUA_H
#define O2C_NET_HTTP_SERVER_LUA_H
#include <lua.h>
#include "net/http_server.h"

struct http_lua_server {
    lua_State *L;
    int handler_ref; /* registry ref to function(req) */
    void *user;      /* the embedding command's context */
};

/* Registers the request metatable in L. */
void http_lua_register(lua_State *L);

/* The server whose stats o2c.server reports. */
void http_lua_set_server(struct http_server *srv);
int luaopen_o2c_server(lua_State *L);

/* http_handler_fn: runs the handler in a new task (UD: struct http_lua_server). */
void http_lua_handle(struct http_request *req, void *ud);

#endif
