/* HTTP client: libcurl's multi interface driven by a libuv loop.
 *
 * Engine-neutral (no Lua here; the binding is http_client_lua.c).  One client
 * per loop holds one curl multi handle, so transfers to the same host share a
 * bounded pool of connections (HTTP/1.1 keep-alive, HTTP/2 multiplexing over
 * TLS where the server offers it).
 *
 * Threading: everything runs on the loop thread.  Callbacks (done, close) run
 * from raw libuv callbacks, never from inside a libcurl call, so they may
 * start, cancel or close freely.
 *
 * Lifetimes: a transfer handle is valid from http_client_request() until its
 * done callback returns or http_client_cancel() is called, whichever is first.
 * A response passed to a done callback is valid only during that callback:
 * copy what you keep (or take the body with http_response_take_body()). */
#ifndef O2C_NET_HTTP_CLIENT_H
#define O2C_NET_HTTP_CLIENT_H
#include "net/http_header.h"
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct http_client;
struct http_transfer;

#define HTTP_CLIENT_DEFAULT_MAX_HOST_CONNECTIONS 8
#define HTTP_CLIENT_DEFAULT_MAX_RESPONSE_BYTES (8u * 1024 * 1024)
#define HTTP_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define HTTP_CLIENT_DEFAULT_TIMEOUT_MS 300000

/* Zero/NULL fields take the defaults above.  Strings are copied. */
struct http_client_config {
    long max_host_connections;  /* per host; further transfers queue for a connection */
    long max_total_connections; /* 0: no overall limit */
    size_t max_response_bytes;  /* response body cap; beyond it the transfer fails */
    long connect_timeout_ms;    /* default for requests that leave theirs at 0 */
    long timeout_ms;            /* default total timeout for requests that leave theirs at 0 */
    /* The only proxy ever used ("http://host:port").  NULL or "": none, and
     * http_proxy/https_proxy/ALL_PROXY in the environment are ignored. */
    const char *proxy;
    const char *user_agent; /* NULL: "o2c/<version>" */
    const char *ca_file;    /* NULL: the system's CA bundle */
};

/* Everything is copied by http_client_request(): the caller may free the
 * request, its headers and its body as soon as the call returns. */
struct http_client_request {
    const char *method; /* "GET", "POST", ...; NULL: POST when there is a body, else GET */
    const char *url;    /* http:// or https:// only */
    const struct http_header *headers;
    size_t nheaders;
    const char *body; /* may hold NULs; NULL with body_len 0: no body */
    size_t body_len;
    long connect_timeout_ms; /* 0: the client's default */
    long timeout_ms;         /* whole transfer; 0: the client's default */
    /* Fails as a timeout when fewer than LOW_SPEED_LIMIT bytes/s move for
     * LOW_SPEED_TIME_S seconds (catches stalled streams).  0: off. */
    long low_speed_limit;
    long low_speed_time_s;
};

/* How a transfer failed.  The retry logic treats CONNECT and TIMEOUT as
 * retryable: CONNECT covers "could not connect" and "connection dropped
 * before a complete response" (refused, reset, empty reply, truncated body).
 * A POST or PATCH is sent at most once per transfer: where curl would send it
 * again by itself (a reused connection that died after the request went out),
 * the transfer fails with CONNECT instead, and the caller decides. */
enum http_client_error {
    HTTP_CLIENT_OK = 0,
    HTTP_CLIENT_ERR_CONNECT,
    HTTP_CLIENT_ERR_TIMEOUT,
    HTTP_CLIENT_ERR_TOO_LARGE, /* body beyond max_response_bytes */
    HTTP_CLIENT_ERR_CLOSED,    /* the client was closed with the transfer in flight */
    HTTP_CLIENT_ERR_OTHER,
};

struct http_response {
    long status;                  /* 0 when no status line arrived */
    enum http_client_error error; /* HTTP_CLIENT_OK when a complete response arrived */
    int curl_code;                /* CURLcode (0 when OK or closed) */
    const char *message;          /* "" when OK; else what failed, with method and URL */
    /* Headers of the final response (interim 1xx blocks dropped), names as
     * the server sent them, in order.  Look up with http_response_header(). */
    const struct http_header *headers;
    size_t nheaders;
    char *body; /* NUL-terminated (the NUL is not counted); never NULL while owned */
    size_t body_len;
    int reused_connection; /* 1 when no new connection was opened for this transfer */
};

typedef void (*http_client_done_fn)(struct http_transfer *xfer, struct http_response *res,
                                    void *ud);
typedef void (*http_client_close_fn)(struct http_client *client, void *ud);

struct http_client_stats {
    uint64_t started;
    uint64_t finished;  /* a complete response arrived (any status) */
    uint64_t failed;    /* connect/timeout/too_large/other/closed */
    uint64_t cancelled; /* http_client_cancel() */
    uint64_t connections_opened;
    uint64_t connections_reused; /* transfers that opened no connection */
    uint64_t active;             /* in flight now */
};

/* Creates a client on LOOP.  CONFIG may be NULL.  Returns NULL on failure
 * (logged). */
struct http_client *http_client_new(uv_loop_t *loop, const struct http_client_config *config);

/* Starts a transfer; DONE runs exactly once, later, from the loop, unless the
 * transfer is cancelled first.  Returns NULL (nothing started, DONE never
 * runs) when the request is invalid or the client is closing; the reason is
 * then in http_client_last_error(). */
struct http_transfer *http_client_request(struct http_client *client,
                                          const struct http_client_request *req,
                                          http_client_done_fn done, void *ud);

/* Aborts XFER: its done callback never runs and the handle is freed.  Must
 * not be called once XFER's done callback has started. */
void http_client_cancel(struct http_transfer *xfer);

/* Closes CLIENT: every transfer in flight completes at once (inside this call)
 * with HTTP_CLIENT_ERR_CLOSED, then every libuv handle is closed; CB (may be
 * NULL) runs from the loop when the last one is, after which CLIENT is freed.
 * Requests made after this call fail. */
void http_client_close(struct http_client *client, http_client_close_fn cb, void *ud);

void http_client_get_stats(const struct http_client *client, struct http_client_stats *out);

/* 1 once http_client_close() was called. */
int http_client_is_closing(const struct http_client *client);

/* Why the last http_client_request() on CLIENT returned NULL. */
const char *http_client_last_error(const struct http_client *client);

/* The value of the first header named NAME (case-insensitive), or NULL. */
const char *http_response_header(const struct http_response *res, const char *name);

/* Takes ownership of the body (free() it; NULL only when out of memory); RES
 * then holds an empty body. */
char *http_response_take_body(struct http_response *res, size_t *len);

/* "ok", "connect", "timeout", "too_large", "closed", "error". */
const char *http_client_error_name(enum http_client_error error);

#endif
