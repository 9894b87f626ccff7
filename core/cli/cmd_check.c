/* o2c check [DIR] [--kb DIR] [--json]: load and validate scripts and KB. */
#include <getopt.h>
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include "app/app.h"
#include "cli/cli.h"
#include "host/generation.h"
#include "host/lua_host.h"

struct check_opts {
    const char *dir, *kb, *config;
    int json;
};

static int check_parse(int argc, char **argv, struct check_opts *o)
{
    static const struct option longopts[] = {{"kb", required_argument, 0, 'k'},
                                             {"json", no_argument, 0, 'j'},
                                             {"config", required_argument, 0, 'c'},
                                             {0, 0, 0, 0}};
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'k')
            o->kb = optarg;
        else if (c == 'j')
            o->json = 1;
        else if (c == 'c')
            o->config = optarg;
        else
            return cli_option_error("check", argv);
    }
    if (optind < argc)
        o->dir = argv[optind++];
    if (optind < argc)
        return cli_usage_error("check", "takes one folder at most");
    return CLI_OK;
}

/* Pushes {file=, line=, message=} entries as a Lua array (JSON array). */
static void push_errors(lua_State *L, const struct gen_errors *errs)
{
    lua_createtable(L, (int)errs->count, 0);
    host_mark_array(L, -1);
    for (size_t i = 0; i < errs->count; i++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, errs->items[i].file);
        lua_setfield(L, -2, "file");
        lua_pushinteger(L, errs->items[i].line);
        lua_setfield(L, -2, "line");
        lua_pushstring(L, errs->items[i].message);
        lua_setfield(L, -2, "message");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

static void print_errors(const struct gen_errors *errs)
{
    for (size_t i = 0; i < errs->count; i++) {
        const struct gen_error *e = &errs->items[i];
        if (e->line > 0)
            fprintf(stderr, "%s:%d: %s\n", e->file, e->line, e->message);
        else if (*e->file)
            fprintf(stderr, "%s: %s\n", e->file, e->message);
        else
            fprintf(stderr, "%s\n", e->message);
    }
}

/* Human summary: one line per type. */
static void print_summary(lua_State *L, int summary, const char *hash)
{
    printf("ok: generation %s\n", hash);
    lua_getfield(L, summary, "types");
    lua_Integer n = lua_istable(L, -1) ? luaL_len(L, -1) : 0;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lua_getfield(L, -1, "id");
        lua_getfield(L, -2, "areas");
        lua_getfield(L, -3, "questions");
        lua_getfield(L, -4, "sections");
        lua_getfield(L, -5, "kb_docs");
        lua_getfield(L, -6, "agents");
        printf("  %s: %lld areas, %lld questions, %lld report sections, %lld KB documents, "
               "%lld agents\n",
               lua_tostring(L, -6), (long long)lua_tointeger(L, -5),
               (long long)lua_tointeger(L, -4), (long long)lua_tointeger(L, -3),
               (long long)lua_tointeger(L, -2), (long long)lua_tointeger(L, -1));
        lua_pop(L, 7);
    }
    lua_pop(L, 1);
}

int cmd_check(int argc, char **argv)
{
    struct check_opts o = {0};
    struct config cfg;
    int rc = check_parse(argc, argv, &o);
    if (rc != CLI_OK || (rc = cli_load_config(&cfg, o.config)) != CLI_OK)
        return rc;
    const char *dir = o.dir ? o.dir : cfg.scripts_dir;
    const char *kb = o.kb ? o.kb : cfg.kb_dir;

    lua_State *L = app_vm_open(uv_default_loop(), 0);
    if (!L)
        return CLI_FAILED;
    struct gen_errors errs = {0};
    struct gen_sources src;
    struct generation *g = NULL;
    struct sandbox_limits limits;
    generation_limits(&cfg, &limits);
    if (gen_sources_read(&src, dir, kb, &errs) == 0)
        g = generation_build(&src, &limits, &errs);

    lua_newtable(L);
    int result = lua_gettop(L);
    if (g && generation_call(g, "summary", L, 0, 1) == 0) {
        lua_getfield(L, -1, "types");
        lua_setfield(L, result, "types");
        if (!o.json)
            print_summary(L, lua_gettop(L), generation_hash(g));
        lua_pop(L, 1);
    } else if (g) {
        gen_errors_add_lua(&errs, lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    lua_pushboolean(L, errs.count == 0);
    lua_setfield(L, result, "ok");
    if (g) {
        lua_pushstring(L, generation_hash(g));
        lua_setfield(L, result, "generation");
    }
    push_errors(L, &errs);
    lua_setfield(L, result, "errors");
    if (o.json) {
        if (host_json_encode(L, result) == LUA_OK)
            printf("%s\n", lua_tostring(L, result));
        else
            fprintf(stderr, "o2c check: %s\n", lua_tostring(L, result));
    }
    print_errors(&errs);
    rc = errs.count == 0 ? CLI_OK : CLI_FAILED;
    gen_errors_free(&errs);
    if (g) {
        generation_set_current(g);
        generation_shutdown();
    }
    host_close(L);
    return rc;
}
