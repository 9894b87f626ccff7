/* fuzz_loader: mutated assessment scripts and KB files through the
 * generation loader (core/lua/generation: the loader and every validation), on a
 * small fixture laid out like the repository (tests/fuzz/loader_fixture:
 * scripts/mini/... and kb/...) that uses every feature the loader checks.
 *
 * The input says which fixture file it changes:
 *   "scripts/mini/scoring.lua\n<text>"     <text> replaces that file;
 *   "scripts/mini/scoring.lua:42\n<text>"  <text> replaces line 42 of it;
 *   anything else                          replaces scripts/mini/questionnaire.lua.
 * A path that is not among the sources is added as a new file.
 *
 * Speed: the engine (core/lua/generation/init.lua and its modules) is compiled once
 * into a sandbox (generation_sandbox) and its build() is called per input
 * with the changed sources, as generation_build does in a fresh sandbox.
 * The sandbox is replaced every FRESH_EVERY inputs, and after any call a
 * budget stopped, so that state cannot drift far from a fresh one.  The
 * fixture's KB, when an input leaves it unchanged, comes from a cache (see
 * kb_memo below).
 *
 * Invariants (abort on violation): build() returns a generation, or errors
 * that each name a file and say what is wrong; it ends within its time
 * budget (plus slack for the sanitizers); a generation it returns answers
 * questionnaire/score/report_plan calls without crashing (errors are fine:
 * the scripts are mutated), and their results can be copied out. */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "fuzz_common.h"
#include "fuzz_lua_coverage.h"

#define FIXTURE "tests/fuzz/loader_fixture"
#define TYPE_ID "mini"
#define DEFAULT_TARGET "scripts/mini/questionnaire.lua"
/* Per call; the fuzzer's -timeout is 10 s.  The fixture builds in about
 * 50,000 instructions: 1 million leaves room for grown scripts and stops
 * runaway ones quickly (the product's 50 million take seconds here). */
#define FUZZ_TIME_MS 2000
#define FUZZ_INSTRUCTIONS 1000000
#define SLACK_MS 3000
#define FRESH_EVERY 1000
#define ENGINE 1 /* stack index of the engine table (init.lua's M) in the sandbox */

/* What an input changes: PATH's text (whole, or its line LINE when > 0). */
struct change {
    char path[256];
    long line;
    const char *text;
    size_t len;
};

static struct gen_sources fixture;
static struct sandbox_limits limits;
static struct sandbox *sb;
static unsigned long inputs_in_sandbox;
static int stale;    /* a budget stopped a call: the next input gets a new sandbox */
static lua_State *H; /* host state the method results are copied into */
static int ready;

/* S's text with its line LINE (1-based) replaced by REPL; beyond the end, REPL is
 * appended. */
static char *replace_line(const struct gen_source *s, long line, const char *repl, size_t rlen,
                          size_t *out_len)
{
    const char *start = s->text, *end = s->text + s->len;
    for (long i = 1; i < line && start < end; i++) {
        const char *nl = memchr(start, '\n', (size_t)(end - start));
        start = nl ? nl + 1 : end;
    }
    const char *stop = memchr(start, '\n', (size_t)(end - start));
    if (!stop)
        stop = end;
    size_t head = (size_t)(start - s->text), tail = (size_t)(end - stop);
    char *out = malloc(head + rlen + tail + 1);
    if (!out)
        abort();
    memcpy(out, s->text, head);
    memcpy(out + head, repl, rlen);
    memcpy(out + head + rlen, stop, tail);
    *out_len = head + rlen + tail;
    out[*out_len] = '\0';
    return out;
}

/* The input's change (see the top of this file). */
static void parse_input(const uint8_t *data, size_t size, struct change *c)
{
    snprintf(c->path, sizeof c->path, "%s", DEFAULT_TARGET);
    c->line = 0;
    c->text = (const char *)data;
    c->len = size;
    const char *nl = memchr(data, '\n', size);
    size_t first = nl ? (size_t)(nl - c->text) : 0; /* the first line, without its newline */
    if (!nl || first >= sizeof c->path ||
        !((first >= 8 && memcmp(data, "scripts/", 8) == 0) ||
          (first >= 3 && memcmp(data, "kb/", 3) == 0)))
        return;
    memcpy(c->path, data, first);
    c->path[first] = '\0';
    char *colon = strrchr(c->path, ':');
    if (colon) {
        c->line = strtol(colon + 1, NULL, 10);
        *colon = '\0';
    }
    c->text = nl + 1;
    c->len = size - (first + 1);
}

/* One {path=, rel=, kind=, text=} entry, as gen_sources_push makes them. */
static void push_source(lua_State *L, const char *path, const char *rel, const char *kind,
                        const char *text, size_t len, lua_Integer index)
{
    lua_createtable(L, 0, 4);
    lua_pushstring(L, path);
    lua_setfield(L, -2, "path");
    lua_pushstring(L, rel);
    lua_setfield(L, -2, "rel");
    lua_pushstring(L, kind);
    lua_setfield(L, -2, "kind");
    lua_pushlstring(L, text, len);
    lua_setfield(L, -2, "text");
    lua_rawseti(L, -2, index);
}

/* Pushes the fixture's sources with change C applied (C may be NULL). */
static void push_sources(lua_State *L, const struct change *c)
{
    lua_createtable(L, (int)fixture.count + 1, 0);
    int replaced = 0;
    for (size_t i = 0; i < fixture.count; i++) {
        const struct gen_source *s = &fixture.items[i];
        lua_Integer index = (lua_Integer)i + 1;
        if (!c || strcmp(s->path, c->path) != 0) {
            push_source(L, s->path, s->rel, s->kind, s->text, s->len, index);
            continue;
        }
        replaced = 1;
        /* Which file, whole or one line: otherwise a whole-file seed and a
         * line seed that changes nothing look the same to libFuzzer. */
        fuzz_coverage_mark((uint32_t)(i * 2 + (c->line > 0)));
        if (c->line > 0) {
            size_t len;
            char *text = replace_line(s, c->line, c->text, c->len, &len);
            push_source(L, s->path, s->rel, s->kind, text, len, index);
            free(text);
        } else {
            push_source(L, s->path, s->rel, s->kind, c->text, c->len, index);
        }
    }
    if (c && !replaced) {
        int kb = strncmp(c->path, "kb/", 3) == 0;
        push_source(L, c->path, c->path + (kb ? 3 : 8), kb ? "kb" : "script", c->text, c->len,
                    (lua_Integer)fixture.count + 1);
    }
}

/* Run once per sandbox with the fixture's sources: the engine's kb.load
 * and kb.view return what they returned for the fixture's own KB when
 * given that KB again (same paths and texts), instead of parsing it anew.
 * The KB is 80% of the work when a script does not compile, and the loader
 * only reads the KB it is given (scripts see it through read-only views).
 * An input that changes a kb/ file gets the real kb.load. */
static const char kb_memo[] =
    "local kb, sources = GEN_MODULE('kb'), ...\n"
    "local load, view, fixture, K0, V0 = kb.load, kb.view, {}\n"
    "for _, s in ipairs(sources) do\n"
    "  if s.kind == 'kb' then fixture[#fixture + 1] = s end\n"
    "end\n"
    "local function is_fixture(files)\n"
    "  if #files ~= #fixture then return false end\n"
    "  for i, f in ipairs(files) do\n"
    "    local g = fixture[i]\n"
    "    if f.path ~= g.path or f.rel ~= g.rel or f.text ~= g.text then return false end\n"
    "  end\n"
    "  return true\n"
    "end\n"
    "function kb.load(files, errors)\n"
    "  if not is_fixture(files) then return load(files, errors) end\n"
    "  if not K0 then\n"
    "    local before = errors:count()\n"
    "    local K = load(files, errors)\n"
    "    if errors:count() > before then return K end\n"
    "    K0 = K\n"
    "  end\n"
    "  return K0\n"
    "end\n"
    "function kb.view(K)\n"
    "  if K ~= K0 then return view(K) end\n"
    "  V0 = V0 or view(K)\n"
    "  return V0\n"
    "end\n";

/* A new sandbox with the engine loaded (at stack index ENGINE). */
static void fresh_sandbox(void)
{
    char err[512];
    sandbox_free(sb);
    sb = generation_sandbox(&limits, err, sizeof err);
    if (!sb || lua_gettop(sandbox_state(sb)) != ENGINE) {
        fprintf(stderr, "fuzz_loader: cannot load the engine: %s\n", sb ? "stack" : err);
        abort();
    }
    lua_State *L = sandbox_state(sb);
    int status = sandbox_load(sb, kb_memo, sizeof kb_memo - 1, "fuzz_loader.kb_memo");
    if (status == LUA_OK) {
        push_sources(L, NULL);
        status = sandbox_pcall(sb, 1, 0);
    }
    if (status != LUA_OK) {
        fprintf(stderr, "fuzz_loader: cannot memoise kb.load: %s\n", lua_tostring(L, -1));
        abort();
    }
    inputs_in_sandbox = 0;
    stale = 0;
}

/* sandbox_pcall that remembers whether a budget stopped the call. */
static int sandbox_call(int nargs, int nresults)
{
    int status = sandbox_pcall(sb, nargs, nresults);
    if (sandbox_last_kill(sb) != SANDBOX_ALIVE)
        stale = 1;
    return status;
}

/* engine.build(sources with change C): status of the call; on success the
 * generation (or nil) and the errors are on top. */
static int build(const struct change *c)
{
    lua_State *L = sandbox_state(sb);
    lua_settop(L, ENGINE);
    lua_getfield(L, ENGINE, "build");
    push_sources(L, c);
    return sandbox_call(1, 2);
}

static void print_errors(const struct gen_errors *errs)
{
    for (size_t i = 0; i < errs->count; i++)
        fprintf(stderr, "  %s:%d: %s\n", errs->items[i].file, errs->items[i].line,
                errs->items[i].message);
}

/* The unchanged fixture must build: otherwise every input would only
 * exercise the same failure. */
static void check_fixture(void)
{
    int found = 0;
    for (size_t i = 0; i < fixture.count; i++)
        found |= strcmp(fixture.items[i].path, DEFAULT_TARGET) == 0;
    lua_State *L = sandbox_state(sb);
    if (found && build(NULL) == LUA_OK && !lua_isnil(L, -2))
        return;
    fprintf(stderr, "fuzz_loader: the fixture %s/%s does not build (or lacks %s)\n",
            fuzz_source_dir(), FIXTURE, DEFAULT_TARGET);
    struct gen_errors errs = {0};
    gen_errors_from_lua(L, -1, &errs);
    print_errors(&errs);
    exit(2);
}

static void setup(void)
{
    char root[1024];
    fuzz_quiet_logs();
    fuzz_lua_coverage_engine_lines();
    snprintf(root, sizeof root, "%s/%s", fuzz_source_dir(), FIXTURE);
    fuzz_read_sources_in(root, &fixture);
    fuzz_default_limits(&limits);
    limits.time_ms = FUZZ_TIME_MS;
    limits.instructions = FUZZ_INSTRUCTIONS;
    H = luaL_newstate();
    fresh_sandbox();
    check_fixture();
    ready = 1;
}

static void check_errors(const struct gen_errors *errs)
{
    if (errs->count == 0) {
        fprintf(stderr, "fuzz_loader: no generation and no error\n");
        abort();
    }
    for (size_t i = 0; i < errs->count; i++) {
        const struct gen_error *e = &errs->items[i];
        if (!e->file || !e->file[0] || !e->message || !e->message[0]) {
            fprintf(stderr, "fuzz_loader: an error without a file or a message: \"%s:%d: %s\"\n",
                    e->file ? e->file : "(null)", e->line, e->message ? e->message : "(null)");
            abort();
        }
    }
}

/* gen:METHOD(TYPE_ID, extra args already pushed...) on the generation at GEN;
 * a result is copied out as generation_call would.  Errors are allowed. */
static void call_method(int gen, const char *method, int nextra)
{
    lua_State *L = sandbox_state(sb);
    lua_getfield(L, gen, method);
    lua_pushvalue(L, gen);
    lua_pushliteral(L, TYPE_ID);
    lua_rotate(L, -3 - nextra, 3); /* method, gen, type id, extras */
    if (sandbox_call(nextra + 2, 1) == LUA_OK && sandbox_copy_value(L, -1, H) == 0)
        lua_pop(H, 1);
    lua_settop(H, 0); /* a failed copy leaves its message */
    lua_pop(L, 1);
}

/* Answers of each type for the fixture's questions, one "not applicable". */
static void push_answers(lua_State *L)
{
    lua_createtable(L, 0, 6);
    lua_pushliteral(L, "same_day");
    lua_setfield(L, -2, "bi_timing");
    lua_pushinteger(L, 3);
    lua_setfield(L, -2, "bi_process");
    lua_createtable(L, 1, 0);
    lua_pushliteral(L, "price");
    lua_rawseti(L, -2, 1);
    lua_setfield(L, -2, "bi_checks");
    lua_pushnumber(L, 4.5);
    lua_setfield(L, -2, "bi_cost");
    lua_pushinteger(L, 2);
    lua_setfield(L, -2, "ca_match");
    lua_pushliteral(L, "na");
    lua_setfield(L, -2, "ca_rate");
}

/* Exercises the generation at GEN, built from mutated scripts. */
static void use_generation(int gen)
{
    lua_State *L = sandbox_state(sb);
    call_method(gen, "questionnaire", 0);
    push_answers(L);
    lua_pushnil(L);
    call_method(gen, "score", 2);
    call_method(gen, "report_plan", 0);
}

/* The build ended: check what it returned. */
static void check_result(int status)
{
    lua_State *L = sandbox_state(sb);
    int top = lua_gettop(L);
    if (status == LUA_OK && !lua_isnil(L, top - 1)) {
        use_generation(top - 1);
        return;
    }
    struct gen_errors errs = {0};
    gen_errors_from_lua(L, top, &errs);
    check_errors(&errs);
    if (getenv("O2C_FUZZ_VERBOSE"))
        print_errors(&errs);
    gen_errors_free(&errs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready)
        setup();
    if (stale || inputs_in_sandbox >= FRESH_EVERY)
        fresh_sandbox();
    inputs_in_sandbox++;
    struct change c;
    parse_input(data, size, &c);
    uint64_t started = uv_hrtime();
    int status = build(&c);
    uint64_t ms = (uv_hrtime() - started) / 1000000;
    if (ms > FUZZ_TIME_MS + SLACK_MS) {
        fprintf(stderr, "fuzz_loader: the build took %llu ms (budget %d ms)\n",
                (unsigned long long)ms, FUZZ_TIME_MS);
        abort();
    }
    check_result(status);
    lua_State *L = sandbox_state(sb);
    lua_settop(L, ENGINE);
    /* Lua collects before failing an allocation, but the budget counts the
     * first failure: keep the last inputs' garbage far from the budget. */
    if (limits.memory_bytes && sandbox_memory_used(sb) > limits.memory_bytes / 4)
        lua_gc(L, LUA_GCCOLLECT);
    return 0;
}
