/* HTTP/1.1 server: connections, parsing, timeouts, shutdown.  See
 * http_server.h for the contract; response formatting is at the end.
 *
 * A connection moves through these states:
 *
 *   HEAD ──headers──► BODY ──message complete──► HANDLING ──written──► HEAD (keep-alive)
 *     │                 │                          │                  └─► LINGER (close)
 *     └── error/timeout ┴──► LINGER (error response queued, FIN, drain) ──► CLOSED
 *   any state ── EOF/read error/write error/timer ──► CLOSED
 *
 * One uv_timer per connection serves every deadline: in HEAD the header
 * timeout (or the keep-alive idle timeout before the first byte), in BODY
 * the body timeout, in HANDLING the write-stall timeout (only while bytes are
 * queued), in LINGER the drain limit.  A zero-delay start of the same timer
 * is how work is deferred out of a handler-side call (a failed write, an
 * ended stream with nothing left to flush). */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sodium.h>
#include "llhttp.h"
#include "host/log.h"
#include "net/http_server.h"

#define HTTP_ID_MAX 64
#define HTTP_ROUTE_MAX 63
#define HTTP_REMOTE_MAX 46
#define HTTP_HEAD_INITIAL 1024
#define HTTP_BODY_INITIAL 4096

enum conn_state { CONN_HEAD, CONN_BODY, CONN_HANDLING, CONN_LINGER, CONN_CLOSED };

/* Where a request is in its life: being parsed, with the handler, streaming,
 * or with its last byte queued. */
enum req_phase { REQ_PARSING, REQ_HANDLER, REQ_STREAMING, REQ_SENT };

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
    int err_status; /* set by a parser callback that refuses the request */
    bool keep_alive;
    bool reading;
    bool doomed;    /* a write failed synchronously: close from the timer */
    bool idle_wait; /* keep-alive wait: the header timeout starts at the first byte */
    char remote[HTTP_REMOTE_MAX];
};

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
    llhttp_settings_t settings;
    http_handler_fn handler;
    void *ud;
    struct http_conn *conns;
    size_t nconns;
    size_t nstray; /* connections closed at once beyond the reject budget */
    int handles_open;
    bool listening, shutting_down, grace_closing;
    http_shutdown_fn done;
    void *done_ud;
    struct http_server_stats stats;
    time_t date_sec;
    char date[40];
};

static void conn_close(struct http_conn *c);
static void conn_fail(struct http_conn *c, int status, const char *code, const char *message);
static void conn_process(struct http_conn *c);
static void conn_update_reading(struct http_conn *c);
static struct http_write *response_build(struct http_server *srv, struct http_request *req,
                                         int status, const struct http_header *headers,
                                         size_t nheaders, const void *body, size_t len, int framing,
                                         bool keep_alive);
static void server_check_done(struct http_server *srv);
static void on_conn_timer(uv_timer_t *t);
static void on_write(uv_write_t *wr, int status);

enum { FRAME_LENGTH, FRAME_CHUNKED, FRAME_EOF };

/* ---- configuration ---- */

void http_server_config_init(struct http_server_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_head_size = 16 * 1024;
    cfg->max_headers = 100;
    cfg->max_body_size = 1024 * 1024;
    cfg->max_connections = 2048;
    cfg->header_timeout_ms = 10000;
    cfg->body_timeout_ms = 30000;
    cfg->idle_timeout_ms = 60000;
    cfg->write_timeout_ms = 30000;
    cfg->linger_ms = 2000;
    cfg->read_buffer_size = 16 * 1024;
    cfg->max_stream_backlog = 1024 * 1024;
    cfg->default_csp = "default-src 'none'; frame-ancestors 'none'";
}

static void config_fill_defaults(struct http_server_config *cfg)
{
    struct http_server_config d;
    http_server_config_init(&d);
#define DEFAULT_IF_ZERO(f)                                                                         \
    if (!cfg->f)                                                                                   \
    cfg->f = d.f
    DEFAULT_IF_ZERO(max_head_size);
    DEFAULT_IF_ZERO(max_headers);
    DEFAULT_IF_ZERO(max_body_size);
    DEFAULT_IF_ZERO(max_connections);
    DEFAULT_IF_ZERO(header_timeout_ms);
    DEFAULT_IF_ZERO(body_timeout_ms);
    DEFAULT_IF_ZERO(idle_timeout_ms);
    DEFAULT_IF_ZERO(write_timeout_ms);
    DEFAULT_IF_ZERO(linger_ms);
    DEFAULT_IF_ZERO(read_buffer_size);
    DEFAULT_IF_ZERO(max_stream_backlog);
    DEFAULT_IF_ZERO(default_csp);
#undef DEFAULT_IF_ZERO
}

/* ---- requests ---- */

static void request_id_generate(char *out)
{
    unsigned char b[16];
    randombytes_buf(b, sizeof b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[n++] = '-';
        out[n++] = hex[b[i] >> 4];
        out[n++] = hex[b[i] & 15];
    }
    out[n] = '\0';
}

/* An incoming X-Request-Id is echoed into logs and responses: only short
 * values of a safe alphabet are trusted. */
static bool request_id_acceptable(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > HTTP_ID_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_' || *p == '.'))
            return false;
    return true;
}

static struct http_request *request_new(struct http_conn *c)
{
    struct http_request *req = calloc(1, sizeof *req);
    if (!req)
        return NULL;
    req->conn = c;
    req->refs = 1;
    req->start_ns = uv_hrtime();
    memcpy(req->remote, c->remote, sizeof req->remote);
    return req;
}

static void request_unref(struct http_request *req)
{
    if (--req->refs > 0)
        return;
    free(req->head);
    free(req->headers);
    free(req->body);
    free(req);
}

static bool is_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* Refuses in a target what would bite a router later: NUL (raw or %00),
 * broken %-escapes, fragments, controls, spaces, non-ASCII. */
static bool target_chars_valid(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '#')
            return false;
        if (*p == '%') {
            if (!is_hex((char)p[1]) || !is_hex((char)p[2]) || (p[1] == '0' && p[2] == '0'))
                return false;
            p += 2;
        }
    }
    return true;
}

const char *http_request_method(const struct http_request *req)
{
    return req->method ? req->method : "-";
}

const char *http_request_path(const struct http_request *req)
{
    return req->path ? req->path : "-";
}

const char *http_request_query(const struct http_request *req)
{
    return req->query;
}

const char *http_request_header(const struct http_request *req, const char *name)
{
    for (size_t i = 0; i < req->nheaders && req->headers; i++)
        if (strcasecmp(req->headers[i].name, name) == 0)
            return req->headers[i].value;
    return NULL;
}

const struct http_header *http_request_headers(const struct http_request *req, size_t *n)
{
    *n = req->headers ? req->nheaders : 0;
    return req->headers;
}

const char *http_request_body(const struct http_request *req, size_t *len)
{
    *len = req->body_len;
    return req->body ? req->body : "";
}

const char *http_request_remote(const struct http_request *req)
{
    return req->remote;
}

const char *http_request_id(const struct http_request *req)
{
    return req->id;
}

int http_request_version_minor(const struct http_request *req)
{
    return req->http_minor;
}

int http_request_closed(const struct http_request *req)
{
    return req->conn == NULL;
}

void http_request_set_route(struct http_request *req, const char *route)
{
    snprintf(req->route, sizeof req->route, "%s", route ? route : "");
}

void http_request_set_userdata(struct http_request *req, void *ud)
{
    req->userdata = ud;
}

void *http_request_userdata(const struct http_request *req)
{
    return req->userdata;
}

int http_request_on_close(struct http_request *req, http_close_fn cb, void *ud)
{
    if (!req->conn)
        return HTTP_ERR_CLOSED;
    req->on_close = cb;
    req->on_close_ud = ud;
    return HTTP_OK;
}

/* ---- access log and stats ---- */

void http_access_log_json(const struct http_access_entry *e, void *ud)
{
    (void)ud;
    char status[16], bytes[32], duration[32];
    snprintf(status, sizeof status, "%d", e->status);
    snprintf(bytes, sizeof bytes, "%llu", (unsigned long long)e->body_bytes);
    snprintf(duration, sizeof duration, "%.3f", e->duration_ms);
    struct log_field fields[] = {
        {"method", e->method, 0}, {"path", e->path, 0},         {"status", status, 1},
        {"bytes", bytes, 1},      {"duration_ms", duration, 1}, {"request_id", e->request_id, 0},
        {"remote", e->remote, 0}, {"route", e->route, 0},
    };
    log_fields(LOG_INFO, "http", fields, sizeof fields / sizeof fields[0]);
}

/* Logs and counts the end of an exchange.  REQ may be NULL (refused before a
 * request line was parsed); ID is the id the response carried. */
static void access_log(struct http_server *srv, const struct http_request *req, const char *remote,
                       const char *id, int status)
{
    if (status >= 100 && status < 600 && status != 499)
        srv->stats.responses[status / 100]++;
    struct http_access_entry e = {
        .req = req,
        .method = req ? http_request_method(req) : "-",
        .path = req ? http_request_path(req) : "-",
        .request_id = id,
        .remote = remote,
        .route = req ? req->route : "",
        .status = status,
        .body_bytes = req ? req->body_bytes_sent : 0,
        .duration_ms = req ? (double)(uv_hrtime() - req->start_ns) / 1e6 : 0.0,
    };
    if (srv->cfg.access_log)
        srv->cfg.access_log(&e, srv->ud);
    else
        http_access_log_json(&e, srv->ud);
}

/* ---- llhttp callbacks (fill c->req; never call the handler) ---- */

/* Every deadline goes through here; a doomed connection keeps its
 * zero-delay close. */
static void conn_timer_arm(struct http_conn *c, uint64_t ms)
{
    if (!c->doomed)
        uv_timer_start(&c->timer, on_conn_timer, ms, 0);
}

static int head_append(struct http_conn *c, const char *at, size_t n)
{
    struct http_request *req = c->req;
    size_t max = c->srv->cfg.max_head_size;
    if (req->head_len + n + 1 > max) {
        c->err_status = 431;
        return -1;
    }
    if (req->head_len + n + 1 > req->head_cap) {
        size_t cap = req->head_cap ? req->head_cap : HTTP_HEAD_INITIAL;
        while (cap < req->head_len + n + 1)
            cap *= 2;
        if (cap > max)
            cap = max;
        char *p = realloc(req->head, cap);
        if (!p) {
            c->err_status = 503;
            return -1;
        }
        req->head = p;
        req->head_cap = cap;
    }
    memcpy(req->head + req->head_len, at, n);
    req->head_len += n;
    return 0;
}

static int on_message_begin(llhttp_t *p)
{
    struct http_conn *c = p->data;
    /* The keep-alive wait is over: the head must now arrive in time. */
    if (c->idle_wait) {
        c->idle_wait = false;
        conn_timer_arm(c, c->srv->cfg.header_timeout_ms);
    }
    if (!c->req) {
        c->req = request_new(c);
        if (!c->req) {
            c->err_status = 503;
            return -1;
        }
    }
    return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    return head_append(p->data, at, n);
}

static int on_text_complete(llhttp_t *p)
{
    struct http_conn *c = p->data;
    if (c->req->headers_done)
        return 0;
    return head_append(c, "", 1);
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    struct http_conn *c = p->data;
    if (c->req->headers_done)
        return 0; /* trailers: ignored */
    return head_append(c, at, n);
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    return on_header_field(p, at, n);
}

static int on_header_value_complete(llhttp_t *p)
{
    struct http_conn *c = p->data;
    struct http_request *req = c->req;
    if (req->headers_done)
        return 0;
    /* llhttp keeps trailing whitespace of a value: drop it. */
    while (req->head_len > 0 &&
           (req->head[req->head_len - 1] == ' ' || req->head[req->head_len - 1] == '\t') &&
           req->head[req->head_len - 1] != '\0')
        req->head_len--;
    if (++req->nheaders > c->srv->cfg.max_headers) {
        c->err_status = 431;
        return -1;
    }
    return head_append(c, "", 1);
}

/* The head buffer no longer moves: point path, query and headers into it. */
static int request_index_head(struct http_conn *c)
{
    struct http_request *req = c->req;
    if (!req->head) {
        c->err_status = 400;
        return -1;
    }
    char *url = req->head;
    char *q = strchr(url, '?');
    if (q) {
        *q = '\0';
        req->query = q + 1;
    }
    req->path = url;
    /* Origin-form only ("/path?query"). */
    if (url[0] != '/' || !target_chars_valid(url) ||
        (req->query && !target_chars_valid(req->query))) {
        c->err_status = 400;
        return -1;
    }
    if (req->nheaders) {
        req->headers = malloc(req->nheaders * sizeof *req->headers);
        if (!req->headers) {
            c->err_status = 503;
            return -1;
        }
        char *s = url + strlen(url) + 1;
        if (q)
            s = q + 1 + strlen(q + 1) + 1;
        for (size_t i = 0; i < req->nheaders; i++) {
            req->headers[i].name = s;
            s += strlen(s) + 1;
            req->headers[i].value = s;
            s += strlen(s) + 1;
        }
    }
    return 0;
}

static int conn_write(struct http_conn *c, struct http_write *w);

static void send_continue(struct http_conn *c)
{
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct http_write *w = malloc(sizeof *w + sizeof line - 1);
    if (!w)
        return;
    w->len = sizeof line - 1;
    memcpy(w->data, line, w->len);
    conn_write(c, w);
}

static int on_headers_complete(llhttp_t *p)
{
    struct http_conn *c = p->data;
    struct http_server *srv = c->srv;
    struct http_request *req = c->req;
    if (request_index_head(c) != 0)
        return -1;
    req->headers_done = true;
    req->method = llhttp_method_name((llhttp_method_t)p->method);
    req->head_method = p->method == HTTP_HEAD;
    req->http_minor = p->http_major == 1 ? p->http_minor : 0;
    const char *incoming = http_request_header(req, "X-Request-Id");
    if (incoming && request_id_acceptable(incoming))
        snprintf(req->id, sizeof req->id, "%s", incoming);
    else
        request_id_generate(req->id);

    req->body_limit =
        srv->cfg.body_limit ? srv->cfg.body_limit(req, srv->ud) : srv->cfg.max_body_size;
    bool has_body = (p->flags & F_CHUNKED) || p->content_length > 0;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > req->body_limit) {
        c->err_status = 413;
        return -1;
    }
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > 0) {
        /* Known size: one allocation, never grown. */
        req->body_cap = (size_t)p->content_length + 1;
        req->body = malloc(req->body_cap);
        if (!req->body) {
            c->err_status = 503;
            return -1;
        }
    }
    if (has_body && req->http_minor >= 1) {
        const char *expect = http_request_header(req, "Expect");
        if (expect && strcasecmp(expect, "100-continue") == 0)
            send_continue(c);
    }
    c->state = CONN_BODY;
    conn_timer_arm(c, srv->cfg.body_timeout_ms);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    struct http_conn *c = p->data;
    struct http_request *req = c->req;
    if (req->body_len + n > req->body_limit) {
        c->err_status = 413;
        return -1;
    }
    if (req->body_len + n + 1 > req->body_cap) { /* chunked: doubling up to the limit */
        size_t cap = req->body_cap ? req->body_cap * 2 : HTTP_BODY_INITIAL;
        while (cap < req->body_len + n + 1)
            cap *= 2;
        if (cap > req->body_limit + 1)
            cap = req->body_limit + 1;
        char *b = realloc(req->body, cap);
        if (!b) {
            c->err_status = 503;
            return -1;
        }
        req->body = b;
        req->body_cap = cap;
    }
    memcpy(req->body + req->body_len, at, n);
    req->body_len += n;
    req->body[req->body_len] = '\0';
    return 0;
}

static int on_message_complete(llhttp_t *p)
{
    struct http_conn *c = p->data;
    c->state = CONN_HANDLING;
    /* Upgrades are not served: answer, then close. */
    c->keep_alive = llhttp_should_keep_alive(p) && !p->upgrade;
    return HPE_PAUSED;
}

/* ---- connection ---- */

static void conn_free_buffer(struct http_conn *c)
{
    free(c->rbuf);
    c->rbuf = NULL;
    c->rpos = c->rlen = 0;
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    struct http_conn *c = h->data;
    if (--c->handles_open > 0)
        return;
    struct http_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    free(c);
    server_check_done(srv);
}

/* Closes at once.  A request still in flight is detached (respond becomes a
 * no-op) and its on_close callback runs. */
static void conn_close(struct http_conn *c)
{
    if (c->state == CONN_CLOSED)
        return;
    c->state = CONN_CLOSED;
    uv_read_stop((uv_stream_t *)&c->tcp);
    uv_timer_stop(&c->timer);
    struct http_request *req = c->req;
    c->req = NULL;
    if (req) {
        req->conn = NULL;
        if (req->phase != REQ_PARSING) {
            struct http_server *srv = c->srv;
            srv->stats.requests_active--;
            srv->stats.requests_aborted++;
            access_log(srv, req, req->remote, req->id,
                       req->phase == REQ_HANDLER ? 499 : req->status);
        }
        if (req->handler_owned && req->on_close) {
            http_close_fn cb = req->on_close;
            req->on_close = NULL;
            cb(req, req->on_close_ud);
        }
        request_unref(req);
    }
    conn_free_buffer(c);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

/* Marks the connection for closing from its timer: used where a close must
 * not run inside a handler-side call. */
static void conn_doom(struct http_conn *c)
{
    if (c->doomed || c->state == CONN_CLOSED)
        return;
    c->doomed = true;
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
    uv_timer_start(&c->timer, on_conn_timer, 0, 0);
}

static void on_shutdown(uv_shutdown_t *sr, int status)
{
    struct http_conn *c = sr->data;
    if (status < 0 && status != UV_ECANCELED && c->state != CONN_CLOSED)
        conn_close(c);
}

/* After a response that ends the connection: FIN once the queued bytes are
 * out, then read and discard until the client closes or linger_ms passes.
 * Closing with unread input would reset the connection and could destroy
 * the response before the client reads it. */
static void conn_linger(struct http_conn *c)
{
    c->state = CONN_LINGER;
    c->rpos = c->rlen = 0;
    c->shutdown_req.data = c;
    if (uv_shutdown(&c->shutdown_req, (uv_stream_t *)&c->tcp, on_shutdown) != 0) {
        conn_close(c);
        return;
    }
    conn_timer_arm(c, c->srv->cfg.linger_ms);
    conn_update_reading(c);
}

/* Bytes the kernel has taken so far: a stalled client shows no progress. */
static uint64_t conn_bytes_sent(struct http_conn *c)
{
    return c->bytes_queued - uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
}

static int conn_write(struct http_conn *c, struct http_write *w)
{
    w->conn = c;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc != 0) {
        free(w);
        conn_doom(c);
        return rc;
    }
    c->bytes_queued += w->len;
    if (c->writes_pending++ == 0 && c->state == CONN_HANDLING) {
        c->sent_seen = conn_bytes_sent(c);
        conn_timer_arm(c, c->srv->cfg.write_timeout_ms);
    }
    return 0;
}

/* The response is fully written: log it, drop the connection's reference,
 * then either wait for the next request (parsing any pipelined bytes
 * already buffered) or close. */
static void conn_finish_exchange(struct http_conn *c)
{
    struct http_server *srv = c->srv;
    struct http_request *req = c->req;
    c->req = NULL;
    req->conn = NULL;
    srv->stats.requests_active--;
    access_log(srv, req, req->remote, req->id, req->status);
    request_unref(req);
    if (!c->keep_alive || srv->shutting_down) {
        conn_linger(c);
        return;
    }
    c->state = CONN_HEAD;
    c->head_bytes = 0;
    c->err_status = 0;
    c->idle_wait = true;
    conn_timer_arm(c, srv->cfg.idle_timeout_ms);
    conn_process(c);
    conn_update_reading(c);
}

static void on_write(uv_write_t *wr, int status)
{
    struct http_write *w = (struct http_write *)wr;
    struct http_conn *c = w->conn;
    free(w);
    c->writes_pending--;
    if (c->state == CONN_CLOSED || c->state == CONN_LINGER)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (c->state != CONN_HANDLING || c->doomed)
        return;
    if (c->writes_pending > 0)
        return;
    if (c->req && c->req->phase == REQ_SENT) {
        conn_finish_exchange(c);
        return;
    }
    uv_timer_stop(&c->timer); /* nothing queued: no stall to watch */
}

static void conn_dispatch(struct http_conn *c)
{
    struct http_server *srv = c->srv;
    struct http_request *req = c->req;
    uv_timer_stop(&c->timer);
    req->phase = REQ_HANDLER;
    req->handler_owned = true;
    req->refs++;
    srv->stats.requests_total++;
    srv->stats.requests_active++;
    srv->handler(req, srv->ud);
}

/* Feeds buffered bytes to llhttp while a request is being read; stops at a
 * complete request (the parser pauses) and hands it to the handler. */
static void conn_process(struct http_conn *c)
{
    struct http_server *srv = c->srv;
    while ((c->state == CONN_HEAD || c->state == CONN_BODY) && c->rpos < c->rlen) {
        const char *data = c->rbuf + c->rpos;
        size_t len = c->rlen - c->rpos;
        bool in_head = c->state == CONN_HEAD;
        llhttp_errno_t err = llhttp_execute(&c->parser, data, len);
        size_t used = len;
        if (err == HPE_PAUSED) {
            used = (size_t)(llhttp_get_error_pos(&c->parser) - data);
            llhttp_resume(&c->parser);
        } else if (err != HPE_OK) {
            int status = c->err_status ? c->err_status : 400;
            if (status == 400)
                log_msg(LOG_DEBUG, "http: bad request", "reason",
                        llhttp_get_error_reason(&c->parser), "remote", c->remote, NULL);
            conn_fail(c, status, NULL, NULL);
            return;
        }
        c->rpos += used;
        if (in_head && c->state == CONN_HEAD) {
            c->head_bytes += used;
            /* Stored bytes are capped by head_append; this catches padding. */
            if (c->head_bytes > srv->cfg.max_head_size) {
                conn_fail(c, 431, NULL, NULL);
                return;
            }
        }
    }
    if (c->rpos == c->rlen && c->state != CONN_BODY)
        conn_free_buffer(c);
    if (c->state == CONN_HANDLING && c->req && c->req->phase == REQ_PARSING)
        conn_dispatch(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct http_conn *c = h->data;
    size_t cap = c->srv->cfg.read_buffer_size;
    if (!c->rbuf) {
        c->rbuf = malloc(cap);
        c->rpos = c->rlen = 0;
        if (!c->rbuf) {
            *buf = uv_buf_init(NULL, 0);
            return;
        }
    }
    if (c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(cap - c->rlen));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    struct http_conn *c = s->data;
    if (nread == 0 || c->state == CONN_CLOSED)
        return;
    if (nread == UV_ENOBUFS && c->rbuf) { /* buffer full: wait for the handler */
        uv_read_stop(s);
        c->reading = false;
        return;
    }
    if (nread < 0) {
        /* EOF or error: the client is gone (nginx treats a half-close while a
         * request is in flight the same way). */
        conn_close(c);
        return;
    }
    if (c->state == CONN_LINGER) {
        c->rpos = c->rlen = 0; /* drained and dropped */
        return;
    }
    c->rlen += (size_t)nread;
    if (c->state != CONN_HANDLING)
        conn_process(c);
    conn_update_reading(c);
}

/* Reads whenever there is room: in HANDLING too, so that a client leaving
 * is noticed at once (pipelined bytes wait in the buffer meanwhile). */
static void conn_update_reading(struct http_conn *c)
{
    if (c->state == CONN_CLOSED || c->doomed)
        return;
    bool room = !c->rbuf || c->rlen < c->srv->cfg.read_buffer_size;
    if (room && !c->reading) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = true;
    } else if (!room && c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void on_conn_timer(uv_timer_t *t)
{
    struct http_conn *c = t->data;
    struct http_server *srv = c->srv;
    if (c->doomed) {
        conn_close(c);
        return;
    }
    switch (c->state) {
    case CONN_HEAD:
        if (!c->req && c->rlen == 0) { /* nothing started: idle or silent */
            conn_close(c);
            return;
        }
        /* fallthrough */
    case CONN_BODY:
        srv->stats.timeouts++;
        conn_fail(c, 408, "timeout", "request not received in time");
        return;
    case CONN_HANDLING: {
        if (c->writes_pending == 0) {
            if (c->req && c->req->phase == REQ_SENT)
                conn_finish_exchange(c); /* stream ended with nothing to flush */
            return;
        }
        uint64_t sent = conn_bytes_sent(c);
        bool stuck = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp) > 0;
        if (sent > c->sent_seen || !stuck) { /* progress: keep watching */
            c->sent_seen = sent;
            conn_timer_arm(c, srv->cfg.write_timeout_ms);
            return;
        }
        srv->stats.timeouts++;
        conn_close(c);
        return;
    }
    case CONN_LINGER:
        conn_close(c);
        return;
    case CONN_CLOSED:
        return;
    }
}

static const char *error_code_for(int status)
{
    switch (status) {
    case 400:
        return "bad_request";
    case 408:
        return "timeout";
    case 413:
        return "payload_too_large";
    case 431:
        return "headers_too_large";
    case 503:
        return "unavailable";
    default:
        return "error";
    }
}

static const char *error_message_for(int status)
{
    switch (status) {
    case 400:
        return "malformed request";
    case 413:
        return "request body too large";
    case 431:
        return "request line and headers too large";
    case 503:
        return "server busy, retry later";
    default:
        return "request refused";
    }
}

/* Refuses the request being read (or the connection): JSON error response
 * with Connection: close, then linger.  Only before the handler saw it. */
static void conn_fail(struct http_conn *c, int status, const char *code, const char *message)
{
    struct http_server *srv = c->srv;
    struct http_request *req = c->req;
    char id[HTTP_ID_MAX + 1];
    if (req && req->id[0])
        memcpy(id, req->id, sizeof id);
    else
        request_id_generate(id);
    if (status == 400 || status == 413 || status == 431)
        srv->stats.bad_requests++;

    char body[512];
    size_t blen = 0;
    body[0] = '\0';
    snprintf(body, sizeof body, "{\"error\":{\"code\":");
    blen = strlen(body);
    log_json_escape(body, sizeof body, &blen, code ? code : error_code_for(status));
    snprintf(body + blen, sizeof body - blen, ",\"message\":");
    blen = strlen(body);
    log_json_escape(body, sizeof body, &blen, message ? message : error_message_for(status));
    snprintf(body + blen, sizeof body - blen, ",\"request_id\":\"%s\"}}", id);
    blen = strlen(body);

    struct http_request stub;
    memset(&stub, 0, sizeof stub);
    memcpy(stub.id, id, sizeof stub.id);
    stub.head_method = req && req->headers_done && req->head_method;
    static const struct http_header ct = {"Content-Type", "application/json"};
    struct http_write *w =
        response_build(srv, &stub, status, &ct, 1, body, blen, FRAME_LENGTH, false);

    access_log(srv, req && req->headers_done ? req : NULL, c->remote, id, status);
    if (req) {
        c->req = NULL;
        request_unref(req);
    }
    c->keep_alive = false;
    if (!w || conn_write(c, w) != 0) {
        conn_close(c);
        return;
    }
    conn_linger(c);
}

/* ---- server ---- */

static void on_stray_closed(uv_handle_t *h)
{
    struct http_server *srv = h->data;
    free(h);
    srv->nstray--;
    server_check_done(srv);
}

static void format_remote(struct http_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    strcpy(c->remote, "-");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) != 0)
        return;
    if (ss.ss_family == AF_INET)
        uv_ip4_name((struct sockaddr_in *)&ss, c->remote, sizeof c->remote);
    else if (ss.ss_family == AF_INET6)
        uv_ip6_name((struct sockaddr_in6 *)&ss, c->remote, sizeof c->remote);
}

/* Beyond max_connections a connection still gets a 503 (cheap: no request
 * is read), up to a budget; past it, connections are closed at once. */
static void accept_stray(struct http_server *srv)
{
    uv_tcp_t *t = malloc(sizeof *t);
    if (!t)
        return;
    uv_tcp_init(srv->loop, t);
    t->data = srv;
    srv->nstray++;
    srv->stats.connections_rejected++;
    uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)t);
    uv_close((uv_handle_t *)t, on_stray_closed);
}

static void on_connection(uv_stream_t *l, int status)
{
    struct http_server *srv = l->data;
    if (status < 0) {
        log_msg(LOG_WARN, "http: accept failed", "error", uv_strerror(status), NULL);
        return;
    }
    size_t max = srv->cfg.max_connections;
    if (srv->nconns >= max + max / 4 + 16) {
        accept_stray(srv);
        return;
    }
    struct http_conn *c = calloc(1, sizeof *c);
    if (!c) {
        accept_stray(srv);
        return;
    }
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->timer);
    c->tcp.data = c;
    c->timer.data = c;
    c->handles_open = 2;
    c->next = srv->conns;
    if (c->next)
        c->next->prev = c;
    srv->conns = c;
    srv->nconns++;
    if (uv_accept(l, (uv_stream_t *)&c->tcp) != 0) {
        conn_close(c);
        return;
    }
    srv->stats.connections_total++;
    uv_tcp_nodelay(&c->tcp, 1);
    format_remote(c);
    llhttp_init(&c->parser, HTTP_REQUEST, &srv->settings);
    c->parser.data = c;
    c->state = CONN_HEAD;
    if (srv->nconns > max) {
        srv->stats.connections_rejected++;
        conn_fail(c, 503, NULL, NULL);
        return;
    }
    conn_timer_arm(c, srv->cfg.header_timeout_ms);
    conn_update_reading(c);
}

/* A client that resets its connection makes the next write raise SIGPIPE,
 * whose default action kills the process: a server must ignore it (unless
 * the program installed its own handler). */
static void ignore_sigpipe(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }
}

struct http_server *http_server_new(uv_loop_t *loop, const struct http_server_config *cfg,
                                    http_handler_fn handler, void *ud)
{
    if (sodium_init() < 0)
        return NULL;
    ignore_sigpipe();
    struct http_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return NULL;
    srv->loop = loop;
    if (cfg)
        srv->cfg = *cfg;
    config_fill_defaults(&srv->cfg);
    srv->handler = handler;
    srv->ud = ud;
    llhttp_settings_init(&srv->settings);
    srv->settings.on_message_begin = on_message_begin;
    srv->settings.on_url = on_url;
    srv->settings.on_url_complete = on_text_complete;
    srv->settings.on_header_field = on_header_field;
    srv->settings.on_header_field_complete = on_text_complete;
    srv->settings.on_header_value = on_header_value;
    srv->settings.on_header_value_complete = on_header_value_complete;
    srv->settings.on_headers_complete = on_headers_complete;
    srv->settings.on_body = on_body;
    srv->settings.on_message_complete = on_message_complete;
    uv_tcp_init(loop, &srv->listener);
    uv_timer_init(loop, &srv->grace_timer);
    srv->listener.data = srv;
    srv->grace_timer.data = srv;
    srv->handles_open = 2;
    return srv;
}

int http_server_listen(struct http_server *srv, const char *host, int port)
{
    if (srv->shutting_down || srv->listening)
        return UV_EINVAL;
    struct sockaddr_storage addr;
    int rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&addr);
    if (rc != 0)
        rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&addr);
    if (rc != 0)
        return rc;
    rc = uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection);
    if (rc != 0)
        return rc;
    srv->listening = true;
    return 0;
}

int http_server_port(const struct http_server *srv)
{
    if (!srv->listening || srv->shutting_down)
        return -1;
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

void http_server_get_stats(const struct http_server *srv, struct http_server_stats *out)
{
    *out = srv->stats;
    out->connections_open = srv->nconns;
}

static void on_server_handle_closed(uv_handle_t *h)
{
    struct http_server *srv = h->data;
    if (--srv->handles_open > 0)
        return;
    if (srv->done)
        srv->done(srv, srv->done_ud); /* may free srv: touch nothing after */
}

static void server_check_done(struct http_server *srv)
{
    if (!srv->shutting_down || srv->grace_closing || srv->nconns > 0 || srv->nstray > 0)
        return;
    srv->grace_closing = true;
    uv_timer_stop(&srv->grace_timer);
    uv_close((uv_handle_t *)&srv->grace_timer, on_server_handle_closed);
}

static void on_grace_over(uv_timer_t *t)
{
    struct http_server *srv = t->data;
    struct http_conn *next;
    for (struct http_conn *c = srv->conns; c; c = next) {
        next = c->next;
        conn_close(c);
    }
}

void http_server_shutdown(struct http_server *srv, uint64_t grace_ms, http_shutdown_fn done,
                          void *ud)
{
    if (srv->shutting_down)
        return;
    srv->shutting_down = true;
    srv->done = done;
    srv->done_ud = ud;
    uv_close((uv_handle_t *)&srv->listener, on_server_handle_closed);
    /* Idle connections hold no request: close them now.  No callback of the
     * handler side runs from here (they have no request to notify about). */
    struct http_conn *next;
    for (struct http_conn *c = srv->conns; c; c = next) {
        next = c->next;
        if (c->state == CONN_HEAD && !c->req && c->rpos == c->rlen)
            conn_close(c);
    }
    uv_timer_start(&srv->grace_timer, on_grace_over, grace_ms, 0);
    server_check_done(srv);
}

void http_server_free(struct http_server *srv)
{
    if (!srv)
        return;
    if (srv->handles_open != 0) {
        log_msg(LOG_ERROR, "http_server_free before shutdown completed: leaking the server", NULL);
        return;
    }
    free(srv);
}

/* ---- responses ---- */

static const struct {
    int status;
    const char *reason;
} status_reasons[] = {
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {204, "No Content"},
    {206, "Partial Content"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {415, "Unsupported Media Type"},
    {422, "Unprocessable Content"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
};

static const char *status_reason(int status)
{
    for (size_t i = 0; i < sizeof status_reasons / sizeof status_reasons[0]; i++)
        if (status_reasons[i].status == status)
            return status_reasons[i].reason;
    return "Status";
}

/* IMF-fixdate, formatted by hand (strftime follows the locale); cached per second. */
static const char *server_date(struct http_server *srv)
{
    time_t now = time(NULL);
    if (now == srv->date_sec && srv->date[0])
        return srv->date;
    static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    gmtime_r(&now, &tm);
    snprintf(srv->date, sizeof srv->date, "%s, %02d %s %04d %02d:%02d:%02d GMT", days[tm.tm_wday],
             tm.tm_mday, months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
    srv->date_sec = now;
    return srv->date;
}

static bool header_name_valid(const char *s)
{
    if (!s || !*s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", *p))
            return false;
    return true;
}

static bool header_value_valid(const char *s)
{
    if (!s)
        return false;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
            return false;
    return true;
}

static bool header_reserved(const char *name)
{
    static const char *const reserved[] = {
        "Date",       "Content-Length", "Transfer-Encoding",     "Connection",
        "Keep-Alive", "X-Request-Id",   "X-Content-Type-Options"};
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (strcasecmp(name, reserved[i]) == 0)
            return true;
    return false;
}

struct out {
    char *p;
    size_t len, cap;
};

static void out_mem(struct out *o, const void *s, size_t n)
{
    if (o->len + n > o->cap) /* sizes are computed ahead: cannot happen */
        n = o->cap - o->len;
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void out_str(struct out *o, const char *s)
{
    out_mem(o, s, strlen(s));
}

static void out_header(struct out *o, const char *name, const char *value)
{
    out_str(o, name);
    out_mem(o, ": ", 2);
    out_str(o, value);
    out_mem(o, "\r\n", 2);
}

/* Builds status line, headers and (for FRAME_LENGTH) the body into one
 * write.  REQ supplies the id and the HEAD flag. */
static struct http_write *response_build(struct http_server *srv, struct http_request *req,
                                         int status, const struct http_header *headers,
                                         size_t nheaders, const void *body, size_t len, int framing,
                                         bool keep_alive)
{
    bool no_body = status == 204 || status == 304;
    bool send_body = framing == FRAME_LENGTH && !no_body && !req->head_method;
    const char *referrer = NULL, *frame = NULL;
    bool csp = false;
    size_t need = 512 + strlen(srv->cfg.default_csp) + (send_body ? len : 0);
    for (size_t i = 0; i < nheaders; i++) {
        const char *n = headers[i].name, *v = headers[i].value;
        if (!header_name_valid(n) || !header_value_valid(v)) {
            log_msg(LOG_WARN, "http: invalid response header dropped", "name", n ? n : "(null)",
                    "request_id", req->id, NULL);
            continue;
        }
        need += strlen(n) + strlen(v) + 32; /* room for "; frame-ancestors 'none'" */
        if (strcasecmp(n, "Content-Security-Policy") == 0)
            csp = true;
        else if (strcasecmp(n, "Referrer-Policy") == 0)
            referrer = v;
        else if (strcasecmp(n, "X-Frame-Options") == 0)
            frame = v;
    }
    struct http_write *w = malloc(sizeof *w + need);
    if (!w)
        return NULL;
    struct out o = {w->data, 0, need};
    char line[64];
    snprintf(line, sizeof line, "HTTP/1.1 %d %s\r\n", status, status_reason(status));
    out_str(&o, line);
    out_header(&o, "Date", server_date(srv));
    if (framing == FRAME_LENGTH && !no_body) {
        snprintf(line, sizeof line, "%zu", len);
        out_header(&o, "Content-Length", line);
    } else if (framing == FRAME_CHUNKED) {
        out_header(&o, "Transfer-Encoding", "chunked");
    }
    out_header(&o, "Connection", keep_alive ? "keep-alive" : "close");
    out_header(&o, "X-Request-Id", req->id);
    out_header(&o, "X-Content-Type-Options", "nosniff");
    out_header(&o, "Referrer-Policy", referrer ? referrer : "no-referrer");
    out_header(&o, "X-Frame-Options", frame ? frame : "DENY");
    if (!csp)
        out_header(&o, "Content-Security-Policy", srv->cfg.default_csp);
    for (size_t i = 0; i < nheaders; i++) {
        const char *n = headers[i].name, *v = headers[i].value;
        if (!header_name_valid(n) || !header_value_valid(v) || header_reserved(n) ||
            strcasecmp(n, "Referrer-Policy") == 0 || strcasecmp(n, "X-Frame-Options") == 0)
            continue;
        out_str(&o, n);
        out_mem(&o, ": ", 2);
        out_str(&o, v);
        if (strcasecmp(n, "Content-Security-Policy") == 0 && !strstr(v, "frame-ancestors"))
            out_str(&o, "; frame-ancestors 'none'");
        out_mem(&o, "\r\n", 2);
    }
    out_mem(&o, "\r\n", 2);
    if (send_body && len)
        out_mem(&o, body, len);
    w->len = o.len;
    return w;
}

static int response_precheck(struct http_request *req, int *status)
{
    if (!req->conn || req->conn->doomed || req->conn->state != CONN_HANDLING)
        return HTTP_ERR_CLOSED;
    if (req->phase != REQ_HANDLER)
        return HTTP_ERR_STATE;
    if (*status < 200 || *status > 599) {
        char s[16];
        snprintf(s, sizeof s, "%d", *status);
        log_msg(LOG_WARN, "http: invalid status replaced by 500", "status", s, "request_id",
                req->id, NULL);
        *status = 500;
    }
    return HTTP_OK;
}

/* "Connection: close" from the handler ends the connection after this
 * response (the header itself is always the server's). */
static bool handler_asks_close(const struct http_header *headers, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (headers[i].name && headers[i].value && strcasecmp(headers[i].name, "Connection") == 0 &&
            strcasecmp(headers[i].value, "close") == 0)
            return true;
    return false;
}

static bool conn_keeps_alive(const struct http_conn *c)
{
    return c->keep_alive && !c->srv->shutting_down;
}

int http_respond(struct http_request *req, int status, const struct http_header *headers,
                 size_t nheaders, const void *body, size_t len)
{
    int rc = response_precheck(req, &status);
    if (rc != HTTP_OK)
        return rc;
    struct http_conn *c = req->conn;
    if (handler_asks_close(headers, nheaders))
        c->keep_alive = false;
    struct http_write *w = response_build(c->srv, req, status, headers, nheaders, body, len,
                                          FRAME_LENGTH, conn_keeps_alive(c));
    if (!w)
        return HTTP_ERR_NOMEM;
    req->phase = REQ_SENT;
    req->status = status;
    bool sends_body = !req->head_method && status != 204 && status != 304;
    req->body_bytes_sent = sends_body ? len : 0;
    return conn_write(c, w) == 0 ? HTTP_OK : HTTP_ERR_CLOSED;
}

int http_stream_begin(struct http_request *req, int status, const struct http_header *headers,
                      size_t nheaders)
{
    int rc = response_precheck(req, &status);
    if (rc != HTTP_OK)
        return rc;
    struct http_conn *c = req->conn;
    if (handler_asks_close(headers, nheaders))
        c->keep_alive = false;
    int framing = req->http_minor >= 1 ? FRAME_CHUNKED : FRAME_EOF;
    if (framing == FRAME_EOF && !req->head_method)
        c->keep_alive = false;
    struct http_write *w = response_build(c->srv, req, status, headers, nheaders, NULL, 0, framing,
                                          conn_keeps_alive(c));
    if (!w)
        return HTTP_ERR_NOMEM;
    req->phase = REQ_STREAMING;
    req->status = status;
    req->chunked_out = framing == FRAME_CHUNKED;
    return conn_write(c, w) == 0 ? HTTP_OK : HTTP_ERR_CLOSED;
}

static int stream_precheck(struct http_request *req)
{
    if (!req->conn || req->conn->doomed || req->conn->state != CONN_HANDLING)
        return HTTP_ERR_CLOSED;
    if (req->phase != REQ_STREAMING)
        return HTTP_ERR_STATE;
    return HTTP_OK;
}

int http_stream_write(struct http_request *req, const void *data, size_t len)
{
    int rc = stream_precheck(req);
    if (rc != HTTP_OK || len == 0 || req->head_method)
        return rc;
    struct http_conn *c = req->conn;
    size_t queued = uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
    if (queued + len > c->srv->cfg.max_stream_backlog) {
        log_msg(LOG_WARN, "http: stream client too slow, dropped", "request_id", req->id, "remote",
                req->remote, NULL);
        conn_doom(c);
        return HTTP_ERR_SLOW;
    }
    struct http_write *w = malloc(sizeof *w + len + 32);
    if (!w)
        return HTTP_ERR_NOMEM;
    size_t n = 0;
    if (req->chunked_out)
        n = (size_t)snprintf(w->data, 32, "%zx\r\n", len);
    memcpy(w->data + n, data, len);
    n += len;
    if (req->chunked_out) {
        memcpy(w->data + n, "\r\n", 2);
        n += 2;
    }
    w->len = n;
    req->body_bytes_sent += len;
    return conn_write(c, w) == 0 ? HTTP_OK : HTTP_ERR_CLOSED;
}

int http_stream_end(struct http_request *req)
{
    int rc = stream_precheck(req);
    if (rc != HTTP_OK)
        return rc;
    struct http_conn *c = req->conn;
    req->phase = REQ_SENT;
    if (req->chunked_out && !req->head_method) {
        static const char last[] = "0\r\n\r\n";
        struct http_write *w = malloc(sizeof *w + sizeof last);
        if (!w) {
            conn_doom(c);
            return HTTP_ERR_NOMEM;
        }
        memcpy(w->data, last, sizeof last - 1);
        w->len = sizeof last - 1;
        return conn_write(c, w) == 0 ? HTTP_OK : HTTP_ERR_CLOSED;
    }
    if (c->writes_pending == 0)
        conn_timer_arm(c, 0); /* finish from the loop, not inside this call */
    return HTTP_OK;
}

void http_request_release(struct http_request *req)
{
    if (!req || !req->handler_owned)
        return;
    req->handler_owned = false;
    req->on_close = NULL;
    if (req->conn && req->phase == REQ_HANDLER) {
        log_msg(LOG_WARN, "http: request released without a response, answering 500", "request_id",
                req->id, "path", http_request_path(req), NULL);
        static const char body[] =
            "{\"error\":{\"code\":\"internal\",\"message\":\"no response from handler\"}}";
        static const struct http_header ct = {"Content-Type", "application/json"};
        http_respond(req, 500, &ct, 1, body, sizeof body - 1);
    } else if (req->conn && req->phase == REQ_STREAMING) {
        http_stream_end(req);
    }
    request_unref(req);
}
