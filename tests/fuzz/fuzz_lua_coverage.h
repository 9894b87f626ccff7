/* Lua line coverage for libFuzzer (see fuzz_lua_coverage.c). */
#ifndef O2C_TESTS_FUZZ_LUA_COVERAGE_H
#define O2C_TESTS_FUZZ_LUA_COVERAGE_H
#include <lua.h>
#include <stdint.h>

/* Reports L's Lua lines (and those of threads created from it later) to
 * libFuzzer.  States whose host installs a hook (the sandboxes) report
 * without this call. */
void fuzz_lua_coverage_enable(lua_State *L);

/* Reports lines instead of line pairs.  For a target whose inputs are
 * scripts (fuzz_loader), nearly every mutation runs the engine's loops a
 * different number of times through different pairs: every input looked
 * new, the corpus grew past 40,000 entries and 1 GB in an hour and the rate
 * fell by a third.  Lines still tell libFuzzer which checks an input
 * reached. */
void fuzz_lua_coverage_lines_only(void);

/* Counts KEY as a feature of its own: a target tells libFuzzer apart inputs
 * that the C and Lua coverage cannot (fuzz_loader: which file was changed). */
void fuzz_coverage_mark(uint32_t key);

#endif
