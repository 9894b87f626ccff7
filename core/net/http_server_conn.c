/* One HTTP connection: reading, parsing with llhttp, timeouts, closing.
 *
 * A connection moves through these states:
 *
 *   HEAD ──headers──► BODY ──message complete──► HANDLING ──written──► HEAD (keep-alive)
 *     │                 │                          │                  └─► LINGER (close)
 *     └── error/timeout ┴──► LINGER (error response queued, FIN, drain) ──► CLOSED
 *   any state ── EOF/read error/write error/timer ──► CLOSED
 *
 * Requests are parsed one at a time: llhttp is paused at message complete
 * and resumed on the buffered remainder only after the response is written,
 * which answers pipelined requests in order and bounds memory.
 *
 * One uv_timer per connection serves every deadline: in HEAD the header
 * timeout (or the keep-alive idle timeout before the first byte), in BODY
 * the body timeout, in HANDLING the write-stall timeout (only while bytes are
 * queued), in LINGER the drain limit.  A zero-delay start of the same timer
 * is how work is deferred out of a handler-side call (a failed write, an
 * ended stream with nothing left to flush). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "host/log.h"
#include "net/http_server_internal.h"

#define HTTP_HEAD_INITIAL 1024
#define HTTP_BODY_INITIAL 4096

static void conn_fail(struct http_conn *c, int status, const char *code, const char *message);
static void conn_process(struct http_conn *c);
static void conn_update_reading(struct http_conn *c);
static void on_conn_timer(uv_timer_t *t);
static void on_write(uv_write_t *wr, int status);

/* ---- requests being read ---- */

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

void http_request_unref(struct http_request *req)
{
    if (--req->refs > 0)
        return;
    free(req->head);
    free(req->headers);
    free(req->body);
    free(req);
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

/* ---- llhttp callbacks (fill c->req; never call the handler) ---- */

/* Connections being served, not counting those refused on their way out:
 * an address over its share must not use up the places of the others. */
static size_t conns_admitted(const struct http_server *srv)
{
    return srv->nconns - srv->nrefused;
}

/* While more than half the places are taken, a new connection has less time
 * to send its head: slow heads (slowloris) cannot hold places for long. */
static uint64_t conn_head_deadline_ms(const struct http_server *srv)
{
    return conns_admitted(srv) > srv->cfg.max_connections / 2 ? srv->cfg.busy_header_timeout_ms
                                                              : srv->cfg.header_timeout_ms;
}

/* Every deadline goes through here; a doomed connection keeps its
 * zero-delay close. */
void http_conn_timer_arm(struct http_conn *c, uint64_t ms)
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
        c->err_limit_bytes = max;
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
        http_conn_timer_arm(c, conn_head_deadline_ms(c->srv));
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
        c->err_message = "the request target is not a valid path: percent-encode it as UTF-8, "
                         "without NUL (%00), spaces, control characters or broken %-escapes";
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

static void send_continue(struct http_conn *c)
{
    static const char line[] = "HTTP/1.1 100 Continue\r\n\r\n";
    struct http_write *w = malloc(sizeof *w + sizeof line - 1);
    if (!w)
        return;
    w->len = sizeof line - 1;
    memcpy(w->data, line, w->len);
    http_conn_write(c, w);
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
        http_request_id_generate(req->id);

    req->body_limit =
        srv->cfg.body_limit ? srv->cfg.body_limit(req, srv->ud) : srv->cfg.max_body_size;
    bool has_body = (p->flags & F_CHUNKED) || p->content_length > 0;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > req->body_limit) {
        c->err_status = 413;
        c->err_limit_bytes = req->body_limit;
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
    http_conn_timer_arm(c, srv->cfg.body_timeout_ms);
    return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    struct http_conn *c = p->data;
    struct http_request *req = c->req;
    if (req->body_len + n > req->body_limit) { /* chunked: the running total passed it */
        c->err_status = 413;
        c->err_limit_bytes = req->body_limit;
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

/* llhttp callbacks; the rest stay NULL. */
static const llhttp_settings_t parser_settings = {
    .on_message_begin = on_message_begin,
    .on_url = on_url,
    .on_url_complete = on_text_complete,
    .on_header_field = on_header_field,
    .on_header_field_complete = on_text_complete,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

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
    if (c->refused)
        srv->nrefused--;
    if (c->address)
        http_server_address_release(srv, c->address);
    free(c);
    http_server_check_done(srv);
}

/* Closes at once.  A request still in flight is detached (respond becomes a
 * no-op) and its on_close callback runs. */
void http_conn_close(struct http_conn *c)
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
            http_server_access_log(srv, req, req->remote, req->id,
                                   req->phase == REQ_HANDLER ? 499 : req->status);
        }
        if (req->handler_owned && req->on_close) {
            http_close_fn cb = req->on_close;
            req->on_close = NULL;
            cb(req, req->on_close_ud);
        }
        http_request_unref(req);
    }
    conn_free_buffer(c);
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_conn_handle_closed);
}

/* Marks the connection for closing from its timer: used where a close must
 * not run inside a handler-side call. */
void http_conn_doom(struct http_conn *c)
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
        http_conn_close(c);
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
        http_conn_close(c);
        return;
    }
    http_conn_timer_arm(c, c->srv->cfg.linger_ms);
    conn_update_reading(c);
}

/* Bytes the kernel has taken so far: a stalled client shows no progress. */
static uint64_t conn_bytes_sent(struct http_conn *c)
{
    return c->bytes_queued - uv_stream_get_write_queue_size((uv_stream_t *)&c->tcp);
}

int http_conn_write(struct http_conn *c, struct http_write *w)
{
    w->conn = c;
    uv_buf_t b = uv_buf_init(w->data, (unsigned)w->len);
    int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_write);
    if (rc != 0) {
        free(w);
        http_conn_doom(c);
        return rc;
    }
    c->bytes_queued += w->len;
    if (c->writes_pending++ == 0 && c->state == CONN_HANDLING) {
        c->sent_seen = conn_bytes_sent(c);
        http_conn_timer_arm(c, c->srv->cfg.write_timeout_ms);
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
    http_server_access_log(srv, req, req->remote, req->id, req->status);
    http_request_unref(req);
    if (!c->keep_alive || srv->shutting_down) {
        conn_linger(c);
        return;
    }
    c->state = CONN_HEAD;
    c->head_bytes = 0;
    c->err_status = 0;
    c->err_limit_bytes = 0;
    c->err_message = NULL;
    c->idle_wait = true;
    http_conn_timer_arm(c, srv->cfg.idle_timeout_ms);
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
        http_conn_close(c);
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
            conn_fail(c, status, NULL, c->err_message);
            return;
        }
        c->rpos += used;
        if (in_head && c->state == CONN_HEAD) {
            c->head_bytes += used;
            /* Stored bytes are capped by head_append; this catches padding. */
            if (c->head_bytes > srv->cfg.max_head_size) {
                c->err_limit_bytes = srv->cfg.max_head_size;
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
        http_conn_close(c);
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
 * is noticed at once (pipelined bytes wait in the buffer meanwhile).  Room
 * counts the bytes still unparsed, not the buffer's fill: on_alloc moves
 * them to the front, so a buffer filled by one read and parsed whole (a
 * body larger than the buffer, sent at once) has all its room again. */
static void conn_update_reading(struct http_conn *c)
{
    if (c->state == CONN_CLOSED || c->doomed)
        return;
    bool room = !c->rbuf || c->rlen - c->rpos < c->srv->cfg.read_buffer_size;
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
        http_conn_close(c);
        return;
    }
    switch (c->state) {
    case CONN_HEAD:
        if (!c->req && c->rlen == 0) { /* nothing started: idle or silent */
            http_conn_close(c);
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
            http_conn_timer_arm(c, srv->cfg.write_timeout_ms);
            return;
        }
        srv->stats.timeouts++;
        http_conn_close(c);
        return;
    }
    case CONN_LINGER:
        http_conn_close(c);
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
        http_request_id_generate(id);
    if (status == 400 || status == 413 || status == 431)
        srv->stats.bad_requests++;

    char limit_message[160];
    if (!message && c->err_limit_bytes && (status == 413 || status == 431)) {
        snprintf(limit_message, sizeof limit_message, "%s: at most %zu bytes %s",
                 error_message_for(status), c->err_limit_bytes,
                 status == 413 ? "for this request; send a smaller body"
                               : "of request line and headers");
        message = limit_message;
    }
    char body[640];
    size_t blen = 0;
    body[0] = '\0';
    snprintf(body, sizeof body, "{\"error\":{\"code\":");
    blen = strlen(body);
    log_json_escape(body, sizeof body, &blen, code ? code : error_code_for(status));
    snprintf(body + blen, sizeof body - blen, ",\"message\":");
    blen = strlen(body);
    log_json_escape(body, sizeof body, &blen, message ? message : error_message_for(status));
    blen = strlen(body);
    if (c->err_limit_bytes && (status == 413 || status == 431))
        snprintf(body + blen, sizeof body - blen, ",\"limit_bytes\":%zu", c->err_limit_bytes);
    blen = strlen(body);
    snprintf(body + blen, sizeof body - blen, ",\"request_id\":\"%s\"}}", id);
    blen = strlen(body);

    struct http_request stub;
    memset(&stub, 0, sizeof stub);
    memcpy(stub.id, id, sizeof stub.id);
    stub.head_method = req && req->headers_done && req->head_method;
    static const struct http_header ct = {"Content-Type", "application/json"};
    struct http_write *w =
        http_server_build_response(srv, &stub, status, &ct, 1, body, blen, FRAME_LENGTH, false);

    http_server_access_log(srv, req && req->headers_done ? req : NULL, c->remote, id, status);
    if (req) {
        c->req = NULL;
        http_request_unref(req);
    }
    c->keep_alive = false;
    if (!w || http_conn_write(c, w) != 0) {
        http_conn_close(c);
        return;
    }
    conn_linger(c);
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

/* Over max_connections, or over its address's share of them: 503, then
 * close.  Returns true when C was refused. */
static bool conn_refuse_at_accept(struct http_conn *c)
{
    struct http_server *srv = c->srv;
    char message[160];
    const char *code = "too_many_connections";
    if (conns_admitted(srv) > srv->cfg.max_connections) {
        code = "unavailable";
        snprintf(message, sizeof message, "server busy (%zu connections open), retry later",
                 srv->cfg.max_connections);
    } else if (!c->address || c->address->conns > srv->cfg.max_connections_per_address) {
        srv->stats.connections_rejected_address++;
        snprintf(message, sizeof message,
                 "too many connections from your address (at most %zu); close idle "
                 "connections or reuse them, then retry",
                 srv->cfg.max_connections_per_address);
    } else {
        return false;
    }
    srv->stats.connections_rejected++;
    c->refused = true;
    srv->nrefused++;
    conn_fail(c, 503, code, message);
    return true;
}

/* Accepts one connection from SRV's listener.  Returns UV_ENOMEM (nothing
 * accepted) when the connection cannot be allocated. */
int http_conn_accept(struct http_server *srv)
{
    struct http_conn *c = calloc(1, sizeof *c);
    if (!c)
        return UV_ENOMEM;
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
    if (uv_accept((uv_stream_t *)&srv->listener, (uv_stream_t *)&c->tcp) != 0) {
        http_conn_close(c);
        return 0;
    }
    srv->stats.connections_total++;
    uv_tcp_nodelay(&c->tcp, 1);
    format_remote(c);
    llhttp_init(&c->parser, HTTP_REQUEST, &parser_settings);
    c->parser.data = c;
    c->state = CONN_HEAD;
    c->address = http_server_address_acquire(srv, c->remote);
    if (conn_refuse_at_accept(c))
        return 0;
    http_conn_timer_arm(c, conn_head_deadline_ms(srv));
    conn_update_reading(c);
    return 0;
}
