/* store_lua_call.h: a binding's database work, at once or as an operation. */
#include "store/store_lua_call.h"
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include "host/task.h"
#include "store/query.h"

#define STORE_CALL_META "o2c.store.call"

static int call_gc(lua_State *L)
{
    struct store_call *call = lua_touserdata(L, 1);
    if (call->release) {
        call->release(call);
        call->release = NULL;
    }
    return 0;
}

void *store_call_new(lua_State *L, size_t size, struct db *db, store_call_run_fn run,
                     store_call_push_fn push, store_call_release_fn release)
{
    struct store_call *call = lua_newuserdatauv(L, size, 0);
    memset(call, 0, size);
    *call = (struct store_call){
        .run = run, .push = push, .release = release, .db = db, .anchor = LUA_NOREF};
    if (luaL_newmetatable(L, STORE_CALL_META)) {
        lua_pushcfunction(L, call_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return call;
}

int store_call_fail(lua_State *L, const struct store_call *call, int rc)
{
    lua_pushnil(L);
    lua_pushstring(L, call->err);
    lua_pushstring(L, store_rc_code(rc));
    return 3;
}

/* Runs on the operation (a fiber on PostgreSQL): no Lua here. */
static void call_run(struct db *db, void *arg)
{
    struct store_call *call = arg;
    call->rc = STORE_OK;
    call->run(db, call);
    snprintf(call->err, sizeof call->err, "%s", db_errmsg(db));
}

/* The operation is over; the values it used may go. */
static void call_unanchor(struct store_call *call)
{
    if (call->anchor != LUA_NOREF)
        luaL_unref(call->main, LUA_REGISTRYINDEX, call->anchor);
    call->anchor = LUA_NOREF;
}

static void call_done(void *ud, const char *not_started)
{
    struct store_call *call = ud;
    call->finished = 1;
    if (not_started) {
        call->not_started = 1;
        snprintf(call->err, sizeof call->err, "%s", not_started);
    }
    if (call->abandoned) {
        call_unanchor(call); /* the task died meanwhile: nobody to tell */
        return;
    }
    task_wake(call->task);
}

/* task_wait push: in the task again, with RUN's results. */
static int call_push(lua_State *co, void *data)
{
    struct store_call *call = data;
    if (call->not_started)
        return store_call_fail(co, call, STORE_UNAVAILABLE);
    /* Bindings report failures with db_errmsg(db): give it RUN's message. */
    db_fail(call->db, call->rc, "%s", call->err);
    return call->push(co, call);
}

/* task_wait done: after push, or the task died (then RUN may still run). */
static void call_wait_done(void *data, int cancelled)
{
    struct store_call *call = data;
    if (cancelled && !call->finished) {
        call->abandoned = 1;
        return;
    }
    call_unanchor(call);
}

/* Keeps every value on L's stack (the call among them) alive until the
 * operation has ended. */
static void call_anchor(lua_State *L, struct store_call *call)
{
    int top = lua_gettop(L);
    lua_createtable(L, top, 0);
    for (int i = 1; i <= top; i++) {
        lua_pushvalue(L, i);
        lua_rawseti(L, -2, i);
    }
    call->anchor = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    call->main = lua_tothread(L, -1);
    lua_pop(L, 1);
}

int store_lua_call(lua_State *L, struct store_call *call)
{
    if (!db_is_async(call->db)) {
        call_run(call->db, call);
        return call->push(L, call);
    }
    call->task = task_from_state(L);
    if (call->task == NULL)
        return luaL_error(L, "o2c.store on PostgreSQL must be called from a task");
    call_anchor(L, call);
    int started = db_run(call->db, call_run, call, call_done, call);
    if (started < 0) {
        call_unanchor(call);
        snprintf(call->err, sizeof call->err, "%s", db_errmsg(call->db));
        return store_call_fail(L, call, STORE_UNAVAILABLE);
    }
    struct task_wait wait = {call_push, call_wait_done, call};
    return task_yield(L, &wait);
}
