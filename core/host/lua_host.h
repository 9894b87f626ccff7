/* The product VM: one lua_State on the loop thread that runs the built-in Lua
 * of core/lua (router, API handlers, report runner, providers) with every
 * o2c.* module available.  This file owns its creation, module registration,
 * the embedded-module loader and the one pcall-with-traceback wrapper. */
#ifndef O2C_HOST_LUA_HOST_H
#define O2C_HOST_LUA_HOST_H
#include <lua.h>
#include <stddef.h>
#include <uv.h>

struct host_module;

/* Creates the VM for LOOP with the host's own modules and those of MODULES
 * (a table ending with {NULL, NULL}, or NULL: the host builds on nothing
 * above it, so whoever assembles the program hands them in; see core/app).
 * MEMORY_LIMIT caps the VM's heap (0 = none): an allocation beyond it fails
 * the Lua code that asked, not the process.  Returns NULL (after logging
 * why) on failure. */
lua_State *host_open(uv_loop_t *loop, size_t memory_limit, const struct host_module *modules);
void host_close(lua_State *L);

uv_loop_t *host_loop(void);
/* The VM's main thread, from any of its coroutines. */
lua_State *host_main_state(lua_State *L);
size_t host_memory_used(void);

/* lua_pcall with a traceback message handler.  On error the message (with
 * traceback) is left on the stack and the status returned. */
int host_pcall(lua_State *L, int nargs, int nresults);

/* require(NAME) in protected mode; pushes the module or returns non-zero
 * with the error on the stack. */
int host_require(lua_State *L, const char *name);

/* luaopen_cjson from Debian's lua-cjson (loaded once), or NULL. */
lua_CFunction host_cjson_opener(void);

/* Registers an extra module for require (used by tests). */
void host_preload(lua_State *L, const char *name, lua_CFunction open);

/* Replaces the value at IDX by its JSON text (lua-cjson); on failure leaves
 * an error message instead and returns non-zero. */
int host_json_encode(lua_State *L, int idx);

/* Marks the table at IDX as a JSON list, so that empty it encodes as []. */
void host_mark_array(lua_State *L, int idx);

#endif
