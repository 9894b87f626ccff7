/* o2c.generation: the product VM's view of generations.
 *
 *   local g <close> = gen.pin()      -- the current generation, pinned; nil if none
 *   g:call("score", type, answers, targets) -> results (copied), or raises
 *   g:try("score", ...)               -> true, results... | false, message
 *   g:call_text("preview_json", type, body) -> text|nil, text|nil, or raises:
 *       text in, text out, run on the thread pool in a replica of the
 *       generation (the loop serves other requests meanwhile); must run in
 *       a task, and outside one it runs here like call
 *   g:hash(); g:sources() -> {{path=, text=}}; g:release() (also on close/GC)
 *   gen.status() -> {generation=, replicas=, loads=, failures=, last_ms=,
 *                    errors={{file,line,message}}}
 *
 * Values cross by copy through sandbox_copy_value: no function or userdata
 * of a generation ever reaches product code, and the reverse. */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "host/generation.h"
#include "host/lua_host.h"
#include "host/modules.h"
#include "host/reload.h"
#include "host/task.h"

#define GEN_HANDLE "o2c.generation.handle"

struct gen_handle {
    struct generation *g; /* NULL once released */
};

static struct gen_handle *check_handle(lua_State *L)
{
    struct gen_handle *h = luaL_checkudata(L, 1, GEN_HANDLE);
    if (!h->g)
        luaL_error(L, "this generation handle was released");
    return h;
}

static int gen_pin(lua_State *L)
{
    struct generation *g = generation_current();
    if (!g) {
        lua_pushnil(L);
        return 1;
    }
    struct gen_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
    h->g = g;
    generation_pin(g);
    luaL_setmetatable(L, GEN_HANDLE);
    return 1;
}

static int handle_release(lua_State *L)
{
    struct gen_handle *h = luaL_checkudata(L, 1, GEN_HANDLE);
    if (h->g) {
        generation_unpin(h->g);
        h->g = NULL;
    }
    return 0;
}

static int handle_hash(lua_State *L)
{
    lua_pushstring(L, generation_hash(check_handle(L)->g));
    return 1;
}

/* Calls METHOD with the arguments after it; returns results or raises. */
static int handle_call(lua_State *L)
{
    struct gen_handle *h = check_handle(L);
    const char *method = luaL_checkstring(L, 2);
    int nargs = lua_gettop(L) - 2; /* METHOD stays at 2, alive, under them */
    int nres = 2;                  /* loader methods return a value and an optional error list */
    if (generation_call(h->g, method, L, nargs, nres) != 0)
        return lua_error(L);
    return nres;
}

static int handle_try(lua_State *L)
{
    struct gen_handle *h = check_handle(L);
    const char *method = luaL_checkstring(L, 2);
    int nargs = lua_gettop(L) - 2;
    if (generation_call(h->g, method, L, nargs, 2) != 0) {
        lua_pushboolean(L, 0);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_insert(L, -3);
    return 3;
}

/* ---- call_text: a text call on the thread pool ---- */

struct text_job {
    uv_work_t req;
    struct task *task;
    struct generation *g; /* pinned until the job is freed */
    int finished;
    int orphaned; /* the task died: nothing to resume */
    struct gen_text_call call;
    char *owned[GEN_TEXT_ARGS_MAX + 1]; /* copies of the method and arguments */
};

static void text_job_free(struct text_job *job)
{
    generation_text_call_free(&job->call);
    for (int i = 0; i <= GEN_TEXT_ARGS_MAX; i++)
        free(job->owned[i]);
    generation_unpin(job->g);
    free(job);
}

static void text_job_work(uv_work_t *req)
{
    struct text_job *job = req->data;
    generation_call_text(job->g, &job->call);
}

static void text_job_after(uv_work_t *req, int status)
{
    struct text_job *job = req->data;
    job->finished = 1;
    if (status == UV_ECANCELED && !job->orphaned)
        job->call.error = strdup("cancelled");
    if (job->orphaned)
        text_job_free(job);
    else
        task_wake(job->task);
}

static int text_job_push(lua_State *co, void *data)
{
    struct text_job *job = data;
    if (job->call.error)
        return luaL_error(co, "%s", job->call.error);
    for (int i = 0; i < 2; i++) {
        if (job->call.results[i])
            lua_pushlstring(co, job->call.results[i], job->call.result_lens[i]);
        else
            lua_pushnil(co);
    }
    return 2;
}

static void text_job_done(void *data, int cancelled)
{
    struct text_job *job = data;
    if (!cancelled || job->finished) {
        text_job_free(job);
        return;
    }
    /* On the pool: let it end there; text_job_after frees it. */
    job->orphaned = 1;
    uv_cancel((uv_req_t *)&job->req);
}

static char *owned_copy(struct text_job *job, int slot, const char *s, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    job->owned[slot] = copy;
    return copy;
}

static int handle_call_text(lua_State *L)
{
    struct gen_handle *h = check_handle(L);
    size_t mlen;
    const char *method = luaL_checklstring(L, 2, &mlen);
    int nargs = lua_gettop(L) - 2;
    luaL_argcheck(L, nargs <= GEN_TEXT_ARGS_MAX, GEN_TEXT_ARGS_MAX + 3, "too many arguments");
    for (int i = 0; i < nargs; i++)
        luaL_checkstring(L, 3 + i);
    struct task *t = task_from_state(L);
    if (t == NULL) /* e.g. `o2c run` at top level: the same call, here */
        return handle_call(L);
    struct text_job *job = calloc(1, sizeof *job);
    if (!job)
        return luaL_error(L, "out of memory");
    job->task = t;
    job->g = h->g;
    generation_pin(job->g);
    job->call.method = owned_copy(job, 0, method, mlen);
    job->call.nargs = nargs;
    int ok = job->call.method != NULL;
    for (int i = 0; i < nargs && ok; i++) {
        size_t len;
        const char *s = lua_tolstring(L, 3 + i, &len);
        job->call.args[i] = owned_copy(job, i + 1, s, len);
        job->call.arg_lens[i] = len;
        ok = job->call.args[i] != NULL;
    }
    job->req.data = job;
    if (!ok || uv_queue_work(host_loop(), &job->req, text_job_work, text_job_after) != 0) {
        text_job_free(job);
        return luaL_error(L, ok ? "cannot queue work on the thread pool" : "out of memory");
    }
    struct task_wait wait = {.push = text_job_push, .done = text_job_done, .data = job};
    return task_yield(L, &wait);
}

static int handle_sources(lua_State *L)
{
    const struct gen_sources *src = generation_sources(check_handle(L)->g);
    lua_createtable(L, (int)src->count, 0);
    for (size_t i = 0; i < src->count; i++) {
        lua_createtable(L, 0, 2);
        lua_pushstring(L, src->items[i].path);
        lua_setfield(L, -2, "path");
        lua_pushlstring(L, src->items[i].text, src->items[i].len);
        lua_setfield(L, -2, "text");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

static int gen_status(lua_State *L)
{
    struct reload_status st;
    reload_get_status(&st);
    struct generation *g = generation_current();
    lua_createtable(L, 0, 5);
    if (g) {
        lua_pushstring(L, generation_hash(g));
        lua_setfield(L, -2, "generation");
        lua_pushinteger(L, generation_replica_count(g));
        lua_setfield(L, -2, "replicas");
    }
    lua_pushinteger(L, (lua_Integer)st.loads);
    lua_setfield(L, -2, "loads");
    lua_pushinteger(L, (lua_Integer)st.failures);
    lua_setfield(L, -2, "failures");
    lua_pushnumber(L, st.last_ms);
    lua_setfield(L, -2, "last_ms");
    lua_createtable(L, (int)st.errors->count, 0);
    host_mark_array(L, -1);
    for (size_t i = 0; i < st.errors->count; i++) {
        lua_createtable(L, 0, 3);
        lua_pushstring(L, st.errors->items[i].file);
        lua_setfield(L, -2, "file");
        lua_pushinteger(L, st.errors->items[i].line);
        lua_setfield(L, -2, "line");
        lua_pushstring(L, st.errors->items[i].message);
        lua_setfield(L, -2, "message");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "errors");
    return 1;
}

static int gen_reload(lua_State *L)
{
    reload_now(luaL_optstring(L, 1, "requested"));
    return 0;
}

int luaopen_o2c_generation(lua_State *L)
{
    static const luaL_Reg methods[] = {
        {"call", handle_call}, {"try", handle_try},         {"call_text", handle_call_text},
        {"hash", handle_hash}, {"sources", handle_sources}, {"release", handle_release},
        {NULL, NULL}};
    static const luaL_Reg funcs[] = {
        {"pin", gen_pin}, {"status", gen_status}, {"reload", gen_reload}, {NULL, NULL}};
    luaL_newmetatable(L, GEN_HANDLE);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, handle_release);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, handle_release);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
    luaL_newlib(L, funcs);
    return 1;
}
