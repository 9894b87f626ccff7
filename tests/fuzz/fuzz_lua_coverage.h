/* Lua line coverage for libFuzzer (see fuzz_lua_coverage.c). */
#ifndef O2C_TESTS_FUZZ_LUA_COVERAGE_H
#define O2C_TESTS_FUZZ_LUA_COVERAGE_H
#include <lua.h>
#include <stdint.h>

/* Reports L's Lua lines (and those of threads created from it later) to
 * libFuzzer.  States whose host installs a hook (the sandboxes) report
 * without this call. */
void fuzz_lua_coverage_enable(lua_State *L);

/* Reports each line of the host's own Lua (chunks named core/...) that was
 * reached: not the lines of scripts the input brings, not line pairs, not
 * how often.  For a target whose inputs are scripts (fuzz_loader), every
 * inserted line renumbers the script's own lines and every mutation runs
 * the engine's loops a different number of times: with pairs and counts
 * nearly every input looked new, the corpus passed 40,000 entries and 1 GB
 * in 40 minutes and the rate fell by more than half.  The engine's lines
 * still tell libFuzzer which checks an input got to. */
void fuzz_lua_coverage_engine_lines(void);

/* Counts KEY as a feature of its own: a target tells libFuzzer apart inputs
 * that the C and Lua coverage cannot (fuzz_loader: which file was changed). */
void fuzz_coverage_mark(uint32_t key);

#endif
