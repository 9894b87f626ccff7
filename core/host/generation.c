#include <dirent.h>
#include <errno.h>
#include <lauxlib.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>
#include "host/config.h"
#include "host/embedded.h"
#include "host/generation.h"
#include "host/log.h"
#include "host/lua_host.h"

#define SOURCE_FILE_MAX (1024 * 1024)
#define SOURCE_TOTAL_MAX (32 * 1024 * 1024)
#define SOURCE_COUNT_MAX 2000
#define GEN_INIT "lua/generation/init.lua"

/* A replica: the same generation built again in a state of its own, so a
 * thread-pool thread can run a method while the loop uses the first one. */
struct gen_replica {
    struct sandbox *sb;
    int gen_ref;
    struct gen_replica *next;
};

struct generation {
    struct sandbox *sb;
    int gen_ref; /* registry ref (in sb) to the loader's gen object */
    struct gen_sources sources;
    struct sandbox_limits limits;
    int pins;
    int current;
    uv_mutex_t replica_lock;      /* guards the two fields below; any thread */
    struct gen_replica *replicas; /* idle ones */
    int replica_count;            /* idle and in use */
};

static struct generation *gen_current;

/* ---- errors ---- */

void gen_errors_add(struct gen_errors *errs, const char *file, int line, const char *message)
{
    struct gen_error *items = realloc(errs->items, (errs->count + 1) * sizeof *items);
    if (!items)
        return;
    errs->items = items;
    items[errs->count].file = strdup(file ? file : "");
    items[errs->count].line = line;
    items[errs->count].message = strdup(message ? message : "");
    errs->count++;
}

void gen_errors_add_lua(struct gen_errors *errs, const char *msg)
{
    /* "path:12: message" -> file, line, message; anything else as is. */
    const char *colon = msg ? strchr(msg, ':') : NULL;
    if (colon && colon[1] >= '0' && colon[1] <= '9') {
        char *end;
        long line = strtol(colon + 1, &end, 10);
        if (*end == ':') {
            char file[512];
            snprintf(file, sizeof file, "%.*s", (int)(colon - msg), msg);
            gen_errors_add(errs, file, (int)line, end[1] == ' ' ? end + 2 : end + 1);
            return;
        }
    }
    gen_errors_add(errs, "", 0, msg ? msg : "unknown error");
}

void gen_errors_free(struct gen_errors *errs)
{
    for (size_t i = 0; i < errs->count; i++) {
        free(errs->items[i].file);
        free(errs->items[i].message);
    }
    free(errs->items);
    errs->items = NULL;
    errs->count = 0;
}

/* ---- reading sources ---- */

static int source_skipped(const char *name)
{
    size_t n = strlen(name);
    return name[0] == '.' || name[0] == '#' || (n && name[n - 1] == '~') ||
           (n > 4 && strcmp(name + n - 4, ".swp") == 0);
}

static int source_add(struct gen_sources *out, const char *path, const char *rel, const char *kind,
                      size_t *total, struct gen_errors *errs)
{
    FILE *f = fopen(path, "rb");
    char msg[256];
    if (!f) {
        snprintf(msg, sizeof msg, "cannot read: %s", strerror(errno));
        gen_errors_add(errs, path, 0, msg);
        return -1;
    }
    char *text = malloc(SOURCE_FILE_MAX + 1);
    size_t n = text ? fread(text, 1, SOURCE_FILE_MAX + 1, f) : 0;
    fclose(f);
    if (!text || n > SOURCE_FILE_MAX || *total + n > SOURCE_TOTAL_MAX ||
        out->count >= SOURCE_COUNT_MAX) {
        free(text);
        gen_errors_add(errs, path, 0,
                       "too large: files must be under 1 MiB, 32 MiB and 2000 files in all");
        return -1;
    }
    text[n] = '\0';
    struct gen_source *items = realloc(out->items, (out->count + 1) * sizeof *items);
    if (!items) {
        free(text);
        gen_errors_add(errs, path, 0, "out of memory");
        return -1;
    }
    out->items = items;
    items[out->count++] = (struct gen_source){strdup(path), strdup(rel), kind, text, n};
    *total += n;
    return 0;
}

static int source_walk(struct gen_sources *out, const char *dir, const char *rel, const char *kind,
                       size_t *total, struct gen_errors *errs)
{
    DIR *d = opendir(dir);
    if (!d) {
        char msg[256];
        snprintf(msg, sizeof msg, "cannot open folder: %s", strerror(errno));
        gen_errors_add(errs, dir, 0, msg);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (source_skipped(e->d_name))
            continue;
        char path[2048], sub[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
        struct stat st;
        if (stat(path, &st) != 0)
            continue; /* vanished while we looked: the next reload sees it */
        if (S_ISDIR(st.st_mode))
            rc = source_walk(out, path, sub, kind, total, errs);
        else if (S_ISREG(st.st_mode))
            rc = source_add(out, path, sub, kind, total, errs);
    }
    closedir(d);
    return rc;
}

static int source_compare(const void *a, const void *b)
{
    const struct gen_source *x = a, *y = b;
    return strcmp(x->path, y->path);
}

static void sources_hash(struct gen_sources *src)
{
    crypto_generichash_state st;
    unsigned char digest[32];
    crypto_generichash_init(&st, NULL, 0, sizeof digest);
    for (size_t i = 0; i < src->count; i++) {
        const struct gen_source *s = &src->items[i];
        uint64_t len = s->len;
        crypto_generichash_update(&st, (const unsigned char *)s->kind, strlen(s->kind) + 1);
        crypto_generichash_update(&st, (const unsigned char *)s->rel, strlen(s->rel) + 1);
        crypto_generichash_update(&st, (const unsigned char *)&len, sizeof len);
        crypto_generichash_update(&st, (const unsigned char *)s->text, s->len);
    }
    crypto_generichash_final(&st, digest, sizeof digest);
    sodium_bin2hex(src->hash, sizeof src->hash, digest, GENERATION_HASH_LEN / 2);
}

int gen_sources_read(struct gen_sources *out, const char *scripts, const char *kb,
                     struct gen_errors *errs)
{
    memset(out, 0, sizeof *out);
    size_t total = 0;
    char probe[2048];
    snprintf(probe, sizeof probe, "%s/questionnaire.lua", scripts);
    struct stat st;
    int rc;
    if (stat(probe, &st) == 0) {
        /* One type folder: its files are "<type>/..." as under a root. */
        const char *base = strrchr(scripts, '/');
        char type[256];
        snprintf(type, sizeof type, "%s", base && base[1] ? base + 1 : scripts);
        rc = source_walk(out, scripts, type, "script", &total, errs);
    } else {
        rc = source_walk(out, scripts, "", "script", &total, errs);
    }
    if (rc == 0 && kb && *kb)
        rc = source_walk(out, kb, "", "kb", &total, errs);
    if (rc != 0) {
        gen_sources_free(out);
        return -1;
    }
    qsort(out->items, out->count, sizeof *out->items, source_compare);
    sources_hash(out);
    return 0;
}

void gen_sources_free(struct gen_sources *src)
{
    for (size_t i = 0; i < src->count; i++) {
        free(src->items[i].path);
        free(src->items[i].rel);
        free(src->items[i].text);
    }
    free(src->items);
    src->items = NULL;
    src->count = 0;
}

void gen_sources_push(lua_State *L, const struct gen_sources *sources)
{
    lua_createtable(L, (int)sources->count, 0);
    for (size_t i = 0; i < sources->count; i++) {
        const struct gen_source *s = &sources->items[i];
        lua_createtable(L, 0, 4);
        lua_pushstring(L, s->path);
        lua_setfield(L, -2, "path");
        lua_pushstring(L, s->rel);
        lua_setfield(L, -2, "rel");
        lua_pushstring(L, s->kind);
        lua_setfield(L, -2, "kind");
        lua_pushlstring(L, s->text, s->len);
        lua_setfield(L, -2, "text");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
}

/* ---- the sandbox with the built-in loader ---- */

/* GEN_MODULE(name): runs embedded core/lua/generation/<name>.lua once and caches
 * what it returns, like require for the loader's own modules.  A name may hold
 * '/' between segments ("lib/facts"): no '.', so it cannot leave core/lua/generation/. */
static int gen_module(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    if (name[0] == '/' || name[0] == '\0')
        return luaL_error(L, "GEN_MODULE: bad module name '%s'", name);
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' ||
              (*p == '/' && p[1] != '/' && p[1] != '\0')))
            return luaL_error(L, "GEN_MODULE: bad module name '%s'", name);
    lua_getfield(L, LUA_REGISTRYINDEX, "o2c.generation.modules");
    if (lua_getfield(L, -1, name) != LUA_TNIL)
        return 1;
    lua_pop(L, 1);
    char path[128];
    snprintf(path, sizeof path, "lua/generation/%s.lua", name);
    const struct embedded_file *f = embedded_find(path);
    if (!f)
        return luaL_error(L, "GEN_MODULE: no module core/%s", path);
    char chunk[160];
    snprintf(chunk, sizeof chunk, "@core/%s", path);
    if (luaL_loadbufferx(L, f->data, f->size, chunk, "t") != LUA_OK)
        return lua_error(L);
    lua_call(L, 0, 1);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        lua_pushboolean(L, 1);
    }
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, name);
    return 1;
}

/* Drops cjson.null (a light userdata) so decoded JSON is plain data. */
static void strip_nulls(lua_State *L, int idx, int depth)
{
    if (depth > 64 || !lua_checkstack(L, 4))
        return;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_islightuserdata(L, -1)) {
            lua_pushvalue(L, -2);
            lua_pushnil(L);
            lua_rawset(L, idx);
        } else if (lua_istable(L, -1)) {
            strip_nulls(L, lua_gettop(L), depth + 1);
        }
        lua_pop(L, 1);
    }
}

/* GEN_JSON_DECODE(text): lua-cjson's decode (upvalue 1), nulls dropped. */
static int gen_json_decode(lua_State *L)
{
    luaL_checkstring(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    if (lua_istable(L, -1))
        strip_nulls(L, lua_gettop(L), 0);
    else if (lua_islightuserdata(L, -1))
        lua_pushnil(L);
    return 1;
}

static int gen_install_json(lua_State *L)
{
    lua_CFunction open = host_cjson_opener();
    if (!open)
        return 0;
    lua_pushcfunction(L, open);
    lua_call(L, 0, 1);
    lua_getfield(L, -1, "decode_invalid_numbers"); /* JSON has no NaN or Infinity */
    lua_pushboolean(L, 0);
    lua_call(L, 1, 0);
    lua_getfield(L, -1, "decode_max_depth"); /* as the server decodes (core/lua/json.lua) */
    lua_pushinteger(L, 64);
    lua_call(L, 1, 0);
    lua_getfield(L, -1, "decode");
    lua_pushcclosure(L, gen_json_decode, 1);
    lua_setglobal(L, "GEN_JSON_DECODE");
    /* GEN_JSON_ENCODE(value): lua-cjson's encode, for the methods that
     * answer in JSON text (scores, the questionnaire). */
    lua_getfield(L, -1, "encode_max_depth");
    lua_pushinteger(L, 64);
    lua_call(L, 1, 0);
    lua_getfield(L, -1, "encode");
    lua_setglobal(L, "GEN_JSON_ENCODE");
    return 0;
}

struct sandbox *generation_sandbox(const struct sandbox_limits *limits, char *err, size_t cap)
{
    struct sandbox *sb = sandbox_new(limits);
    if (!sb) {
        snprintf(err, cap, "cannot create a sandbox: out of memory");
        return NULL;
    }
    lua_State *L = sandbox_state(sb);
    lua_newtable(L);
    lua_setfield(L, LUA_REGISTRYINDEX, "o2c.generation.modules");
    lua_pushcfunction(L, gen_module);
    lua_setglobal(L, "GEN_MODULE");
    lua_pushcfunction(L, gen_install_json);
    if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
        snprintf(err, cap, "cannot set up JSON decoding: %s", lua_tostring(L, -1));
        sandbox_free(sb);
        return NULL;
    }
    const struct embedded_file *f = embedded_find(GEN_INIT);
    if (!f) {
        snprintf(err, cap, "this build has no core/%s", GEN_INIT);
        sandbox_free(sb);
        return NULL;
    }
    if (sandbox_load(sb, f->data, f->size, "core/" GEN_INIT) != LUA_OK ||
        sandbox_pcall(sb, 0, 1) != LUA_OK || !lua_istable(L, -1)) {
        snprintf(err, cap, "core/%s: %s", GEN_INIT,
                 lua_isstring(L, -1) ? lua_tostring(L, -1) : "did not return a table");
        sandbox_free(sb);
        return NULL;
    }
    return sb;
}

/* Reads the loader's error list {{file,line,message}} at IDX into ERRS. */
void gen_errors_from_lua(lua_State *L, int idx, struct gen_errors *errs)
{
    idx = lua_absindex(L, idx); /* the loop below pushes */
    if (lua_isstring(L, idx)) {
        gen_errors_add_lua(errs, lua_tostring(L, idx));
        return;
    }
    if (!lua_istable(L, idx)) {
        gen_errors_add(errs, "", 0, "the loader failed without saying why");
        return;
    }
    lua_Integer n = luaL_len(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        lua_getfield(L, -1, "file");
        lua_getfield(L, -2, "line");
        lua_getfield(L, -3, "message");
        gen_errors_add(errs, lua_tostring(L, -3), (int)lua_tointeger(L, -2), lua_tostring(L, -1));
        lua_pop(L, 4);
    }
}

/* Lua names a file in an error by at most LUA_IDSIZE bytes, so a long path
 * loses its start ("...ipts/o2c/scoring.lua").  The errors are about the
 * files the loader read: the full path is the one source ending the same. */
static void gen_errors_full_paths(struct gen_errors *errs, const struct gen_sources *sources)
{
    for (size_t i = 0; i < errs->count; i++) {
        const char *file = errs->items[i].file;
        if (strncmp(file, "...", 3) != 0)
            continue;
        size_t tail = strlen(file + 3), matches = 0;
        const char *found = NULL;
        for (size_t j = 0; j < sources->count; j++) {
            const char *path = sources->items[j].path;
            size_t len = strlen(path);
            if (len >= tail && strcmp(path + len - tail, file + 3) == 0) {
                found = path;
                matches++;
            }
        }
        char *full = matches == 1 ? strdup(found) : NULL;
        if (full) {
            free(errs->items[i].file);
            errs->items[i].file = full;
        }
    }
}

struct generation *generation_build(struct gen_sources *sources,
                                    const struct sandbox_limits *limits, struct gen_errors *errs)
{
    char err[512];
    struct sandbox *sb = generation_sandbox(limits, err, sizeof err);
    if (!sb) {
        gen_errors_add(errs, "", 0, err);
        gen_sources_free(sources);
        return NULL;
    }
    lua_State *L = sandbox_state(sb);
    lua_getfield(L, -1, "build");
    gen_sources_push(L, sources);
    if (sandbox_pcall(sb, 1, 2) != LUA_OK) {
        gen_errors_add_lua(errs, lua_tostring(L, -1));
    } else if (lua_isnil(L, -2)) {
        gen_errors_from_lua(L, lua_gettop(L), errs);
    } else {
        struct generation *g = calloc(1, sizeof *g);
        if (g && uv_mutex_init(&g->replica_lock) != 0) {
            free(g);
            g = NULL;
        }
        if (g) {
            lua_pop(L, 1);
            g->limits = *limits;
            g->sb = sb;
            g->gen_ref = luaL_ref(L, LUA_REGISTRYINDEX);
            lua_settop(L, 0);
            g->sources = *sources;
            memset(sources, 0, sizeof *sources);
            lua_gc(L, LUA_GCCOLLECT);
            return g;
        }
        gen_errors_add(errs, "", 0, "out of memory");
    }
    gen_errors_full_paths(errs, sources);
    sandbox_free(sb);
    gen_sources_free(sources);
    return NULL;
}

static void generation_free(struct generation *g)
{
    /* No pins left, so no thread holds a replica. */
    for (struct gen_replica *r = g->replicas, *next; r; r = next) {
        next = r->next;
        sandbox_free(r->sb);
        free(r);
    }
    uv_mutex_destroy(&g->replica_lock);
    sandbox_free(g->sb);
    gen_sources_free(&g->sources);
    free(g);
}

const char *generation_hash(const struct generation *g)
{
    return g->sources.hash;
}

const struct gen_sources *generation_sources(const struct generation *g)
{
    return &g->sources;
}

int generation_call(struct generation *g, const char *method, lua_State *from, int nargs, int nres)
{
    lua_State *L = sandbox_state(g->sb);
    int base = lua_gettop(L);
    luaL_checkstack(from, nres + 2, "generation_call");
    if (!lua_checkstack(L, nargs + 4)) {
        lua_pop(from, nargs);
        lua_pushliteral(from, "generation: out of stack space");
        return -1;
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, g->gen_ref);
    if (lua_getfield(L, -1, method) != LUA_TFUNCTION) {
        lua_settop(L, base);
        lua_pop(from, nargs);
        lua_pushfstring(from, "the assessment loader has no method '%s'", method);
        return -1;
    }
    lua_insert(L, -2); /* method, self */
    int first_arg = lua_gettop(from) - nargs + 1;
    for (int i = 0; i < nargs; i++) {
        if (sandbox_copy_value(from, first_arg + i, L) != 0) {
            const char *msg = lua_tostring(L, -1);
            lua_pop(from, nargs);
            lua_pushfstring(from, "argument %d of %s: %s", i + 1, method, msg ? msg : "?");
            lua_settop(L, base);
            return -1;
        }
    }
    lua_pop(from, nargs);
    if (sandbox_pcall(g->sb, nargs + 1, nres) != LUA_OK) {
        lua_pushstring(from, lua_tostring(L, -1));
        lua_settop(L, base);
        return -1;
    }
    for (int i = 0; i < nres; i++) {
        if (sandbox_copy_value(L, base + 1 + i, from) != 0) {
            lua_pop(from, i + 1);
            lua_pushfstring(from, "result of %s: cannot copy", method);
            lua_settop(L, base);
            return -1;
        }
    }
    lua_settop(L, base);
    return 0;
}

/* ---- text calls on replicas, from any thread ---- */

static struct gen_replica *replica_build(struct generation *g, char *err, size_t cap)
{
    struct sandbox *sb = generation_sandbox(&g->limits, err, cap);
    if (!sb)
        return NULL;
    lua_State *L = sandbox_state(sb);
    lua_getfield(L, -1, "build");
    gen_sources_push(L, &g->sources);
    struct gen_replica *r = NULL;
    if (sandbox_pcall(sb, 1, 2) != LUA_OK)
        snprintf(err, cap, "building a replica: %s", lua_tostring(L, -1));
    else if (lua_isnil(L, -2))
        snprintf(err, cap, "building a replica: the sources no longer build");
    else if ((r = calloc(1, sizeof *r)) == NULL)
        snprintf(err, cap, "building a replica: out of memory");
    if (!r) {
        sandbox_free(sb);
        return NULL;
    }
    lua_pop(L, 1);
    r->sb = sb;
    r->gen_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);
    lua_gc(L, LUA_GCCOLLECT);
    return r;
}

static struct gen_replica *replica_take(struct generation *g, char *err, size_t cap)
{
    uv_mutex_lock(&g->replica_lock);
    struct gen_replica *r = g->replicas;
    if (r) {
        g->replicas = r->next;
    } else {
        g->replica_count++; /* counted now: the build below runs unlocked */
    }
    uv_mutex_unlock(&g->replica_lock);
    if (r)
        return r;
    r = replica_build(g, err, cap);
    if (!r) {
        uv_mutex_lock(&g->replica_lock);
        g->replica_count--;
        uv_mutex_unlock(&g->replica_lock);
    }
    return r;
}

static void replica_give_back(struct generation *g, struct gen_replica *r)
{
    uv_mutex_lock(&g->replica_lock);
    r->next = g->replicas;
    g->replicas = r;
    uv_mutex_unlock(&g->replica_lock);
}

int generation_replica_count(struct generation *g)
{
    uv_mutex_lock(&g->replica_lock);
    int n = g->replica_count;
    uv_mutex_unlock(&g->replica_lock);
    return n;
}

static char *text_dup(const char *s, size_t len)
{
    char *copy = malloc(len + 1);
    if (copy) {
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    return copy;
}

static void text_fail(struct gen_text_call *c, const char *msg)
{
    c->error = strdup(msg ? msg : "unknown error");
}

void generation_call_text(struct generation *g, struct gen_text_call *c)
{
    char err[512];
    struct gen_replica *r = replica_take(g, err, sizeof err);
    if (!r) {
        text_fail(c, err);
        return;
    }
    lua_State *L = sandbox_state(r->sb);
    int base = lua_gettop(L);
    if (!lua_checkstack(L, c->nargs + 4)) {
        text_fail(c, "generation: out of stack space");
    } else {
        lua_rawgeti(L, LUA_REGISTRYINDEX, r->gen_ref);
        if (lua_getfield(L, -1, c->method) != LUA_TFUNCTION) {
            snprintf(err, sizeof err, "the assessment loader has no method '%s'", c->method);
            text_fail(c, err);
        } else {
            lua_insert(L, -2); /* method, self */
            for (int i = 0; i < c->nargs; i++)
                lua_pushlstring(L, c->args[i], c->arg_lens[i]);
            if (sandbox_pcall_timed(r->sb, c->nargs + 1, 2) != LUA_OK) {
                text_fail(c, lua_tostring(L, -1));
            } else {
                for (int i = 0; i < 2 && !c->error; i++) {
                    int idx = base + 1 + i;
                    if (lua_type(L, idx) == LUA_TSTRING) {
                        size_t len;
                        const char *s = lua_tolstring(L, idx, &len);
                        if ((c->results[i] = text_dup(s, len)) == NULL)
                            text_fail(c, "out of memory");
                        c->result_lens[i] = len;
                    } else if (!lua_isnil(L, idx)) {
                        snprintf(err, sizeof err, "result %d of %s is not text", i + 1, c->method);
                        text_fail(c, err);
                    }
                }
            }
        }
    }
    lua_settop(L, base);
    replica_give_back(g, r);
}

void generation_text_call_free(struct gen_text_call *c)
{
    for (int i = 0; i < 2; i++)
        free(c->results[i]);
    free(c->error);
    memset(c->results, 0, sizeof c->results);
    c->error = NULL;
}

struct generation *generation_current(void)
{
    return gen_current;
}

void generation_set_current(struct generation *g)
{
    struct generation *old = gen_current;
    gen_current = g;
    if (g)
        g->current = 1;
    if (old) {
        old->current = 0;
        if (old->pins == 0)
            generation_free(old);
    }
}

void generation_pin(struct generation *g)
{
    g->pins++;
}

void generation_unpin(struct generation *g)
{
    if (--g->pins == 0 && !g->current)
        generation_free(g);
}

void generation_shutdown(void)
{
    generation_set_current(NULL);
}

void generation_limits(const struct config *cfg, struct sandbox_limits *limits)
{
    limits->memory_bytes = (size_t)cfg->limits.script_memory_mb << 20;
    limits->instructions = (uint64_t)cfg->limits.script_instructions;
    limits->time_ms = (uint32_t)(cfg->limits.script_time_s * 1000);
}
