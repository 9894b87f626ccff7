/* fuzz_http: the bytes of one client connection -- any number of pipelined
 * requests, complete or not -- through the HTTP server: accept, llhttp, the
 * head/body assembly and its limits (400/413/431), the Lua task per
 * request, router.lua, the API handlers (storage stubbed, the real
 * generation), and the response writer.
 *
 * The connection is an AF_UNIX socket (http_server_fuzz.h): no TCP ports.
 * The client side runs on the same loop (a uv_poll): it writes the input,
 * reads what comes back and parses it with llhttp as responses.  It writes
 * the input whole (a quarter of the inputs) or in pieces of 1 byte to twice
 * the server's read buffer, each piece only once the server has done all it
 * can with the one before, so the server sees the same bytes split at other
 * places: the sizes come from a hash of the input, so a crash reproduces
 * from the input alone.  An input
 * ends when the server has done all it can with the bytes (every response
 * written, the rest an incomplete request) or closed the connection; the
 * client then closes and the server's connection must go away.
 *
 * Invariants checked (abort on violation):
 *   - the responses are well-formed HTTP/1.1 and there is one per request the
 *     server finished (its access log), in order;
 *   - no 500: with the stubs, a 500 is an uncaught error in a handler;
 *   - after the connection closes: no connection, no request, no task, nothing
 *     on the product VM's stack left; the VM does not grow across inputs. */
#include <errno.h>
#include <stddef.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "fuzz_common.h"
#include "host/task.h"
#include "llhttp.h"
#include "net/http_server.h"
#include "net/http_server_fuzz.h"
#include "net/http_server_lua.h"

/* Small limits, so that short inputs reach them. */
#define FUZZ_HEAD_MAX 4096
#define FUZZ_JSON_MAX 8192
#define FUZZ_UPLOAD_MAX 16384
#define FUZZ_READ_BUFFER 4096
#define LOG_MAX 4096

static uv_loop_t loop;
static struct http_server *server;
static struct http_lua_server lua_server;
static struct sockaddr_un address;
static socklen_t address_len;

/* What the server's access log said, in order: one entry per exchange. */
static struct {
    int status;
    int head; /* the request was HEAD: its response has no body */
} exchanges[LOG_MAX];
static size_t nexchanges;
static int saw_500;
static char last_500_path[256];
static int verbose; /* $O2C_FUZZ_VERBOSE: print each exchange (reproducing a crash) */

/* The client side of the current input. */
struct client {
    uv_os_sock_t fd;
    uv_poll_t poll;
    const uint8_t *data;
    size_t len, sent;
    size_t piece_end; /* bytes the client may send so far */
    uint64_t split;   /* state of the piece sizes' generator; 0: one piece */
    int eof;
    llhttp_t parser;
    size_t responses; /* final (non-1xx) responses parsed */
    int parse_error;
    /* Everything the server sent, parsed once the exchange is over: a
     * response can reach us before the access-log entry that says whether
     * it answered a HEAD (and so has no body) has been written. */
    char *rx;
    size_t rx_len, rx_cap;
};

static void fuzz_access_log(const struct http_access_entry *e, void *ud)
{
    (void)ud;
    if (verbose)
        fprintf(stderr, "fuzz_http: %d %s %s (route %s)\n", e->status, e->method, e->path,
                e->route);
    if (e->status == 500) {
        saw_500 = 1;
        snprintf(last_500_path, sizeof last_500_path, "%s %s", e->method, e->path);
    }
    if (nexchanges < LOG_MAX) {
        exchanges[nexchanges].status = e->status;
        exchanges[nexchanges].head = strcmp(e->method, "HEAD") == 0;
    }
    nexchanges++;
}

static size_t fuzz_body_limit(const struct http_request *req, void *ud)
{
    (void)ud;
    if (strcmp(http_request_method(req), "PUT") == 0 &&
        strstr(http_request_path(req), "/attachments/"))
        return FUZZ_UPLOAD_MAX;
    return FUZZ_JSON_MAX;
}

/* ---- the client's response parser ---- */

static int on_response_headers(llhttp_t *p)
{
    struct client *c = p->data;
    if (p->status_code < 200)
        return 0; /* 100 Continue: not an exchange of its own */
    size_t i = c->responses;
    /* A response to HEAD carries its Content-Length but no body. */
    return i < nexchanges && i < LOG_MAX && exchanges[i].head ? 1 : 0;
}

static int on_response_complete(llhttp_t *p)
{
    struct client *c = p->data;
    if (p->status_code >= 200)
        c->responses++;
    return 0;
}

static const llhttp_settings_t response_settings = {
    .on_headers_complete = on_response_headers,
    .on_message_complete = on_response_complete,
};

static void client_parse(struct client *c, const char *buf, size_t n)
{
    if (c->parse_error || n == 0)
        return;
    llhttp_errno_t err = llhttp_execute(&c->parser, buf, n);
    if (err != HPE_OK) {
        fprintf(stderr, "fuzz_http: malformed response: %s (%s)\n", llhttp_errno_name(err),
                llhttp_get_error_reason(&c->parser));
        c->parse_error = 1;
    }
}

static void client_keep(struct client *c, const char *buf, size_t n)
{
    if (c->rx_len + n > c->rx_cap) {
        size_t cap = c->rx_cap ? c->rx_cap * 2 : 65536;
        while (cap < c->rx_len + n)
            cap *= 2;
        char *p = realloc(c->rx, cap);
        if (!p)
            abort();
        c->rx = p;
        c->rx_cap = cap;
    }
    memcpy(c->rx + c->rx_len, buf, n);
    c->rx_len += n;
}

/* Parses what the server sent, once every exchange is in the access log. */
static void client_parse_all(struct client *c)
{
    client_parse(c, c->rx, c->rx_len);
    if (c->eof && !c->parse_error && llhttp_finish(&c->parser) != HPE_OK) {
        fprintf(stderr, "fuzz_http: response cut short by the close\n");
        c->parse_error = 1;
    }
    free(c->rx);
    c->rx = NULL;
}

static void client_read(struct client *c)
{
    char buf[16384];
    for (;;) {
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n > 0) {
            client_keep(c, buf, (size_t)n);
            continue;
        }
        if (n == 0 || (errno != EAGAIN && errno != EINTR))
            c->eof = 1;
        if (n < 0 && errno == EINTR)
            continue;
        return;
    }
}

/* The piece sizes: whole for a quarter of the inputs (FNV-1a of the bytes). */
static uint64_t split_seed(const uint8_t *data, size_t len)
{
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ data[i]) * 1099511628211ull;
    return (h & 3) == 0 ? 0 : h | 1;
}

/* Lets the client send the next piece (xorshift64 for its size). */
static void client_next_piece(struct client *c)
{
    if (c->split == 0) {
        c->piece_end = c->len;
        return;
    }
    c->split ^= c->split << 13;
    c->split ^= c->split >> 7;
    c->split ^= c->split << 17;
    /* Mostly small pieces, sometimes past the read buffer. */
    size_t max = (c->split >> 60) < 3 ? 2 * FUZZ_READ_BUFFER : 64;
    size_t piece = 1 + (size_t)((c->split >> 8) % max);
    c->piece_end = c->len - c->piece_end < piece ? c->len : c->piece_end + piece;
}

static void client_write(struct client *c)
{
    while (c->sent < c->piece_end) {
        ssize_t n = send(c->fd, c->data + c->sent, c->piece_end - c->sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN)
            c->sent = c->piece_end = c->len; /* the server closed: the rest is never read */
        return;
    }
}

static void on_client_poll(uv_poll_t *h, int status, int events);

static void client_update_poll(struct client *c)
{
    int events = c->eof ? 0 : UV_READABLE;
    if (c->sent < c->piece_end && !c->eof)
        events |= UV_WRITABLE;
    if (events)
        uv_poll_start(&c->poll, events, on_client_poll);
    else
        uv_poll_stop(&c->poll);
}

static void on_client_poll(uv_poll_t *h, int status, int events)
{
    struct client *c = h->data;
    if (status < 0)
        c->eof = 1;
    if (events & UV_WRITABLE)
        client_write(c);
    if (events & UV_READABLE)
        client_read(c);
    client_update_poll(c);
}

/* ---- set-up, once ---- */

static void setup(void)
{
    fuzz_quiet_logs();
    verbose = getenv("O2C_FUZZ_VERBOSE") != NULL;
    if (uv_loop_init(&loop) != 0)
        abort();
    lua_State *L = fuzz_product_vm(&loop);
    lua_server.L = L;
    lua_server.handler_ref = fuzz_server_handler_ref();

    struct http_server_config cfg;
    http_server_config_init(&cfg);
    cfg.max_head_size = FUZZ_HEAD_MAX;
    cfg.max_body_size = FUZZ_JSON_MAX;
    cfg.read_buffer_size = FUZZ_READ_BUFFER;
    cfg.body_limit = fuzz_body_limit;
    cfg.access_log = fuzz_access_log;
    server = http_server_new(&loop, &cfg, http_lua_handle, &lua_server);
    http_lua_set_server(server);

    /* An abstract AF_UNIX name: nothing on disk to clean up. */
    memset(&address, 0, sizeof address);
    address.sun_family = AF_UNIX;
    int n = snprintf(address.sun_path + 1, sizeof address.sun_path - 1, "o2c-fuzz-http-%d",
                     (int)getpid());
    address_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!server || fd < 0 || bind(fd, (struct sockaddr *)&address, address_len) != 0 ||
        http_server_fuzz_listen(server, fd) != 0) {
        fprintf(stderr, "fuzz_http: cannot set up the server\n");
        exit(2);
    }
}

static uint64_t connections_open(void)
{
    struct http_server_stats st;
    http_server_get_stats(server, &st);
    return st.connections_open;
}

static uint64_t connections_total(void)
{
    struct http_server_stats st;
    http_server_get_stats(server, &st);
    return st.connections_total;
}

static void check_after_close(void)
{
    struct http_server_stats st;
    http_server_get_stats(server, &st);
    int stack = lua_gettop(lua_server.L);
    if (st.connections_open != 0 || st.requests_active != 0 || task_count() != 0 || stack != 0) {
        fprintf(stderr,
                "fuzz_http: left behind: %llu connections, %llu requests, %zu tasks, "
                "%d values on the VM's stack\n",
                (unsigned long long)st.connections_open, (unsigned long long)st.requests_active,
                task_count(), stack);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!server)
        setup();
    nexchanges = 0;
    saw_500 = 0;

    struct client c;
    memset(&c, 0, sizeof c);
    c.data = data;
    c.len = size;
    c.split = split_seed(data, size);
    client_next_piece(&c);
    llhttp_init(&c.parser, HTTP_RESPONSE, &response_settings);
    c.parser.data = &c;
    c.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    uint64_t accepted_before = connections_total();
    if (c.fd < 0 || connect(c.fd, (struct sockaddr *)&address, address_len) != 0) {
        perror("fuzz_http: connect");
        abort();
    }
    uv_poll_init_socket(&loop, &c.poll, c.fd);
    c.poll.data = &c;
    uv_poll_start(&c.poll, UV_READABLE | UV_WRITABLE, on_client_poll);
    client_update_poll(&c);

    /* Piece by piece: until the server has accepted, taken every byte sent
     * and answered what it could, or closed the connection; then the next. */
    while (!c.eof) {
        if (connections_total() != accepted_before && c.sent == c.piece_end &&
            http_server_fuzz_settled(server)) {
            if (c.piece_end == c.len)
                break;
            client_next_piece(&c);
            client_update_poll(&c);
        }
        uv_run(&loop, UV_RUN_ONCE);
    }
    if (!c.eof)
        client_read(&c);          /* responses already in the socket */
    uv_run(&loop, UV_RUN_NOWAIT); /* access-log entries of the last responses */
    client_parse_all(&c);

    if (c.parse_error)
        abort();
    size_t finished = nexchanges < LOG_MAX ? nexchanges : LOG_MAX;
    if (c.responses != finished) {
        fprintf(stderr, "fuzz_http: %zu responses for %zu finished exchanges\n", c.responses,
                finished);
        abort();
    }
    if (saw_500) {
        fprintf(stderr, "fuzz_http: 500 on %s\n", last_500_path);
        abort();
    }

    /* The client leaves; the server must let the connection go. */
    uv_close((uv_handle_t *)&c.poll, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    close(c.fd);
    while (connections_open() > 0)
        uv_run(&loop, UV_RUN_ONCE);
    check_after_close();
    fuzz_check_vm_growth(lua_server.L);
    return 0;
}
