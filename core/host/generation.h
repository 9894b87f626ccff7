/* Generations: every file under scripts/ and kb/, loaded into its own
 * sandboxed lua_State, validated by the built-in loader (core/lua/generation) and
 * identified by a content hash.  The current generation is swapped
 * atomically; whoever runs something pins the generation it started with,
 * and a retired generation is freed (one lua_close) when its last pin goes. */
#ifndef O2C_HOST_GENERATION_H
#define O2C_HOST_GENERATION_H
#include <lua.h>
#include <stddef.h>
#include "host/sandbox.h"

#define GENERATION_HASH_LEN 16

struct generation;

struct gen_source {
    char *path;       /* as the user sees it: "scripts/o2c/scoring.lua" */
    char *rel;        /* relative to its root: "o2c/scoring.lua" */
    const char *kind; /* "script" | "kb" */
    char *text;
    size_t len;
};

struct gen_sources {
    struct gen_source *items;
    size_t count;
    char hash[GENERATION_HASH_LEN + 1];
};

struct gen_error {
    char *file;
    int line;
    char *message;
};

struct gen_errors {
    struct gen_error *items;
    size_t count;
};

/* Reads every file under SCRIPTS (a scripts root, or one type folder that
 * holds questionnaire.lua) and KB, sorted, and hashes them.  Returns 0, or
 * -1 with one error in ERRS (unreadable file, too large, too many). */
int gen_sources_read(struct gen_sources *out, const char *scripts, const char *kb,
                     struct gen_errors *errs);
void gen_sources_free(struct gen_sources *src);

/* Builds a generation from SOURCES (taking ownership of them).  Returns it,
 * or NULL with ERRS filled (file, line, message for each problem). */
struct generation *generation_build(struct gen_sources *sources,
                                    const struct sandbox_limits *limits, struct gen_errors *errs);

/* A fresh sandbox with the built-in gen modules loaded: pushes the loader
 * module (core/lua/generation/init.lua) on its stack.  Used by generation_build and
 * by `o2c test`, which needs one fresh state per spec file. */
struct sandbox *generation_sandbox(const struct sandbox_limits *limits, char *err, size_t cap);

/* Pushes SOURCES as the Lua array the loader takes. */
void gen_sources_push(lua_State *L, const struct gen_sources *sources);

void gen_errors_add(struct gen_errors *errs, const char *file, int line, const char *message);
/* Parses "file:line: message" (Lua's error form) into an error. */
void gen_errors_add_lua(struct gen_errors *errs, const char *lua_message);

/* Reads the loader's error list {{file,line,message}} (or a raised message)
 * at IDX of L into ERRS. */
void gen_errors_from_lua(lua_State *L, int idx, struct gen_errors *errs);
void gen_errors_free(struct gen_errors *errs);

const char *generation_hash(const struct generation *g);
const struct gen_sources *generation_sources(const struct generation *g);

/* Calls gen:METHOD(...) inside the generation with NARGS arguments copied
 * from the top of FROM's stack (popped); on success pushes NRES results
 * copied back onto FROM and returns 0; on failure pushes a message and
 * returns -1.  Budgets are fresh for each call. */
int generation_call(struct generation *g, const char *method, lua_State *from, int nargs, int nres);

/* A call of a method that takes and returns text only: gen:METHOD(args...)
 * -> string or nil, string or nil.  RESULTS and ERROR are malloc'ed. */
#define GEN_TEXT_ARGS_MAX 4
struct gen_text_call {
    const char *method;
    int nargs;
    const char *args[GEN_TEXT_ARGS_MAX];
    size_t arg_lens[GEN_TEXT_ARGS_MAX];
    char *results[2]; /* NULL for nil */
    size_t result_lens[2];
    char *error; /* set when the call failed */
};

/* Runs C in a replica of G: the same sources built in a state of its own,
 * taken from G's idle replicas or built on first need (a build costs what a
 * reload does).  Thread-safe; G must stay pinned during the call.  Used by
 * the thread pool so scoring runs beside the loop, not on it. */
void generation_call_text(struct generation *g, struct gen_text_call *c);
void generation_text_call_free(struct gen_text_call *c);
/* Replicas G has, idle or in use (for /metrics and tests). */
int generation_replica_count(struct generation *g);

/* The current generation (may be NULL before the first successful load). */
struct generation *generation_current(void);
/* Makes G current; the previous one is freed once unpinned. */
void generation_set_current(struct generation *g);
void generation_pin(struct generation *g);
void generation_unpin(struct generation *g);
/* Drops the current generation (shutdown). */
void generation_shutdown(void);

struct config;
/* The per-call sandbox budgets that CFG sets for scripts. */
void generation_limits(const struct config *cfg, struct sandbox_limits *limits);

#endif
