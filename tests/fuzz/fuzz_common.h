/* What the fuzz targets share: the source tree, quiet logs, the O2C
 * generation built once from scripts/ and kb/, and the product VM with the
 * real router and API handlers over storage stubs (fuzz_stubs.lua).
 *
 * Everything is created once per process (at the first input) and reused:
 * an input must leave nothing behind that changes how the next one runs. */
#ifndef O2C_TESTS_FUZZ_COMMON_H
#define O2C_TESTS_FUZZ_COMMON_H
#include <lua.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "host/generation.h"

/* The source tree: $O2C_SOURCE_DIR, else the one this binary was built from. */
const char *fuzz_source_dir(void);

/* Logs at error level only (a fuzzer's stderr is its progress report). */
void fuzz_quiet_logs(void);

/* The sandbox budgets of the default config. */
void fuzz_default_limits(struct sandbox_limits *limits);

/* Reads scripts/ and kb/ of the source tree, with paths relative to it
 * ("scripts/o2c/scoring.lua"); exits the process when it cannot (a fuzz
 * target without its inputs would only report noise). */
void fuzz_read_sources(struct gen_sources *out);

/* The same for ROOT/scripts and ROOT/kb, with paths relative to ROOT (a
 * fixture laid out like the repository). */
void fuzz_read_sources_in(const char *root, struct gen_sources *out);

/* The generation of the real scripts and KB, built on first use and made
 * current (o2c.generation.pin() finds it). */
struct generation *fuzz_generation(void);

/* The product VM on LOOP: every o2c.* module, storage stubbed, the current
 * generation above, `server` loaded and started.  Created on first use. */
lua_State *fuzz_product_vm(uv_loop_t *loop);

/* Registry reference of require("server").handle in the product VM. */
int fuzz_server_handler_ref(void);

/* Call once per input: every 8192 inputs, collects the product VM's garbage
 * and aborts when what is left has grown by more than 32 MiB since the first
 * such check -- state accumulating across inputs (a leak the GC cannot see,
 * e.g. a registry reference never released). */
void fuzz_check_vm_growth(lua_State *L);

/* Prints "fuzz: WHAT" and the Lua value on top of L (if any), then aborts:
 * the way a target reports a broken invariant to libFuzzer. */
void fuzz_fail(lua_State *L, const char *what);

#endif
