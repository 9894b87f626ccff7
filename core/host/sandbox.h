/* Sandboxed Lua states for untrusted-by-design code: assessment scripts, KB
 * files, specs and the config file.
 *
 * A sandbox is its own lua_State with an allow-listed global environment
 * (string, table, math, utf8, os.time/date/clock, safe base functions; `load`
 * text-only with an explicit env), a memory budget enforced by its allocator
 * and, per protected call, an instruction budget and a wall-clock deadline
 * enforced by a count hook.  Once a budget is exceeded the hook raises the
 * same error at every instruction, so `pcall` inside the script cannot
 * swallow it: the call unwinds to sandbox_pcall(), and the state stays usable
 * for the next call. */
#ifndef O2C_HOST_SANDBOX_H
#define O2C_HOST_SANDBOX_H
#include <lua.h>
#include <stddef.h>
#include <stdint.h>

struct sandbox_limits {
    size_t memory_bytes;   /* whole state; 0 = unlimited */
    uint64_t instructions; /* per sandbox_pcall; 0 = unlimited */
    uint32_t time_ms;      /* per sandbox_pcall; 0 = unlimited */
};

enum sandbox_kill {
    SANDBOX_ALIVE,
    SANDBOX_KILLED_INSTRUCTIONS,
    SANDBOX_KILLED_TIME,
    SANDBOX_KILLED_MEMORY
};

struct sandbox;

/* A new sandbox, or NULL when out of memory. */
struct sandbox *sandbox_new(const struct sandbox_limits *limits);
void sandbox_free(struct sandbox *sb);
lua_State *sandbox_state(struct sandbox *sb);
struct sandbox *sandbox_from_state(lua_State *L);

/* Loads TEXT as a text chunk named "@CHUNKNAME" (so errors read
 * "chunkname:line: ..."), with the sandbox's globals as its environment.
 * Pushes the function, or returns non-zero with the error message pushed. */
int sandbox_load(struct sandbox *sb, const char *text, size_t len, const char *chunkname);

/* lua_pcall with fresh instruction/time budgets and a traceback-free,
 * position-keeping message: on failure the message (killed or not) is on
 * the stack and LUA_ERR* is returned. */
int sandbox_pcall(struct sandbox *sb, int nargs, int nresults);

/* sandbox_pcall without the count hook, for the hot calls on replicas: in
 * Lua 5.4 any count hook makes the VM trap on every instruction (~12% of a
 * preview).  The wall-clock deadline is kept by a per-thread POSIX timer
 * whose signal arms the hook only when it fires (lua_sethook may be called
 * from a signal handler; lua.c stops scripts on SIGINT the same way), and
 * the memory budget by the allocator as always; the instruction budget does
 * not apply.  Without a time limit this is sandbox_pcall. */
int sandbox_pcall_timed(struct sandbox *sb, int nargs, int nresults);

/* Why the last sandbox_pcall was stopped, if it was. */
enum sandbox_kill sandbox_last_kill(const struct sandbox *sb);

/* Bytes currently allocated by the state. */
size_t sandbox_memory_used(const struct sandbox *sb);

/* Copies the value at FROM_IDX of FROM onto TO's stack: nil, booleans,
 * numbers, strings and tables of those (keys: strings and numbers).  JSON
 * null (lua-cjson's null, a NULL light userdata) arrives as nil: a missing
 * value, as when a generation decodes JSON itself.  Refuses functions, other
 * userdata, cycles and nesting deeper than 64 levels.  Returns 0,
 * or -1 with a message pushed on TO.  Used to move answers into a
 * generation and scores/prompts out of it. */
int sandbox_copy_value(lua_State *from, int from_idx, lua_State *to);

#endif
