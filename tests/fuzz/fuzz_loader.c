/* fuzz_loader: mutated assessment scripts and KB files through
 * generation_build (the sandbox, the loader and every validation of
 * core/lua/gen), starting from the real scripts/ and kb/.
 *
 * The input says which file it changes:
 *   "scripts/o2c/scoring.lua\n<text>"     <text> replaces that file;
 *   "scripts/o2c/scoring.lua:42\n<text>"  <text> replaces line 42 of it;
 *   anything else                         replaces scripts/o2c/questionnaire.lua.
 * A path that is not among the sources is added as a new file.
 *
 * Invariants (abort on violation): the build returns a generation, or
 * errors that each name a file and say what is wrong; it ends within its
 * time budget (plus slack for the sanitizers); a generation it returns
 * answers questionnaire/score/report_plan calls without crashing (errors
 * are fine: the scripts are mutated). */
#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "fuzz_common.h"
#include "fuzz_lua_coverage.h"

#define DEFAULT_TARGET "scripts/o2c/questionnaire.lua"
/* Per call; the fuzzer's -timeout is 10 s.  Instructions bound a build far
 * below the default config's 50 million, so that runaway scripts cost less. */
#define FUZZ_TIME_MS 2000
#define FUZZ_INSTRUCTIONS 20000000
#define SLACK_MS 3000

static struct gen_sources originals;
static lua_State *L; /* for the calls into a built generation */
static int ready;

static char *dup_bytes(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        abort();
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

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

/* A copy of the real sources; when PATH is not NULL, with that file's text
 * (or only its line LINE, when LINE > 0) replaced by TEXT, or TEXT added as a
 * new file when no source has that path. */
static void copy_sources(const char *path, long line, const char *text, size_t len,
                         struct gen_sources *out)
{
    memset(out, 0, sizeof *out);
    out->items = calloc(originals.count + 1, sizeof *out->items);
    if (!out->items)
        abort();
    int replaced = 0;
    for (size_t i = 0; i < originals.count; i++) {
        const struct gen_source *s = &originals.items[i];
        struct gen_source *d = &out->items[out->count++];
        d->path = strdup(s->path);
        d->rel = strdup(s->rel);
        d->kind = s->kind;
        if (path && strcmp(s->path, path) == 0) {
            replaced = 1;
            /* Which file, whole or one line: otherwise a whole-file seed and
             * a line seed that changes nothing look the same to libFuzzer. */
            fuzz_coverage_mark((uint32_t)(i * 2 + (line > 0)));
            if (line > 0)
                d->text = replace_line(s, line, text, len, &d->len);
            else
                d->text = dup_bytes(text, d->len = len);
        } else {
            d->text = dup_bytes(s->text, d->len = s->len);
        }
    }
    if (path && !replaced) {
        int kb = strncmp(path, "kb/", 3) == 0;
        struct gen_source *d = &out->items[out->count++];
        d->path = strdup(path);
        d->rel = strdup(path + (kb ? 3 : 8));
        d->kind = kb ? "kb" : "script";
        d->text = dup_bytes(text, d->len = len);
    }
    memcpy(out->hash, "fuzz", 5);
}

/* The real sources with the input's change (see the top of this file). */
static void make_sources(const uint8_t *data, size_t size, struct gen_sources *out)
{
    char path[256] = DEFAULT_TARGET;
    long line = 0;
    const char *text = (const char *)data;
    size_t len = size;
    const char *nl = memchr(data, '\n', size);
    size_t first = nl ? (size_t)(nl - text) : 0; /* the first line, without its newline */
    if (nl && first < sizeof path &&
        ((first >= 8 && memcmp(data, "scripts/", 8) == 0) ||
         (first >= 3 && memcmp(data, "kb/", 3) == 0))) {
        memcpy(path, data, first);
        path[first] = '\0';
        char *colon = strrchr(path, ':');
        if (colon) {
            line = strtol(colon + 1, NULL, 10);
            *colon = '\0';
        }
        text = nl + 1;
        len = size - (first + 1);
    }
    copy_sources(path, line, text, len, out);
}

static struct generation *build(struct gen_sources *src, struct gen_errors *errs)
{
    struct sandbox_limits limits;
    fuzz_default_limits(&limits);
    limits.time_ms = FUZZ_TIME_MS;
    limits.instructions = FUZZ_INSTRUCTIONS;
    return generation_build(src, &limits, errs);
}

/* The unchanged sources must build and hold the default target: otherwise
 * every input would only exercise the same failure. */
static void check_originals(void)
{
    int found = 0;
    for (size_t i = 0; i < originals.count; i++)
        found |= strcmp(originals.items[i].path, DEFAULT_TARGET) == 0;
    struct gen_sources src;
    copy_sources(NULL, 0, NULL, 0, &src);
    struct gen_errors errs = {0};
    struct generation *g = build(&src, &errs);
    if (!found || !g) {
        fprintf(stderr, "fuzz_loader: the real sources do not build (or lack %s)\n",
                DEFAULT_TARGET);
        for (size_t i = 0; i < errs.count; i++)
            fprintf(stderr, "  %s:%d: %s\n", errs.items[i].file, errs.items[i].line,
                    errs.items[i].message);
        exit(2);
    }
    generation_pin(g);
    generation_unpin(g);
}

static void setup(void)
{
    fuzz_quiet_logs();
    fuzz_read_sources(&originals);
    L = luaL_newstate();
    luaL_openlibs(L);
    check_originals();
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

/* Exercises a generation built from mutated scripts: errors are allowed. */
static void use_generation(struct generation *g)
{
    static const char *question_ids[] = {"co_dso", "md_ownership", "cr_policy"};
    lua_settop(L, 0);
    lua_pushliteral(L, "o2c");
    generation_call(g, "questionnaire", L, 1, 1);
    lua_settop(L, 0);
    lua_pushliteral(L, "o2c");
    lua_createtable(L, 0, 3);
    for (int i = 0; i < 3; i++) {
        lua_pushinteger(L, 3);
        lua_setfield(L, -2, question_ids[i]);
    }
    lua_pushnil(L);
    generation_call(g, "score", L, 3, 1);
    lua_settop(L, 0);
    lua_pushliteral(L, "o2c");
    generation_call(g, "report_plan", L, 1, 1);
    lua_settop(L, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready)
        setup();
    struct gen_sources src;
    make_sources(data, size, &src);
    struct gen_errors errs = {0};
    uint64_t started = uv_hrtime();
    struct generation *g = build(&src, &errs);
    uint64_t ms = (uv_hrtime() - started) / 1000000;
    if (ms > FUZZ_TIME_MS + SLACK_MS) {
        fprintf(stderr, "fuzz_loader: the build took %llu ms (budget %d ms)\n",
                (unsigned long long)ms, FUZZ_TIME_MS);
        abort();
    }
    if (g) {
        use_generation(g);
        generation_pin(g);
        generation_unpin(g); /* never current: freed here */
    } else {
        check_errors(&errs);
        if (getenv("O2C_FUZZ_VERBOSE"))
            for (size_t i = 0; i < errs.count; i++)
                fprintf(stderr, "fuzz_loader: %s:%d: %s\n", errs.items[i].file, errs.items[i].line,
                        errs.items[i].message);
    }
    gen_errors_free(&errs);
    return 0;
}
