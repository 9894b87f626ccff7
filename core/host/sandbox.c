#include <errno.h>
#include <lauxlib.h>
#include <lualib.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "host/sandbox.h"

/* The hook runs every HOOK_EVERY instructions until a budget is exceeded,
 * then at every instruction. */
#define HOOK_EVERY 1000
/* Room granted past the memory budget once it is exceeded, so the error can
 * be raised and the stack unwound. */
#define MEMORY_MARGIN (256 * 1024)
#define COPY_MAX_DEPTH 64
#define COPY_MAX_VALUES 1000000

struct sandbox {
    lua_State *L;
    struct sandbox_limits limits;
    size_t used;
    uint64_t instructions_left;
    uint64_t deadline_ms;
    enum sandbox_kill kill;
    char kill_where[200];  /* "file:line" where the budget ran out */
    char heavy_where[200]; /* the script line last seen allocating near the memory budget */
    int note_pending;      /* the hook is to note heavy_where at the next instruction */
    int periodic;          /* the call runs under the every-HOOK_EVERY count hook */
    int in_call;
};

static uint64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sandbox_hook(lua_State *L, lua_Debug *ar);

static void sandbox_arm_kill(struct sandbox *sb, enum sandbox_kill why)
{
    sb->kill = why;
    if (sb->L)
        lua_sethook(sb->L, sandbox_hook, LUA_MASKCOUNT, 1);
}

static void *sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
    struct sandbox *sb = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        sb->used -= old;
        return NULL;
    }
    if (sb->limits.memory_bytes && nsize > old) {
        size_t cap = sb->limits.memory_bytes + (sb->kill ? MEMORY_MARGIN : 0);
        if (sb->used - old + nsize > cap) {
            /* lua_sethook is safe to call at any moment, even from here. */
            if (sb->in_call && !sb->kill)
                sandbox_arm_kill(sb, SANDBOX_KILLED_MEMORY);
            return NULL;
        }
    }
    void *p = realloc(ptr, nsize);
    if (p)
        sb->used = sb->used - old + nsize;
    /* Near the budget, the next instruction notes the script line that is
     * allocating: once the budget is exceeded its frames may be gone. */
    if (p && sb->in_call && !sb->kill && !sb->note_pending && sb->limits.memory_bytes &&
        sb->used > sb->limits.memory_bytes / 4 * 3) {
        sb->note_pending = 1;
        lua_sethook(sb->L, sandbox_hook, LUA_MASKCOUNT, 1);
    }
    return p;
}

struct sandbox *sandbox_from_state(lua_State *L)
{
    void *ud = NULL;
    lua_Alloc f = lua_getallocf(L, &ud);
    return f == sandbox_alloc ? ud : NULL;
}

static const char *sandbox_kill_message(const struct sandbox *sb, char *buf, size_t cap)
{
    switch (sb->kill) {
    case SANDBOX_KILLED_INSTRUCTIONS:
        snprintf(buf, cap,
                 "instruction budget exceeded (%llu instructions): is there an endless loop?",
                 (unsigned long long)sb->limits.instructions);
        break;
    case SANDBOX_KILLED_TIME:
        snprintf(buf, cap, "time limit exceeded (%u ms)", sb->limits.time_ms);
        break;
    case SANDBOX_KILLED_MEMORY:
        snprintf(buf, cap, "memory budget exceeded (%zu KiB)", sb->limits.memory_bytes / 1024);
        break;
    default:
        snprintf(buf, cap, "stopped");
    }
    return buf;
}

/* "file:line" of the innermost frame of a script (not the engine's
 * core/lua/, not C) into WHERE; left as it was when there is none. */
static void sandbox_note_where(lua_State *L, char *where, size_t cap)
{
    lua_Debug frame;
    for (int level = 0; lua_getstack(L, level, &frame); level++) {
        if (lua_getinfo(L, "Sl", &frame) && frame.currentline > 0 &&
            strncmp(frame.source, "@core/lua/", 10) != 0) {
            snprintf(where, cap, "%s:%d", frame.short_src, frame.currentline);
            return;
        }
    }
}

static void sandbox_hook(lua_State *L, lua_Debug *ar)
{
    struct sandbox *sb = sandbox_from_state(L);
    if (!sb->kill && sb->note_pending) { /* armed by the allocator, near the budget */
        sb->note_pending = 0;
        sandbox_note_where(L, sb->heavy_where, sizeof sb->heavy_where);
        if (sb->periodic) {
            lua_sethook(L, sandbox_hook, LUA_MASKCOUNT, HOOK_EVERY);
        } else { /* a timed call has no periodic hook; its timer's signal may arm one now */
            lua_sethook(L, NULL, 0, 0);
            if (sb->kill)
                lua_sethook(L, sandbox_hook, LUA_MASKCOUNT, 1);
        }
        return;
    }
    if (!sb->kill) {
        if (sb->limits.instructions) {
            if (sb->instructions_left <= HOOK_EVERY)
                sb->kill = SANDBOX_KILLED_INSTRUCTIONS;
            else
                sb->instructions_left -= HOOK_EVERY;
        }
        if (!sb->kill && sb->deadline_ms && monotonic_ms() > sb->deadline_ms)
            sb->kill = SANDBOX_KILLED_TIME;
        if (!sb->kill)
            return;
        lua_sethook(L, sandbox_hook, LUA_MASKCOUNT, 1);
    }
    /* Name the line that was running when the budget ran out (AR is that
     * function, not our caller); every later raise repeats it.  A memory
     * error has often unwound the script's frames before the armed hook runs
     * (a C function's buffer could not grow), so the line seen last near the
     * budget names it instead. */
    char buf[128];
    sandbox_kill_message(sb, buf, sizeof buf);
    if (!sb->kill_where[0] && sb->kill == SANDBOX_KILLED_MEMORY && sb->heavy_where[0])
        snprintf(sb->kill_where, sizeof sb->kill_where, "%s", sb->heavy_where);
    if (!sb->kill_where[0] && lua_getinfo(L, "Sl", ar) && ar->currentline > 0)
        snprintf(sb->kill_where, sizeof sb->kill_where, "%s:%d", ar->short_src, ar->currentline);
    if (sb->kill_where[0])
        lua_pushfstring(L, "%s: %s", sb->kill_where, buf);
    else
        lua_pushstring(L, buf);
    lua_error(L);
}

/* load(chunk, chunkname, mode, env): text only, and ENV is required so a
 * chunk never silently gets the caller's globals. */
static int sandbox_lua_load(lua_State *L)
{
    size_t len;
    const char *text = luaL_checklstring(L, 1, &len);
    const char *name = luaL_optstring(L, 2, "=(load)");
    luaL_checktype(L, 4, LUA_TTABLE);
    if (luaL_loadbufferx(L, text, len, name, "t") != LUA_OK) {
        lua_pushnil(L);
        lua_insert(L, -2);
        return 2;
    }
    lua_pushvalue(L, 4);
    lua_setupvalue(L, -2, 1);
    return 1;
}

/* xpcall whose message handler runs after unwinding, like pcall then
 * handler(err).  The stock xpcall calls the handler inside the error, and
 * when the error was raised by our budget hook Lua runs it with hooks off:
 * a handler that loops would then escape every budget. */
static int sandbox_lua_xpcall(lua_State *L)
{
    int n = lua_gettop(L);
    luaL_checkany(L, 1);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_pushvalue(L, 1);
    for (int i = 3; i <= n; i++)
        lua_pushvalue(L, i);
    if (lua_pcall(L, n - 2 < 0 ? 0 : n - 2, LUA_MULTRET, 0) == LUA_OK) {
        lua_pushboolean(L, 1);
        lua_insert(L, n + 1);
        return lua_gettop(L) - n;
    }
    lua_pushvalue(L, 2);
    lua_insert(L, -2);
    lua_call(L, 1, 1);
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
}

/* setmetatable refusing __gc: finalizers run with hooks off, so one that
 * loops would escape every budget. */
static int sandbox_lua_setmetatable(lua_State *L)
{
    if (lua_istable(L, 2)) {
        lua_pushliteral(L, "__gc");
        if (lua_rawget(L, 2) != LUA_TNIL)
            return luaL_error(L, "__gc metamethods are not allowed in scripts");
        lua_pop(L, 1);
    }
    lua_settop(L, 2);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1);
    lua_call(L, 2, 1);
    return 1;
}

static int sandbox_lua_print(lua_State *L)
{
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    int n = lua_gettop(L);
    for (int i = 1; i <= n; i++) {
        luaL_tolstring(L, i, NULL);
        luaL_addvalue(&b);
        luaL_addchar(&b, i < n ? '\t' : '\n');
    }
    luaL_pushresult(&b);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    ssize_t ignored = write(STDERR_FILENO, s, len);
    (void)ignored;
    return 0;
}

/* Keeps only NAMES in the table on top of the stack. */
static void keep_fields(lua_State *L, const char *const *names)
{
    lua_newtable(L);
    for (const char *const *n = names; *n; n++) {
        lua_getfield(L, -2, *n);
        lua_setfield(L, -2, *n);
    }
    lua_remove(L, -2);
}

static const char *const base_allowed[] = {"assert",       "error",    "ipairs",   "next",
                                           "pairs",        "pcall",    "rawequal", "rawget",
                                           "rawlen",       "rawset",   "select",   "setmetatable",
                                           "getmetatable", "tonumber", "tostring", "type",
                                           "xpcall",       "_VERSION", NULL};

static void sandbox_open_libs(lua_State *L)
{
    luaL_requiref(L, LUA_GNAME, luaopen_base, 0);
    luaL_requiref(L, LUA_STRLIBNAME, luaopen_string, 0);
    luaL_requiref(L, LUA_TABLIBNAME, luaopen_table, 0);
    luaL_requiref(L, LUA_MATHLIBNAME, luaopen_math, 0);
    luaL_requiref(L, LUA_UTF8LIBNAME, luaopen_utf8, 0);
    luaL_requiref(L, LUA_OSLIBNAME, luaopen_os, 0);
    lua_settop(L, 0);

    /* A fresh globals table holding only the allowed names. */
    lua_pushglobaltable(L);
    keep_fields(L, base_allowed);
    lua_pushcfunction(L, sandbox_lua_load);
    lua_setfield(L, -2, "load");
    lua_pushcfunction(L, sandbox_lua_print);
    lua_setfield(L, -2, "print");
    lua_pushcfunction(L, sandbox_lua_xpcall);
    lua_setfield(L, -2, "xpcall");
    lua_getfield(L, -1, "setmetatable");
    lua_pushcclosure(L, sandbox_lua_setmetatable, 1);
    lua_setfield(L, -2, "setmetatable");
    static const char *const libs[] = {"string", "table", "math", "utf8", NULL};
    for (const char *const *lib = libs; *lib; lib++) {
        lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
        lua_getfield(L, -1, *lib);
        lua_remove(L, -2);
        lua_setfield(L, -2, *lib);
    }
    lua_getfield(L, -1, "string");
    lua_pushnil(L);
    lua_setfield(L, -2, "dump"); /* bytecode has no use here */
    lua_pop(L, 1);
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "os");
    static const char *const os_allowed[] = {"time", "date", "clock", NULL};
    keep_fields(L, os_allowed);
    lua_setfield(L, -3, "os");
    lua_pop(L, 1);
    lua_rawseti(L, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS);

    /* Scripts may call string methods but not change them for others. */
    lua_pushliteral(L, "");
    lua_getmetatable(L, -1);
    lua_pushliteral(L, "string");
    lua_setfield(L, -2, "__metatable");
    lua_pop(L, 2);
    /* Drop the registry's references to the full libraries (package, io...). */
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
}

static int sandbox_open_libs_protected(lua_State *L)
{
    sandbox_open_libs(L);
    return 0;
}

struct sandbox *sandbox_new(const struct sandbox_limits *limits)
{
    struct sandbox *sb = calloc(1, sizeof *sb);
    if (!sb)
        return NULL;
    sb->limits = *limits;
    sb->L = lua_newstate(sandbox_alloc, sb);
    if (!sb->L) {
        free(sb);
        return NULL;
    }
    /* luaopen_* may raise on out of memory: open the libraries protected. */
    lua_pushcfunction(sb->L, sandbox_open_libs_protected);
    if (lua_pcall(sb->L, 0, 0, 0) != LUA_OK) {
        sandbox_free(sb);
        return NULL;
    }
    return sb;
}

void sandbox_free(struct sandbox *sb)
{
    if (!sb)
        return;
    lua_close(sb->L);
    free(sb);
}

lua_State *sandbox_state(struct sandbox *sb)
{
    return sb->L;
}

size_t sandbox_memory_used(const struct sandbox *sb)
{
    return sb->used;
}

enum sandbox_kill sandbox_last_kill(const struct sandbox *sb)
{
    return sb->kill;
}

int sandbox_load(struct sandbox *sb, const char *text, size_t len, const char *chunkname)
{
    char name[512];
    snprintf(name, sizeof name, "@%s", chunkname);
    return luaL_loadbufferx(sb->L, text, len, name, "t");
}

/* After a protected call: hooks off, and when a budget stopped it, the
 * reason and where in place of whatever the script raised while unwinding. */
static int sandbox_call_ended(struct sandbox *sb, int status)
{
    lua_State *L = sb->L;
    lua_sethook(L, NULL, 0, 0);
    sb->in_call = 0;
    if (status != LUA_OK && sb->kill) {
        char buf[128];
        const char *why = sandbox_kill_message(sb, buf, sizeof buf);
        lua_pop(L, 1);
        if (sb->kill_where[0])
            lua_pushfstring(L, "%s: %s", sb->kill_where, why);
        else
            lua_pushstring(L, why);
        if (sb->kill == SANDBOX_KILLED_MEMORY)
            lua_gc(L, LUA_GCCOLLECT);
    }
    return status;
}

int sandbox_pcall(struct sandbox *sb, int nargs, int nresults)
{
    lua_State *L = sb->L;
    sb->kill = SANDBOX_ALIVE;
    sb->kill_where[0] = '\0';
    sb->heavy_where[0] = '\0';
    sb->note_pending = 0;
    sb->instructions_left = sb->limits.instructions;
    sb->deadline_ms = sb->limits.time_ms ? monotonic_ms() + sb->limits.time_ms : 0;
    sb->in_call = 1;
    sb->periodic = sb->limits.instructions || sb->limits.time_ms;
    if (sb->periodic)
        lua_sethook(L, sandbox_hook, LUA_MASKCOUNT, HOOK_EVERY);
    int status = lua_pcall(L, nargs, nresults, 0);
    return sandbox_call_ended(sb, status);
}

/* ---- sandbox_pcall_timed: a deadline without the count hook ---- */

static _Thread_local struct sandbox *timed_running; /* the call this thread runs */
static _Thread_local timer_t timed_timer;
static _Thread_local int timed_timer_ready;

static int timed_signal(void)
{
    return SIGRTMIN + 2;
}

/* Runs on the thread whose timer fired (SIGEV_THREAD_ID): only touches that
 * thread's running sandbox, with async-signal-safe operations. */
static void timed_on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    struct sandbox *sb = timed_running;
    if (sb && sb->in_call && !sb->kill) {
        sb->kill = SANDBOX_KILLED_TIME;
        lua_sethook(sb->L, sandbox_hook, LUA_MASKCOUNT, 1);
    }
    errno = saved;
}

static void timed_install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = timed_on_signal;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(timed_signal(), &sa, NULL);
}

/* This thread's timer, created on first use; 0 or -1. */
static int timed_timer_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, timed_install_handler);
    if (timed_timer_ready)
        return 0;
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = timed_signal();
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &sev, &timed_timer) != 0)
        return -1;
    timed_timer_ready = 1;
    return 0;
}

static void timed_arm(uint32_t ms)
{
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = ms / 1000;
    its.it_value.tv_nsec = (long)(ms % 1000) * 1000000L;
    timer_settime(timed_timer, 0, &its, NULL);
}

int sandbox_pcall_timed(struct sandbox *sb, int nargs, int nresults)
{
    if (sb->limits.time_ms == 0 || timed_timer_init() != 0)
        return sandbox_pcall(sb, nargs, nresults);
    lua_State *L = sb->L;
    lua_sethook(L, NULL, 0, 0); /* a late signal of the last call may have armed it */
    sb->kill = SANDBOX_ALIVE;
    sb->kill_where[0] = '\0';
    sb->heavy_where[0] = '\0';
    sb->note_pending = 0;
    sb->deadline_ms = 0;
    sb->instructions_left = 0;
    sb->periodic = 0;
    sb->in_call = 1;
    timed_running = sb;
    timed_arm(sb->limits.time_ms);
    int status = lua_pcall(L, nargs, nresults, 0);
    timed_arm(0);
    timed_running = NULL;
    return sandbox_call_ended(sb, status);
}

struct copy_state {
    lua_State *from, *to;
    size_t values;
};

static int copy_fail(struct copy_state *cs, const char *msg)
{
    lua_pushstring(cs->to, msg);
    return -1;
}

static int copy_value(struct copy_state *cs, int idx, int depth);

static int copy_table(struct copy_state *cs, int idx, int depth)
{
    lua_State *from = cs->from, *to = cs->to;
    if (depth >= COPY_MAX_DEPTH)
        return copy_fail(cs, "value nested too deeply (more than 64 levels, or a cycle)");
    if (!lua_checkstack(from, 4) || !lua_checkstack(to, 4))
        return copy_fail(cs, "out of stack space while copying a value");
    lua_newtable(to);
    lua_pushnil(from);
    while (lua_next(from, idx)) {
        int kt = lua_type(from, -2);
        if (kt != LUA_TSTRING && kt != LUA_TNUMBER) {
            lua_pop(from, 2);
            return copy_fail(cs, "table keys must be strings or numbers");
        }
        /* On failure the message is left on top of TO; the caller trims. */
        if (copy_value(cs, lua_absindex(from, -2), depth + 1) != 0 ||
            copy_value(cs, lua_absindex(from, -1), depth + 1) != 0) {
            lua_pop(from, 2);
            return -1;
        }
        lua_rawset(to, -3);
        lua_pop(from, 1);
    }
    return 0;
}

static int copy_value(struct copy_state *cs, int idx, int depth)
{
    if (++cs->values > COPY_MAX_VALUES)
        return copy_fail(cs, "value too large to copy (more than 1,000,000 parts)");
    lua_State *from = cs->from, *to = cs->to;
    switch (lua_type(from, idx)) {
    case LUA_TNIL:
        lua_pushnil(to);
        return 0;
    case LUA_TBOOLEAN:
        lua_pushboolean(to, lua_toboolean(from, idx));
        return 0;
    case LUA_TNUMBER:
        if (lua_isinteger(from, idx))
            lua_pushinteger(to, lua_tointeger(from, idx));
        else
            lua_pushnumber(to, lua_tonumber(from, idx));
        return 0;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(from, idx, &len);
        lua_pushlstring(to, s, len);
        return 0;
    }
    case LUA_TTABLE:
        return copy_table(cs, idx, depth);
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(from, idx) == NULL) { /* cjson.null inside request JSON */
            lua_pushnil(to);
            return 0;
        }
        /* fallthrough */
    default: {
        char msg[96];
        snprintf(msg, sizeof msg, "cannot copy a %s (only plain data crosses)",
                 luaL_typename(from, idx));
        return copy_fail(cs, msg);
    }
    }
}

int sandbox_copy_value(lua_State *from, int from_idx, lua_State *to)
{
    struct copy_state cs = {from, to, 0};
    int top = lua_gettop(to);
    if (!lua_checkstack(to, 8))
        return -1;
    if (copy_value(&cs, lua_absindex(from, from_idx), 0) == 0)
        return 0;
    /* Leave only the message above what TO had. */
    lua_replace(to, top + 1);
    lua_settop(to, top + 1);
    return -1;
}
