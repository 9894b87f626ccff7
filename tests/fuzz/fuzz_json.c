/* fuzz_json: the input is a JSON request body, sent to the routes that take
 * one, through router.lua and their real handlers (storage stubbed, the real
 * generation): lua-cjson decode, api.common's validate() with each route's
 * own field specs, then what the handler does with a valid body (answers
 * split, validated and scored by the generation; targets checked).
 *
 * Invariant: every answer keeps the API's error contract -- a 2xx, or a 4xx
 * with {"error":{"code","message"}} (400 invalid/malformed, 401, 404, 409).
 * A 500 (an error the handler did not expect) aborts. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include "fuzz_common.h"
#include "host/lua_host.h"

static uv_loop_t loop;
static lua_State *vm;
static int dispatch_ref = LUA_NOREF;

/* The routes that read a JSON body, as an authenticated consultant (admin
 * for user creation); "a1" is the assessment the stubs know (revision 3). */
static const struct {
    const char *method, *path, *token;
} routes[] = {
    {"POST", "/api/v1/session", NULL},
    {"POST", "/api/v1/assessments", "fuzz-consultant-token"},
    {"PATCH", "/api/v1/assessments/a1/answers", "fuzz-consultant-token"},
    {"POST", "/api/v1/assessment-types/o2c/score", "fuzz-consultant-token"},
    {"POST", "/api/v1/users", "fuzz-admin-token"},
};

static void setup(void)
{
    fuzz_quiet_logs();
    if (uv_loop_init(&loop) != 0)
        abort();
    vm = fuzz_product_vm(&loop);
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fuzz/fuzz_request.lua", fuzz_source_dir());
    if (luaL_loadfile(vm, path) != LUA_OK || host_pcall(vm, 0, 1) != LUA_OK)
        fuzz_fail(vm, "cannot load fuzz_request.lua");
    dispatch_ref = luaL_ref(vm, LUA_REGISTRYINDEX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!vm)
        setup();
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        lua_rawgeti(vm, LUA_REGISTRYINDEX, dispatch_ref);
        lua_pushstring(vm, routes[i].method);
        lua_pushstring(vm, routes[i].path);
        lua_pushlstring(vm, (const char *)data, size);
        lua_createtable(vm, 0, 2);
        lua_pushliteral(vm, "application/json");
        lua_setfield(vm, -2, "Content-Type");
        if (routes[i].token) {
            lua_pushfstring(vm, "Bearer %s", routes[i].token);
            lua_setfield(vm, -2, "Authorization");
        }
        if (host_pcall(vm, 4, 0) != LUA_OK) {
            fprintf(stderr, "fuzz_json: %s %s\n", routes[i].method, routes[i].path);
            fuzz_fail(vm, "the answer breaks the API's error contract");
        }
    }
    lua_settop(vm, 0);
    fuzz_check_vm_growth(vm);
    return 0;
}
