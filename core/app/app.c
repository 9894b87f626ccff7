#include <stddef.h>
#include "app/app.h"
#include "host/lua_host.h"
#include "host/modules.h"
#include "llm/scheduler_lua.h"
#include "net/http_client_lua.h"
#include "net/http_server_lua.h"
#include "store/store_lua.h"

const struct host_module app_modules[] = {
    {"o2c.server", luaopen_o2c_server},       {"o2c.http", luaopen_o2c_http},
    {"o2c.scheduler", luaopen_o2c_scheduler}, {"o2c.store", luaopen_o2c_store},
    {"o2c.session", luaopen_o2c_session},     {"o2c.auth", luaopen_o2c_auth},
    {"o2c.audit", luaopen_o2c_audit},         {NULL, NULL},
};

lua_State *app_vm_open(uv_loop_t *loop, size_t memory_limit)
{
    return host_open(loop, memory_limit, app_modules);
}
