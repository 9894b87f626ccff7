/* http_server on real loopback sockets.
 *
 * Each test runs the server on an ephemeral port in a uv loop on the test's
 * thread, and a client script in a second thread speaking raw HTTP over
 * blocking sockets (5 s receive timeout so nothing hangs).  The client
 * thread only records what it saw; assertions run on the test thread after
 * it has been joined.  When the client script returns, the server is shut
 * down; the loop must then end with no handle left (uv_loop_close == 0).
 * Timeouts are shortened where a test needs them; no test asserts a
 * duration. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include "llhttp.h"
#include "net/http_server.h"

/* The -asan variant links the sanitizer runtime (this file itself is not
 * instrumented): detect it at run time. */
extern void __asan_init(void) __attribute__((weak));

#define MAX_RESP 8

struct resp {
    int status;
    char headers[4096]; /* "name: value\n", names lower-cased */
    size_t hlen;
    char *body;
    size_t body_len;
};

struct fx {
    uv_loop_t loop;
    struct http_server *srv;
    struct http_server_config cfg;
    uv_async_t client_done;
    pthread_t thread;
    int port;
    void (*client)(struct fx *);
    uint64_t grace_ms;
    bool shutdown_done;
    struct http_server_stats stats;
    /* loop thread */
    int access_entries;
    int last_status;
    char last_route[64];
    int respond_after_close_rc;
    int write_after_close_rc;
    int flood_rc;
    atomic_int dispatched;
    atomic_int closed_notified;
    atomic_int logged;
    /* client thread */
    struct resp r[MAX_RESP];
    int flag[16];
    int kept_fd;
    long rss_delta_kb;
    long heap_note;
    char failure[256]; /* the first mismatch a client script saw, "" when none */
};

/* ---- loop side: handler and friends ---- */

enum later_kind { LATER_RESPOND, LATER_STREAM, LATER_FOREVER };

struct later {
    uv_timer_t timer;
    struct fx *f;
    struct http_request *req;
    enum later_kind kind;
    int n;
};

static void later_free(uv_handle_t *h)
{
    free(h->data);
}

static void later_tick(uv_timer_t *t)
{
    struct later *l = t->data;
    char buf[64];
    switch (l->kind) {
    case LATER_RESPOND: {
        const char *path = http_request_path(l->req);
        http_respond(l->req, 200, NULL, 0, path, strlen(path));
        http_request_release(l->req);
        uv_close((uv_handle_t *)t, later_free);
        return;
    }
    case LATER_STREAM:
        snprintf(buf, sizeof buf, "data: %d\n\n", ++l->n);
        http_stream_write(l->req, buf, strlen(buf));
        if (l->n == 3) {
            http_stream_end(l->req);
            http_request_release(l->req);
            uv_close((uv_handle_t *)t, later_free);
        }
        return;
    case LATER_FOREVER:
        snprintf(buf, sizeof buf, "data: tick %d\n\n", ++l->n);
        if (http_stream_write(l->req, buf, strlen(buf)) != HTTP_OK)
            uv_timer_stop(t); /* on_close cleans up */
        return;
    }
}

static struct later *later_start(struct fx *f, struct http_request *req, enum later_kind kind,
                                 uint64_t ms, uint64_t repeat)
{
    struct later *l = calloc(1, sizeof *l);
    l->f = f;
    l->req = req;
    l->kind = kind;
    uv_timer_init(&f->loop, &l->timer);
    l->timer.data = l;
    uv_timer_start(&l->timer, later_tick, ms, repeat);
    return l;
}

static void on_held_closed(struct http_request *req, void *ud)
{
    struct fx *f = ud;
    f->respond_after_close_rc = http_respond(req, 200, NULL, 0, "late", 4);
    atomic_fetch_add(&f->closed_notified, 1);
    http_request_release(req);
}

static void on_forever_closed(struct http_request *req, void *ud)
{
    struct fx *f = ud;
    struct later *l = http_request_userdata(req);
    f->write_after_close_rc = http_stream_write(req, "x", 1);
    uv_close((uv_handle_t *)&l->timer, later_free);
    atomic_fetch_add(&f->closed_notified, 1);
    http_request_release(req);
}

static void on_shutdown_done(struct http_server *srv, void *ud)
{
    struct fx *f = ud;
    http_server_get_stats(srv, &f->stats);
    f->shutdown_done = true;
}

static void respond_text(struct http_request *req, int status, const char *text)
{
    static const struct http_header ct = {"Content-Type", "text/plain"};
    http_respond(req, status, &ct, 1, text, strlen(text));
    http_request_release(req);
}

static void handle_hello(struct http_request *req)
{
    const char *q = http_request_query(req);
    const char *foo = http_request_header(req, "x-FOO");
    struct http_header h[] = {
        {"X-Echo-Method", http_request_method(req)}, {"X-Echo-Path", http_request_path(req)},
        {"X-Echo-Query", q ? q : "(none)"},          {"X-Echo-Foo", foo ? foo : "(none)"},
        {"X-Echo-Remote", http_request_remote(req)},
    };
    http_request_set_route(req, "hello");
    http_respond(req, 200, h, sizeof h / sizeof h[0], "hello", 5);
    http_request_release(req);
}

static void test_handler(struct http_request *req, void *ud)
{
    struct fx *f = ud;
    const char *path = http_request_path(req);
    atomic_fetch_add(&f->dispatched, 1);
    if (strcmp(path, "/hello") == 0) {
        handle_hello(req);
    } else if (strncmp(path, "/slow/", 6) == 0) {
        later_start(f, req, LATER_RESPOND, (uint64_t)atoi(path + 6), 0);
    } else if (strcmp(path, "/echo") == 0 || strcmp(path, "/upload") == 0) {
        size_t len;
        const char *body = http_request_body(req, &len);
        http_respond(req, 200, NULL, 0, body, len);
        http_request_release(req);
    } else if (strcmp(path, "/hold") == 0) {
        http_request_on_close(req, on_held_closed, f);
    } else if (strcmp(path, "/stream") == 0) {
        static const struct http_header h[] = {{"Content-Type", "text/event-stream"},
                                               {"Cache-Control", "no-store"}};
        http_stream_begin(req, 200, h, 2);
        later_start(f, req, LATER_STREAM, 5, 5);
    } else if (strcmp(path, "/stream-forever") == 0) {
        static const struct http_header h[] = {{"Content-Type", "text/event-stream"}};
        http_stream_begin(req, 200, h, 1);
        http_request_set_userdata(req, later_start(f, req, LATER_FOREVER, 5, 5));
        http_request_on_close(req, on_forever_closed, f);
    } else if (strcmp(path, "/big") == 0) {
        size_t n = 4 * 1024 * 1024;
        char *big = malloc(n);
        memset(big, 'b', n);
        http_respond(req, 200, NULL, 0, big, n);
        free(big);
        http_request_release(req);
    } else if (strcmp(path, "/flood") == 0) {
        static char chunk[64 * 1024];
        http_stream_begin(req, 200, NULL, 0);
        http_request_on_close(req, on_held_closed, f);
        for (int i = 0;
             i < 1000 && (f->flood_rc = http_stream_write(req, chunk, sizeof chunk)) == 0; i++)
            ;
    } else if (strcmp(path, "/bye") == 0) {
        static const struct http_header h[] = {{"Connection", "close"}};
        http_respond(req, 200, h, 1, "bye", 3);
        http_request_release(req);
    } else if (strcmp(path, "/noreply") == 0) {
        http_request_release(req);
    } else if (strcmp(path, "/shutdown") == 0) {
        http_server_shutdown(f->srv, f->grace_ms, on_shutdown_done, f);
        later_start(f, req, LATER_RESPOND, 100, 0);
    } else if (strcmp(path, "/csp") == 0) {
        static const struct http_header h[] = {{"Content-Security-Policy", "default-src 'self'"},
                                               {"X-Bad", "a\r\nInjected: yes"},
                                               {"Content-Length", "999"},
                                               {"Bad Name", "x"}};
        http_respond(req, 200, h, 4, "ui", 2);
        http_request_release(req);
    } else {
        respond_text(req, 404, "not found");
    }
}

static size_t test_body_limit(const struct http_request *req, void *ud)
{
    struct fx *f = ud;
    if (strcmp(http_request_path(req), "/upload") == 0)
        return 4 * f->cfg.max_body_size;
    return f->cfg.max_body_size;
}

static void test_access_log(const struct http_access_entry *e, void *ud)
{
    struct fx *f = ud;
    f->access_entries++;
    atomic_fetch_add(&f->logged, 1);
    f->last_status = e->status;
    snprintf(f->last_route, sizeof f->last_route, "%s", e->route);
}

static void on_client_done(uv_async_t *a)
{
    struct fx *f = a->data;
    http_server_shutdown(f->srv, f->grace_ms, on_shutdown_done, f);
    uv_close((uv_handle_t *)a, NULL);
}

static void *client_main(void *arg)
{
    struct fx *f = arg;
    f->client(f);
    uv_async_send(&f->client_done);
    return NULL;
}

static struct fx *fx_new(void)
{
    struct fx *f = calloc(1, sizeof *f);
    http_server_config_init(&f->cfg);
    f->grace_ms = 2000;
    f->kept_fd = -1;
    return f;
}

static void count_handle(uv_handle_t *h, void *arg)
{
    (void)h;
    (*(int *)arg)++;
}

static void fx_run(struct fx *f, void (*client)(struct fx *))
{
    assert_int_equal(uv_loop_init(&f->loop), 0);
    f->cfg.access_log = test_access_log;
    f->cfg.body_limit = test_body_limit;
    f->srv = http_server_new(&f->loop, &f->cfg, test_handler, f);
    assert_non_null(f->srv);
    assert_int_equal(http_server_listen(f->srv, "127.0.0.1", 0), 0);
    f->port = http_server_port(f->srv);
    assert_true(f->port > 0);
    assert_int_equal(uv_async_init(&f->loop, &f->client_done, on_client_done), 0);
    f->client_done.data = f;
    f->client = client;
    assert_int_equal(pthread_create(&f->thread, NULL, client_main, f), 0);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    pthread_join(f->thread, NULL);
    assert_true(f->shutdown_done);
    http_server_free(f->srv);
    int open = 0;
    uv_walk(&f->loop, count_handle, &open);
    assert_int_equal(open, 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
}

static void fx_free(struct fx *f)
{
    for (int i = 0; i < MAX_RESP; i++)
        free(f->r[i].body);
    if (f->kept_fd >= 0)
        close(f->kept_fd);
    free(f);
}

/* ---- client side (second thread) ---- */

/* Connects from the loopback address FROM (e.g. "127.0.0.2"): the whole
 * 127.0.0.0/8 is local on Linux, so tests can be several clients. */
static int cl_connect_from(int port, const char *from)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in local = {.sin_family = AF_INET};
    inet_pton(AF_INET, from, &local.sin_addr);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0 ||
        connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int cl_connect(int port)
{
    return cl_connect_from(port, "127.0.0.1");
}

static int cl_send_n(int fd, const void *p, size_t n)
{
    const char *s = p;
    while (n > 0) {
        ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        s += k;
        n -= (size_t)k;
    }
    return 0;
}

static int cl_send(int fd, const char *s)
{
    return cl_send_n(fd, s, strlen(s));
}

/* Responses are parsed with llhttp too; leftover bytes stay for the next. */
struct reader {
    int fd;
    char buf[8192];
    size_t pos, len;
    llhttp_t parser;
    llhttp_settings_t settings;
    struct resp *cur;
    bool head_request;
    bool done;
};

static void resp_append_header(struct resp *r, const char *s, size_t n, bool lower)
{
    for (size_t i = 0; i < n && r->hlen + 1 < sizeof r->headers; i++) {
        char ch = s[i];
        if (lower && ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        r->headers[r->hlen++] = ch;
    }
    r->headers[r->hlen] = '\0';
}

static int rd_field(llhttp_t *p, const char *at, size_t n)
{
    resp_append_header(((struct reader *)p->data)->cur, at, n, true);
    return 0;
}

static int rd_field_done(llhttp_t *p)
{
    resp_append_header(((struct reader *)p->data)->cur, ": ", 2, false);
    return 0;
}

static int rd_value(llhttp_t *p, const char *at, size_t n)
{
    resp_append_header(((struct reader *)p->data)->cur, at, n, false);
    return 0;
}

static int rd_value_done(llhttp_t *p)
{
    resp_append_header(((struct reader *)p->data)->cur, "\n", 1, false);
    return 0;
}

static int rd_headers_done(llhttp_t *p)
{
    struct reader *r = p->data;
    r->cur->status = p->status_code;
    return r->head_request ? 1 : 0;
}

static int rd_body(llhttp_t *p, const char *at, size_t n)
{
    struct resp *r = ((struct reader *)p->data)->cur;
    r->body = realloc(r->body, r->body_len + n + 1);
    memcpy(r->body + r->body_len, at, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return 0;
}

static int rd_done(llhttp_t *p)
{
    ((struct reader *)p->data)->done = true;
    return HPE_PAUSED;
}

static void rd_init(struct reader *r, int fd)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    llhttp_settings_init(&r->settings);
    r->settings.on_header_field = rd_field;
    r->settings.on_header_field_complete = rd_field_done;
    r->settings.on_header_value = rd_value;
    r->settings.on_header_value_complete = rd_value_done;
    r->settings.on_headers_complete = rd_headers_done;
    r->settings.on_body = rd_body;
    r->settings.on_message_complete = rd_done;
    llhttp_init(&r->parser, HTTP_RESPONSE, &r->settings);
    r->parser.data = r;
}

/* Reads one response into OUT; 0 on success, -1 on EOF/timeout/garbage. */
static int rd_response(struct reader *r, struct resp *out, bool head_request)
{
    free(out->body);
    memset(out, 0, sizeof *out);
    r->cur = out;
    r->head_request = head_request;
    r->done = false;
    for (;;) {
        if (r->pos < r->len) {
            const char *d = r->buf + r->pos;
            llhttp_errno_t e = llhttp_execute(&r->parser, d, r->len - r->pos);
            if (e == HPE_PAUSED) {
                r->pos += (size_t)(llhttp_get_error_pos(&r->parser) - d);
                llhttp_resume(&r->parser);
            } else if (e == HPE_OK) {
                r->pos = r->len;
            } else {
                return -1;
            }
            if (r->done)
                return 0;
        }
        ssize_t n = recv(r->fd, r->buf, sizeof r->buf, 0);
        if (n <= 0) {
            if (n == 0) { /* a close-delimited body ends here */
                llhttp_errno_t e = llhttp_finish(&r->parser);
                if ((e == HPE_OK || e == HPE_PAUSED) && r->done)
                    return 0;
            }
            return -1;
        }
        r->pos = 0;
        r->len = (size_t)n;
    }
}

/* 1 when the server closes (EOF or reset) within the receive timeout. */
static int cl_wait_closed(int fd)
{
    char buf[4096];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno == ECONNRESET))
            return 1;
        if (n < 0)
            return 0;
    }
}

static void cl_sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits (up to 5 s) until COUNTER reaches N. */
static int cl_wait_count(atomic_int *counter, int n)
{
    for (int i = 0; i < 500; i++) {
        if (atomic_load(counter) >= n)
            return 1;
        cl_sleep_ms(10);
    }
    return 0;
}

/* ---- assertion helpers (test thread) ---- */

static bool has_line(const struct resp *r, const char *line)
{
    char want[512];
    snprintf(want, sizeof want, "%s\n", line);
    return strncmp(r->headers, want, strlen(want)) == 0 ||
           (snprintf(want, sizeof want, "\n%s\n", line), strstr(r->headers, want) != NULL);
}

static bool header_get(const struct resp *r, const char *name, char *out, size_t cap)
{
    char key[128];
    snprintf(key, sizeof key, "%s: ", name);
    const char *p = r->headers;
    while (p && *p) {
        if (strncmp(p, key, strlen(key)) == 0) {
            p += strlen(key);
            size_t n = strcspn(p, "\n");
            snprintf(out, cap, "%.*s", (int)n, p);
            return true;
        }
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    return false;
}

static void assert_body(const struct resp *r, const char *expect)
{
    assert_int_equal(r->body_len, strlen(expect));
    assert_memory_equal(r->body ? r->body : "", expect, strlen(expect));
}

/* ---- tests ---- */

static void client_simple_get(struct fx *f)
{
    struct reader rd;
    int fd = cl_connect(f->port);
    rd_init(&rd, fd);
    cl_send(fd, "GET /hello?x=1&y=%20 HTTP/1.1\r\nHost: t\r\nX-Foo: bar  \r\n\r\n");
    f->flag[0] = rd_response(&rd, &f->r[0], false);
    close(fd);
}

static void test_simple_get(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_run(f, client_simple_get);
    struct resp *r = &f->r[0];
    assert_int_equal(f->flag[0], 0);
    assert_int_equal(r->status, 200);
    assert_body(r, "hello");
    assert_true(has_line(r, "content-length: 5"));
    assert_true(has_line(r, "connection: keep-alive"));
    assert_true(has_line(r, "x-content-type-options: nosniff"));
    assert_true(has_line(r, "referrer-policy: no-referrer"));
    assert_true(has_line(r, "x-frame-options: DENY"));
    assert_true(has_line(r, "content-security-policy: default-src 'none'; frame-ancestors 'none'"));
    assert_true(has_line(r, "x-echo-method: GET"));
    assert_true(has_line(r, "x-echo-path: /hello"));
    assert_true(has_line(r, "x-echo-query: x=1&y=%20"));
    assert_true(has_line(r, "x-echo-foo: bar"));
    assert_true(has_line(r, "x-echo-remote: 127.0.0.1"));
    char v[128];
    assert_true(header_get(r, "date", v, sizeof v));
    assert_non_null(strstr(v, " GMT"));
    assert_true(header_get(r, "x-request-id", v, sizeof v));
    assert_int_equal(strlen(v), 36);
    assert_int_equal(v[14], '4'); /* UUID v4 */
    assert_int_equal(f->access_entries, 1);
    assert_string_equal(f->last_route, "hello");
    fx_free(f);
}

static void client_keep_alive(struct fx *f)
{
    struct reader rd;
    int fd = cl_connect(f->port);
    rd_init(&rd, fd);
    cl_send(fd, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    f->flag[0] = rd_response(&rd, &f->r[0], false);
    cl_send(fd, "GET /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc");
    f->flag[1] = rd_response(&rd, &f->r[1], false);
    /* HTTP/1.0 without keep-alive: answered, then closed. */
    cl_send(fd, "GET /hello HTTP/1.0\r\n\r\n");
    f->flag[2] = rd_response(&rd, &f->r[2], false);
    f->flag[3] = cl_wait_closed(fd);
    close(fd);
}

static void test_keep_alive(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_run(f, client_keep_alive);
    assert_int_equal(f->flag[0], 0);
    assert_int_equal(f->flag[1], 0);
    assert_int_equal(f->flag[2], 0);
    assert_int_equal(f->r[0].status, 200);
    assert_body(&f->r[1], "abc");
    assert_true(has_line(&f->r[2], "connection: close"));
    assert_int_equal(f->flag[3], 1);
    assert_int_equal(f->stats.connections_total, 1);
    assert_int_equal(f->stats.requests_total, 3);
    assert_int_equal(f->stats.responses[2], 3);
    assert_int_equal(f->stats.connections_open, 0);
    assert_int_equal(f->stats.requests_active, 0);
    fx_free(f);
}

static void client_pipelining(struct fx *f)
{
    struct reader rd;
    int fd = cl_connect(f->port);
    rd_init(&rd, fd);
    /* The first is answered last in time if the server did not keep order. */
    cl_send(fd, "GET /slow/80 HTTP/1.1\r\nHost: t\r\nX-Request-Id: abc-123\r\n\r\n"
                "GET /slow/40 HTTP/1.1\r\nHost: t\r\nX-Request-Id: bad<id>\r\n\r\n"
                "GET /slow/0 HTTP/1.1\r\nHost: t\r\n\r\n");
    for (int i = 0; i < 3; i++)
        f->flag[i] = rd_response(&rd, &f->r[i], false);
    close(fd);
}

static void test_pipelining(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_run(f, client_pipelining);
    const char *paths[] = {"/slow/80", "/slow/40", "/slow/0"};
    char ids[3][128];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(f->flag[i], 0);
        assert_int_equal(f->r[i].status, 200);
        assert_body(&f->r[i], paths[i]);
        assert_true(header_get(&f->r[i], "x-request-id", ids[i], sizeof ids[i]));
    }
    assert_string_equal(ids[0], "abc-123");
    assert_int_equal(strlen(ids[1]), 36); /* unsafe incoming id replaced */
    assert_int_equal(strlen(ids[2]), 36);
    assert_string_not_equal(ids[1], ids[2]);
    fx_free(f);
}

static void client_bodies(struct fx *f)
{
    struct reader rd;
    int fd = cl_connect(f->port);
    rd_init(&rd, fd);
    cl_send(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\nhello body");
    f->flag[0] = rd_response(&rd, &f->r[0], false);
    cl_send(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                "4\r\nwiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n");
    f->flag[1] = rd_response(&rd, &f->r[1], false);
    /* Expect: 100-continue: the interim response comes before the body is sent. */
    cl_send(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n"
                "Expect: 100-continue\r\n\r\n");
    f->flag[2] = rd_response(&rd, &f->r[2], false);
    cl_send(fd, "ping");
    f->flag[3] = rd_response(&rd, &f->r[3], false);
    close(fd);
}

static void test_bodies(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_run(f, client_bodies);
    for (int i = 0; i < 4; i++)
        assert_int_equal(f->flag[i], 0);
    assert_body(&f->r[0], "hello body");
    assert_body(&f->r[1], "wikipedia");
    assert_int_equal(f->r[2].status, 100);
    assert_int_equal(f->r[3].status, 200);
    assert_body(&f->r[3], "ping");
    fx_free(f);
}

static void client_head(struct fx *f)
{
    struct reader rd;
    int fd = cl_connect(f->port);
    rd_init(&rd, fd);
    cl_send(fd, "HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    f->flag[0] = rd_response(&rd, &f->r[0], true);
    cl_send(fd, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    f->flag[1] = rd_response(&rd, &f->r[1], false);
    close(fd);
}

static void test_head(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_run(f, client_head);
    assert_int_equal(f->flag[0], 0);
    assert_int_equal(f->r[0].status, 200);
    assert_true(has_line(&f->r[0], "content-length: 5"));
    assert_int_equal(f->r[0].body_len, 0);
    /* Had the HEAD response carried a body, this one would be garbled. */
    assert_int_equal(f->flag[1], 0);
    assert_body(&f->r[1], "hello");
    fx_free(f);
}

static void client_limits(struct fx *f)
{
    struct reader rd;
    /* 431: 20 KiB of header. */
    int fd = cl_connect(f->port);
    rd_init(&rd, fd);
    size_t big = 20 * 1024;
    char *req = malloc(big + 128);
    int n = sprintf(req, "GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: ");
    memset(req + n, 'a', big);
    strcpy(req + n + big, "\r\n\r\n");
    cl_send(fd, req);
    free(req);
    f->flag[0] = rd_response(&rd, &f->r[0], false);
    f->flag[1] = cl_wait_closed(fd);
    close(fd);

    /* 413 from Content-Length, before any body byte. */
    fd = cl_connect(f->port);
    rd_init(&rd, fd);
    cl_send(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n");
    f->flag[2] = rd_response(&rd, &f->r[1], false);
    f->flag[3] = cl_wait_closed(fd);
    close(fd);

    /* 413 from a chunked body growing past the limit. */
    fd = cl_connect(f->port);
    rd_init(&rd, fd);
    cl_send(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    char chunk[600];
    memset(chunk, 'c', sizeof chunk);
    for (int i = 0; i < 3; i++) {
        cl_send(fd, "258\r\n");
        cl_send_n(fd, chunk, sizeof chunk);
        cl_send(fd, "\r\n");
    }
    f->flag[4] = rd_response(&rd, &f->r[2], false);
    close(fd);

    /* A route with a larger limit (body_limit hook). */
    fd = cl_connect(f->port);
    rd_init(&rd, fd);
    cl_send(fd, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 3000\r\n\r\n");
    char up[3000];
    memset(up, 'u', sizeof up);
    cl_send_n(fd, up, sizeof up);
    f->flag[5] = rd_response(&rd, &f->r[3], false);
    close(fd);
}

static void test_limits(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->cfg.max_body_size = 1024;
    fx_run(f, client_limits);
    assert_int_equal(f->flag[0], 0);
    assert_int_equal(f->r[0].status, 431);
    assert_true(has_line(&f->r[0], "connection: close"));
    assert_non_null(strstr(f->r[0].body, "\"code\":\"headers_too_large\""));
    assert_int_equal(f->flag[1], 1);
    assert_int_equal(f->flag[2], 0);
    assert_int_equal(f->r[1].status, 413);
    assert_int_equal(f->flag[3], 1);
    assert_int_equal(f->flag[4], 0);
    assert_int_equal(f->r[2].status, 413);
    assert_int_equal(f->flag[5], 0);
    assert_int_equal(f->r[3].status, 200);
    assert_int_equal(f->r[3].body_len, 3000);
    assert_int_equal(f->stats.bad_requests, 3);
    fx_free(f);
}

/* Sends the head of a request one byte at a time until the server reacts. */
static int trickle_until_dropped(int fd)
{
    static const char rest[] = "X-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                               "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    cl_send(fd, "GET /hello HTTP/1.1\r\n");
    for (size_t i = 0; i < sizeof rest - 1; i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 0) > 0)
            return 1; /* the server answered (408) or closed */
        if (send(fd, rest + i, 1, MSG_NOSIGNAL) != 1)
            return 1;
        cl_sleep_ms(30);
    }
    return 0;
}

static void client_timeouts(struct fx *f)
{
    struct reader rd;
    /* Trickled headers: dropped while still trickling. */
    int fd = cl_connect(f->port);
    rd_init(&rd, fd);
    f->flag[0] = trickle_until_dropped(fd);
    f->flag[1] = rd_response(&rd, &f->r[0], false);
    f->flag[2] = cl_wait_closed(fd);
    close(fd);

    /* Keep-alive idle: closed after the idle timeout. */
    fd = cl_connect(f->port);
    rd_init(&rd, fd);
    cl_send(fd, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    f->flag[3] = rd_response(&rd, &f->r[1], false);
    f->flag[4] = cl_wait_closed(fd);
    close(fd);

    /* A body that stops coming: 408. */
    fd = cl_connect(f->port);
    rd_init(&rd, fd);
    cl_send(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789");
    f->flag[5] = rd_response(&rd, &f->r[2], false);
    f->flag[6] = cl_wait_closed(fd);
    close(fd);

    /* A connection that never says anything. */
    fd = cl_connect(f->port);
    f->flag[7] = cl_wait_closed(fd);
    close(fd);
}

static void test_timeouts(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->cfg.header_timeout_ms = 200;
    f->cfg.body_timeout_ms = 200;
    f->cfg.idle_timeout_ms = 200;
    fx_run(f, client_timeouts);
    assert_int_equal(f->flag[0], 1);
    assert_int_equal(f->flag[1], 0);
    assert_int_equal(f->r[0].status, 408);
    assert_int_equal(f->flag[2], 1);
    assert_int_equal(f->flag[3], 0);
    assert_int_equal(f->r[1].status, 200);
    assert_int_equal(f->flag[4], 1);
    assert_int_equal(f->flag[5], 0);
    assert_int_equal(f->r[2].status, 408);
    assert_int_equal(f->flag[6], 1);
    assert_int_equal(f->flag[7], 1);
    assert_int_equal(f->stats.timeouts, 2);
    assert_int_equal(f->dispatched, 1);
    fx_free(f);
}

static void client_connection_limit(struct fx *f)
{
    struct reader ra, rb, rc;
    int a = cl_connect(f->port), b = cl_connect(f->port);
    rd_init(&ra, a);
    rd_init(&rb, b);
    /* A response on each proves both were accepted before the third. */
    cl_send(a, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_send(b, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    f->flag[0] = rd_response(&ra, &f->r[0], false);
    f->flag[1] = rd_response(&rb, &f->r[1], false);
    int c = cl_connect(f->port);
    rd_init(&rc, c);
    cl_send(c, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    f->flag[2] = rd_response(&rc, &f->r[2], false);
    f->flag[3] = cl_wait_closed(c);
    close(c);
    /* Room again once one leaves. */
    close(a);
    for (int i = 0; i < 50; i++) {
        int d = cl_connect(f->port);
        struct reader rdd;
        rd_init(&rdd, d);
        cl_send(d, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
        int ok = rd_response(&rdd, &f->r[3], false);
        close(d);
        if (ok == 0 && f->r[3].status == 200)
            break;
        cl_sleep_ms(20); /* the server may not have seen A's close yet */
    }
    close(b);
}

static void test_connection_limit(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->cfg.max_connections = 2;
    fx_run(f, client_connection_limit);
    assert_int_equal(f->flag[0], 0);
    assert_int_equal(f->flag[1], 0);
    assert_int_equal(f->r[0].status, 200);
    assert_int_equal(f->r[1].status, 200);
    assert_int_equal(f->flag[2], 0);
    assert_int_equal(f->r[2].status, 503);
    assert_true(has_line(&f->r[2], "connection: close"));
    assert_int_equal(f->flag[3], 1);
    assert_int_equal(f->r[3].status, 200);
    assert_true(f->stats.connections_rejected >= 1);
    fx_free(f);
}

static const char *const malformed[] = {
    "GARBAGE\r\n\r\n",
    "GET /a%zz HTTP/1.1\r\nHost: t\r\n\r\n",
    "GET /a%00b HTTP/1.1\r\nHost: t\r\n\r\n",
    "GET /a?q=%0 HTTP/1.1\r\nHost: t\r\n\r\n",
    "GET http://example.com/ HTTP/1.1\r\nHost: t\r\n\r\n",
    "GET /ok HTTP/1.1\r\nBad Header\r\n\r\n",
    "POST /echo HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabc",
};
#define NMALFORMED (sizeof malformed / sizeof malformed[0])

static void client_malformed(struct fx *f)
{
    for (size_t i = 0; i < NMALFORMED; i++) {
        struct reader rd;
        struct resp r = {0};
        int fd = cl_connect(f->port);
        rd_init(&rd, fd);
        cl_send(fd, malformed[i]);
        int rc = rd_response(&rd, &r, false);
        int closed = cl_wait_closed(fd);
        f->flag[i] = rc == 0 && r.status == 400 && closed && r.body &&
                     strstr(r.body, "\"code\":\"bad_request\"") != NULL;
        free(r.body);
        close(fd);
    }
}

static void test_malformed(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_run(f, client_malformed);
    for (size_t i = 0; i < NMALFORMED; i++) {
        if (f->flag[i] != 1)
            print_error("malformed request %zu not refused with 400: %s\n", i, malformed[i]);
        assert_int_equal(f->flag[i], 1);
    }
    assert_int_equal(f->dispatched, 0);
    fx_free(f);
}

static void client_disconnect(struct fx *f)
{
    int fd = cl_connect(f->port);
    cl_send(fd, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
    f->flag[0] = cl_wait_count(&f->dispatched, 1);
    close(fd);
    f->flag[1] = cl_wait_count(&f->closed_notified, 1);
}

static void test_client_disconnect(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_run(f, client_disconnect);
    assert_int_equal(f->flag[0], 1);
    assert_int_equal(f->flag[1], 1);
    assert_int_equal(f->closed_notified, 1);
    assert_int_equal(f->respond_after_close_rc, HTTP_ERR_CLOSED);
    assert_int_equal(f->stats.requests_aborted, 1);
    assert_int_equal(f->last_status, 499);
    fx_free(f);
}

static void client_streaming(struct fx *f)
{
    struct reader rd;
    int fd = cl_connect(f->port);
    rd_init(&rd, fd);
    cl_send(fd, "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n");
    f->flag[0] = rd_response(&rd, &f->r[0], false);
    cl_send(fd, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    f->flag[1] = rd_response(&rd, &f->r[1], false);
    close(fd);

    /* HTTP/1.0: close-delimited. */
    fd = cl_connect(f->port);
    rd_init(&rd, fd);
    cl_send(fd, "GET /stream HTTP/1.0\r\n\r\n");
    f->flag[2] = rd_response(&rd, &f->r[2], false);
    close(fd);

    /* A stream whose client leaves. */
    fd = cl_connect(f->port);
    cl_send(fd, "GET /stream-forever HTTP/1.1\r\nHost: t\r\n\r\n");
    char buf[4096];
    size_t got = 0;
    while (got < sizeof buf - 1) {
        ssize_t n = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "data: tick 2"))
            break;
    }
    f->flag[3] = strstr(buf, "data: tick 2") != NULL;
    close(fd);
    f->flag[4] = cl_wait_count(&f->closed_notified, 1);
}

static void test_streaming(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_run(f, client_streaming);
    assert_int_equal(f->flag[0], 0);
    assert_int_equal(f->r[0].status, 200);
    assert_true(has_line(&f->r[0], "transfer-encoding: chunked"));
    assert_true(has_line(&f->r[0], "content-type: text/event-stream"));
    assert_false(header_get(&f->r[0], "content-length", (char[8]){0}, 8));
    assert_body(&f->r[0], "data: 1\n\ndata: 2\n\ndata: 3\n\n");
    assert_int_equal(f->flag[1], 0);
    assert_body(&f->r[1], "hello");
    assert_int_equal(f->flag[2], 0);
    assert_true(has_line(&f->r[2], "connection: close"));
    assert_false(header_get(&f->r[2], "transfer-encoding", (char[8]){0}, 8));
    assert_body(&f->r[2], "data: 1\n\ndata: 2\n\ndata: 3\n\n");
    assert_int_equal(f->flag[3], 1);
    assert_int_equal(f->flag[4], 1);
    assert_int_equal(f->write_after_close_rc, HTTP_ERR_CLOSED);
    fx_free(f);
}

static void client_graceful_shutdown(struct fx *f)
{
    struct reader ra, rb;
    int a = cl_connect(f->port);
    rd_init(&ra, a);
    cl_send(a, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    f->flag[0] = rd_response(&ra, &f->r[0], false);
    /* B's handler starts the shutdown and answers 100 ms later. */
    int b = cl_connect(f->port);
    rd_init(&rb, b);
    cl_send(b, "GET /shutdown HTTP/1.1\r\nHost: t\r\n\r\n");
    f->flag[1] = rd_response(&rb, &f->r[1], false);
    f->flag[2] = cl_wait_closed(b);
    f->flag[3] = cl_wait_closed(a); /* idle keep-alive: closed at once */
    int c = cl_connect(f->port);
    f->flag[4] = c < 0; /* no longer listening */
    if (c >= 0)
        close(c);
    close(a);
    close(b);
}

static void test_graceful_shutdown(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->grace_ms = 5000;
    fx_run(f, client_graceful_shutdown);
    assert_int_equal(f->flag[0], 0);
    assert_int_equal(f->flag[1], 0);
    assert_int_equal(f->r[1].status, 200);
    assert_body(&f->r[1], "/shutdown");
    assert_true(has_line(&f->r[1], "connection: close"));
    assert_int_equal(f->flag[2], 1);
    assert_int_equal(f->flag[3], 1);
    assert_int_equal(f->flag[4], 1);
    assert_int_equal(f->stats.connections_open, 0);
    assert_int_equal(f->stats.requests_aborted, 0);
    fx_free(f);
}

static void client_grace_expires(struct fx *f)
{
    int fd = cl_connect(f->port);
    cl_send(fd, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
    f->flag[0] = cl_wait_count(&f->dispatched, 1);
    f->kept_fd = fd; /* the shutdown starts when this returns */
}

static void test_shutdown_grace_expires(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->grace_ms = 100;
    fx_run(f, client_grace_expires);
    assert_int_equal(f->flag[0], 1);
    assert_int_equal(f->closed_notified, 1);
    assert_int_equal(f->respond_after_close_rc, HTTP_ERR_CLOSED);
    assert_int_equal(cl_wait_closed(f->kept_fd), 1);
    fx_free(f);
}

static void client_misc(struct fx *f)
{
    struct reader rd;
    int fd = cl_connect(f->port);
    rd_init(&rd, fd);
    cl_send(fd, "GET /noreply HTTP/1.1\r\nHost: t\r\n\r\n");
    f->flag[0] = rd_response(&rd, &f->r[0], false);
    cl_send(fd, "GET /csp HTTP/1.1\r\nHost: t\r\n\r\n");
    f->flag[1] = rd_response(&rd, &f->r[1], false);
    cl_send(fd, "GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n");
    f->flag[2] = rd_response(&rd, &f->r[2], false);
    cl_send(fd, "GET /bye HTTP/1.1\r\nHost: t\r\n\r\n");
    f->flag[3] = rd_response(&rd, &f->r[3], false);
    f->flag[4] = cl_wait_closed(fd);
    close(fd);
}

static void test_release_without_response_and_headers(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    fx_run(f, client_misc);
    assert_int_equal(f->flag[0], 0);
    assert_int_equal(f->r[0].status, 500);
    assert_non_null(strstr(f->r[0].body, "\"code\":\"internal\""));
    assert_int_equal(f->flag[1], 0);
    assert_int_equal(f->r[1].status, 200);
    assert_true(has_line(&f->r[1], "content-security-policy: default-src 'self'; "
                                   "frame-ancestors 'none'"));
    assert_true(has_line(&f->r[1], "content-length: 2"));
    assert_false(header_get(&f->r[1], "x-bad", (char[8]){0}, 8));
    assert_false(header_get(&f->r[1], "injected", (char[8]){0}, 8));
    assert_int_equal(f->flag[2], 0);
    assert_int_equal(f->r[2].status, 404);
    assert_int_equal(f->flag[3], 0);
    assert_body(&f->r[3], "bye");
    assert_true(has_line(&f->r[3], "connection: close"));
    assert_int_equal(f->flag[4], 1);
    assert_int_equal(f->stats.responses[4], 1);
    assert_int_equal(f->stats.responses[5], 1);
    fx_free(f);
}

static void client_write_stall(struct fx *f)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connect(fd, (struct sockaddr *)&a, sizeof a);
    cl_send(fd, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
    /* Read nothing: the server must give up on its own. */
    f->flag[0] = cl_wait_count(&f->logged, 1);
    close(fd);
}

static void test_write_stall(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->cfg.write_timeout_ms = 200;
    fx_run(f, client_write_stall);
    assert_int_equal(f->flag[0], 1);
    assert_int_equal(f->stats.timeouts, 1);
    assert_int_equal(f->stats.requests_aborted, 1);
    fx_free(f);
}

static void client_stream_flood(struct fx *f)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connect(fd, (struct sockaddr *)&a, sizeof a);
    cl_send(fd, "GET /flood HTTP/1.1\r\nHost: t\r\n\r\n");
    f->flag[0] = cl_wait_count(&f->closed_notified, 1);
    close(fd);
}

static void test_stream_backlog_drops_slow_client(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->cfg.max_stream_backlog = 256 * 1024;
    fx_run(f, client_stream_flood);
    assert_int_equal(f->flag[0], 1);
    assert_int_equal(f->flood_rc, HTTP_ERR_SLOW);
    assert_int_equal(f->respond_after_close_rc, HTTP_ERR_CLOSED);
    fx_free(f);
}

/* ---- bodies of every size, whatever the write pattern ---- */

/* How a client hands its bytes to the kernel. */
enum send_pattern { SEND_WHOLE, SEND_BYTES, SEND_4K, SEND_RANDOM, SEND_PATTERNS };
static const char *const pattern_names[] = {"one write", "1-byte writes", "4 KiB writes",
                                            "random writes"};

static int cl_send_pattern(int fd, const char *p, size_t n, enum send_pattern pat, unsigned *seed)
{
    if (pat == SEND_WHOLE)
        return cl_send_n(fd, p, n);
    while (n > 0) {
        size_t k = pat == SEND_BYTES ? 1 : pat == SEND_4K ? 4096 : 1 + (size_t)rand_r(seed) % 40000;
        if (k > n)
            k = n;
        if (cl_send_n(fd, p, k) != 0)
            return -1;
        p += k;
        n -= k;
    }
    return 0;
}

struct wire {
    char *data;
    size_t len, cap;
};

static void wire_add(struct wire *w, const void *p, size_t n)
{
    if (w->len + n > w->cap) {
        w->cap = (w->len + n) * 2;
        w->data = realloc(w->data, w->cap);
    }
    memcpy(w->data + w->len, p, n);
    w->len += n;
}

static void wire_addf(struct wire *w, const char *fmt, ...)
{
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    wire_add(w, line, (size_t)n);
}

/* A POST of BODY to PATH, framed by Content-Length or in chunks of CHUNK bytes. */
static void wire_post(struct wire *w, const char *path, const char *body, size_t n, size_t chunk)
{
    if (chunk == 0) {
        wire_addf(w, "POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n\r\n", path, n);
        wire_add(w, body, n);
        return;
    }
    wire_addf(w, "POST %s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n", path);
    for (size_t off = 0; off < n; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        wire_addf(w, "%zx\r\n", k);
        wire_add(w, body + off, k);
        wire_add(w, "\r\n", 2);
    }
    wire_add(w, "0\r\n\r\n", 5);
}

static void note_failure(struct fx *f, const char *fmt, ...)
{
    if (f->failure[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->failure, sizeof f->failure, fmt, ap);
    va_end(ap);
}

#define MB (1024 * 1024)

static char *pattern_body(size_t n)
{
    char *b = malloc(n);
    for (size_t i = 0; i < n; i++)
        b[i] = (char)('a' + (i * 7 + i / 1000) % 26);
    return b;
}

/* Every body is echoed whole: 16 KiB (the read buffer) to 5 MiB, framed by
 * Content-Length or chunked, sent in one write, byte by byte, in 4 KiB
 * pieces or in random pieces, one after another on one connection. */
static void client_body_patterns(struct fx *f)
{
    static const size_t sizes[] = {16 * 1024,  16 * 1024 + 1, 17000, 64 * 1024,
                                   300 * 1024, 2 * MB,        5 * MB};
    static const size_t chunks[] = {0, 4096, 1000000};
    char *body = pattern_body(5 * MB);
    unsigned seed = 12345;
    struct reader *rd = malloc(sizeof *rd);
    int fd = cl_connect(f->port);
    rd_init(rd, fd);
    int exchanges = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++)
            for (int pat = 0; pat < SEND_PATTERNS; pat++) {
                size_t n = sizes[i];
                if (pat == SEND_BYTES && n > 64 * 1024)
                    continue; /* a million syscalls say nothing more */
                struct wire w = {0};
                wire_post(&w, n > 2 * MB ? "/upload" : "/echo", body, n, chunks[c]);
                int rc = cl_send_pattern(fd, w.data, w.len, (enum send_pattern)pat, &seed);
                free(w.data);
                if (rc != 0 || rd_response(rd, &f->r[0], false) != 0 || f->r[0].status != 200 ||
                    f->r[0].body_len != n || memcmp(f->r[0].body, body, n) != 0) {
                    note_failure(f, "%zu bytes, %s, chunks of %zu: status %d, %zu bytes back", n,
                                 pattern_names[pat], chunks[c], f->r[0].status, f->r[0].body_len);
                    close(fd);
                    free(rd);
                    free(body);
                    return;
                }
                exchanges++;
            }
    f->flag[0] = exchanges;
    /* Pipelined: two 40 KB bodies and a GET in one write, answered in order. */
    struct wire w = {0};
    wire_post(&w, "/echo", body, 40000, 0);
    wire_post(&w, "/echo", body + 1, 40000, 4096);
    wire_addf(&w, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    cl_send_n(fd, w.data, w.len);
    free(w.data);
    for (int k = 0; k < 3; k++)
        f->flag[1 + k] = rd_response(rd, &f->r[1 + k], false);
    f->flag[4] = memcmp(f->r[2].body ? f->r[2].body : "", body + 1, 40000) == 0;
    close(fd);
    free(rd);
    free(body);
}

static void test_body_write_patterns(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->cfg.max_body_size = 2 * MB; /* /upload: 8 MiB */
    fx_run(f, client_body_patterns);
    assert_string_equal(f->failure, "");
    assert_int_equal(f->flag[0], 7 * 3 * 4 - 3 * 3); /* 1-byte writes only up to 64 KiB */
    for (int k = 1; k <= 3; k++)
        assert_int_equal(f->flag[k], 0);
    assert_int_equal(f->r[1].status, 200);
    assert_int_equal(f->r[1].body_len, 40000);
    assert_int_equal(f->flag[4], 1);
    assert_body(&f->r[3], "hello");
    fx_free(f);
}

/* The 413 names the limit and comes as soon as the limit is passed: the
 * client reads it before sending the rest (a server waiting for the whole
 * body would leave the read to time out). */
static void client_over_limit(struct fx *f)
{
    char *body = pattern_body(5 * MB);
    struct reader rd;
    /* Content-Length over the limit: refused on the head alone; the body
     * sent anyway is drained and the connection then closes. */
    int fd = cl_connect(f->port);
    rd_init(&rd, fd);
    cl_send(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5242880\r\n\r\n");
    f->flag[0] = rd_response(&rd, &f->r[0], false);
    f->flag[1] = cl_send_n(fd, body, 5 * MB);
    f->flag[2] = cl_wait_closed(fd);
    close(fd);

    /* Chunked, 4 KiB writes: stop one chunk past the limit and wait. */
    fd = cl_connect(f->port);
    rd_init(&rd, fd);
    cl_send(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    size_t sent = 0;
    while (sent <= f->cfg.max_body_size) {
        cl_send(fd, "1000\r\n"); /* 4096 bytes */
        cl_send_n(fd, body + sent, 4096);
        cl_send(fd, "\r\n");
        sent += 4096;
    }
    f->flag[3] = rd_response(&rd, &f->r[1], false);
    f->flag[4] = cl_wait_closed(fd);
    close(fd);

    /* Chunked, 1.3x the limit in one write (the client reads only after). */
    fd = cl_connect(f->port);
    rd_init(&rd, fd);
    struct wire w = {0};
    wire_post(&w, "/echo", body, f->cfg.max_body_size * 13 / 10, 4096);
    f->flag[5] = cl_send_n(fd, w.data, w.len);
    free(w.data);
    f->flag[6] = rd_response(&rd, &f->r[2], false);
    close(fd);

    /* The same connection-level limit for 1-byte writes of the head. */
    fd = cl_connect(f->port);
    rd_init(&rd, fd);
    w = (struct wire){0};
    wire_addf(&w, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n");
    unsigned seed = 1;
    f->flag[7] = cl_send_pattern(fd, w.data, w.len, SEND_BYTES, &seed);
    free(w.data);
    f->flag[8] = rd_response(&rd, &f->r[3], false);
    close(fd);
    free(body);
}

static void test_over_limit_answered_at_once(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->cfg.max_body_size = 1 * MB;
    fx_run(f, client_over_limit);
    assert_int_equal(f->flag[0], 0);
    assert_int_equal(f->r[0].status, 413);
    assert_true(has_line(&f->r[0], "connection: close"));
    assert_non_null(strstr(f->r[0].body, "\"code\":\"payload_too_large\""));
    assert_non_null(strstr(f->r[0].body, "\"limit_bytes\":1048576"));
    assert_non_null(strstr(f->r[0].body, "at most 1048576 bytes"));
    assert_int_equal(f->flag[1], 0); /* drained, not reset, while the body came */
    assert_int_equal(f->flag[2], 1);
    assert_int_equal(f->flag[3], 0);
    assert_int_equal(f->r[1].status, 413);
    assert_non_null(strstr(f->r[1].body, "\"limit_bytes\":1048576"));
    assert_int_equal(f->flag[4], 1);
    assert_int_equal(f->flag[5], 0);
    assert_int_equal(f->flag[6], 0);
    assert_int_equal(f->r[2].status, 413);
    assert_int_equal(f->flag[7], 0);
    assert_int_equal(f->flag[8], 0);
    assert_int_equal(f->r[3].status, 413);
    assert_int_equal(f->dispatched, 0);
    fx_free(f);
}

/* One address holding many connections gets its share and no more; the
 * connections it is refused do not use up the places of other clients. */
#define GREEDY_CONNS 30 /* under the hard cap (max + max / 4 + 16), past which no 503 is sent */

static void client_address_share(struct fx *f)
{
    static int greedy[GREEDY_CONNS];
    struct reader rd;
    int refused = 0, held = 0;
    for (int i = 0; i < GREEDY_CONNS; i++) {
        greedy[i] = cl_connect_from(f->port, "127.0.0.2");
        cl_send(greedy[i], "GET /hello HTTP/1.1\r\nHost: t\r\nX-Slow: "); /* never finished */
    }
    for (int i = 0; i < GREEDY_CONNS; i++) {
        struct pollfd p = {.fd = greedy[i], .events = POLLIN};
        if (poll(&p, 1, 200) > 0) {
            rd_init(&rd, greedy[i]);
            if (rd_response(&rd, &f->r[0], false) == 0 && f->r[0].status == 503 &&
                strstr(f->r[0].body, "\"code\":\"too_many_connections\"") &&
                strstr(f->r[0].body, "at most 4"))
                refused++;
        } else {
            held++;
        }
    }
    f->flag[0] = refused;
    f->flag[1] = held;
    /* Another address is served at once, again and again. */
    int ok = 0;
    for (int i = 0; i < 10; i++) {
        int fd = cl_connect_from(f->port, "127.0.0.1");
        rd_init(&rd, fd);
        cl_send(fd, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
        if (rd_response(&rd, &f->r[1], false) == 0 && f->r[1].status == 200)
            ok++;
        close(fd);
    }
    f->flag[2] = ok;
    for (int i = 0; i < GREEDY_CONNS; i++)
        close(greedy[i]);
}

static void test_connections_per_address(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->cfg.max_connections = 16;
    f->cfg.max_connections_per_address = 4;
    f->cfg.header_timeout_ms = 30000; /* the greedy ones stay until the end */
    fx_run(f, client_address_share);
    assert_int_equal(f->flag[1], 4);
    assert_int_equal(f->flag[0], GREEDY_CONNS - 4);
    assert_int_equal(f->flag[2], 10);
    assert_int_equal(f->stats.connections_rejected_address, GREEDY_CONNS - 4);
    assert_int_equal(f->stats.connections_rejected, GREEDY_CONNS - 4);
    fx_free(f);
}

/* Over half the places taken, a new connection has the short head deadline. */
static void client_busy_deadline(struct fx *f)
{
    int quiet[4];
    struct reader rd;
    for (int i = 0; i < 4; i++)
        quiet[i] = cl_connect(f->port);
    cl_sleep_ms(100); /* all four accepted before the fifth */
    int fd = cl_connect(f->port);
    rd_init(&rd, fd);
    cl_send(fd, "GET /hello HTTP/1.1\r\nHost: t\r\n");
    f->flag[0] = rd_response(&rd, &f->r[0], false); /* 408 long before header_timeout */
    close(fd);
    /* The first four had the normal deadline: still open. */
    int open = 0;
    for (int i = 0; i < 4; i++) {
        struct pollfd p = {.fd = quiet[i], .events = POLLIN};
        if (poll(&p, 1, 0) == 0)
            open++;
        close(quiet[i]);
    }
    f->flag[1] = open;
}

static void test_busy_head_deadline(void **state)
{
    (void)state;
    struct fx *f = fx_new();
    f->cfg.max_connections = 8;
    f->cfg.header_timeout_ms = 60000;
    f->cfg.busy_header_timeout_ms = 300;
    fx_run(f, client_busy_deadline);
    assert_int_equal(f->flag[0], 0);
    assert_int_equal(f->r[0].status, 408);
    assert_int_equal(f->flag[1], 4);
    fx_free(f);
}

static long rss_kb(void)
{
    FILE *fp = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (!fp)
        return -1;
    if (fscanf(fp, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(fp);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

#define IDLE_CONNS 1000

static void client_idle_memory(struct fx *f)
{
    static int fds[IDLE_CONNS];
    struct reader *rd = malloc(sizeof *rd);
    struct resp r = {0};
    /* Warm up allocator arenas and code paths first. */
    for (int i = 0; i < 20; i++) {
        int fd = cl_connect(f->port);
        rd_init(rd, fd);
        cl_send(fd, "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
        rd_response(rd, &r, false);
        close(fd);
    }
    cl_sleep_ms(50);
    long before = rss_kb();
    int ok = 0;
    for (int i = 0; i < IDLE_CONNS; i++) {
        fds[i] = cl_connect(f->port);
        rd_init(rd, fds[i]);
        cl_send(fds[i], "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n");
        if (rd_response(rd, &r, false) == 0 && r.status == 200)
            ok++;
    }
    cl_sleep_ms(50);
    f->rss_delta_kb = rss_kb() - before;
    f->flag[0] = ok;
    for (int i = 0; i < IDLE_CONNS; i++)
        close(fds[i]);
    free(r.body);
    free(rd);
}

static void test_idle_connections_memory(void **state)
{
    (void)state;
    if (__asan_init) {
        skip(); /* shadow memory and quarantine make RSS meaningless */
        return;
    }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < 2 * IDLE_CONNS + 64) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
        if (rl.rlim_cur < 2 * IDLE_CONNS + 64)
            skip();
    }
    struct fx *f = fx_new();
    f->cfg.max_connections_per_address = IDLE_CONNS + 64; /* one client holds them all */
    fx_run(f, client_idle_memory);
    print_message("%d idle keep-alive connections: RSS +%ld KiB\n", IDLE_CONNS, f->rss_delta_kb);
    assert_int_equal(f->flag[0], IDLE_CONNS);
    assert_true(f->rss_delta_kb <= 8 * 1024);
    fx_free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_keep_alive),
        cmocka_unit_test(test_pipelining),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_head),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_timeouts),
        cmocka_unit_test(test_connection_limit),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_client_disconnect),
        cmocka_unit_test(test_streaming),
        cmocka_unit_test(test_graceful_shutdown),
        cmocka_unit_test(test_shutdown_grace_expires),
        cmocka_unit_test(test_release_without_response_and_headers),
        cmocka_unit_test(test_write_stall),
        cmocka_unit_test(test_stream_backlog_drops_slow_client),
        cmocka_unit_test(test_idle_connections_memory),
        cmocka_unit_test(test_body_write_patterns),
        cmocka_unit_test(test_over_limit_answered_at_once),
        cmocka_unit_test(test_connections_per_address),
        cmocka_unit_test(test_busy_head_deadline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
