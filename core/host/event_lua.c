/* o2c.event: a condition for tasks, so a task can sleep until something
 * happens without polling.
 *
 *   local ev = event.new()
 *   local signalled = ev:wait(timeout_ms)   -- in a task; nil timeout: no limit
 *   ev:signal()                             -- wakes every task waiting now
 *   ev:waiting()                            -- how many tasks wait on it
 *
 * A signal is not latched: it wakes the tasks waiting at that moment and
 * nothing else; they resume on the next turn of the loop.  That is enough because the product VM
 * runs one task at a time: a task that checks its condition and then calls wait() cannot miss a
 * signal between the two.  wait() returns true when signalled, false when the timeout fired first.
 *
 * Each waiting task owns one `struct event_waiter` (a uv_timer for the
 * timeout), linked into its event's list.  The waiter belongs to the task's
 * wait: its done() unlinks it and closes the timer, on wake and on cancel
 * alike, so a dead task is never resumed and nothing leaks. */
#include <lauxlib.h>
#include <stdlib.h>
#include <uv.h>
#include "host/lua_host.h"
#include "host/modules.h"
#include "host/task.h"

#define EVENT_MT "o2c.event"

struct event_waiter;

/* The userdata.  Tasks waiting on it keep it alive: the event is on their
 * yielded stacks as wait()'s first argument. */
struct event_obj {
    struct event_waiter *head;
    int count;
};

struct event_waiter {
    uv_timer_t timer;
    struct task *task;
    struct event_waiter **list; /* the list it is linked in, or NULL */
    struct event_waiter *prev, *next;
    int signalled;
    int counted; /* still counted in its event's `count` */
    struct event_obj *ev;
};

static void waiter_link(struct event_waiter **list, struct event_waiter *w)
{
    w->list = list;
    w->prev = NULL;
    w->next = *list;
    if (*list)
        (*list)->prev = w;
    *list = w;
}

static void waiter_unlink(struct event_waiter *w)
{
    if (!w->list)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        *w->list = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->list = NULL;
    w->prev = w->next = NULL;
}

static void waiter_uncount(struct event_waiter *w)
{
    if (w->counted && w->ev)
        w->ev->count--;
    w->counted = 0;
}

static void waiter_closed(uv_handle_t *h)
{
    free(h->data);
}

static int waiter_push(lua_State *co, void *data)
{
    struct event_waiter *w = data;
    lua_pushboolean(co, w->signalled);
    return 1;
}

/* Woken or cancelled alike: out of every list, timer closed, memory freed
 * by the close callback. */
static void waiter_done(void *data, int cancelled)
{
    (void)cancelled;
    struct event_waiter *w = data;
    waiter_unlink(w);
    waiter_uncount(w);
    uv_timer_stop(&w->timer);
    uv_close((uv_handle_t *)&w->timer, waiter_closed);
}

/* Raw libuv callback: the timeout came first, or a signal re-armed the
 * timer at 0 ms (then SIGNALLED is set and the waiter left the list). */
static void waiter_fire(uv_timer_t *timer)
{
    struct event_waiter *w = timer->data;
    waiter_unlink(w);
    waiter_uncount(w);
    task_wake(w->task);
}

static struct event_obj *check_event(lua_State *L)
{
    return luaL_checkudata(L, 1, EVENT_MT);
}

static int event_new(lua_State *L)
{
    struct event_obj *ev = lua_newuserdatauv(L, sizeof *ev, 0);
    ev->head = NULL;
    ev->count = 0;
    luaL_setmetatable(L, EVENT_MT);
    return 1;
}

/* ev:wait([timeout_ms]) -> true when signalled, false on timeout. */
static int event_wait(lua_State *L)
{
    struct event_obj *ev = check_event(L);
    lua_Number ms = luaL_optnumber(L, 2, -1);
    luaL_argcheck(L, ms <= 86400000.0, 2, "expected milliseconds up to 86400000, or nil");
    struct task *t = task_from_state(L);
    if (!t)
        return luaL_error(L, "event:wait must run in a task");
    struct event_waiter *w = calloc(1, sizeof *w);
    if (!w)
        return luaL_error(L, "out of memory");
    uv_timer_init(host_loop(), &w->timer);
    w->timer.data = w;
    w->task = t;
    w->ev = ev;
    w->counted = 1;
    ev->count++;
    waiter_link(&ev->head, w);
    if (ms >= 0)
        uv_timer_start(&w->timer, waiter_fire, (uint64_t)ms, 0);
    struct task_wait wait = {waiter_push, waiter_done, w};
    return task_yield(L, &wait);
}

/* ev:signal() -> the number of tasks woken.  Each waiter leaves the list
 * now and its own timer is re-armed at 0 ms: the task resumes from that raw
 * libuv callback, never from inside the signalling task's C call (no nested
 * resumes, as everywhere else in the host). */
static int event_signal(lua_State *L)
{
    struct event_obj *ev = check_event(L);
    int woken = 0;
    while (ev->head) {
        struct event_waiter *w = ev->head;
        waiter_unlink(w);
        waiter_uncount(w);
        w->signalled = 1;
        uv_timer_start(&w->timer, waiter_fire, 0, 0);
        woken++;
    }
    lua_pushinteger(L, woken);
    return 1;
}

static int event_waiting(lua_State *L)
{
    lua_pushinteger(L, check_event(L)->count);
    return 1;
}

/* Only reachable when no task waits (they hold the event), but be safe. */
static int event_gc(lua_State *L)
{
    struct event_obj *ev = check_event(L);
    struct event_waiter *next;
    for (struct event_waiter *w = ev->head; w; w = next) {
        next = w->next;
        w->ev = NULL;
        w->counted = 0;
        w->list = NULL;
        w->prev = w->next = NULL;
    }
    ev->head = NULL;
    return 0;
}

int luaopen_o2c_event(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"wait", event_wait}, {"signal", event_signal}, {"waiting", event_waiting}, {NULL, NULL}};
    static const luaL_Reg funcs[] = {{"new", event_new}, {NULL, NULL}};
    luaL_newmetatable(L, EVENT_MT);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, event_gc);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
