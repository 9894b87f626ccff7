/* o2c.timer: sleep(ms) yields the calling task until a uv_timer fires;
 * now() is the loop's cached clock, clock() a precise one (ms, float),
 * wall() the time of day in ms since the epoch. */
#include <lauxlib.h>
#include <stdlib.h>
#include <uv.h>
#include "host/lua_host.h"
#include "host/modules.h"
#include "host/task.h"

struct sleep_op {
    uv_timer_t timer;
    struct task *task;
};

static void sleep_closed(uv_handle_t *h)
{
    free(h->data);
}

static void sleep_fired(uv_timer_t *timer)
{
    struct sleep_op *op = timer->data;
    task_wake(op->task);
}

static int sleep_push(lua_State *co, void *data)
{
    (void)co;
    (void)data;
    return 0;
}

/* Completed or cancelled alike: the timer is stopped and closed. */
static void sleep_done(void *data, int cancelled)
{
    (void)cancelled;
    struct sleep_op *op = data;
    uv_timer_stop(&op->timer);
    uv_close((uv_handle_t *)&op->timer, sleep_closed);
}

static int timer_sleep(lua_State *L)
{
    lua_Number ms = luaL_checknumber(L, 1);
    luaL_argcheck(L, ms >= 0 && ms <= 86400000.0, 1, "expected milliseconds from 0 to 86400000");
    struct task *t = task_from_state(L);
    if (!t)
        return luaL_error(L, "o2c.timer.sleep must run in a task");
    struct sleep_op *op = malloc(sizeof *op);
    if (!op)
        return luaL_error(L, "out of memory");
    uv_timer_init(host_loop(), &op->timer);
    op->timer.data = op;
    op->task = t;
    uv_timer_start(&op->timer, sleep_fired, (uint64_t)ms, 0);
    struct task_wait wait = {sleep_push, sleep_done, op};
    return task_yield(L, &wait);
}

static int timer_now(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)uv_now(host_loop()));
    return 1;
}

/* A precise clock for durations, in milliseconds (float). */
static int timer_clock(lua_State *L)
{
    lua_pushnumber(L, (lua_Number)uv_hrtime() / 1e6);
    return 1;
}

/* Wall clock in milliseconds since the epoch. */
static int timer_wall(lua_State *L)
{
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    lua_pushinteger(L, (lua_Integer)tv.tv_sec * 1000 + tv.tv_usec / 1000);
    return 1;
}

int luaopen_o2c_timer(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"sleep", timer_sleep},
                                     {"now", timer_now},
                                     {"clock", timer_clock},
                                     {"wall", timer_wall},
                                     {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
