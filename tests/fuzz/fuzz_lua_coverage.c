/* Lua line coverage for libFuzzer.
 *
 * libFuzzer is guided by the coverage of instrumented C code, but most of
 * what these targets exercise is Lua (router, body validation, the loader's
 * checks, scoring, the adapters) running in the uninstrumented liblua: to
 * libFuzzer every input would look the same.  This file reports Lua line
 * pairs (edges, AFL-style) through libFuzzer's extra counters.
 *
 * It interposes lua_sethook: the executable's definition wins over liblua's
 * for the core's calls, so every hook the host installs (the sandbox's
 * instruction/time budget, a count hook) also gets line events; count
 * events are forwarded unchanged to the host's hook, which may raise as
 * before.  A state with no hook gets a line-only one from
 * fuzz_lua_coverage_enable(); threads inherit their creator's hook.
 *
 * Set O2C_FUZZ_LUA_COVERAGE=0 to measure without it. */
#include <dlfcn.h>
#include <lua.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_lua_coverage.h"

#define COUNTERS (1u << 16)

__attribute__((section("__libfuzzer_extra_counters"))) static uint8_t lua_counters[COUNTERS];

typedef void (*sethook_fn)(lua_State *, lua_Hook, int, int);

static sethook_fn real_sethook;
static lua_Hook host_hook; /* the count hook the host set (the same for every sandbox) */
static int enabled = -1;
static uint32_t previous;
static int engine_lines_only; /* fuzz_lua_coverage_engine_lines() */

/* Chunk names hashed once per distinct string pointer (a small cache: a
 * stale entry only blurs coverage, never correctness). */
static struct {
    const char *source;
    uint32_t hash;
} source_cache[256];

static uint32_t source_hash(const char *source)
{
    size_t slot = ((uintptr_t)source >> 4) % (sizeof source_cache / sizeof source_cache[0]);
    if (source_cache[slot].source == source)
        return source_cache[slot].hash;
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)source; *p; p++)
        h = (h ^ *p) * 16777619u;
    source_cache[slot].source = source;
    source_cache[slot].hash = h;
    return h;
}

static void coverage_hook(lua_State *L, lua_Debug *ar)
{
    if (ar->event == LUA_HOOKCOUNT) {
        if (host_hook)
            host_hook(L, ar);
        return;
    }
    if (ar->event != LUA_HOOKLINE || !lua_getinfo(L, "S", ar) || !ar->source)
        return;
    if (engine_lines_only) {
        /* The host's own chunks ("@core/...", "core/..."), not the input's. */
        const char *name = ar->source + (ar->source[0] == '@');
        if (strncmp(name, "core/", 5) != 0)
            return;
    }
    uint32_t here = source_hash(ar->source) ^ ((uint32_t)ar->currentline * 2654435761u);
    if (engine_lines_only) {
        lua_counters[here % COUNTERS] = 1; /* reached, however often */
        return;
    }
    uint32_t index = (here ^ previous) % COUNTERS;
    if (lua_counters[index] < 255)
        lua_counters[index]++;
    previous = here >> 1;
}

static int coverage_enabled(void)
{
    if (enabled < 0) {
        const char *env = getenv("O2C_FUZZ_LUA_COVERAGE");
        enabled = !(env && strcmp(env, "0") == 0);
        real_sethook = (sethook_fn)dlsym(RTLD_NEXT, "lua_sethook");
        if (!real_sethook) {
            fprintf(stderr, "fuzz: cannot find liblua's lua_sethook: %s\n", dlerror());
            abort();
        }
    }
    return enabled;
}

void lua_sethook(lua_State *L, lua_Hook f, int mask, int count)
{
    if (!coverage_enabled()) {
        real_sethook(L, f, mask, count);
        return;
    }
    if (f && f != coverage_hook)
        host_hook = f;
    /* Only count events go to the host's hook: keep its mask's count part. */
    int count_mask = f && f != coverage_hook ? mask & LUA_MASKCOUNT : 0;
    real_sethook(L, coverage_hook, count_mask | LUA_MASKLINE, count_mask ? count : 0);
}

void fuzz_lua_coverage_enable(lua_State *L)
{
    lua_sethook(L, NULL, 0, 0);
}

void fuzz_lua_coverage_engine_lines(void)
{
    engine_lines_only = 1;
}

void fuzz_coverage_mark(uint32_t key)
{
    uint32_t index = (key * 2654435761u) % COUNTERS;
    if (lua_counters[index] < 255)
        lua_counters[index]++;
}
