#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "app/app.h"
#include "fuzz_common.h"
#include "fuzz_lua_coverage.h"
#include "host/config.h"
#include "host/log.h"
#include "host/lua_host.h"
#include "net/http_server_lua.h"

#ifndef O2C_FUZZ_SOURCE_DIR
#error "O2C_FUZZ_SOURCE_DIR must name the source tree"
#endif

static struct config fuzz_config;
static struct generation *generation;
static lua_State *product_vm;
static int handler_ref = LUA_NOREF;

const char *fuzz_source_dir(void)
{
    const char *env = getenv("O2C_SOURCE_DIR");
    return env && *env ? env : O2C_FUZZ_SOURCE_DIR;
}

void fuzz_quiet_logs(void)
{
    log_set_level(LOG_ERROR);
}

/* The product's budgets, except the wall-clock one: libFuzzer's -timeout
 * catches a real hang, while a 2 s deadline fails a harmless input whenever
 * the fuzzer is starved of CPU (seen: a valid preview "timed out" at nice 19
 * beside a saturating benchmark).  The instruction budget still stops loops. */
void fuzz_default_limits(struct sandbox_limits *limits)
{
    struct config cfg;
    config_defaults(&cfg);
    generation_limits(&cfg, limits);
    limits->time_ms = 0;
}

static void print_errors(const struct gen_errors *errs)
{
    for (size_t i = 0; i < errs->count; i++)
        fprintf(stderr, "  %s:%d: %s\n", errs->items[i].file, errs->items[i].line,
                errs->items[i].message);
}

void fuzz_read_sources(struct gen_sources *out)
{
    fuzz_read_sources_in(fuzz_source_dir(), out);
}

void fuzz_read_sources_in(const char *root, struct gen_sources *out)
{
    char scripts[1024], kb[1024];
    snprintf(scripts, sizeof scripts, "%s/scripts", root);
    snprintf(kb, sizeof kb, "%s/kb", root);
    struct gen_errors errs = {0};
    if (gen_sources_read(out, scripts, kb, &errs) != 0) {
        fprintf(stderr, "fuzz: cannot read %s and %s (set O2C_SOURCE_DIR):\n", scripts, kb);
        print_errors(&errs);
        exit(2);
    }
    /* Paths as `o2c check` shows them from ROOT ("scripts/o2c/scoring.lua"):
     * what error messages and fuzz_loader's inputs name. */
    size_t len = strlen(root);
    for (size_t i = 0; i < out->count; i++) {
        char *path = out->items[i].path;
        if (strncmp(path, root, len) == 0 && path[len] == '/')
            memmove(path, path + len + 1, strlen(path + len + 1) + 1);
    }
}

struct generation *fuzz_generation(void)
{
    if (generation)
        return generation;
    fuzz_quiet_logs();
    struct gen_sources src;
    fuzz_read_sources(&src);
    struct sandbox_limits limits;
    fuzz_default_limits(&limits);
    struct gen_errors errs = {0};
    generation = generation_build(&src, &limits, &errs);
    if (!generation) {
        fprintf(stderr, "fuzz: the real scripts do not load:\n");
        print_errors(&errs);
        exit(2);
    }
    generation_set_current(generation);
    return generation;
}

/* Runs tests/fuzz/fuzz_stubs.lua: package.loaded gets the storage stubs. */
static void load_stubs(lua_State *L)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fuzz/fuzz_stubs.lua", fuzz_source_dir());
    if (luaL_loadfile(L, path) != LUA_OK || host_pcall(L, 0, 0) != LUA_OK)
        fuzz_fail(L, "cannot run the storage stubs");
}

lua_State *fuzz_product_vm(uv_loop_t *loop)
{
    if (product_vm)
        return product_vm;
    fuzz_generation();
    config_defaults(&fuzz_config);
    config_set_current(&fuzz_config);
    lua_State *L = app_vm_open(loop, (size_t)512 << 20);
    if (!L) {
        fprintf(stderr, "fuzz: cannot open the product VM\n");
        exit(2);
    }
    fuzz_lua_coverage_enable(L);
    http_lua_register(L);
    load_stubs(L);
    if (host_require(L, "server") != LUA_OK)
        fuzz_fail(L, "cannot load core/lua/server.lua");
    lua_getfield(L, -1, "handle");
    handler_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, -1, "start");
    if (host_pcall(L, 0, 0) != LUA_OK)
        fuzz_fail(L, "server.start() failed");
    lua_settop(L, 0);
    product_vm = L;
    return L;
}

int fuzz_server_handler_ref(void)
{
    return handler_ref;
}

#define GROWTH_EVERY 8192
#define GROWTH_MAX ((size_t)32 << 20)

void fuzz_check_vm_growth(lua_State *L)
{
    static unsigned long inputs;
    static size_t baseline;
    if (++inputs % GROWTH_EVERY != 0)
        return;
    lua_gc(L, LUA_GCCOLLECT);
    size_t used = host_memory_used();
    if (!baseline) {
        baseline = used;
        return;
    }
    if (used > baseline + GROWTH_MAX) {
        fprintf(stderr, "fuzz: the product VM grew from %zu to %zu bytes over %lu inputs\n",
                baseline, used, inputs);
        abort();
    }
}

void fuzz_fail(lua_State *L, const char *what)
{
    fprintf(stderr, "fuzz: %s\n", what);
    if (L && lua_gettop(L) > 0) {
        const char *msg = luaL_tolstring(L, -1, NULL);
        fprintf(stderr, "%s\n", msg);
    }
    fflush(stderr);
    abort();
}
