/* Lua line coverage for libFuzzer (see fuzz_lua_coverage.c). */
#ifndef O2C_TESTS_FUZZ_LUA_COVERAGE_H
#define O2C_TESTS_FUZZ_LUA_COVERAGE_H
#include <lua.h>
#include <stdint.h>

/* Reports L's Lua lines (and those of threads created from it later) to
 * libFuzzer.  States whose host installs a hook (the sandboxes) report
 * without this call. */
void fuzz_lua_coverage_enable(lua_State *L);

/* Counts KEY as a feature of its own: a target tells libFuzzer apart inputs
 * that the C and Lua coverage cannot (fuzz_loader: which file was changed). */
void fuzz_coverage_mark(uint32_t key);

#endif
