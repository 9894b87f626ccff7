/* http_client against a real HTTP/1.1 server on 127.0.0.1.
 *
 * The server runs on the same libuv loop as the client (uv_tcp + llhttp), so
 * everything is single-threaded and every handle can be counted at the end:
 * each test finishes with uv_walk finding no handle and uv_loop_close
 * returning 0.  No assertion depends on timing; a watchdog timer only bounds
 * how long a test may wait for an event.
 *
 * Routes:
 *   /echo            200, echoes method, body and the X-Test header, adds
 *                    rate-limit style headers (twice: "X-Dup")
 *   /status/N        status N
 *   /stall           reads the request, never answers
 *   /partial         headers (Content-Length: 1000) and 10 bytes, then stalls
 *   /big/N           N bytes with Content-Length
 *   /chunked/N       N bytes, chunked (no length known up front)
 *   /close           200 "bye" with Connection: close, then closes
 *   /drop            closes the connection without answering */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <llhttp.h>
#include <uv.h>
#include "net/http_client.h"

/* ---------------------------------------------------------------- server */

struct test_server;

struct test_conn {
    uv_tcp_t tcp;
    llhttp_t parser;
    struct test_server *srv;
    char url[256];
    char field[64];
    char value[256];
    char x_test[256];
    char *body;
    size_t body_len;
    int closing;
    struct test_conn *prev, *next;
};

struct test_server {
    uv_loop_t *loop;
    uv_tcp_t listener;
    llhttp_settings_t settings;
    int port;
    int accepted;    /* connections accepted so far */
    int open;        /* connections open now */
    int requests;    /* complete requests received */
    int stalled;     /* requests left unanswered on purpose */
    int partial_out; /* /partial heads written */
    char last_method[16];
    char last_body[256];
    struct test_conn *conns;
};

static void conn_on_closed(uv_handle_t *h)
{
    struct test_conn *c = h->data;
    c->srv->open--;
    free(c->body);
    free(c);
}

static void conn_close(struct test_conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    struct test_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    uv_close((uv_handle_t *)&c->tcp, conn_on_closed);
}

static void conn_on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    free(req);
}

static void conn_on_written(uv_write_t *req, int status)
{
    (void)status;
    free(req->data);
    free(req);
}

static void conn_write(struct test_conn *c, const char *data, size_t len)
{
    if (c->closing)
        return;
    uv_write_t *req = malloc(sizeof *req);
    char *copy = malloc(len);
    assert_non_null(req);
    assert_non_null(copy);
    memcpy(copy, data, len);
    req->data = copy;
    uv_buf_t buf = uv_buf_init(copy, (unsigned)len);
    if (uv_write(req, (uv_stream_t *)&c->tcp, &buf, 1, conn_on_written) != 0) {
        free(copy);
        free(req);
    }
}

static void conn_respond(struct test_conn *c, int status, const char *extra_headers,
                         const char *body, size_t body_len)
{
    char head[1024];
    int n = snprintf(head, sizeof head, "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s\r\n", status,
                     body_len, extra_headers ? extra_headers : "");
    conn_write(c, head, (size_t)n);
    if (body_len)
        conn_write(c, body, body_len);
}

static void conn_respond_filled(struct test_conn *c, size_t n, int chunked)
{
    char *body = malloc(n + 1);
    assert_non_null(body);
    memset(body, 'x', n);
    if (!chunked) {
        conn_respond(c, 200, NULL, body, n);
    } else {
        char head[256];
        int len = snprintf(head, sizeof head,
                           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%zx\r\n", n);
        conn_write(c, head, (size_t)len);
        conn_write(c, body, n);
        conn_write(c, "\r\n0\r\n\r\n", 7);
    }
    free(body);
}

static int conn_on_url(llhttp_t *p, const char *at, size_t len)
{
    struct test_conn *c = p->data;
    size_t used = strlen(c->url);
    if (used + len < sizeof c->url)
        strncat(c->url, at, len);
    return 0;
}

static int conn_on_field(llhttp_t *p, const char *at, size_t len)
{
    struct test_conn *c = p->data;
    size_t used = strlen(c->field);
    if (used + len < sizeof c->field)
        strncat(c->field, at, len);
    return 0;
}

static int conn_on_value(llhttp_t *p, const char *at, size_t len)
{
    struct test_conn *c = p->data;
    size_t used = strlen(c->value);
    if (used + len < sizeof c->value)
        strncat(c->value, at, len);
    return 0;
}

static int conn_on_value_complete(llhttp_t *p)
{
    struct test_conn *c = p->data;
    if (strcasecmp(c->field, "x-test") == 0)
        snprintf(c->x_test, sizeof c->x_test, "%s", c->value);
    c->field[0] = c->value[0] = '\0';
    return 0;
}

static int conn_on_body(llhttp_t *p, const char *at, size_t len)
{
    struct test_conn *c = p->data;
    char *b = realloc(c->body, c->body_len + len + 1);
    assert_non_null(b);
    memcpy(b + c->body_len, at, len);
    c->body = b;
    c->body_len += len;
    b[c->body_len] = '\0';
    return 0;
}

static void conn_route(struct test_conn *c)
{
    struct test_server *srv = c->srv;
    const char *method = llhttp_method_name(llhttp_get_method(&c->parser));
    snprintf(srv->last_method, sizeof srv->last_method, "%s", method);
    snprintf(srv->last_body, sizeof srv->last_body, "%s", c->body ? c->body : "");
    if (strcmp(c->url, "/echo") == 0) {
        char headers[768];
        snprintf(headers, sizeof headers,
                 "X-Echo-Method: %s\r\nX-Echo-Test: %s\r\nRetry-After: 7\r\n"
                 "anthropic-ratelimit-requests-remaining: 42\r\nX-Dup: a\r\nX-Dup: b\r\n",
                 method, c->x_test);
        if (c->body_len)
            conn_respond(c, 200, headers, c->body, c->body_len);
        else
            conn_respond(c, 200, headers, "hello", 5);
    } else if (strncmp(c->url, "/status/", 8) == 0) {
        conn_respond(c, atoi(c->url + 8), "Retry-After-Ms: 1500\r\n", "status", 6);
    } else if (strcmp(c->url, "/stall") == 0) {
        srv->stalled++;
    } else if (strcmp(c->url, "/partial") == 0) {
        const char *head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789";
        conn_write(c, head, strlen(head));
        srv->stalled++;
        srv->partial_out++;
    } else if (strncmp(c->url, "/big/", 5) == 0) {
        conn_respond_filled(c, (size_t)atol(c->url + 5), 0);
    } else if (strncmp(c->url, "/chunked/", 9) == 0) {
        conn_respond_filled(c, (size_t)atol(c->url + 9), 1);
    } else if (strcmp(c->url, "/close") == 0) {
        conn_respond(c, 200, "Connection: close\r\n", "bye", 3);
        uv_shutdown_t *req = malloc(sizeof *req);
        assert_non_null(req);
        uv_shutdown(req, (uv_stream_t *)&c->tcp, conn_on_shutdown);
    } else if (strcmp(c->url, "/drop") == 0) {
        conn_close(c);
    } else {
        conn_respond(c, 404, NULL, "not found", 9);
    }
}

static int conn_on_message_complete(llhttp_t *p)
{
    struct test_conn *c = p->data;
    c->srv->requests++;
    conn_route(c);
    c->url[0] = c->x_test[0] = '\0';
    free(c->body);
    c->body = NULL;
    c->body_len = 0;
    return 0;
}

static void conn_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    (void)h;
    buf->base = malloc(size);
    buf->len = buf->base ? size : 0;
}

static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct test_conn *c = stream->data;
    if (nread < 0) {
        conn_close(c);
    } else if (nread > 0 && !c->closing) {
        if (llhttp_execute(&c->parser, buf->base, (size_t)nread) != HPE_OK)
            conn_close(c);
    }
    free(buf->base);
}

static void server_on_connection(uv_stream_t *listener, int status)
{
    struct test_server *srv = listener->data;
    assert_int_equal(status, 0);
    struct test_conn *c = calloc(1, sizeof *c);
    assert_non_null(c);
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    c->tcp.data = c;
    assert_int_equal(uv_accept(listener, (uv_stream_t *)&c->tcp), 0);
    llhttp_init(&c->parser, HTTP_REQUEST, &srv->settings);
    c->parser.data = c;
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->accepted++;
    srv->open++;
    uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_on_read);
}

static void server_start(struct test_server *srv, uv_loop_t *loop)
{
    memset(srv, 0, sizeof *srv);
    srv->loop = loop;
    llhttp_settings_init(&srv->settings);
    srv->settings.on_url = conn_on_url;
    srv->settings.on_header_field = conn_on_field;
    srv->settings.on_header_value = conn_on_value;
    srv->settings.on_header_value_complete = conn_on_value_complete;
    srv->settings.on_body = conn_on_body;
    srv->settings.on_message_complete = conn_on_message_complete;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    assert_int_equal(uv_tcp_init(loop, &srv->listener), 0);
    srv->listener.data = srv;
    assert_int_equal(uv_tcp_bind(&srv->listener, (const struct sockaddr *)&addr, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&srv->listener, 128, server_on_connection), 0);
    int len = sizeof addr;
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&addr, &len);
    srv->port = ntohs(addr.sin_port);
}

static void server_stop(struct test_server *srv)
{
    while (srv->conns)
        conn_close(srv->conns);
    if (!uv_is_closing((uv_handle_t *)&srv->listener))
        uv_close((uv_handle_t *)&srv->listener, NULL);
}

/* ---------------------------------------------------------------- fixture */

#define MAX_RESULTS 64

struct result {
    int called;
    long status;
    enum http_client_error error;
    char message[512];
    char body[64];
    size_t body_len;
    char retry_after[32];
    char ratelimit[32];
    char echo_method[16];
    char echo_test[64];
    char dup[32];
};

struct fixture {
    uv_loop_t loop;
    uv_timer_t watchdog;
    int expired;
    struct test_server srv;
    struct http_client *client;
    int client_closed;
    struct result results[MAX_RESULTS];
    int done_count;
    /* hooks run from a done callback */
    int close_in_callback;
    int chain_in_callback;
    const char *chain_path;
    struct http_transfer *cancel_in_callback;
};

static struct fixture *fx;

static void watchdog_fired(uv_timer_t *t)
{
    (void)t;
    fx->expired = 1;
}

/* Runs the loop until *FLAG >= WANT; fails the test if the watchdog (a bound,
 * not a timing assertion) fires first. */
static void run_until(const int *flag, int want)
{
    fx->expired = 0;
    uv_timer_start(&fx->watchdog, watchdog_fired, 20000, 0);
    while (*flag < want && !fx->expired)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_timer_stop(&fx->watchdog);
    assert_false(fx->expired);
    assert_true(*flag >= want);
}

/* Runs the loop until the server has no connection open. */
static void run_until_server_idle(void)
{
    fx->expired = 0;
    uv_timer_start(&fx->watchdog, watchdog_fired, 20000, 0);
    while (fx->srv.open > 0 && !fx->expired)
        uv_run(&fx->loop, UV_RUN_ONCE);
    uv_timer_stop(&fx->watchdog);
    assert_int_equal(fx->srv.open, 0);
}

static void on_client_closed(struct http_client *client, void *ud)
{
    assert_ptr_equal(client, fx->client);
    assert_ptr_equal(ud, fx);
    fx->client_closed = 1;
}

static void count_handle(uv_handle_t *h, void *arg)
{
    (void)h;
    (*(int *)arg)++;
}

static struct http_client *new_client(const struct http_client_config *config)
{
    struct http_client *c = http_client_new(&fx->loop, config);
    assert_non_null(c);
    return c;
}

/* A port that was free a moment ago (bound, read, closed): connecting to it
 * is refused. */
static int unused_port(void)
{
    uv_tcp_t probe;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    uv_tcp_init(&fx->loop, &probe);
    assert_int_equal(uv_tcp_bind(&probe, (const struct sockaddr *)&addr, 0), 0);
    int len = sizeof addr;
    uv_tcp_getsockname(&probe, (struct sockaddr *)&addr, &len);
    uv_close((uv_handle_t *)&probe, NULL);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    return ntohs(addr.sin_port);
}

static int setup(void **state)
{
    fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    assert_int_equal(uv_loop_init(&fx->loop), 0);
    uv_timer_init(&fx->loop, &fx->watchdog);
    uv_unref((uv_handle_t *)&fx->watchdog);
    server_start(&fx->srv, &fx->loop);
    fx->client = new_client(NULL);
    *state = fx;
    return 0;
}

/* Closes the client (if the test did not), the server and the watchdog, then
 * checks that no handle is left and the loop closes cleanly. */
static int teardown(void **state)
{
    (void)state;
    if (fx->client && !fx->client_closed) {
        http_client_close(fx->client, on_client_closed, fx);
        run_until(&fx->client_closed, 1);
    }
    server_stop(&fx->srv);
    uv_close((uv_handle_t *)&fx->watchdog, NULL);
    uv_run(&fx->loop, UV_RUN_DEFAULT);
    int handles = 0;
    uv_walk(&fx->loop, count_handle, &handles);
    assert_int_equal(handles, 0);
    assert_int_equal(uv_loop_close(&fx->loop), 0);
    free(fx);
    fx = NULL;
    return 0;
}

/* Everything above is shared with test_http_client_lua.c, which includes this
 * file with HTTP_CLIENT_TEST_SERVER_ONLY defined. */
#ifndef HTTP_CLIENT_TEST_SERVER_ONLY

/* ---------------------------------------------------------------- C API */

static void copy_header(char *dst, size_t cap, const struct http_response *res, const char *name)
{
    const char *v = http_response_header(res, name);
    snprintf(dst, cap, "%s", v ? v : "");
}

static void on_done(struct http_transfer *xfer, struct http_response *res, void *ud);

static struct http_transfer *start(const char *path, const struct http_client_request *base,
                                   int slot)
{
    char url[256];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", fx->srv.port, path);
    struct http_client_request req = {0};
    if (base)
        req = *base;
    req.url = url;
    struct http_transfer *t = http_client_request(fx->client, &req, on_done, &fx->results[slot]);
    assert_non_null(t);
    return t;
}

static void on_done(struct http_transfer *xfer, struct http_response *res, void *ud)
{
    struct result *r = ud;
    assert_non_null(xfer);
    r->called++;
    r->status = res->status;
    r->error = res->error;
    snprintf(r->message, sizeof r->message, "%s", res->message);
    snprintf(r->body, sizeof r->body, "%.*s", (int)(res->body_len < 63 ? res->body_len : 63),
             res->body);
    r->body_len = res->body_len;
    assert_int_equal(res->body[res->body_len], '\0');
    copy_header(r->retry_after, sizeof r->retry_after, res, "retry-after");
    copy_header(r->ratelimit, sizeof r->ratelimit, res, "Anthropic-RateLimit-Requests-Remaining");
    copy_header(r->echo_method, sizeof r->echo_method, res, "x-echo-method");
    copy_header(r->echo_test, sizeof r->echo_test, res, "X-ECHO-TEST");
    copy_header(r->dup, sizeof r->dup, res, "x-dup");
    fx->done_count++;
    if (fx->cancel_in_callback) {
        http_client_cancel(fx->cancel_in_callback);
        fx->cancel_in_callback = NULL;
    }
    if (fx->chain_in_callback) {
        fx->chain_in_callback--;
        start(fx->chain_path ? fx->chain_path : "/echo", NULL, (int)(r - fx->results) + 1);
    }
    if (fx->close_in_callback) {
        fx->close_in_callback = 0;
        http_client_close(fx->client, on_client_closed, fx);
        assert_true(http_client_is_closing(fx->client));
    }
}

/* ---------------------------------------------------------------- tests */

static void test_get_reads_status_headers_and_body(void **state)
{
    (void)state;
    struct http_header headers[] = {{"X-Test", "abc 123"}};
    struct http_client_request req = {.headers = headers, .nheaders = 1};
    start("/echo", &req, 0);
    run_until(&fx->done_count, 1);
    struct result *r = &fx->results[0];
    assert_int_equal(r->called, 1);
    assert_int_equal(r->error, HTTP_CLIENT_OK);
    assert_int_equal(r->status, 200);
    assert_string_equal(r->message, "");
    assert_string_equal(r->body, "hello");
    assert_string_equal(r->echo_method, "GET");
    assert_string_equal(r->echo_test, "abc 123");
    assert_string_equal(r->retry_after, "7");
    assert_string_equal(r->ratelimit, "42");
    assert_string_equal(r->dup, "a"); /* first of a repeated header */
    assert_string_equal(fx->srv.last_method, "GET");
}

static void test_post_sends_body_and_method(void **state)
{
    (void)state;
    char body[] = "{\"model\":\"x\"}";
    struct http_header headers[] = {{"Content-Type", "application/json"}, {"X-Test", "post"}};
    struct http_client_request req = {
        .headers = headers, .nheaders = 2, .body = body, .body_len = strlen(body)};
    start("/echo", &req, 0);
    memset(body, '!', strlen(body)); /* the body was copied */
    run_until(&fx->done_count, 1);
    struct result *r = &fx->results[0];
    assert_int_equal(r->status, 200);
    assert_string_equal(r->echo_method, "POST");
    assert_string_equal(r->echo_test, "post");
    assert_string_equal(r->body, "{\"model\":\"x\"}");
    assert_string_equal(fx->srv.last_body, "{\"model\":\"x\"}");

    struct http_client_request put = {.method = "put", .body = "v", .body_len = 1};
    start("/echo", &put, 1);
    run_until(&fx->done_count, 2);
    assert_string_equal(fx->results[1].echo_method, "PUT");
    assert_string_equal(fx->srv.last_body, "v");
}

static void test_error_status_is_a_response(void **state)
{
    (void)state;
    start("/status/429", NULL, 0);
    start("/status/529", NULL, 1);
    run_until(&fx->done_count, 2);
    assert_int_equal(fx->results[0].error, HTTP_CLIENT_OK);
    assert_int_equal(fx->results[0].status, 429);
    assert_int_equal(fx->results[1].status, 529);
    assert_string_equal(fx->results[0].body, "status");
}

static void test_parallel_transfers_share_bounded_connections(void **state)
{
    (void)state;
    struct http_client_config config = {.max_host_connections = 3};
    http_client_close(fx->client, NULL, NULL);
    fx->client = new_client(&config);
    enum { N = 24 };
    for (int i = 0; i < N; i++)
        start("/echo", NULL, i);
    run_until(&fx->done_count, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(fx->results[i].called, 1);
        assert_int_equal(fx->results[i].status, 200);
    }
    assert_true(fx->srv.accepted >= 1);
    assert_true(fx->srv.accepted <= 3);
    struct http_client_stats s;
    http_client_get_stats(fx->client, &s);
    assert_int_equal(s.started, N);
    assert_int_equal(s.finished, N);
    assert_int_equal(s.failed, 0);
    assert_int_equal(s.active, 0);
    assert_int_equal(s.connections_opened, (uint64_t)fx->srv.accepted);
    assert_int_equal(s.connections_reused, (uint64_t)(N - fx->srv.accepted));

    /* A second wave reuses the cached connections: no new accept. */
    int accepted = fx->srv.accepted;
    for (int i = 0; i < N; i++)
        start("/echo", NULL, N + i);
    run_until(&fx->done_count, 2 * N);
    assert_int_equal(fx->srv.accepted, accepted);
}

static void test_stalled_server_times_out(void **state)
{
    (void)state;
    struct http_client_request req = {.timeout_ms = 200};
    start("/stall", &req, 0);
    run_until(&fx->done_count, 1);
    assert_int_equal(fx->results[0].error, HTTP_CLIENT_ERR_TIMEOUT);
    assert_int_equal(fx->results[0].status, 0);
    assert_non_null(strstr(fx->results[0].message, "GET http://127.0.0.1:"));
    assert_string_equal(http_client_error_name(fx->results[0].error), "timeout");
}

static void test_low_speed_limit_times_out(void **state)
{
    (void)state;
    struct http_client_request req = {.low_speed_limit = 100, .low_speed_time_s = 1};
    start("/partial", &req, 0);
    run_until(&fx->done_count, 1);
    assert_int_equal(fx->results[0].error, HTTP_CLIENT_ERR_TIMEOUT);
    assert_int_equal(fx->results[0].status, 200);
}

static void test_refused_connection_is_connect_error(void **state)
{
    (void)state;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/x?key=secret", unused_port());
    struct http_client_request req = {.url = url};
    assert_non_null(http_client_request(fx->client, &req, on_done, &fx->results[0]));
    run_until(&fx->done_count, 1);
    struct result *r = &fx->results[0];
    assert_int_equal(r->error, HTTP_CLIENT_ERR_CONNECT);
    assert_int_equal(r->status, 0);
    assert_null(strstr(r->message, "secret")); /* no query string in messages */
    assert_non_null(strstr(r->message, "/x"));
}

static void test_dropped_connection_is_connect_error(void **state)
{
    (void)state;
    start("/drop", NULL, 0);
    run_until(&fx->done_count, 1);
    assert_int_equal(fx->results[0].error, HTTP_CLIENT_ERR_CONNECT);
}

/* A reused connection closes after the request went out, before any answer:
 * curl would send the request again on a new connection.  A POST is not sent
 * twice (the server may have acted on it: an LLM call is billed and counted);
 * the transfer fails as a connection error instead.  A GET is re-sent. */
static void test_post_is_not_resent_after_a_dead_reused_connection(void **state)
{
    (void)state;
    struct http_client_request post = {.body = "{}", .body_len = 2};
    start("/echo", &post, 0);
    run_until(&fx->done_count, 1);
    assert_int_equal(fx->results[0].status, 200);
    start("/drop", &post, 1);
    run_until(&fx->done_count, 2);
    /* (curl has opened the new connection when it asks to send again) */
    assert_int_equal(fx->srv.requests, 2); /* /echo, then /drop once */
    assert_int_equal(fx->results[1].error, HTTP_CLIENT_ERR_CONNECT);
    assert_int_equal(fx->results[1].status, 0);
    assert_non_null(strstr(fx->results[1].message, "POST http://127.0.0.1:"));
    assert_non_null(strstr(fx->results[1].message, "after the request was sent"));

    start("/echo", NULL, 2);
    run_until(&fx->done_count, 3);
    start("/drop", NULL, 3);
    run_until(&fx->done_count, 4);
    assert_int_equal(fx->srv.requests, 5); /* + /echo, and /drop twice */
    assert_int_equal(fx->results[3].error, HTTP_CLIENT_ERR_CONNECT);
    assert_null(strstr(fx->results[3].message, "after the request was sent"));
}

static void test_body_cap(void **state)
{
    (void)state;
    struct http_client_config config = {.max_response_bytes = 1000};
    http_client_close(fx->client, NULL, NULL);
    fx->client = new_client(&config);
    start("/big/1000", NULL, 0);
    start("/big/5000", NULL, 1);
    start("/chunked/5000", NULL, 2);
    start("/chunked/999", NULL, 3);
    run_until(&fx->done_count, 4);
    assert_int_equal(fx->results[0].error, HTTP_CLIENT_OK);
    assert_int_equal(fx->results[0].body_len, 1000);
    assert_int_equal(fx->results[1].error, HTTP_CLIENT_ERR_TOO_LARGE);
    assert_int_equal(fx->results[2].error, HTTP_CLIENT_ERR_TOO_LARGE);
    assert_non_null(strstr(fx->results[2].message, "larger than 1000 bytes"));
    assert_int_equal(fx->results[3].error, HTTP_CLIENT_OK);
    assert_int_equal(fx->results[3].body_len, 999);
}

static void test_cancel_mid_transfer(void **state)
{
    (void)state;
    struct http_transfer *t = start("/partial", NULL, 0);
    run_until(&fx->srv.partial_out, 1);
    assert_int_equal(fx->srv.open, 1);
    http_client_cancel(t);
    /* The client drops the half-read connection: the server sees it close. */
    run_until_server_idle();
    /* And the client still works afterwards. */
    start("/echo", NULL, 1);
    run_until(&fx->done_count, 1);
    assert_int_equal(fx->results[0].called, 0);
    assert_int_equal(fx->results[1].status, 200);
    struct http_client_stats s;
    http_client_get_stats(fx->client, &s);
    assert_int_equal(s.cancelled, 1);
    assert_int_equal(s.active, 0);
}

static void test_cancel_before_start_and_from_callback(void **state)
{
    (void)state;
    /* Cancelled before the loop ever ran: never connects, never calls back. */
    struct http_transfer *t = start("/echo", NULL, 0);
    http_client_cancel(t);
    /* Cancelled from another transfer's callback. */
    start("/echo", NULL, 1);
    fx->cancel_in_callback = start("/stall", NULL, 2);
    run_until(&fx->done_count, 1);
    uv_run(&fx->loop, UV_RUN_NOWAIT);
    assert_int_equal(fx->results[0].called, 0);
    assert_int_equal(fx->results[1].called, 1);
    assert_int_equal(fx->results[2].called, 0);
    struct http_client_stats s;
    http_client_get_stats(fx->client, &s);
    assert_int_equal(s.cancelled, 2);
    assert_int_equal(s.active, 0);
}

static void test_close_with_transfers_in_flight(void **state)
{
    (void)state;
    start("/stall", NULL, 0);
    start("/stall", NULL, 1);
    start("/partial", NULL, 2);
    start("/echo", NULL, 3);
    run_until(&fx->srv.stalled, 3);
    run_until(&fx->done_count, 1); /* /echo */
    http_client_close(fx->client, on_client_closed, fx);
    /* In-flight transfers complete inside close, as "closed". */
    assert_int_equal(fx->done_count, 4);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(fx->results[i].called, 1);
        assert_int_equal(fx->results[i].error, HTTP_CLIENT_ERR_CLOSED);
    }
    assert_int_equal(fx->results[3].error, HTTP_CLIENT_OK);
    /* New requests fail at once. */
    struct http_client_request req = {.url = "http://127.0.0.1:1/"};
    assert_null(http_client_request(fx->client, &req, on_done, &fx->results[9]));
    assert_non_null(strstr(http_client_last_error(fx->client), "closed"));
    run_until(&fx->client_closed, 1);
    /* The client's sockets are closed: the server sees every connection go. */
    run_until_server_idle();
}

static void test_close_from_done_callback(void **state)
{
    (void)state;
    fx->chain_in_callback = 1; /* the first done starts another request */
    start("/echo", NULL, 0);
    run_until(&fx->done_count, 2);
    assert_int_equal(fx->results[1].status, 200);
    fx->close_in_callback = 1;
    start("/echo", NULL, 2);
    start("/stall", NULL, 3);
    run_until(&fx->done_count, 4);
    assert_int_equal(fx->results[2].error, HTTP_CLIENT_OK);
    assert_int_equal(fx->results[3].error, HTTP_CLIENT_ERR_CLOSED);
    run_until(&fx->client_closed, 1);
}

/* Each transfer gets a new connection that the server closes: socket fds
 * are closed and reused one after another (the CURL_POLL_REMOVE path). */
static void test_sequential_closed_connections(void **state)
{
    (void)state;
    enum { N = 12 };
    fx->chain_in_callback = N - 1;
    fx->chain_path = "/close";
    start("/close", NULL, 0);
    run_until(&fx->done_count, N);
    for (int i = 0; i < N; i++) {
        assert_int_equal(fx->results[i].status, 200);
        assert_string_equal(fx->results[i].body, "bye");
    }
    assert_int_equal(fx->srv.accepted, N);
    struct http_client_stats s;
    http_client_get_stats(fx->client, &s);
    assert_int_equal(s.connections_opened, N);
    assert_int_equal(s.connections_reused, 0);
}

static void test_invalid_requests_are_refused(void **state)
{
    (void)state;
    struct http_client_request req = {.url = "ftp://127.0.0.1/"};
    assert_null(http_client_request(fx->client, &req, on_done, NULL));
    assert_non_null(strstr(http_client_last_error(fx->client), "http://"));
    req.url = "http://127.0.0.1/";
    struct http_header bad_value[] = {{"X-A", "a\r\nInjected: 1"}};
    req.headers = bad_value;
    req.nheaders = 1;
    assert_null(http_client_request(fx->client, &req, on_done, NULL));
    struct http_header bad_name[] = {{"X A", "a"}};
    req.headers = bad_name;
    assert_null(http_client_request(fx->client, &req, on_done, NULL));
    req.headers = NULL;
    req.nheaders = 0;
    req.method = "GET /x";
    assert_null(http_client_request(fx->client, &req, on_done, NULL));
    struct http_client_stats s;
    http_client_get_stats(fx->client, &s);
    assert_int_equal(s.started, 0);
}

static void test_proxy_from_environment_is_ignored(void **state)
{
    (void)state;
    /* A proxy in the environment that does not exist: using it would fail. */
    setenv("http_proxy", "http://127.0.0.1:1", 1);
    setenv("HTTP_PROXY", "http://127.0.0.1:1", 1);
    setenv("ALL_PROXY", "http://127.0.0.1:1", 1);
    start("/echo", NULL, 0);
    run_until(&fx->done_count, 1);
    unsetenv("http_proxy");
    unsetenv("HTTP_PROXY");
    unsetenv("ALL_PROXY");
    assert_int_equal(fx->results[0].error, HTTP_CLIENT_OK);
    assert_int_equal(fx->results[0].status, 200);
}

static void test_configured_proxy_is_used(void **state)
{
    (void)state;
    /* The test server plays the proxy: an absolute-form request line for
     * /echo does not match its routes, so it answers 404 - but it answered. */
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", fx->srv.port);
    struct http_client_config config = {.proxy = proxy};
    http_client_close(fx->client, NULL, NULL);
    fx->client = new_client(&config);
    struct http_client_request req = {.url = "http://o2c-test.invalid/echo"};
    assert_non_null(http_client_request(fx->client, &req, on_done, &fx->results[0]));
    run_until(&fx->done_count, 1);
    assert_int_equal(fx->results[0].error, HTTP_CLIENT_OK);
    assert_int_equal(fx->results[0].status, 404);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get_reads_status_headers_and_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_sends_body_and_method, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_status_is_a_response, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parallel_transfers_share_bounded_connections, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_stalled_server_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_low_speed_limit_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_connection_is_connect_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropped_connection_is_connect_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_is_not_resent_after_a_dead_reused_connection,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_mid_transfer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel_before_start_and_from_callback, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_close_with_transfers_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_from_done_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sequential_closed_connections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalid_requests_are_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_proxy_from_environment_is_ignored, setup, teardown),
        cmocka_unit_test_setup_teardown(test_configured_proxy_is_used, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
#endif
