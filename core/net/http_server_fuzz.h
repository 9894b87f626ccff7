/* Entry points for driving the HTTP server without TCP (tests/fuzz/fuzz_http.c).
 *
 * The fuzzer feeds the bytes of one connection through the server's real
 * accept, read, llhttp, limit, dispatch and response paths; only the
 * transport differs: connections come from a listening AF_UNIX socket the
 * caller owns (no ports, no TIME_WAIT, a few microseconds per connection).
 * Everything here runs on the loop thread. */
#ifndef O2C_NET_HTTP_SERVER_FUZZ_H
#define O2C_NET_HTTP_SERVER_FUZZ_H
#include <uv.h>
#include "net/http_server.h"

/* Serves the connections accepted from LISTEN_FD, a bound stream socket of
 * any family (e.g. AF_UNIX), instead of http_server_listen().  The server
 * owns the descriptor from then on (http_server_shutdown closes it).
 * Accepted connections go through http_conn_accept like TCP ones,
 * max_connections included; the overflow policy of the TCP listener (cheap
 * 503s, then immediate closes) is not applied.  Returns 0 or a negative libuv
 * error. */
int http_server_fuzz_listen(struct http_server *srv, uv_os_sock_t listen_fd);

/* 1 when the server has done everything it can with the bytes it was sent:
 * every connection either waits for more input (nothing buffered, nothing
 * unread in the kernel, no request with the handler, no write pending) or
 * lingers after its last response with its writes done.  0 while anything
 * is still to be read, handled or written. */
int http_server_fuzz_settled(const struct http_server *srv);

#endif
