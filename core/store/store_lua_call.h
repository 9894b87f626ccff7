/* A store binding's database work as one operation (db.h's db_run).
 *
 * A binding reads and checks its Lua arguments into a call (a userdata it
 * gets from store_call_new), then returns store_lua_call(L, call):
 *   RUN(db, call)  the store functions, plain C (no Lua: it may run on a
 *                  fiber), its outcome in call->rc and its own fields;
 *   PUSH(L, call)  the Lua results, once RUN has returned;
 *   RELEASE(call)  frees what RUN captured (rowsets), may be NULL; runs
 *                  when the call is collected.
 * On SQLite RUN and PUSH run at once, as a plain function call.  On
 * PostgreSQL the task waits while RUN runs as an operation; the values on
 * the binding's stack (its arguments, the call itself, encoded JSON) are
 * kept alive until RUN has returned, even if the task dies meanwhile, so
 * RUN may point into them.  When no connection can be had, PUSH is not
 * called and the binding returns nil, message, "database_unavailable". */
#ifndef O2C_STORE_STORE_LUA_CALL_H
#define O2C_STORE_STORE_LUA_CALL_H
#include <lua.h>
#include <stddef.h>
#include "store/db.h"

struct store_call;
typedef void (*store_call_run_fn)(struct db *db, struct store_call *call);
typedef int (*store_call_push_fn)(lua_State *L, struct store_call *call);
typedef void (*store_call_release_fn)(struct store_call *call);

/* The first member of every binding's call struct. */
struct store_call {
    store_call_run_fn run;
    store_call_push_fn push;
    store_call_release_fn release;
    struct db *db;
    int rc;        /* RUN's outcome, STORE_OK unless it says otherwise */
    char err[512]; /* db_errmsg once RUN has returned, for PUSH */
    /* Private to store_lua_call.c. */
    struct task *task;
    lua_State *main;
    int anchor, finished, abandoned, not_started;
};

/* Pushes a zeroed userdata of SIZE bytes (a struct whose first member is a
 * struct store_call) and returns it, set up with DB and the three
 * functions.  Raises when out of memory (before any transaction). */
void *store_call_new(lua_State *L, size_t size, struct db *db, store_call_run_fn run,
                     store_call_push_fn push, store_call_release_fn release);

/* Runs CALL (see above); use as `return store_lua_call(L, call);`. */
int store_lua_call(lua_State *L, struct store_call *call);

/* Pushes nil, CALL->err, store_rc_code(RC); returns 3. */
int store_call_fail(lua_State *L, const struct store_call *call, int rc);

#endif
