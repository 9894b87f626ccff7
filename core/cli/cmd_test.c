/* o2c test [DIR]: runs the spec files (DIR/spec/NAME_spec.lua) under the scripts' sandbox.
 *
 * Each spec file gets a fresh sandbox; each `it` runs as its own protected
 * call with fresh budgets, so one that loops forever or eats memory is
 * stopped, reported as failed, and the run goes on. */
#include <dirent.h>
#include <getopt.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "cli/cli.h"
#include "host/generation.h"

struct test_opts {
    const char *dir, *kb, *config;
};

struct test_tally {
    int passed, failed;
};

static int test_parse(int argc, char **argv, struct test_opts *o)
{
    static const struct option longopts[] = {
        {"kb", required_argument, 0, 'k'}, {"config", required_argument, 0, 'c'}, {0, 0, 0, 0}};
    int c;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'k')
            o->kb = optarg;
        else if (c == 'c')
            o->config = optarg;
        else
            return cli_option_error("test", argv);
    }
    if (optind < argc)
        o->dir = argv[optind++];
    if (optind < argc)
        return cli_usage_error("test", "takes one folder at most");
    return CLI_OK;
}

static int is_spec_of(const char *path, const char *dir)
{
    size_t d = strlen(dir), n = strlen(path);
    return strncmp(path, dir, d) == 0 && strncmp(path + d, "/spec/", 6) == 0 &&
           !strchr(path + d + 6, '/') && n > 9 && strcmp(path + n - 9, "_spec.lua") == 0;
}

/* Prints the failures of one `it` result table on top of L. */
static void report_failures(lua_State *L, const char *spec, const char *name)
{
    lua_getfield(L, -1, "failures");
    lua_Integer n = lua_istable(L, -1) ? luaL_len(L, -1) : 0;
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, -1, i);
        lua_getfield(L, -1, "file");
        lua_getfield(L, -2, "line");
        lua_getfield(L, -3, "message");
        const char *file = lua_isstring(L, -3) ? lua_tostring(L, -3) : spec;
        printf("%s:%lld: %s (in \"%s\")\n", file, (long long)lua_tointeger(L, -2),
               lua_isstring(L, -1) ? lua_tostring(L, -1) : "failed", name);
        lua_pop(L, 4);
    }
    if (n == 0)
        printf("%s: failed (in \"%s\")\n", spec, name);
    lua_pop(L, 1);
}

/* Runs the i-th `it` of the collected spec; the loader module is at index 1. */
static void run_one(struct sandbox *sb, lua_Integer i, const char *spec, const char *name,
                    struct test_tally *tally)
{
    lua_State *L = sandbox_state(sb);
    lua_getfield(L, 1, "spec_run");
    lua_pushinteger(L, i);
    if (sandbox_pcall(sb, 1, 1) != LUA_OK) {
        /* Stopped by a budget or broken harness: the message has file:line. */
        printf("%s (in \"%s\")\n", lua_tostring(L, -1), name);
        tally->failed++;
    } else {
        lua_getfield(L, -1, "ok");
        int ok = lua_toboolean(L, -1);
        lua_pop(L, 1);
        if (ok) {
            tally->passed++;
        } else {
            report_failures(L, spec, name);
            tally->failed++;
        }
    }
    lua_settop(L, 1);
}

static void run_spec_file(const struct gen_sources *src, const char *spec,
                          const struct sandbox_limits *limits, struct test_tally *tally)
{
    char err[512];
    struct sandbox *sb = generation_sandbox(limits, err, sizeof err);
    if (!sb) {
        printf("%s: %s\n", spec, err);
        tally->failed++;
        return;
    }
    lua_State *L = sandbox_state(sb);
    lua_getfield(L, 1, "spec_collect");
    gen_sources_push(L, src);
    lua_pushstring(L, spec);
    /* -> count, tests {{name, file, line}}, errors {{file, line, message}} */
    if (sandbox_pcall(sb, 2, 3) != LUA_OK) {
        printf("%s\n", lua_isstring(L, -1) ? lua_tostring(L, -1) : "spec_collect failed");
        tally->failed++;
        sandbox_free(sb);
        return;
    }
    if (lua_istable(L, 4)) {
        lua_pushvalue(L, 4);
        lua_newtable(L);
        lua_pushvalue(L, -2);
        lua_setfield(L, -2, "failures");
        lua_Integer nerr = luaL_len(L, 4);
        if (nerr > 0) {
            report_failures(L, spec, "loading the spec file");
            tally->failed += (int)nerr;
        }
        lua_pop(L, 2);
    }
    lua_Integer n = lua_tointeger(L, 2);
    /* Copy the names out: each run_one trims the stack back to the module. */
    char(*names)[160] = calloc((size_t)n + 1, sizeof *names);
    for (lua_Integer i = 1; names && i <= n; i++) {
        lua_rawgeti(L, 3, i);
        lua_getfield(L, -1, "name");
        snprintf(names[i - 1], sizeof names[i - 1], "%s",
                 lua_isstring(L, -1) ? lua_tostring(L, -1) : "?");
        lua_pop(L, 2);
    }
    lua_settop(L, 1);
    for (lua_Integer i = 1; names && i <= n; i++)
        run_one(sb, i, spec, names[i - 1], tally);
    free(names);
    sandbox_free(sb);
}

static int dir_has_specs(const char *dir)
{
    char path[2048];
    struct stat st;
    int n = snprintf(path, sizeof path, "%s/spec", dir);
    if (n < 0 || (size_t)n >= sizeof path)
        return 0; /* no folder has a name that long */
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int run_dir(const char *dir, const char *kb, const struct sandbox_limits *limits,
                   struct test_tally *tally)
{
    struct gen_errors errs = {0};
    struct gen_sources src;
    if (gen_sources_read(&src, dir, kb, &errs) != 0) {
        for (size_t i = 0; i < errs.count; i++)
            printf("%s: %s\n", errs.items[i].file, errs.items[i].message);
        gen_errors_free(&errs);
        tally->failed++;
        return -1;
    }
    for (size_t i = 0; i < src.count; i++)
        if (is_spec_of(src.items[i].path, dir))
            run_spec_file(&src, src.items[i].path, limits, tally);
    gen_sources_free(&src);
    return 0;
}

int cmd_test(int argc, char **argv)
{
    struct test_opts o = {0};
    struct config cfg;
    int rc = test_parse(argc, argv, &o);
    if (rc != CLI_OK || (rc = cli_load_config(&cfg, o.config)) != CLI_OK)
        return rc;
    const char *dir = o.dir ? o.dir : cfg.scripts_dir;
    const char *kb = o.kb ? o.kb : cfg.kb_dir;
    struct stat st;
    if (stat(kb, &st) != 0)
        kb = NULL; /* specs of a folder without a KB nearby still run */
    struct sandbox_limits limits;
    generation_limits(&cfg, &limits);
    struct test_tally tally = {0, 0};
    if (dir_has_specs(dir)) {
        run_dir(dir, kb, &limits, &tally);
    } else {
        DIR *d = opendir(dir);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            char sub[2048];
            snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
            if (e->d_name[0] != '.' && dir_has_specs(sub))
                run_dir(sub, kb, &limits, &tally);
        }
        if (d)
            closedir(d);
        else
            return cli_usage_error("test", "cannot open the folder");
    }
    printf("%d passed, %d failed\n", tally.passed, tally.failed);
    return tally.failed == 0 && tally.passed > 0 ? CLI_OK : CLI_FAILED;
}
