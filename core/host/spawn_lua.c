/* o2c.spawn: run one of our helper programs from a Lua task (see spawn.h).
 *
 *   local res, err, code = o2c.spawn.run{
 *       program = "weasyprint", args = {"-", "-"}, input = html,
 *       timeout_ms = 60000, max_output = 64 << 20,
 *       files = {["chart.png"] = bytes},   -- the child's working folder
 *   }
 *   -- res = {exit_code = 0, stdout = "...", stderr = "..."}
 *   -- or nil, "weasyprint is not installed (not found in PATH)", "not_found"
 *   --   code: "not_found" | "timeout" | "too_large" | "error"
 *   o2c.spawn.find("pandoc") -> "/usr/bin/pandoc" or nil
 *
 * The calling task yields until the program ends; a non-zero exit code is
 * still a result (the caller reads stderr).  Only built-in Lua reaches this
 * module: assessment scripts never see o2c.*. */
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include "host/lua_host.h"
#include "host/modules.h"
#include "host/spawn.h"
#include "host/task.h"

#define SPAWN_LUA_MAX_ARGS 60

struct spawn_lua_call {
    struct task *task;
    struct spawn_job *job; /* NULL once it ended */
    struct spawn_result res;
};

static void spawn_lua_on_done(struct spawn_job *job, struct spawn_result *res, void *ud)
{
    struct spawn_lua_call *call = ud;
    (void)job;
    call->job = NULL;
    call->res = *res;
    res->out = NULL; /* ours now */
    res->err = NULL;
    task_wake(call->task);
}

static int spawn_lua_push_failure(lua_State *L, const struct spawn_result *res)
{
    lua_pushnil(L);
    lua_pushstring(L, res->message[0] ? res->message : "the program failed");
    lua_pushstring(L, spawn_status_name(res->status));
    return 3;
}

static int spawn_lua_push(lua_State *co, void *data)
{
    struct spawn_lua_call *call = data;
    luaL_checkstack(co, 4, "o2c.spawn");
    if (call->res.status != SPAWN_EXITED)
        return spawn_lua_push_failure(co, &call->res);
    lua_createtable(co, 0, 3);
    lua_pushinteger(co, (lua_Integer)call->res.exit_code);
    lua_setfield(co, -2, "exit_code");
    lua_pushlstring(co, call->res.out ? call->res.out : "", call->res.out_len);
    lua_setfield(co, -2, "stdout");
    lua_pushlstring(co, call->res.err ? call->res.err : "", call->res.err_len);
    lua_setfield(co, -2, "stderr");
    return 1;
}

static void spawn_lua_wait_done(void *data, int cancelled)
{
    struct spawn_lua_call *call = data;
    if (cancelled && call->job)
        spawn_cancel(call->job);
    free(call->res.out);
    free(call->res.err);
    free(call);
}

static lua_Integer spawn_lua_opt_int(lua_State *L, int idx, const char *key, lua_Integer max)
{
    lua_Integer value = 0;
    if (lua_getfield(L, idx, key) != LUA_TNIL) {
        int isnum = 0;
        value = lua_tointegerx(L, -1, &isnum);
        if (!isnum || value < 1 || value > max)
            luaL_error(L, "o2c.spawn.run: %s must be an integer from 1 to %I", key, max);
    }
    lua_pop(L, 1);
    return value;
}

/* The args list into ARGV (strings stay anchored by the request table). */
static void spawn_lua_read_args(lua_State *L, int idx, const char **argv)
{
    size_t n = 0;
    int type = lua_getfield(L, idx, "args");
    if (type == LUA_TTABLE) {
        n = (size_t)luaL_len(L, -1);
        if (n > SPAWN_LUA_MAX_ARGS)
            luaL_error(L, "o2c.spawn.run: at most %d args", SPAWN_LUA_MAX_ARGS);
        for (size_t i = 0; i < n; i++) {
            if (lua_geti(L, -1, (lua_Integer)i + 1) != LUA_TSTRING)
                luaL_error(L, "o2c.spawn.run: args[%d] must be a string", (int)i + 1);
            argv[i] = lua_tostring(L, -1);
            lua_pop(L, 1);
        }
    } else if (type != LUA_TNIL) {
        luaL_error(L, "o2c.spawn.run: args must be a list of strings");
    }
    argv[n] = NULL;
    lua_pop(L, 1);
}

/* The files table {name = bytes} into FILES; returns how many. */
static size_t spawn_lua_read_files(lua_State *L, int idx, struct spawn_file *files)
{
    size_t n = 0;
    int type = lua_getfield(L, idx, "files");
    if (type == LUA_TTABLE) {
        int t = lua_gettop(L);
        for (lua_pushnil(L); lua_next(L, t); lua_pop(L, 1)) {
            if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "o2c.spawn.run: files must map names to contents (strings)");
            if (n == SPAWN_MAX_FILES)
                luaL_error(L, "o2c.spawn.run: at most %d files", SPAWN_MAX_FILES);
            files[n].name = lua_tostring(L, -2);
            files[n].data = lua_tolstring(L, -1, &files[n].len);
            n++;
        }
    } else if (type != LUA_TNIL) {
        luaL_error(L, "o2c.spawn.run: files must be a table");
    }
    lua_pop(L, 1);
    return n;
}

static int spawn_lua_run(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    struct task *task = task_from_state(L);
    if (!task)
        return luaL_error(L, "o2c.spawn.run: must be called from a task");
    const char *argv[SPAWN_LUA_MAX_ARGS + 1];
    struct spawn_file files[SPAWN_MAX_FILES];
    struct spawn_request req = {0};
    if (lua_getfield(L, 1, "program") != LUA_TSTRING)
        return luaL_error(L, "o2c.spawn.run: program (a name) is required");
    req.program = lua_tostring(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, 1, "input") == LUA_TSTRING)
        req.input = lua_tolstring(L, -1, &req.input_len);
    lua_pop(L, 1);
    spawn_lua_read_args(L, 1, argv);
    req.args = argv;
    req.nfiles = spawn_lua_read_files(L, 1, files);
    req.files = files;
    req.timeout_ms = (uint64_t)spawn_lua_opt_int(L, 1, "timeout_ms", 3600000);
    req.max_output = (size_t)spawn_lua_opt_int(L, 1, "max_output", (lua_Integer)1 << 30);

    struct spawn_lua_call *call = calloc(1, sizeof *call);
    if (!call)
        return luaL_error(L, "o2c.spawn.run: out of memory");
    call->task = task;
    struct spawn_result now;
    call->job = spawn_start(host_loop(), &req, spawn_lua_on_done, call, &now);
    if (!call->job) {
        free(call);
        return spawn_lua_push_failure(L, &now);
    }
    struct task_wait wait = {spawn_lua_push, spawn_lua_wait_done, call};
    return task_yield(L, &wait);
}

static int spawn_lua_find(lua_State *L)
{
    char path[1024];
    if (spawn_find_program(luaL_checkstring(L, 1), path, sizeof path) != 0)
        lua_pushnil(L);
    else
        lua_pushstring(L, path);
    return 1;
}

int luaopen_o2c_spawn(lua_State *L)
{
    static const luaL_Reg funcs[] = {
        {"run", spawn_lua_run}, {"find", spawn_lua_find}, {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
