/* Where the program is assembled: the top floor of core/ (only cli/ and
 * main.c stand on it).  The product VM gets every o2c.* module here, each
 * floor's from its own header, so that no floor below knows the ones above. */
#ifndef O2C_APP_APP_H
#define O2C_APP_APP_H
#include <lua.h>
#include <stddef.h>
#include <uv.h>
#include "host/modules.h"

/* The modules of net/, store/ and llm/ (the host adds its own). */
extern const struct host_module app_modules[];

/* host_open() with app_modules: the product VM. */
lua_State *app_vm_open(uv_loop_t *loop, size_t memory_limit);

#endif
