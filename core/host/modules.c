#include <stddef.h>
#include "host/modules.h"

const struct host_module host_modules[] = {
    {"o2c.timer", luaopen_o2c_timer},
    {"o2c.task", luaopen_o2c_task},
    {"o2c.log", luaopen_o2c_log},
    {NULL, NULL},
};
