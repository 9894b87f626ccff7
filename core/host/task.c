/* Tasks: coroutines of the product VM, driven by libuv callbacks (see task.h).
 *
 * Each task owns a thread anchored in the registry (so the GC keeps it while
 * it waits) and at most one pending wait.  Tasks are kept in a doubly linked
 * list so shutdown can cancel them all. */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include "host/log.h"
#include "host/task.h"

#define TASK_LABEL_MAX 64

struct task {
    lua_State *co;
    lua_State *main; /* the VM's main state: owner of the registry ref */
    int ref;         /* registry ref anchoring co */
    int running;     /* inside lua_resume: a wake must not re-enter */
    int has_wait;
    struct task_wait wait;
    struct task_wait woken; /* the completed wait whose results are being pushed */
    task_exit_fn on_exit;
    void *ud;
    char label[TASK_LABEL_MAX];
    struct task *prev, *next;
};

static struct task *task_list;
static size_t task_live;

/* The registry key under which each coroutine maps to its struct task. */
static const char task_registry_key = 't';

static void task_link(struct task *t)
{
    t->next = task_list;
    if (task_list)
        task_list->prev = t;
    task_list = t;
    task_live++;
}

static void task_unlink(struct task *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        task_list = t->next;
    if (t->next)
        t->next->prev = t->prev;
    task_live--;
}

static void task_map_set(lua_State *L, lua_State *co, struct task *t)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &task_registry_key);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &task_registry_key);
    }
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    if (t)
        lua_pushlightuserdata(L, t);
    else
        lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 1);
}

struct task *task_from_state(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &task_registry_key);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return NULL;
    }
    lua_pushthread(L);
    lua_rawget(L, -2);
    struct task *t = lua_touserdata(L, -1);
    lua_pop(L, 2);
    return t;
}

/* Ends T: reports to its creator, then frees it.  The coroutine is reset so
 * pending to-be-closed variables run and its stack is released. */
static void task_finish(struct task *t, int status, int nres, const char *error)
{
    task_unlink(t);
    if (t->on_exit)
        t->on_exit(t, t->co, status, nres, error, t->ud);
    else if (status != LUA_OK && strcmp(error, "cancelled") != 0)
        log_msg(LOG_ERROR, "task failed", "task", t->label, "error", error, NULL);
    lua_settop(t->co, 0);
    task_map_set(t->main, t->co, NULL);
    lua_resetthread(t->co);
    luaL_unref(t->main, LUA_REGISTRYINDEX, t->ref);
    free(t);
}

/* Resumes T with NARGS values on its stack and handles how it stops. */
static void task_resume(struct task *t, int nargs)
{
    int nres = 0;
    t->running = 1;
    int status = lua_resume(t->co, t->main, nargs, &nres);
    t->running = 0;
    if (status == LUA_YIELD) {
        if (t->has_wait)
            return;
        lua_pop(t->co, nres);
        task_finish(t, LUA_ERRRUN, 0,
                    "task yielded without waiting for anything "
                    "(use o2c functions that wait, not coroutine.yield)");
        return;
    }
    if (status == LUA_OK) {
        task_finish(t, LUA_OK, nres, NULL);
        return;
    }
    /* Error: the coroutine's stack is still intact, so take its traceback. */
    const char *msg = lua_tostring(t->co, -1);
    luaL_traceback(t->main, t->co, msg ? msg : "(error object is not a string)", 0);
    const char *trace = lua_tostring(t->main, -1);
    char *copy = strdup(trace ? trace : "error");
    lua_pop(t->main, 1);
    task_finish(t, status, 0, copy ? copy : "error (out of memory)");
    free(copy);
}

struct task *task_spawn(lua_State *L, int nargs, task_exit_fn on_exit, void *ud)
{
    struct task *t = calloc(1, sizeof *t);
    if (!t) {
        lua_pop(L, nargs + 1);
        if (on_exit)
            on_exit(NULL, NULL, LUA_ERRMEM, 0, "out of memory", ud);
        return NULL;
    }
    t->main = L;
    t->co = lua_newthread(L);
    t->ref = luaL_ref(L, LUA_REGISTRYINDEX);
    t->on_exit = on_exit;
    t->ud = ud;
    snprintf(t->label, sizeof t->label, "task");
    lua_xmove(L, t->co, nargs + 1);
    task_map_set(L, t->co, t);
    task_link(t);
    /* Resume now: the task runs until it first waits.  Whether it is still
     * alive afterwards is found by looking for it in the list. */
    task_resume(t, nargs);
    for (struct task *p = task_list; p; p = p->next)
        if (p == t)
            return t;
    return NULL;
}

static int task_push_protected(lua_State *L)
{
    struct task_wait *w = lua_touserdata(L, 1);
    lua_settop(L, 0);
    return w->push(L, w->data);
}

/* Continuation of task_yield, running in the task after task_wake: pushes
 * the results under protection, so that running out of memory while
 * pushing fails this task instead of reaching the panic handler. */
static int task_continue(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    struct task *t = (struct task *)ctx;
    struct task_wait w = t->woken;
    int base = lua_gettop(L);
    lua_pushcfunction(L, task_push_protected);
    lua_pushlightuserdata(L, &w);
    int rc = lua_pcall(L, 1, LUA_MULTRET, 0);
    w.done(w.data, 0);
    if (rc != LUA_OK)
        return lua_error(L);
    return lua_gettop(L) - base;
}

int task_yield(lua_State *L, const struct task_wait *wait)
{
    struct task *t = task_from_state(L);
    if (!t) {
        wait->done(wait->data, 1);
        return luaL_error(L, "this function waits, so it must run in a task "
                             "(not at top level or inside a nested coroutine)");
    }
    t->wait = *wait;
    t->has_wait = 1;
    return lua_yieldk(L, 0, (lua_KContext)t, task_continue);
}

void task_wake(struct task *t)
{
    if (!t->has_wait || t->running)
        return;
    t->woken = t->wait;
    t->has_wait = 0;
    task_resume(t, 0);
}

void task_cancel(struct task *t)
{
    if (t->has_wait) {
        t->has_wait = 0;
        t->wait.done(t->wait.data, 1);
    }
    task_finish(t, LUA_ERRRUN, 0, "cancelled");
}

lua_State *task_thread(const struct task *t)
{
    return t->co;
}

size_t task_count(void)
{
    return task_live;
}

void task_cancel_all(void)
{
    while (task_list)
        task_cancel(task_list);
}

void task_set_label(struct task *t, const char *label)
{
    snprintf(t->label, sizeof t->label, "%s", label);
}

const char *task_label(const struct task *t)
{
    return t->label;
}
