/* HTTP client on libcurl's multi interface, driven by libuv.
 *
 * The wiring follows DESIGN.md "Stack notes":
 *   - curl's timer callback only arms or stops one uv_timer (negative: stop);
 *     the timer, when it fires, hands control to curl.
 *   - curl's socket callback starts/updates one uv_poll per socket; on
 *     CURL_POLL_REMOVE the poll is closed and the socket's pointer cleared
 *     with curl_multi_assign(NULL), because fd numbers are reused at once.
 *   - after every curl_multi_socket_action, finished transfers are collected
 *     with curl_multi_info_read.
 *
 * User callbacks (done, close) only ever run from http_client_check_done() or
 * http_client_close(), never from inside a libcurl call, so they may start,
 * cancel or close without re-entering curl. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>
#include "host/log.h"
#include "net/http_client.h"

#ifndef O2C_VERSION
#define O2C_VERSION "dev"
#endif

struct http_buf {
    char *data;
    size_t len;
    size_t cap;
};

/* One watched socket.  Freed by its close callback. */
struct http_socket {
    uv_poll_t poll;
    struct http_client *client;
    curl_socket_t fd;
    int events; /* UV_READABLE|UV_WRITABLE as curl last asked */
    int closing;
    struct http_socket *prev, *next;
};

struct http_transfer {
    struct http_client *client;
    CURL *easy;
    struct curl_slist *header_list;
    char *body_copy;
    struct http_buf body;
    struct http_buf head; /* "name\0value\0" pairs of the last header block */
    size_t nheaders;
    int too_large;
    int out_of_memory;
    int delivering; /* done callback started: cancel is a no-op */
    int send_once;  /* POST/PATCH: never sent a second time by curl itself */
    int sends;      /* times curl started sending the request */
    http_client_done_fn done;
    void *ud;
    char method[16];
    char *url_for_log; /* URL without its query string */
    char errbuf[CURL_ERROR_SIZE];
    struct http_transfer *prev, *next;
};

struct http_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    size_t max_response_bytes;
    long connect_timeout_ms;
    long timeout_ms;
    char *proxy;
    char *user_agent;
    char *ca_file;
    struct http_transfer *transfers;
    struct http_socket *sockets;
    struct http_client_stats stats;
    int closing;
    int in_multi_cleanup;
    unsigned handles_closing; /* uv_close calls whose callback has not run */
    http_client_close_fn close_cb;
    void *close_ud;
    char last_error[256];
};

/* ---- small helpers ---- */

static int http_buf_append(struct http_buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p)
            return -1;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

static char *http_strdup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

const char *http_client_error_name(enum http_client_error error)
{
    switch (error) {
    case HTTP_CLIENT_OK:
        return "ok";
    case HTTP_CLIENT_ERR_CONNECT:
        return "connect";
    case HTTP_CLIENT_ERR_TIMEOUT:
        return "timeout";
    case HTTP_CLIENT_ERR_TOO_LARGE:
        return "too_large";
    case HTTP_CLIENT_ERR_CLOSED:
        return "closed";
    case HTTP_CLIENT_ERR_OTHER:
        break;
    }
    return "error";
}

/* Connection failures and connections dropped mid-response are CONNECT (a
 * retry on a fresh connection may succeed); everything else unknown is OTHER. */
static enum http_client_error http_client_classify(CURLcode code, int too_large)
{
    if (too_large || code == CURLE_FILESIZE_EXCEEDED)
        return HTTP_CLIENT_ERR_TOO_LARGE;
    switch (code) {
    case CURLE_OK:
        return HTTP_CLIENT_OK;
    case CURLE_OPERATION_TIMEDOUT:
        return HTTP_CLIENT_ERR_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return HTTP_CLIENT_ERR_CONNECT;
    default:
        return HTTP_CLIENT_ERR_OTHER;
    }
}

const char *http_response_header(const struct http_response *res, const char *name)
{
    for (size_t i = 0; i < res->nheaders; i++)
        if (strcasecmp(res->headers[i].name, name) == 0)
            return res->headers[i].value;
    return NULL;
}

/* What a response holds when it has no buffer of its own (an out-of-memory
 * corner, or after its body was taken): never handed out to be freed. */
static char http_no_body[1];

char *http_response_take_body(struct http_response *res, size_t *len)
{
    char *body = res->body;
    if (len)
        *len = res->body_len;
    if (body == http_no_body) {
        body = calloc(1, 1);
        if (len)
            *len = 0;
    }
    res->body = http_no_body;
    res->body_len = 0;
    return body;
}

/* ---- libuv <-> curl plumbing ---- */

static void http_client_finalize(struct http_client *c)
{
    http_client_close_fn cb = c->close_cb;
    void *ud = c->close_ud;
    free(c->proxy);
    free(c->user_agent);
    free(c->ca_file);
    if (cb)
        cb(c, ud);
    free(c);
    curl_global_cleanup();
}

static void http_client_on_handle_closed(struct http_client *c)
{
    c->handles_closing--;
    if (c->closing && c->handles_closing == 0)
        http_client_finalize(c);
}

static void http_socket_on_closed(uv_handle_t *h)
{
    struct http_socket *s = h->data;
    struct http_client *c = s->client;
    free(s);
    http_client_on_handle_closed(c);
}

static void http_timer_on_closed(uv_handle_t *h)
{
    http_client_on_handle_closed(h->data);
}

static void http_socket_close(struct http_client *c, struct http_socket *s)
{
    if (s->closing)
        return;
    s->closing = 1;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->sockets = s->next;
    if (s->next)
        s->next->prev = s->prev;
    c->handles_closing++;
    uv_close((uv_handle_t *)&s->poll, http_socket_on_closed);
}

static void http_transfer_free(struct http_transfer *t)
{
    curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->header_list);
    free(t->body_copy);
    free(t->body.data);
    free(t->head.data);
    free(t->url_for_log);
    free(t);
}

static void http_transfer_unlink(struct http_transfer *t)
{
    struct http_client *c = t->client;
    if (t->prev)
        t->prev->next = t->next;
    else
        c->transfers = t->next;
    if (t->next)
        t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

/* Builds the response of T (finished with CODE, or closed when CLOSED),
 * removes T from the multi handle, runs its done callback and frees it. */
/* curl wanted to send a POST/PATCH again and was refused (http_transfer_on_prereq). */
static int http_transfer_resend_refused(const struct http_transfer *t)
{
    return t->send_once && t->sends > 1;
}

static void http_transfer_deliver(struct http_transfer *t, CURLcode code, int closed)
{
    struct http_client *c = t->client;
    struct http_response res = {0};
    long status = 0, connects = 0;
    char message[CURL_ERROR_SIZE + 512];

    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(t->easy, CURLINFO_NUM_CONNECTS, &connects);
    curl_multi_remove_handle(c->multi, t->easy);
    http_transfer_unlink(t);
    t->delivering = 1;

    res.status = status;
    res.error = closed ? HTTP_CLIENT_ERR_CLOSED : http_client_classify(code, t->too_large);
    res.curl_code = closed ? 0 : (int)code;
    res.reused_connection = status > 0 && connects == 0;
    int resend_refused = http_transfer_resend_refused(t);
    if (resend_refused && !closed)
        res.error = HTTP_CLIENT_ERR_CONNECT;
    message[0] = '\0';
    if (res.error != HTTP_CLIENT_OK) {
        const char *why = closed             ? "HTTP client closed"
                          : t->too_large     ? "response larger than the configured cap"
                          : t->out_of_memory ? "out of memory reading the response"
                          : resend_refused   ? "the connection closed after the request was sent, "
                                               "before any response"
                          : t->errbuf[0] != '\0' ? t->errbuf
                                                 : curl_easy_strerror(code);
        if (t->too_large)
            snprintf(message, sizeof message, "%s %s: response larger than %zu bytes", t->method,
                     t->url_for_log, c->max_response_bytes);
        else
            snprintf(message, sizeof message, "%s %s: %s", t->method, t->url_for_log, why);
    }
    res.message = message;

    struct http_header *headers = NULL;
    if (t->nheaders > 0 && (headers = calloc(t->nheaders, sizeof *headers)) != NULL) {
        const char *p = t->head.data;
        for (size_t i = 0; i < t->nheaders; i++) {
            headers[i].name = p;
            p += strlen(p) + 1;
            headers[i].value = p;
            p += strlen(p) + 1;
        }
        res.headers = headers;
        res.nheaders = t->nheaders;
    }
    if (!t->body.data && http_buf_append(&t->body, "", 0) != 0)
        t->body.data = NULL;
    res.body = t->body.data ? t->body.data : http_no_body;
    res.body_len = t->body.data ? t->body.len : 0;

    if (res.error == HTTP_CLIENT_OK) {
        c->stats.finished++;
    } else {
        c->stats.failed++;
        log_msg(LOG_DEBUG, "http transfer failed", "error", http_client_error_name(res.error),
                "detail", message, NULL);
    }
    c->stats.connections_opened += (uint64_t)(connects > 0 ? connects : 0);
    c->stats.connections_reused += (uint64_t)res.reused_connection;
    c->stats.active--;

    char *body = t->body.data;
    t->done(t, &res, t->ud);
    /* The callback may have taken the body (res.body no longer ours). */
    if (res.body != body)
        t->body.data = NULL;
    free(headers);
    http_transfer_free(t);
}

/* Delivers every transfer curl reports finished.  Stops when a callback
 * closed the client (the multi handle is then gone). */
static void http_client_check_done(struct http_client *c)
{
    CURLMsg *msg;
    int left;
    while (!c->closing && (msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURLcode code = msg->data.result;
        struct http_transfer *t = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        http_transfer_deliver(t, code, 0);
    }
}

static void http_client_on_timer(uv_timer_t *timer)
{
    struct http_client *c = timer->data;
    int running;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    http_client_check_done(c);
}

static void http_socket_on_poll(uv_poll_t *poll, int status, int events)
{
    struct http_socket *s = poll->data;
    struct http_client *c = s->client;
    int flags = 0, running;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    /* On an error libuv stops the poll; if curl still wants the socket (it
     * did not remove it), watch it again so the transfer cannot hang.  S
     * stays allocated until its close callback, which runs later. */
    if (status < 0 && !s->closing && !c->closing && s->events)
        uv_poll_start(&s->poll, s->events, http_socket_on_poll);
    http_client_check_done(c);
}

/* curl's CURLMOPT_SOCKETFUNCTION.  Runs inside libcurl calls. */
static int http_client_on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct http_client *c = userp;
    struct http_socket *s = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            http_socket_close(c, s);
            if (!c->in_multi_cleanup)
                curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s)
            return -1;
        s->client = c;
        s->fd = fd;
        int rc = uv_poll_init_socket(c->loop, &s->poll, fd);
        if (rc != 0) {
            log_msg(LOG_ERROR, "http client cannot watch socket", "error", uv_strerror(rc), NULL);
            free(s);
            return -1;
        }
        s->poll.data = s;
        s->next = c->sockets;
        if (c->sockets)
            c->sockets->prev = s;
        c->sockets = s;
        curl_multi_assign(c->multi, fd, s);
    }
    s->events = 0;
    if (what & CURL_POLL_IN)
        s->events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        s->events |= UV_WRITABLE;
    uv_poll_start(&s->poll, s->events, http_socket_on_poll);
    return 0;
}

/* curl's CURLMOPT_TIMERFUNCTION: only arms or stops the timer. */
static int http_client_on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct http_client *c = userp;
    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, http_client_on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- curl data callbacks (run inside libcurl) ---- */

static size_t http_transfer_on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct http_transfer *t = ud;
    size_t n = size * nmemb;
    if (t->body.len + n > t->client->max_response_bytes) {
        t->too_large = 1;
        return CURL_WRITEFUNC_ERROR;
    }
    if (http_buf_append(&t->body, ptr, n) != 0) {
        t->out_of_memory = 1;
        return CURL_WRITEFUNC_ERROR;
    }
    return n;
}

static void http_trim(const char **s, size_t *len)
{
    while (*len > 0 && (**s == ' ' || **s == '\t')) {
        (*s)++;
        (*len)--;
    }
    while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' || (*s)[*len - 1] == '\r' ||
                        (*s)[*len - 1] == '\n'))
        (*len)--;
}

/* Keeps the header block of the last response: a status line starts a new
 * block (interim 1xx responses and proxy CONNECT replies are dropped). */
static size_t http_transfer_on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    struct http_transfer *t = ud;
    size_t n = size * nmemb;
    const char *line = ptr;
    size_t len = n;
    if (t->head.len + n > t->client->max_response_bytes) {
        t->too_large = 1;
        return CURL_WRITEFUNC_ERROR;
    }
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        t->head.len = 0;
        t->nheaders = 0;
        return n;
    }
    int folded = len > 0 && (line[0] == ' ' || line[0] == '\t');
    http_trim(&line, &len);
    if (len == 0)
        return n;
    int rc = 0;
    if (folded) {
        if (t->nheaders == 0)
            return n;
        t->head.len--; /* reopen the last value: drop its NUL */
        rc = http_buf_append(&t->head, " ", 1) || http_buf_append(&t->head, line, len) ||
             http_buf_append(&t->head, "", 1);
    } else {
        const char *colon = memchr(line, ':', len);
        if (!colon || colon == line)
            return n; /* not a header: ignore */
        const char *name = line, *value = colon + 1;
        size_t name_len = (size_t)(colon - line), value_len = len - name_len - 1;
        http_trim(&name, &name_len);
        http_trim(&value, &value_len);
        rc = http_buf_append(&t->head, name, name_len) || http_buf_append(&t->head, "", 1) ||
             http_buf_append(&t->head, value, value_len) || http_buf_append(&t->head, "", 1);
        t->nheaders++;
    }
    if (rc != 0) {
        t->out_of_memory = 1;
        return CURL_WRITEFUNC_ERROR;
    }
    return n;
}

/* ---- public API ---- */

struct http_client *http_client_new(uv_loop_t *loop, const struct http_client_config *config)
{
    struct http_client_config defaults = {0};
    if (!config)
        config = &defaults;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_msg(LOG_ERROR, "curl_global_init failed", NULL);
        return NULL;
    }
    struct http_client *c = calloc(1, sizeof *c);
    if (!c)
        goto fail;
    c->loop = loop;
    c->max_response_bytes = config->max_response_bytes ? config->max_response_bytes
                                                       : HTTP_CLIENT_DEFAULT_MAX_RESPONSE_BYTES;
    c->connect_timeout_ms = config->connect_timeout_ms > 0 ? config->connect_timeout_ms
                                                           : HTTP_CLIENT_DEFAULT_CONNECT_TIMEOUT_MS;
    c->timeout_ms = config->timeout_ms > 0 ? config->timeout_ms : HTTP_CLIENT_DEFAULT_TIMEOUT_MS;
    c->proxy = http_strdup_or_null(config->proxy);
    c->user_agent = strdup(config->user_agent ? config->user_agent : "o2c/" O2C_VERSION);
    c->ca_file = http_strdup_or_null(config->ca_file);
    if ((config->proxy && *config->proxy && !c->proxy) || !c->user_agent ||
        (config->ca_file && *config->ca_file && !c->ca_file))
        goto fail;
    c->multi = curl_multi_init();
    if (!c->multi)
        goto fail;

    long per_host = config->max_host_connections > 0 ? config->max_host_connections
                                                     : HTTP_CLIENT_DEFAULT_MAX_HOST_CONNECTIONS;
    long cache = per_host * 4 < 16 ? 16 : per_host * 4;
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, http_client_on_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, http_client_on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, per_host);
    if (config->max_total_connections > 0)
        curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, config->max_total_connections);
    curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, cache);
    curl_multi_setopt(c->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);

    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    return c;
fail:
    log_msg(LOG_ERROR, "http client: out of memory creating the client", NULL);
    if (c) {
        free(c->proxy);
        free(c->user_agent);
        free(c->ca_file);
        free(c);
    }
    curl_global_cleanup();
    return NULL;
}

static int http_client_fail_request(struct http_client *c, const char *what, const char *input)
{
    /* The input (a URL, a header) may be long: its start says enough. */
    snprintf(c->last_error, sizeof c->last_error, "%.64s%s%.180s", what, input ? ": " : "",
             input ? input : "");
    return -1;
}

static int http_token_valid(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("!#$%&'*+-.^_`|~", s[i]))
            return 0;
    return 1;
}

/* Checks REQ; on a problem fills c->last_error and returns -1. */
static int http_client_check_request(struct http_client *c, const struct http_client_request *req,
                                     http_client_done_fn done)
{
    if (c->closing)
        return http_client_fail_request(c, "HTTP client is closed", NULL);
    if (!done)
        return http_client_fail_request(c, "no done callback", NULL);
    if (!req->url ||
        (strncasecmp(req->url, "http://", 7) != 0 && strncasecmp(req->url, "https://", 8) != 0))
        return http_client_fail_request(c, "url must start with http:// or https://",
                                        req->url ? req->url : "(none)");
    if (req->method && !http_token_valid(req->method, 15))
        return http_client_fail_request(c, "invalid HTTP method", req->method);
    if (req->body_len > 0 && !req->body)
        return http_client_fail_request(c, "body_len without a body", NULL);
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (!h->name || !http_token_valid(h->name, 256))
            return http_client_fail_request(c, "invalid header name", h->name ? h->name : "");
        if (h->value && strpbrk(h->value, "\r\n"))
            return http_client_fail_request(c, "header value contains CR or LF", h->name);
    }
    return 0;
}

static struct curl_slist *http_build_header_list(const struct http_client_request *req)
{
    /* No "Expect: 100-continue" round trip before large bodies. */
    struct curl_slist *list = curl_slist_append(NULL, "Expect:");
    for (size_t i = 0; list && i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        const char *value = h->value ? h->value : "";
        size_t n = strlen(h->name) + strlen(value) + 3;
        char *line = malloc(n);
        if (!line) {
            curl_slist_free_all(list);
            return NULL;
        }
        /* "Name;" is curl's way to send a header with an empty value. */
        if (*value)
            snprintf(line, n, "%s: %s", h->name, value);
        else
            snprintf(line, n, "%s;", h->name);
        struct curl_slist *next = curl_slist_append(list, line);
        free(line);
        if (!next) {
            curl_slist_free_all(list);
            return NULL;
        }
        list = next;
    }
    return list;
}

/* curl calls this each time it is about to send the request.  A second call
 * means curl is re-sending on its own: a reused connection died after the
 * request went out and before any response byte came back.  The server may
 * have acted on it (an LLM call is billed and counted against the rate limit),
 * so a POST or PATCH fails instead, as a connection error: the caller decides
 * whether to send it again, through its own rate limiter and retry budget. */
static int http_transfer_on_prereq(void *ud, char *primary_ip, char *local_ip, int primary_port,
                                   int local_port)
{
    (void)primary_ip, (void)local_ip, (void)primary_port, (void)local_port;
    struct http_transfer *t = ud;
    t->sends++;
    return http_transfer_resend_refused(t) ? CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
}

static void http_transfer_set_method(struct http_transfer *t, const struct http_client_request *req)
{
    CURL *e = t->easy;
    int has_body = req->body != NULL;
    if (strcmp(t->method, "GET") == 0 && !has_body) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
        return;
    }
    if (strcmp(t->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        return;
    }
    t->send_once = strcmp(t->method, "POST") == 0 || strcmp(t->method, "PATCH") == 0;
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, http_transfer_on_prereq);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, t);
    if (strcmp(t->method, "POST") != 0)
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, t->method);
    if (has_body || strcmp(t->method, "POST") == 0) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->body_copy);
    }
}

static void http_transfer_set_options(struct http_transfer *t,
                                      const struct http_client_request *req, const char *url)
{
    struct http_client *c = t->client;
    CURL *e = t->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROXY, c->proxy ? c->proxy : "");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* Over TLS, wait for ALPN to tell whether the first connection will
     * multiplex (HTTP/2) rather than opening one per transfer.  Never over
     * plain HTTP: there curl only learns "no multiplexing" from the first
     * response, so transfers queued behind a slow one would wait for it. */
    if (strncasecmp(url, "https://", 8) == 0)
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
    if (c->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->header_list);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_transfer_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, http_transfer_on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_response_bytes);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     req->connect_timeout_ms > 0 ? req->connect_timeout_ms : c->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : c->timeout_ms);
    if (req->low_speed_limit > 0 && req->low_speed_time_s > 0) {
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, req->low_speed_limit);
        curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, req->low_speed_time_s);
    }
    http_transfer_set_method(t, req);
}

struct http_transfer *http_client_request(struct http_client *client,
                                          const struct http_client_request *req,
                                          http_client_done_fn done, void *ud)
{
    if (http_client_check_request(client, req, done) != 0)
        return NULL;
    struct http_transfer *t = calloc(1, sizeof *t);
    if (!t)
        goto oom;
    t->client = client;
    t->done = done;
    t->ud = ud;
    snprintf(t->method, sizeof t->method, "%s",
             req->method ? req->method : (req->body ? "POST" : "GET"));
    for (char *m = t->method; *m; m++)
        *m = (char)toupper((unsigned char)*m);
    t->url_for_log = strndup(req->url, strcspn(req->url, "?#"));
    t->easy = curl_easy_init();
    t->header_list = http_build_header_list(req);
    if (req->body) {
        t->body_copy = malloc(req->body_len ? req->body_len : 1);
        if (t->body_copy)
            memcpy(t->body_copy, req->body, req->body_len);
    }
    if (!t->url_for_log || !t->easy || !t->header_list || (req->body && !t->body_copy))
        goto oom;
    http_transfer_set_options(t, req, req->url);
    CURLMcode rc = curl_multi_add_handle(client->multi, t->easy);
    if (rc != CURLM_OK) {
        http_client_fail_request(client, "cannot start the transfer", curl_multi_strerror(rc));
        http_transfer_free(t);
        return NULL;
    }
    t->next = client->transfers;
    if (client->transfers)
        client->transfers->prev = t;
    client->transfers = t;
    client->stats.started++;
    client->stats.active++;
    return t;
oom:
    http_client_fail_request(client, "out of memory starting the transfer", req->url);
    if (t)
        http_transfer_free(t);
    return NULL;
}

void http_client_cancel(struct http_transfer *t)
{
    if (!t || t->delivering)
        return;
    struct http_client *c = t->client;
    curl_multi_remove_handle(c->multi, t->easy);
    http_transfer_unlink(t);
    c->stats.cancelled++;
    c->stats.active--;
    http_transfer_free(t);
}

void http_client_close(struct http_client *c, http_client_close_fn cb, void *ud)
{
    if (!c || c->closing)
        return;
    c->closing = 1;
    c->close_cb = cb;
    c->close_ud = ud;
    /* Callbacks may cancel other transfers: always take the current head. */
    while (c->transfers)
        http_transfer_deliver(c->transfers, CURLE_OK, 1);
    c->in_multi_cleanup = 1;
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    while (c->sockets)
        http_socket_close(c, c->sockets);
    uv_timer_stop(&c->timer);
    c->handles_closing++;
    uv_close((uv_handle_t *)&c->timer, http_timer_on_closed);
}

void http_client_get_stats(const struct http_client *c, struct http_client_stats *out)
{
    *out = c->stats;
}

int http_client_is_closing(const struct http_client *c)
{
    return c->closing;
}

const char *http_client_last_error(const struct http_client *c)
{
    return c->last_error;
}
