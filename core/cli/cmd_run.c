/* o2c run DIR --answers F.json [--target N] [--out F] [--format X] [--provider P] [--json]:
 * one assessment headless, with no database and no server.
 *
 * The C side only sets the stage: configuration, the loop, the product VM,
 * the generation built from DIR (+ the KB) made current, and an HTTP client
 * when a real provider is chosen.  The work is `require("cli.run").main(opts)`
 * (core/lua/cli/run.lua) in a task; the loop runs until that task ends and
 * its result is the exit code. */
#include <getopt.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "app/app.h"
#include "cli/cli.h"
#include "host/generation.h"
#include "host/log.h"
#include "host/lua_host.h"
#include "host/task.h"
#include "net/http_client_lua.h"

struct run_opts {
    const char *dir, *kb, *config, *answers, *out, *format, *provider;
    int target; /* 0: the file's targets or the script's defaults */
    int json;
};

struct run_state {
    int exit_code;
    int finished;
};

static int run_parse(int argc, char **argv, struct run_opts *o)
{
    static const struct option longopts[] = {{"answers", required_argument, 0, 'a'},
                                             {"target", required_argument, 0, 't'},
                                             {"out", required_argument, 0, 'o'},
                                             {"provider", required_argument, 0, 'p'},
                                             {"json", no_argument, 0, 'j'},
                                             {"kb", required_argument, 0, 'k'},
                                             {"config", required_argument, 0, 'c'},
                                             {"format", required_argument, 0, 'f'},
                                             {0, 0, 0, 0}};
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'a')
            o->answers = optarg;
        else if (c == 'o')
            o->out = optarg;
        else if (c == 'p')
            o->provider = optarg;
        else if (c == 'f')
            o->format = optarg;
        else if (c == 'j')
            o->json = 1;
        else if (c == 'k')
            o->kb = optarg;
        else if (c == 'c')
            o->config = optarg;
        else if (c == 't') {
            char *end;
            long n = strtol(optarg, &end, 10);
            if (*end || n < 1 || n > 5)
                return cli_usage_error("run", "--target: expected a level from 1 to 5");
            o->target = (int)n;
        } else
            return cli_option_error("run", argv);
    }
    if (optind < argc)
        o->dir = argv[optind++];
    if (optind < argc)
        return cli_usage_error("run", "takes one folder (e.g. scripts/o2c)");
    if (!o->dir)
        return cli_usage_error("run", "name the assessment folder (e.g. scripts/o2c)");
    if (!o->answers)
        return cli_usage_error("run", "--answers F.json is required");
    return CLI_OK;
}

static void run_print_errors(const struct gen_errors *errs)
{
    for (size_t i = 0; i < errs->count; i++) {
        const struct gen_error *e = &errs->items[i];
        if (e->line > 0)
            fprintf(stderr, "%s:%d: %s\n", e->file, e->line, e->message);
        else
            fprintf(stderr, "%s: %s\n", e->file, e->message);
    }
}

/* Builds the generation of DIR and KB and makes it current; 0 or -1 after
 * printing the errors. */
static int run_generation(const struct config *cfg, const struct run_opts *o)
{
    struct gen_errors errs = {0};
    struct gen_sources src;
    struct sandbox_limits limits;
    struct generation *g = NULL;
    generation_limits(cfg, &limits);
    if (gen_sources_read(&src, o->dir, o->kb ? o->kb : cfg->kb_dir, &errs) == 0)
        g = generation_build(&src, &limits, &errs);
    if (!g) {
        run_print_errors(&errs);
        gen_errors_free(&errs);
        return -1;
    }
    generation_set_current(g);
    return 0;
}

static void run_task_exit(struct task *t, lua_State *co, int status, int nres, const char *error,
                          void *ud)
{
    (void)t;
    struct run_state *st = ud;
    st->finished = 1;
    if (status == LUA_OK && nres > 0 && lua_isinteger(co, -nres)) {
        st->exit_code = (int)lua_tointeger(co, -nres);
        return;
    }
    fprintf(stderr, "o2c run: %s\n", error ? error : "the run ended without an exit code");
    st->exit_code = CLI_FAILED;
}

static void run_set_string(lua_State *L, const char *key, const char *value)
{
    if (!value)
        return;
    lua_pushstring(L, value);
    lua_setfield(L, -2, key);
}

/* Pushes cli.run's main and its options table. */
static int run_push_main(lua_State *L, const struct run_opts *o)
{
    if (host_require(L, "cli.run") != LUA_OK) {
        fprintf(stderr, "o2c run: %s\n", lua_tostring(L, -1));
        return -1;
    }
    lua_getfield(L, -1, "main");
    lua_remove(L, -2);
    lua_createtable(L, 0, 8);
    run_set_string(L, "dir", o->dir);
    run_set_string(L, "answers", o->answers);
    run_set_string(L, "out", o->out);
    run_set_string(L, "format", o->format);
    run_set_string(L, "provider", o->provider);
    if (o->target) {
        lua_pushinteger(L, o->target);
        lua_setfield(L, -2, "target");
    }
    lua_pushboolean(L, o->json);
    lua_setfield(L, -2, "json");
    lua_pushboolean(L, isatty(STDERR_FILENO));
    lua_setfield(L, -2, "progress");
    return 0;
}

static void run_client_closed(struct http_client *client, void *ud)
{
    (void)client;
    (void)ud;
}

int cmd_run(int argc, char **argv)
{
    struct run_opts o = {0};
    struct config *cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return CLI_FAILED;
    int rc = run_parse(argc, argv, &o);
    if (rc == CLI_OK)
        rc = cli_load_config(cfg, o.config);
    char err[CONFIG_ERROR_MAX];
    if (rc == CLI_OK && o.provider &&
        config_set_string(cfg, "llm.provider", o.provider, "--provider", err) != 0) {
        fprintf(stderr, "o2c run: %s\n", err);
        rc = CLI_USAGE;
    }
    if (rc != CLI_OK) {
        free(cfg);
        return rc;
    }
    /* The progress bars own a terminal's stderr: only warnings and errors
     * interrupt them, unless a finer log level was asked for. */
    if (isatty(STDERR_FILENO) && strcmp(cfg->log_level, "info") == 0)
        log_set_level(LOG_WARN);
    uv_loop_t *loop = uv_default_loop();
    lua_State *L = app_vm_open(loop, (size_t)cfg->limits.lua_memory_mb << 20);
    struct http_client *client = NULL;
    struct run_state st = {CLI_FAILED, 0};
    if (!L || run_generation(cfg, &o) != 0)
        goto done;
    if (o.provider && strcmp(o.provider, "offline") != 0) {
        struct http_client_config hc = {0};
        hc.proxy = cfg->llm.proxy;
        hc.timeout_ms = (long)(cfg->llm.timeout_s * 1000);
        if (cfg->llm.concurrency > HTTP_CLIENT_DEFAULT_MAX_HOST_CONNECTIONS)
            hc.max_host_connections = (long)cfg->llm.concurrency;
        client = http_client_new(loop, &hc);
        if (!client) {
            fprintf(stderr, "o2c run: cannot start the HTTP client\n");
            goto done;
        }
        http_client_lua_attach(L, client);
    }
    if (run_push_main(L, &o) != 0)
        goto done;
    task_spawn(L, 1, run_task_exit, &st);
    while (!st.finished && uv_run(loop, UV_RUN_ONCE))
        ;
    if (!st.finished) {
        fprintf(stderr, "o2c run: the report stopped with nothing left to wait for\n");
        task_cancel_all();
    }
done:
    task_cancel_all();
    generation_shutdown();
    if (L)
        host_close(L);
    if (client)
        http_client_close(client, run_client_closed, NULL);
    uv_run(loop, UV_RUN_DEFAULT); /* close callbacks */
    uv_loop_close(loop);
    config_set_current(NULL);
    free(cfg);
    return st.exit_code;
}
