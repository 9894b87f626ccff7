/* o2c.log: debug/info/warn/error(msg [, fields]) write a JSON line through
 * log.h; the running task's label (its request id) is added when set. */
#include <lauxlib.h>
#include <stdio.h>
#include <string.h>
#include "host/log.h"
#include "host/modules.h"
#include "host/task.h"

#define LOG_LUA_FIELDS 24

static int log_lua_write(lua_State *L, enum log_level level)
{
    const char *msg = luaL_checkstring(L, 1);
    if (level < log_get_level())
        return 0;
    luaL_checkstack(L, 2 * LOG_LUA_FIELDS + 4, "too many log fields");
    struct log_field fields[LOG_LUA_FIELDS + 1];
    char numbers[LOG_LUA_FIELDS][32];
    size_t n = 0;
    struct task *t = task_from_state(L);
    if (t && strcmp(task_label(t), "task") != 0)
        fields[n++] = (struct log_field){"request_id", task_label(t), 0};
    if (lua_istable(L, 2)) {
        lua_pushnil(L);
        while (n < LOG_LUA_FIELDS && lua_next(L, 2)) {
            if (lua_type(L, -2) != LUA_TSTRING) {
                lua_pop(L, 1);
                continue;
            }
            struct log_field *f = &fields[n];
            f->key = lua_tostring(L, -2);
            f->raw = 0;
            if (lua_type(L, -1) == LUA_TNUMBER) {
                snprintf(numbers[n], sizeof numbers[n], "%.17g", lua_tonumber(L, -1));
                f->value = numbers[n];
                f->raw = 1;
            } else if (lua_type(L, -1) == LUA_TBOOLEAN) {
                f->value = lua_toboolean(L, -1) ? "true" : "false";
                f->raw = 1;
            } else {
                f->value = luaL_tolstring(L, -1, NULL);
                lua_replace(L, -2); /* keep the string alive in place of the value */
            }
            n++;
            /* The value (or its string) stays on the stack until we log, so
             * every pointer stays valid; push the key again for lua_next. */
            lua_pushvalue(L, -2);
        }
    }
    log_fields(level, msg, fields, n);
    return 0;
}

static int log_lua_debug(lua_State *L)
{
    return log_lua_write(L, LOG_DEBUG);
}
static int log_lua_info(lua_State *L)
{
    return log_lua_write(L, LOG_INFO);
}
static int log_lua_warn(lua_State *L)
{
    return log_lua_write(L, LOG_WARN);
}
static int log_lua_error(lua_State *L)
{
    return log_lua_write(L, LOG_ERROR);
}

int luaopen_o2c_log(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"debug", log_lua_debug},
                                     {"info", log_lua_info},
                                     {"warn", log_lua_warn},
                                     {"error", log_lua_error},
                                     {NULL, NULL}};
    luaL_newlib(L, funcs);
    return 1;
}
