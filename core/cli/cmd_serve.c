/* o2c serve: the HTTP endpoint mode.
 *
 * Start-up: config, the product VM, the first generation, the HTTP server,
 * signal handlers.  Shutdown (SIGINT/SIGTERM): stop accepting, let requests
 * and tasks finish up to the grace period, cancel what is left, close every
 * handle, and check that none is left open when the loop closes. */
#include <errno.h>
#include <getopt.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "app/app.h"
#include "cli/cli.h"
#include "host/generation.h"
#include "host/log.h"
#include "host/lua_host.h"
#include "host/notify.h"
#include "host/reload.h"
#include "host/task.h"
#include "llm/scheduler.h"
#include "llm/scheduler_lua.h"
#include "net/http_server.h"
#include "net/http_client_lua.h"
#include "net/http_server_lua.h"
#include "store/backup.h"
#include "store/backup_schedule.h"
#include "store/data_lock.h"
#include "store/db.h"
#include "store/store_lua.h"

#define SHUTDOWN_POLL_MS 20

struct serve {
    struct config cfg;
    uv_loop_t *loop;
    lua_State *L;
    struct http_server *http;
    struct http_lua_server hl;
    struct http_client *llm_http; /* o2c.http: the LLM providers' client */
    struct store_serve *store;
    struct backup_schedule *backups; /* NULL: backup.dir is "" */
    int data_lock;                   /* o2c.lock, held shared while we run */
    uv_signal_t sigint, sigterm, sighup;
    uv_timer_t drain;
    uint64_t drain_deadline;
    int stopping;
};

static int serve_parse(int argc, char **argv, struct serve *s)
{
    static const struct option longopts[] = {{"config", required_argument, 0, 'c'},
                                             {"listen", required_argument, 0, 'l'},
                                             {"data", required_argument, 0, 'd'},
                                             {0, 0, 0, 0}};
    const char *config = NULL, *listen = NULL, *data = NULL;
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'c')
            config = optarg;
        else if (c == 'l')
            listen = optarg;
        else if (c == 'd')
            data = optarg;
        else
            return cli_option_error("serve", argv);
    }
    if (optind < argc)
        return cli_usage_error("serve", "takes no positional arguments");
    int rc = cli_load_config(&s->cfg, config);
    if (rc != CLI_OK)
        return rc;
    char err[CONFIG_ERROR_MAX];
    if ((listen && config_set_string(&s->cfg, "listen", listen, "--listen", err) != 0) ||
        (data && config_set_string(&s->cfg, "data_dir", data, "--data", err) != 0)) {
        fprintf(stderr, "%s\n", err);
        return CLI_USAGE;
    }
    return CLI_OK;
}

static int make_dirs(const char *path)
{
    char buf[CONFIG_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

static size_t serve_body_limit(const struct http_request *req, void *ud)
{
    const struct serve *s = ((const struct http_lua_server *)ud)->user;
    /* Evidence uploads are the one raw-body route allowed past the JSON limit. */
    if (strcmp(http_request_method(req), "PUT") == 0 &&
        strstr(http_request_path(req), "/attachments/"))
        return (size_t)s->cfg.limits.upload_bytes;
    return (size_t)s->cfg.limits.json_body_bytes;
}

static void serve_close_handle(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void serve_llm_http_closed(struct http_client *client, void *ud)
{
    struct serve *s = ud;
    (void)client;
    if (s->L)
        http_client_lua_attach(s->L, NULL); /* the VM never holds a freed client */
}

/* After the tasks are cancelled: no transfer is left to complete. */
static void serve_close_llm_http(struct serve *s)
{
    if (!s->llm_http)
        return;
    http_client_close(s->llm_http, serve_llm_http_closed, s);
    s->llm_http = NULL;
}

/* The HTTP client the LLM adapters call through (o2c.http): the proxy only
 * from the configuration, enough connections for the configured concurrency. */
static int serve_llm_http(struct serve *s)
{
    struct http_client_config hc = {0};
    hc.proxy = s->cfg.llm.proxy;
    hc.timeout_ms = (long)(s->cfg.llm.timeout_s * 1000);
    if (s->cfg.llm.concurrency > HTTP_CLIENT_DEFAULT_MAX_HOST_CONNECTIONS)
        hc.max_host_connections = (long)s->cfg.llm.concurrency;
    s->llm_http = http_client_new(s->loop, &hc);
    if (!s->llm_http)
        return -1;
    http_client_lua_attach(s->L, s->llm_http);
    return 0;
}

/* Logs which LLM provider writes the reports, and why (core/lua/llm). */
static void serve_log_llm(struct serve *s)
{
    if (host_require(s->L, "llm") == LUA_OK) {
        lua_getfield(s->L, -1, "log_choice");
        if (host_pcall(s->L, 0, 0) == LUA_OK) {
            lua_settop(s->L, 0);
            return;
        }
    }
    log_msg(LOG_ERROR, "cannot tell the LLM provider", "error", lua_tostring(s->L, -1), NULL);
    lua_settop(s->L, 0);
}

/* The last step: tasks are done or cancelled, nothing else may run. */
static void serve_finish(struct serve *s)
{
    task_cancel_all();
    serve_close_llm_http(s);
    reload_stop();
    backup_schedule_stop(s->backups);
    store_serve_stop(s->store);
    serve_close_handle((uv_handle_t *)&s->sigint);
    serve_close_handle((uv_handle_t *)&s->sigterm);
    serve_close_handle((uv_handle_t *)&s->sighup);
    serve_close_handle((uv_handle_t *)&s->drain);
}

static void serve_drain_tick(uv_timer_t *t)
{
    struct serve *s = t->data;
    if (task_count() == 0 || uv_now(s->loop) >= s->drain_deadline) {
        if (task_count() > 0)
            log_msg(LOG_WARN, "grace period over: cancelling tasks still running", NULL);
        uv_timer_stop(t);
        serve_finish(s);
    }
}

static void serve_http_closed(struct http_server *srv, void *ud)
{
    struct serve *s = ud;
    (void)srv;
    uv_timer_start(&s->drain, serve_drain_tick, 0, SHUTDOWN_POLL_MS);
}

static void serve_stop(struct serve *s, const char *why)
{
    if (s->stopping) {
        log_msg(LOG_WARN, "second signal: stopping now", NULL);
        s->drain_deadline = 0;
        return;
    }
    s->stopping = 1;
    notify_stopping();
    uint64_t grace = (uint64_t)(s->cfg.limits.shutdown_grace_s * 1000);
    log_msg(LOG_INFO, "shutting down", "signal", why, NULL);
    s->drain_deadline = uv_now(s->loop) + grace;
    http_server_shutdown(s->http, grace, serve_http_closed, s);
}

static void serve_on_signal(uv_signal_t *h, int signum)
{
    struct serve *s = h->data;
    if (signum == SIGHUP) {
        if (!s->stopping) /* no reload (nor RELOADING=1) once shutting down */
            reload_now("SIGHUP");
        return;
    }
    serve_stop(s, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

static void serve_signals(struct serve *s)
{
    uv_signal_t *sigs[] = {&s->sigint, &s->sigterm, &s->sighup};
    int nums[] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(s->loop, sigs[i]);
        sigs[i]->data = s;
        uv_signal_start(sigs[i], serve_on_signal, nums[i]);
    }
    uv_timer_init(s->loop, &s->drain);
    s->drain.data = s;
}

/* Loads the server's Lua entry point and keeps a reference to its handler. */
static int serve_lua(struct serve *s)
{
    http_lua_register(s->L);
    if (host_require(s->L, "server") != LUA_OK) {
        log_msg(LOG_ERROR, "cannot load core/lua/server.lua", "error", lua_tostring(s->L, -1),
                NULL);
        return -1;
    }
    lua_getfield(s->L, -1, "handle");
    if (!lua_isfunction(s->L, -1)) {
        log_msg(LOG_ERROR, "core/lua/server.lua has no handle(req) function", NULL);
        return -1;
    }
    s->hl.L = s->L;
    s->hl.handler_ref = luaL_ref(s->L, LUA_REGISTRYINDEX);
    s->hl.user = s;
    lua_getfield(s->L, -1, "start");
    if (lua_isfunction(s->L, -1) && host_pcall(s->L, 0, 0) != LUA_OK) {
        log_msg(LOG_ERROR, "server start-up failed", "error", lua_tostring(s->L, -1), NULL);
        return -1;
    }
    lua_settop(s->L, 0);
    return 0;
}

/* Scheduled backups when backup.dir is set. */
static int serve_backups(struct serve *s)
{
    const struct config *c = &s->cfg;
    if (c->backup.dir[0] == '\0')
        return 0;
    char db_file[CONFIG_PATH_MAX + 16], err[CONFIG_PATH_MAX + 128];
    snprintf(db_file, sizeof db_file, "%s/%s", c->data_dir, BACKUP_DB_FILE);
    s->backups = backup_schedule_start(s->loop, db_file, c->backup.dir, c->backup.every,
                                       (int)c->backup.keep, err, sizeof err);
    if (!s->backups) {
        log_msg(LOG_ERROR, "cannot schedule backups", "error", err, "fix",
                "set backup.dir to a folder o2c may write, or to \"\" for none", NULL);
        return -1;
    }
    char every[32], keep[24];
    snprintf(every, sizeof every, "%g", c->backup.every);
    snprintf(keep, sizeof keep, "%lld", c->backup.keep);
    struct log_field f[] = {{"dir", c->backup.dir, 0}, {"every_s", every, 1}, {"keep", keep, 1}};
    log_fields(LOG_INFO, "scheduled backups", f, 3);
    return 0;
}

/* The shared hold on the data folder that keeps `o2c db restore` out. */
static int serve_lock_data(struct serve *s)
{
    char err[CONFIG_PATH_MAX + 128];
    int rc = data_lock_take(s->cfg.data_dir, DATA_LOCK_SHARED, &s->data_lock, err, sizeof err);
    if (rc == STORE_OK)
        return 0;
    if (rc == STORE_BUSY)
        log_msg(LOG_ERROR, "the data folder is locked: o2c db restore is replacing the database",
                "data_dir", s->cfg.data_dir, "fix",
                "wait for the restore to finish, then start o2c serve again", NULL);
    else
        log_msg(LOG_ERROR, "cannot lock the data folder", "error", err, NULL);
    return -1;
}

static int serve_listen(struct serve *s)
{
    struct http_server_config hc;
    http_server_config_init(&hc);
    hc.max_head_size = (size_t)s->cfg.limits.header_bytes;
    hc.max_body_size = (size_t)s->cfg.limits.json_body_bytes;
    hc.max_connections = (size_t)s->cfg.limits.max_connections;
    hc.max_connections_per_address = (size_t)s->cfg.limits.connections_per_address;
    hc.header_timeout_ms = (uint64_t)(s->cfg.limits.header_timeout_s * 1000);
    hc.body_timeout_ms = (uint64_t)(s->cfg.limits.body_timeout_s * 1000);
    hc.idle_timeout_ms = (uint64_t)(s->cfg.limits.keepalive_s * 1000);
    hc.body_limit = serve_body_limit;
    s->http = http_server_new(s->loop, &hc, http_lua_handle, &s->hl);
    char host[128];
    int port;
    if (!s->http || config_listen_address(&s->cfg, host, sizeof host, &port) != 0)
        return -1;
    int rc = http_server_listen(s->http, host, port);
    if (rc != 0) {
        log_msg(LOG_ERROR, "cannot listen", "listen", s->cfg.listen, "error", uv_strerror(rc),
                "fix", "choose a free port with --listen HOST:PORT or O2C_LISTEN", NULL);
        return -1;
    }
    http_lua_set_server(s->http);
    char bound[160];
    snprintf(bound, sizeof bound, "%s:%d", host, http_server_port(s->http));
    log_msg(LOG_INFO, "listening", "url", bound, "data_dir", s->cfg.data_dir, NULL);
    char status[200];
    snprintf(status, sizeof status, "listening on %s", bound);
    notify_ready(status);
    return 0;
}

static void serve_count_handle(uv_handle_t *h, void *arg)
{
    if (uv_is_closing(h))
        return;
    (*(int *)arg)++;
    log_msg(LOG_ERROR, "libuv handle left open at shutdown", "type",
            uv_handle_type_name(uv_handle_get_type(h)), NULL);
}

/* Closes the VM and the loop; returns the number of handles left open. */
static int serve_teardown(struct serve *s)
{
    int left = 0;
    generation_shutdown();
    host_close(s->L);
    s->L = NULL;
    uv_run(s->loop, UV_RUN_DEFAULT); /* close callbacks of what the VM held */
    uv_walk(s->loop, serve_count_handle, &left);
    http_lua_set_server(NULL);
    if (s->http)
        http_server_free(s->http);
    if (left == 0 && uv_loop_close(s->loop) != 0)
        left = 1;
    return left;
}

/* libuv's pool runs scoring for previews, argon2 and file work.  More pool
 * threads than cores only switch between each other and the loop (measured
 * on 2 cores: 2 threads serve ~20% more previews than libuv's default 4, for
 * less CPU each).  Must run before anything is queued; UV_THREADPOOL_SIZE
 * set by the user still wins. */
static void serve_size_pool(void)
{
    unsigned n = uv_available_parallelism();
    char buf[16];
    snprintf(buf, sizeof buf, "%u", n < 2 ? 2 : n);
    setenv("UV_THREADPOOL_SIZE", buf, 0);
}

/* Several instances on PostgreSQL share one LLM budget (llm/scheduler.h). */
static int serve_share_llm_budget(struct serve *s)
{
    struct db *db = store_serve_db(s->store);
    if (strcmp(db_engine(db), "postgresql") != 0)
        return 0;
    char err[SCHEDULER_MESSAGE_MAX];
    if (scheduler_lua_share(s->L, db, err, sizeof err) == 0)
        return 0;
    log_msg(LOG_ERROR, "cannot share the LLM budget", "error", err, NULL);
    return -1;
}

int cmd_serve(int argc, char **argv)
{
    struct serve *s = calloc(1, sizeof *s);
    if (!s)
        return CLI_FAILED;
    s->data_lock = -1;
    int rc = serve_parse(argc, argv, s);
    if (rc != CLI_OK) {
        free(s);
        return rc;
    }
    serve_size_pool();
    s->loop = uv_default_loop();
    rc = CLI_FAILED;
    if (make_dirs(s->cfg.data_dir) != 0) {
        log_msg(LOG_ERROR, "cannot create the data folder", "data_dir", s->cfg.data_dir, "error",
                strerror(errno), NULL);
        goto done;
    }
    if (serve_lock_data(s) != 0)
        goto done;
    s->store = store_serve_open(s->loop, &s->cfg, &rc);
    if (!s->store)
        goto done;
    s->L = app_vm_open(s->loop, (size_t)s->cfg.limits.lua_memory_mb << 20);
    if (!s->L) {
        store_serve_stop(s->store);
        uv_run(s->loop, UV_RUN_DEFAULT);
        rc = CLI_FAILED;
        goto done;
    }
    store_lua_attach(s->L, store_serve_db(s->store), &s->cfg);
    serve_signals(s);
    reload_start(s->loop, &s->cfg);
    if (serve_llm_http(s) == 0)
        serve_log_llm(s);
    if (!s->llm_http || serve_share_llm_budget(s) != 0 || serve_backups(s) != 0 ||
        serve_lua(s) != 0 || serve_listen(s) != 0) {
        if (s->http)
            http_server_shutdown(s->http, 0, NULL, NULL);
        serve_finish(s);
    }
    uv_run(s->loop, UV_RUN_DEFAULT);
    int left = serve_teardown(s);
    store_serve_close(s->store); /* after the VM: nothing uses the database any more */
    s->store = NULL;
    backup_schedule_free(s->backups); /* the loop ran out: no copy is on the pool */
    s->backups = NULL;
    rc = (s->stopping && left == 0) ? CLI_OK : CLI_FAILED;
    if (left == 0 && s->stopping)
        log_msg(LOG_INFO, "stopped", NULL);
done:
    store_serve_close(s->store);
    data_lock_release(s->data_lock);
    free(s);
    return rc;
}
