#include <stddef.h>
#include "host/modules.h"

const struct host_module host_modules[] = {
    {"o2c.timer", luaopen_o2c_timer},
    {"o2c.task", luaopen_o2c_task},
    {"o2c.log", luaopen_o2c_log},
    {"o2c.generation", luaopen_o2c_generation},
    {"o2c.config", luaopen_o2c_config},
    {"o2c.assets", luaopen_o2c_assets},
    {"o2c.random", luaopen_o2c_random},
    {"o2c.event", luaopen_o2c_event},
    {"o2c.base64", luaopen_o2c_base64},
    {"o2c.proxies", luaopen_o2c_proxies},
    {"o2c.spawn", luaopen_o2c_spawn},
    {"o2c.xlsx", luaopen_o2c_xlsx},
    {"o2c.markdown", luaopen_o2c_markdown},
    {"o2c.branding", luaopen_o2c_branding},
    {NULL, NULL},
};
