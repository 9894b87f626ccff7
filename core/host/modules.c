#include <stddef.h>
#include "host/modules.h"
#include "net/http_client.h"
#include "net/http_server_lua.h"
#include "store/store_lua.h"

const struct host_module host_modules[] = {
    {"o2c.timer", luaopen_o2c_timer},
    {"o2c.task", luaopen_o2c_task},
    {"o2c.log", luaopen_o2c_log},
    {"o2c.gen", luaopen_o2c_gen},
    {"o2c.config", luaopen_o2c_config},
    {"o2c.server", luaopen_o2c_server},
    {"o2c.assets", luaopen_o2c_assets},
    {"o2c.random", luaopen_o2c_random},
    {"o2c.http", luaopen_o2c_http},
    {"o2c.event", luaopen_o2c_event},
    {"o2c.base64", luaopen_o2c_base64},
    {"o2c.llm", luaopen_o2c_llm},
    {"llm", luaopen_llm_init},
    {"o2c.store", luaopen_o2c_store},
    {"o2c.session", luaopen_o2c_session},
    {"o2c.auth", luaopen_o2c_auth},
    {"o2c.audit", luaopen_o2c_audit},
    {NULL, NULL},
};
