/* The handler side of the HTTP server: request accessors, responses,
 * streams, release; and the formatting of every response head. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sodium.h>
#include "host/log.h"
#include "net/http_server_internal.h"

/* ---- requests ---- */

/* A random UUID (v4) into OUT (37 bytes with the NUL). */
void http_request_id_generate(char *out)
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
struct http_write *http_server_build_response(struct http_server *srv, struct http_request *req,
                                              int status, const struct http_header *headers,
                                              size_t nheaders, const void *body, size_t len,
                                              int framing, bool keep_alive)
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
    struct http_write *w = http_server_build_response(c->srv, req, status, headers, nheaders, body,
                                                      len, FRAME_LENGTH, conn_keeps_alive(c));
    if (!w)
        return HTTP_ERR_NOMEM;
    req->phase = REQ_SENT;
    req->status = status;
    bool sends_body = !req->head_method && status != 204 && status != 304;
    req->body_bytes_sent = sends_body ? len : 0;
    return http_conn_write(c, w) == 0 ? HTTP_OK : HTTP_ERR_CLOSED;
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
    struct http_write *w = http_server_build_response(c->srv, req, status, headers, nheaders, NULL,
                                                      0, framing, conn_keeps_alive(c));
    if (!w)
        return HTTP_ERR_NOMEM;
    req->phase = REQ_STREAMING;
    req->status = status;
    req->chunked_out = framing == FRAME_CHUNKED;
    return http_conn_write(c, w) == 0 ? HTTP_OK : HTTP_ERR_CLOSED;
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
        http_conn_doom(c);
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
    return http_conn_write(c, w) == 0 ? HTTP_OK : HTTP_ERR_CLOSED;
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
            http_conn_doom(c);
            return HTTP_ERR_NOMEM;
        }
        memcpy(w->data, last, sizeof last - 1);
        w->len = sizeof last - 1;
        return http_conn_write(c, w) == 0 ? HTTP_OK : HTTP_ERR_CLOSED;
    }
    if (c->writes_pending == 0)
        http_conn_timer_arm(c, 0); /* finish from the loop, not inside this call */
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
    http_request_unref(req);
}