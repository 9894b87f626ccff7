/* o2c.task: spawn(fn, ...) starts a background task and returns a handle
 * with cancel() and alive(); current() tells whether code runs in a task. */
#include <lauxlib.h>
#include "host/lua_host.h"
#include "host/modules.h"
#include "host/task.h"

#define TASK_HANDLE "o2c.task.handle"

/* The handle holds the coroutine itself: the struct task may be gone, and
 * task_from_state() then answers NULL. */
static struct task *handle_task(lua_State *L)
{
    luaL_checkudata(L, 1, TASK_HANDLE);
    lua_getiuservalue(L, 1, 1);
    lua_State *co = lua_tothread(L, -1);
    lua_pop(L, 1);
    return co ? task_from_state(co) : NULL;
}

static int handle_cancel(lua_State *L)
{
    struct task *t = handle_task(L);
    if (t && t == task_from_state(L))
        return luaL_error(L, "a task cannot cancel itself; return or raise an error instead");
    if (t)
        task_cancel(t);
    lua_pushboolean(L, t != NULL);
    return 1;
}

static int handle_alive(lua_State *L)
{
    lua_pushboolean(L, handle_task(L) != NULL);
    return 1;
}

static int task_spawn_lua(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    int nargs = lua_gettop(L) - 1;
    lua_State *main = host_main_state(L);
    lua_newuserdatauv(L, 0, 1);
    luaL_setmetatable(L, TASK_HANDLE);
    int handle = lua_gettop(L);
    /* Move fn and args to the main state so the task is not a child of
     * whichever coroutine happened to spawn it. */
    for (int i = 1; i <= nargs + 1; i++)
        lua_pushvalue(L, i);
    lua_xmove(L, main, nargs + 1);
    struct task *t = task_spawn(main, nargs, NULL, NULL);
    if (t) {
        lua_pushthread(task_thread(t));
        lua_xmove(task_thread(t), L, 1);
    } else {
        lua_pushboolean(L, 0);
    }
    lua_setiuservalue(L, handle, 1);
    return 1;
}

static int task_in_task(lua_State *L)
{
    lua_pushboolean(L, task_from_state(L) != NULL);
    return 1;
}

static int task_count_lua(lua_State *L)
{
    lua_pushinteger(L, (lua_Integer)task_count());
    return 1;
}

int luaopen_o2c_task(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"cancel", handle_cancel}, {"alive", handle_alive}, {NULL, NULL}};
    static const luaL_Reg funcs[] = {{"spawn", task_spawn_lua},
                                     {"in_task", task_in_task},
                                     {"count", task_count_lua},
                                     {NULL, NULL}};
    luaL_newmetatable(L, TASK_HANDLE);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
