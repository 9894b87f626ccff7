/* HTTP/1.1 server on uv_tcp + llhttp, engine-neutral (no Lua in it).
 *
 * One connection parses one request at a time: when a request is complete
 * the parser is paused and the handler is called; the next (pipelined)
 * request is parsed only after the previous response has been written, so
 * responses always leave in request order and a connection holds at most one
 * request plus one small read buffer.
 *
 * Threading: everything here runs on the loop thread.  Every callback the
 * server makes (handler, body_limit, access_log, on_close, shutdown done) runs
 * from a libuv callback, never from inside a call the handler side made into
 * this API (http_respond, http_stream_*, http_request_release,
 * http_server_shutdown): the handler side may call any of those from any of
 * its callbacks without re-entrancy surprises.
 *
 * Request ownership: two owners, each holding one reference.
 *   - the handler side gets one with the handler call and gives it back with
 *     http_request_release() exactly once, when it no longer needs the object
 *     (after responding, or after hearing that the client is gone);
 *   - the connection holds one until the response is completely written or
 *     the connection dies.
 * So a request stays readable for as long as the handler side holds it,
 * whatever the client does.  After the client is gone (or the exchange is
 * over) http_respond / http_stream_* are safe no-ops returning
 * HTTP_ERR_CLOSED.  Releasing without having responded makes the server
 * answer 500 (or end an open stream), so a connection can never hang on a
 * forgotten request. */
#ifndef O2C_NET_HTTP_SERVER_H
#define O2C_NET_HTTP_SERVER_H
#include "net/http_header.h"
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http_server;
struct http_request;

/* Request headers (struct http_header) point into the request and live as
 * long as it does. */

/* Return values of the response functions. */
enum {
    HTTP_OK = 0,
    HTTP_ERR_CLOSED = -1, /* client gone or exchange over: nothing was sent */
    HTTP_ERR_STATE = -2,  /* wrong order (already responded, no stream open...) */
    HTTP_ERR_SLOW = -3,   /* stream backlog over max_stream_backlog: client dropped */
    HTTP_ERR_NOMEM = -4,
};

/* One line of the access log, given to the access_log callback when an
 * exchange ends: response written, client gone, or refused by the server
 * (400/408/413/431/503, then REQ may be NULL and method/path "-" when the
 * request line was never parsed).  Strings are never NULL. */
struct http_access_entry {
    const struct http_request *req; /* NULL for errors before a request began */
    const char *method;
    const char *path;
    const char *request_id;
    const char *remote;
    const char *route; /* http_request_set_route(), "" when unset */
    int status;        /* 499 when the client left before the response began */
    uint64_t body_bytes;
    double duration_ms;
};

typedef void (*http_handler_fn)(struct http_request *req, void *ud);
/* Called when the request head is complete (method, path, query, headers
 * readable; no body yet): returns the body limit in bytes for this request.
 * Must not call the response functions. */
typedef size_t (*http_body_limit_fn)(const struct http_request *req, void *ud);
typedef void (*http_access_log_fn)(const struct http_access_entry *entry, void *ud);
typedef void (*http_close_fn)(struct http_request *req, void *ud);
typedef void (*http_shutdown_fn)(struct http_server *srv, void *ud);

/* Limits.  A zero field takes the default shown.  A client that closes (or
 * half-closes) its side while its request is being handled counts as gone,
 * as in nginx: the connection closes and on_close fires. */
struct http_server_config {
    size_t max_head_size;               /* request line + headers, bytes: 16 KiB, beyond: 431 */
    size_t max_headers;                 /* header count: 100, beyond: 431 */
    size_t max_body_size;               /* body limit when body_limit is NULL: 1 MiB, beyond: 413 */
    size_t max_connections;             /* open connections: 2048, beyond: 503 and close */
    size_t max_connections_per_address; /* from one client address: max_connections / 4
                                         * (at least 16, or max_connections when smaller),
                                         * beyond: 503 and close */
    uint64_t header_timeout_ms;      /* whole head, from first byte (or accept): 10 s, then 408 */
    uint64_t busy_header_timeout_ms; /* the same while over half of max_connections are open:
                                      * 2 s (never above header_timeout_ms), so that slow
                                      * heads cannot hold the places for long */
    uint64_t body_timeout_ms;        /* whole body, from end of head: 30 s, then 408 */
    uint64_t idle_timeout_ms;        /* keep-alive wait for the next request: 60 s, then close */
    uint64_t write_timeout_ms;       /* client reading nothing of a pending response: 30 s */
    uint64_t linger_ms;              /* after an error/close response, drain input up to: 2 s */
    size_t read_buffer_size;         /* per connection, only while bytes are pending: 16 KiB */
    size_t max_stream_backlog;       /* unsent stream bytes before the client is dropped: 1 MiB */
    const char *default_csp;         /* "default-src 'none'; frame-ancestors 'none'" */
    http_body_limit_fn body_limit;   /* NULL: max_body_size for every request */
    http_access_log_fn access_log;   /* NULL: http_access_log_json */
};

struct http_server_stats {
    uint64_t connections_open;     /* now, including ones being refused or drained */
    uint64_t connections_total;    /* accepted since start */
    uint64_t connections_rejected; /* refused with 503 (or closed) at the connection limit */
    uint64_t connections_rejected_address; /* of those, refused for their address's share */
    uint64_t requests_total;               /* complete requests handed to the handler */
    uint64_t requests_active;              /* handed to the handler, response not yet written */
    uint64_t requests_aborted;             /* client gone before its response was written */
    uint64_t responses[6]; /* by class: [2] 2xx ... [5] 5xx (server errors included) */
    uint64_t timeouts;     /* 408s and write stalls */
    uint64_t bad_requests; /* 400/413/431 from the parser side */
};

/* Fills CFG with the defaults above. */
void http_server_config_init(struct http_server_config *cfg);

/* Creates a server on LOOP; CFG may be NULL (defaults) and is copied (the CSP
 * string must outlive the server).  HANDLER is called once per complete
 * request with UD (also given to body_limit and access_log).  Returns NULL
 * on out-of-memory.  Sets SIGPIPE to ignored if it has the default action
 * (a reset client would otherwise kill the process on the next write).  Every server ends with
 * http_server_shutdown(), even if it never listened, then http_server_free(). */
struct http_server *http_server_new(uv_loop_t *loop, const struct http_server_config *cfg,
                                    http_handler_fn handler, void *ud);

/* Binds HOST (IPv4 or IPv6 literal) and PORT (0: ephemeral) and listens.
 * Returns 0 or a negative libuv error (e.g. UV_EADDRINUSE). */
int http_server_listen(struct http_server *srv, const char *host, int port);

/* The bound port, or -1 when not listening. */
int http_server_port(const struct http_server *srv);

void http_server_get_stats(const struct http_server *srv, struct http_server_stats *out);

/* Stops accepting, closes idle keep-alive connections at once, lets
 * requests in progress finish (their responses say Connection: close) for up
 * to GRACE_MS, then closes whatever is left (on_close fires for requests
 * still in flight).  DONE runs once every handle of the server is closed; it
 * may call http_server_free().  Later calls are ignored. */
void http_server_shutdown(struct http_server *srv, uint64_t grace_ms, http_shutdown_fn done,
                          void *ud);

/* Frees a server whose shutdown has completed. */
void http_server_free(struct http_server *srv);

/* ---- the request (valid while the caller holds a reference) ---- */

const char *http_request_method(const struct http_request *req); /* "GET" */
/* Path of the target, still percent-encoded (decoding is the router's), e.g.
 * "/api/v1/x%20y".  Always starts with '/'; never holds a NUL, '%00', a bad
 * %-escape, '#', a control or a non-ASCII byte (those are refused with 400). */
const char *http_request_path(const struct http_request *req);
/* Raw query after '?', or NULL when the target has no '?'. */
const char *http_request_query(const struct http_request *req);
/* First header named NAME (case-insensitive), or NULL.  Values have
 * surrounding whitespace removed. */
const char *http_request_header(const struct http_request *req, const char *name);
/* All headers in arrival order; *N receives their count. */
const struct http_header *http_request_headers(const struct http_request *req, size_t *n);
/* Body (NUL-terminated for convenience, may hold NULs), or "" with *LEN 0. */
const char *http_request_body(const struct http_request *req, size_t *len);
/* Peer address without port, e.g. "127.0.0.1" or "::1". */
const char *http_request_remote(const struct http_request *req);
/* Request id: the client's X-Request-Id when it is 1-64 characters of
 * [A-Za-z0-9._-], otherwise a random UUID (v4).  Sent back on the response. */
const char *http_request_id(const struct http_request *req);
/* HTTP minor version of the request (0 or 1). */
int http_request_version_minor(const struct http_request *req);
/* 1 once the client is gone or the exchange is over (respond would no-op). */
int http_request_closed(const struct http_request *req);
/* A short name for the access log (e.g. the route pattern); copied. */
void http_request_set_route(struct http_request *req, const char *route);
/* One pointer for the handler side (e.g. its task). */
void http_request_set_userdata(struct http_request *req, void *ud);
void *http_request_userdata(const struct http_request *req);

/* CB(req, ud) runs at most once, when the connection closes before the
 * response was completely written (client gone, write error or stall,
 * shutdown grace over) while the handler side still holds the request.
 * Replaces an earlier registration; CB NULL unregisters.  Returns
 * HTTP_ERR_CLOSED (and registers nothing) when the client is already gone. */
int http_request_on_close(struct http_request *req, http_close_fn cb, void *ud);

/* Gives back the handler side's reference (exactly once). */
void http_request_release(struct http_request *req);

/* ---- responses (handler side; once per request) ----
 * The server adds Date, Content-Length (or Transfer-Encoding), Connection
 * (keep-alive unless the client, HTTP/1.0 rules or shutdown say close),
 * X-Request-Id, X-Content-Type-Options: nosniff, Referrer-Policy: no-referrer,
 * X-Frame-Options: DENY and Content-Security-Policy (the default one, or the
 * handler's with "frame-ancestors 'none'" appended when it has none).
 * Handler headers named Date, Content-Length, Transfer-Encoding, Connection,
 * Keep-Alive, X-Request-Id or X-Content-Type-Options are ignored, as are
 * headers with an invalid name or a CR/LF in the value (logged); but a
 * handler "Connection: close" does close the connection after this response.
 * A handler Referrer-Policy or X-Frame-Options replaces the default.  Status must be
 * 200-599 (anything else becomes 500). */

/* Whole response; BODY (LEN bytes) is copied.  HEAD: headers only, with the
 * Content-Length of BODY.  204/304: no body, no Content-Length. */
int http_respond(struct http_request *req, int status, const struct http_header *headers,
                 size_t nheaders, const void *body, size_t len);

/* Streaming (Server-Sent Events): the head without Content-Length, then
 * chunks.  HTTP/1.1 uses chunked encoding (the connection stays reusable);
 * HTTP/1.0 gets a close-delimited body.  DATA is copied; empty writes are
 * ignored; HEAD requests get the head only.  A write that would leave more
 * than max_stream_backlog bytes unsent drops the client (HTTP_ERR_SLOW; the
 * on_close callback follows from the loop). */
int http_stream_begin(struct http_request *req, int status, const struct http_header *headers,
                      size_t nheaders);
int http_stream_write(struct http_request *req, const void *data, size_t len);
int http_stream_end(struct http_request *req);

/* The default access log: one JSON line via log.h, message "http", fields
 * method, path, status, bytes, duration_ms, request_id, remote, route. */
void http_access_log_json(const struct http_access_entry *entry, void *ud);

#endif
