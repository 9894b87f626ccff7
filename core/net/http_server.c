/* HTTP server: configuration, listener, accept policy, graceful shutdown,
 * stats and the access log.  See http_server.h for the contract and
 * http_server_internal.h for how the files share the work. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>
#include "host/log.h"
#include "net/http_server_internal.h"

/* ---- configuration ---- */

void http_server_config_init(struct http_server_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->max_head_size = 16 * 1024;
    cfg->max_headers = 100;
    cfg->max_body_size = 1024 * 1024;
    cfg->max_connections = 2048;
    cfg->header_timeout_ms = 10000;
    cfg->busy_header_timeout_ms = 2000;
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
    DEFAULT_IF_ZERO(busy_header_timeout_ms);
    DEFAULT_IF_ZERO(body_timeout_ms);
    DEFAULT_IF_ZERO(idle_timeout_ms);
    DEFAULT_IF_ZERO(write_timeout_ms);
    DEFAULT_IF_ZERO(linger_ms);
    DEFAULT_IF_ZERO(read_buffer_size);
    DEFAULT_IF_ZERO(max_stream_backlog);
    DEFAULT_IF_ZERO(default_csp);
#undef DEFAULT_IF_ZERO
    /* A quarter of the places, but a small server still lets one client
     * open a handful. */
    if (!cfg->max_connections_per_address) {
        size_t floor = cfg->max_connections < 16 ? cfg->max_connections : 16;
        size_t quarter = cfg->max_connections / 4;
        cfg->max_connections_per_address = quarter > floor ? quarter : floor;
    }
    if (cfg->busy_header_timeout_ms > cfg->header_timeout_ms)
        cfg->busy_header_timeout_ms = cfg->header_timeout_ms;
}

/* ---- connections per client address ---- */

static size_t address_bucket(const char *name)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h & (HTTP_ADDRESS_BUCKETS - 1);
}

/* Counts one more connection from NAME; NULL when out of memory (the
 * connection is then refused as if over the limit). */
struct http_address *http_server_address_acquire(struct http_server *srv, const char *name)
{
    struct http_address **head = &srv->addresses[address_bucket(name)];
    for (struct http_address *a = *head; a; a = a->next)
        if (strcmp(a->name, name) == 0) {
            a->conns++;
            return a;
        }
    struct http_address *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    snprintf(a->name, sizeof a->name, "%s", name);
    a->conns = 1;
    a->next = *head;
    *head = a;
    return a;
}

void http_server_address_release(struct http_server *srv, struct http_address *a)
{
    if (--a->conns > 0)
        return;
    struct http_address **p = &srv->addresses[address_bucket(a->name)];
    while (*p != a)
        p = &(*p)->next;
    *p = a->next;
    free(a);
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
void http_server_access_log(struct http_server *srv, const struct http_request *req,
                            const char *remote, const char *id, int status)
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

/* ---- server ---- */

static void on_stray_closed(uv_handle_t *h)
{
    struct http_server *srv = h->data;
    free(h);
    srv->nstray--;
    http_server_check_done(srv);
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
    if (http_conn_accept(srv) != 0)
        accept_stray(srv);
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

void http_server_check_done(struct http_server *srv)
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
        http_conn_close(c);
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
            http_conn_close(c);
    }
    uv_timer_start(&srv->grace_timer, on_grace_over, grace_ms, 0);
    http_server_check_done(srv);
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