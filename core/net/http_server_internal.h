/* Internals shared by the HTTP server's files; not for use outside them.
 *
 *   http_server.c           listener, accept policy, shutdown, stats, access log
 *   http_server_conn.c      one connection: reading, llhttp, timeouts, closing
 *   http_server_request.c   what the handler side calls: request accessors,
 *                           responses, streams, release; response formatting
 *
 * Lifetimes: a struct http_conn is freed only from its handles' close
 * callbacks, so it stays valid across any callback made while it is open.
 * A struct http_request is refcounted: one reference for the connection
 * (dropped when the response is written or the connection dies, which also
 * sets req->conn to NULL) and one for the handler side (http_request_release). */
#ifndef O2C_NET_HTTP_SERVER_INTERNAL_H
#define O2C_NET_HTTP_SERVER_INTERNAL_H
#include <stdbool.h>
#include <stdint.h>
#include <time.h>
#include <uv.h>
#include "llhttp.h"
#include "net/http_server.h"

#define HTTP_ID_MAX 64
#define HTTP_ROUTE_MAX 63
#define HTTP_REMOTE_MAX 46
#define HTTP_ADDRESS_BUCKETS 1024 /* power of two; chains stay short up to ~4,000 addresses */

enum conn_state { CONN_HEAD, CONN_BODY, CONN_HANDLING, CONN_LINGER, CONN_CLOSED };

/* Where a request is in its life: being parsed, with the handler, streaming,
 * or with its last byte queued. */
enum req_phase { REQ_PARSING, REQ_HANDLER, REQ_STREAMING, REQ_SENT };

/* How a response body is delimited. */
enum { FRAME_LENGTH, FRAME_CHUNKED, FRAME_EOF };

struct http_request {
    struct http_conn *conn; /* NULL once the client is gone or the exchange is over */
    unsigned refs;
    enum req_phase phase;
    bool handler_owned;
    bool head_method;
    bool headers_done;
    bool chunked_out; /* streaming with chunked framing */
    uint8_t http_minor;
    const char *method;
    /* Head buffer: url\0 name\0value\0 ... (path/query point into it). */
    char *head;
    size_t head_len, head_cap;
    size_t nheaders;
    struct http_header *headers;
    const char *path, *query;
    char *body;
    size_t body_len, body_cap, body_limit;
    int status;
    uint64_t body_bytes_sent;
    uint64_t start_ns;
    http_close_fn on_close;
    void *on_close_ud;
    void *userdata;
    char id[HTTP_ID_MAX + 1];
    char remote[HTTP_REMOTE_MAX];
    char route[HTTP_ROUTE_MAX + 1];
};

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    uv_shutdown_t shutdown_req;
    llhttp_t parser;
    struct http_server *srv;
    struct http_conn *prev, *next;
    struct http_request *req; /* being parsed or answered; at most one */
    char *rbuf;               /* allocated only while bytes are pending */
    size_t rpos, rlen;
    size_t head_bytes;     /* raw bytes of the current head so far */
    uint64_t bytes_queued; /* handed to uv_write since accept */
    uint64_t sent_seen;    /* bytes out when the stall timer was armed */
    unsigned writes_pending;
    enum conn_state state;
    int handles_open;
    int err_status;          /* set by a parser callback that refuses the request */
    size_t err_limit_bytes;  /* the size limit it passed (413, 431), for the error body */
    const char *err_message; /* static text saying why, or NULL for the status's */
    bool keep_alive;
    bool reading;
    bool doomed;                  /* a write failed synchronously: close from the timer */
    bool idle_wait;               /* keep-alive wait: the header timeout starts at the first byte */
    bool refused;                 /* answered 503 at accept: not counted against max_connections */
    struct http_address *address; /* its entry in the per-address count */
    char remote[HTTP_REMOTE_MAX];
};

/* Open connections from one client address (nginx's limit_conn). */
struct http_address {
    struct http_address *next;
    size_t conns;
    char name[HTTP_REMOTE_MAX];
};

/* One uv_write with its bytes in the same allocation. */
struct http_write {
    uv_write_t req;
    struct http_conn *conn;
    size_t len;
    char data[];
};

struct http_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    uv_timer_t grace_timer;
    struct http_server_config cfg;
    http_handler_fn handler;
    void *ud;
    struct http_conn *conns;
    size_t nconns;
    size_t nrefused; /* of nconns, answered 503 at accept and on their way out */
    struct http_address *addresses[HTTP_ADDRESS_BUCKETS];
    size_t nstray; /* connections closed at once beyond the reject budget */
    int handles_open;
    bool listening, shutting_down, grace_closing;
    http_shutdown_fn done;
    void *done_ud;
    struct http_server_stats stats;
    time_t date_sec;
    char date[40];
};

/* http_server.c */
void http_server_access_log(struct http_server *srv, const struct http_request *req,
                            const char *remote, const char *id, int status);
void http_server_check_done(struct http_server *srv);
struct http_address *http_server_address_acquire(struct http_server *srv, const char *name);
void http_server_address_release(struct http_server *srv, struct http_address *a);

/* http_server_conn.c */
int http_conn_accept(struct http_server *srv);
int http_conn_write(struct http_conn *c, struct http_write *w);
void http_conn_doom(struct http_conn *c);
void http_conn_timer_arm(struct http_conn *c, uint64_t ms);
void http_conn_close(struct http_conn *c);
void http_request_unref(struct http_request *req);

/* http_server_request.c */
void http_request_id_generate(char *out);
struct http_write *http_server_build_response(struct http_server *srv, struct http_request *req,
                                              int status, const struct http_header *headers,
                                              size_t nheaders, const void *body, size_t len,
                                              int framing, bool keep_alive);

#endif
