/* Generations answering in text: preview_json / score_json give the same
 * scores as the table methods, replicas serve calls from several threads at
 * once, errors come back as messages, g:call_text yields its task while the
 * thread pool works (and a cancelled task leaks nothing), and json.raw
 * splices that text into a response. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "app/app.h"
#include "host/config.h"
#include "host/generation.h"
#include "host/lua_host.h"
#include "host/task.h"

static char source_dir[1024];
static char *median_body; /* {"answers": ...} of scripts/o2c/examples/median.json */

static const char *src_path(const char *rel)
{
    static char buf[2048];
    snprintf(buf, sizeof buf, "%s/%s", source_dir, rel);
    return buf;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static struct generation *build_from(const char *root, uint32_t time_ms)
{
    struct config cfg;
    config_defaults(&cfg);
    struct sandbox_limits limits;
    generation_limits(&cfg, &limits);
    if (time_ms)
        limits.time_ms = time_ms;
    struct gen_sources src;
    struct gen_errors errs = {0};
    char scripts[1024], kb[1024];
    snprintf(scripts, sizeof scripts, "%s/scripts", root);
    snprintf(kb, sizeof kb, "%s/kb", root);
    assert_int_equal(gen_sources_read(&src, scripts, kb, &errs), 0);
    struct generation *g = generation_build(&src, &limits, &errs);
    if (!g)
        fail_msg("build: %s", errs.count ? errs.items[0].message : "?");
    return g;
}

static struct generation *build(void)
{
    return build_from(source_dir, 0);
}

static void text_call(struct generation *g, struct gen_text_call *c, const char *method,
                      const char *a1, const char *a2)
{
    memset(c, 0, sizeof *c);
    c->method = method;
    if (a1) {
        c->args[c->nargs] = a1;
        c->arg_lens[c->nargs++] = strlen(a1);
    }
    if (a2) {
        c->args[c->nargs] = a2;
        c->arg_lens[c->nargs++] = strlen(a2);
    }
    generation_call_text(g, c);
}

/* The scores from the table path (generation_call "score" on the primary
 * state, encoded by the product VM's json) and from preview_json on a
 * replica decode to the same value. */
static void test_preview_json_matches_the_table_path(void **state)
{
    (void)state;
    struct generation *g = build();
    uv_loop_t loop;
    uv_loop_init(&loop);
    lua_State *L = app_vm_open(&loop, 0);
    assert_non_null(L);

    struct gen_text_call c;
    text_call(g, &c, "preview_json", "o2c", median_body);
    assert_null(c.error);
    assert_non_null(c.results[0]);
    assert_null(c.results[1]);
    assert_int_equal(generation_replica_count(g), 1);

    /* Same scores through tables: decode the body, score, encode, compare decoded. */
    const char *code = "local body, text = ...\n"
                       "local json = require 'json'\n"
                       "local cjson = require 'cjson'\n"
                       "local b = cjson.decode(body)\n"
                       "return b.answers, b.targets, text, json, cjson\n";
    assert_int_equal(luaL_loadstring(L, code), LUA_OK);
    lua_pushstring(L, median_body);
    lua_pushlstring(L, c.results[0], c.result_lens[0]);
    assert_int_equal(host_pcall(L, 2, 5), LUA_OK);
    int cjson_idx = lua_gettop(L), json_idx = cjson_idx - 1, text_idx = cjson_idx - 2;
    lua_pushliteral(L, "o2c");
    lua_pushvalue(L, text_idx - 2); /* answers */
    lua_pushvalue(L, text_idx - 1); /* targets */
    assert_int_equal(generation_call(g, "score", L, 3, 1), 0);
    int scores_idx = lua_gettop(L);
    /* Compare as canonical text: decode both and re-encode with sorted keys. */
    const char *cmp =
        "local scores, text, json, cjson = ...\n"
        "local function canon(v)\n"
        "  if type(v) ~= 'table' then return cjson.encode(v) end\n"
        "  local keys = {}\n"
        "  for k in pairs(v) do keys[#keys + 1] = k end\n"
        "  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)\n"
        "  local parts = {}\n"
        "  for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. '=' .. canon(v[k]) end\n"
        "  return '{' .. table.concat(parts, ',') .. '}'\n"
        "end\n"
        "local from_text = cjson.decode(text)\n"
        "assert(type(from_text.overall.score) == 'number', 'no overall score')\n"
        "local a, b = canon(from_text), canon(cjson.decode(json.encode(scores)))\n"
        "assert(a == b, 'preview_json differs from score:\\n' .. a .. '\\n' .. b)\n"
        "return true\n";
    assert_int_equal(luaL_loadstring(L, cmp), LUA_OK);
    lua_pushvalue(L, scores_idx);
    lua_pushvalue(L, text_idx);
    lua_pushvalue(L, json_idx);
    lua_pushvalue(L, cjson_idx);
    if (host_pcall(L, 4, 1) != LUA_OK)
        fail_msg("%s", lua_tostring(L, -1));
    generation_text_call_free(&c);

    /* A second call reuses the idle replica. */
    text_call(g, &c, "preview_json", "o2c", median_body);
    assert_null(c.error);
    assert_int_equal(generation_replica_count(g), 1);
    generation_text_call_free(&c);

    host_close(L);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    generation_set_current(g);
    generation_shutdown();
}

static void test_text_call_errors(void **state)
{
    (void)state;
    struct generation *g = build();
    struct gen_text_call c;

    text_call(g, &c, "no_such_method", NULL, NULL);
    assert_non_null(c.error);
    assert_non_null(strstr(c.error, "no method 'no_such_method'"));
    generation_text_call_free(&c);

    text_call(g, &c, "summary", NULL, NULL); /* answers a table, not text */
    assert_non_null(c.error);
    assert_non_null(strstr(c.error, "result 1 of summary is not text"));
    generation_text_call_free(&c);

    /* Invalid answers: no scores, the problems as JSON naming the field. */
    text_call(g, &c, "preview_json", "o2c", "{\"answers\":{\"cr_policy\":9,\"nope\":1}}");
    assert_null(c.error);
    assert_null(c.results[0]);
    assert_non_null(c.results[1]);
    assert_non_null(strstr(c.results[1], "answers.nope"));
    assert_non_null(strstr(c.results[1], "unknown question id"));
    generation_text_call_free(&c);

    /* A body of another shape: "" (the server checks it and says how). */
    const char *odd[] = {
        "{\"answers\":{},\"extra\":1}",       "{\"answers\":[1]}", "[]", "{\"answers\":",
        "{\"answers\":{},\"targets\":\"x\"}", "{\"targets\":{}}"};
    for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
        text_call(g, &c, "preview_json", "o2c", odd[i]);
        assert_null(c.error);
        assert_null(c.results[0]);
        assert_non_null(c.results[1]);
        assert_string_equal(c.results[1], "");
        generation_text_call_free(&c);
    }

    /* A script error inside the call (unknown type) is an error, not a crash. */
    text_call(g, &c, "preview_json", "nope", median_body);
    assert_non_null(c.error);
    assert_non_null(strstr(c.error, "unknown assessment type"));
    generation_text_call_free(&c);

    generation_set_current(g);
    generation_shutdown();
}

/* A scoring script that loops forever on one answer is stopped at the time
 * limit on the replica (the timer-armed deadline, no count hook), and the
 * replica serves the next call. */
static void test_runaway_scoring_on_a_replica_is_stopped(void **state)
{
    (void)state;
    char dir[] = "/tmp/o2c-test-gen-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cmd[4096];
    snprintf(cmd, sizeof cmd,
             "cp -r '%s/scripts' '%s/kb' '%s/' && sed -i 's/^return scoring$/local standard = "
             "scoring.score\\nfunction scoring.score(model, answers, ...)\\n  if "
             "answers.cr_bad_debt == 0.123456 then while true do end end\\n  return "
             "standard(model, answers, ...)\\nend\\n&/' '%s/scripts/o2c/scoring.lua' && grep -q "
             "0.123456 '%s/scripts/o2c/scoring.lua'",
             source_dir, source_dir, dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    struct generation *g = build_from(dir, 300);
    struct gen_text_call c;
    text_call(g, &c, "preview_json", "o2c", "{\"answers\":{\"cr_bad_debt\":0.123456}}");
    assert_non_null(c.error);
    assert_non_null(strstr(c.error, "time limit exceeded (300 ms)"));
    assert_non_null(strstr(c.error, "scoring.lua:"));
    generation_text_call_free(&c);
    text_call(g, &c, "preview_json", "o2c", median_body);
    assert_null(c.error);
    assert_non_null(c.results[0]);
    assert_int_equal(generation_replica_count(g), 1);
    generation_text_call_free(&c);
    generation_set_current(g);
    generation_shutdown();
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

#define THREADS 4
#define CALLS 50

struct worker {
    struct generation *g;
    const char *expected;
    int mismatches, errors;
};

/* Each state seeds its string hashes at random, so replicas may write the
 * same object's keys in another order: compare the bytes as multisets. */
static int same_bytes(const char *a, const char *b)
{
    size_t counts[256] = {0};
    for (; *a; a++)
        counts[(unsigned char)*a]++;
    for (; *b; b++)
        if (counts[(unsigned char)*b]-- == 0)
            return 0;
    for (int i = 0; i < 256; i++)
        if (counts[i])
            return 0;
    return 1;
}

static void worker_run(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < CALLS; i++) {
        struct gen_text_call c;
        memset(&c, 0, sizeof c);
        c.method = "preview_json";
        c.nargs = 2;
        c.args[0] = "o2c";
        c.arg_lens[0] = 3;
        c.args[1] = median_body;
        c.arg_lens[1] = strlen(median_body);
        generation_call_text(w->g, &c);
        if (c.error || !c.results[0])
            w->errors++;
        else if (!same_bytes(c.results[0], w->expected))
            w->mismatches++;
        generation_text_call_free(&c);
    }
}

/* Four threads at once: every answer identical, at most one replica each. */
static void test_replicas_serve_threads_at_once(void **state)
{
    (void)state;
    struct generation *g = build();
    struct gen_text_call c;
    text_call(g, &c, "preview_json", "o2c", median_body);
    assert_non_null(c.results[0]);
    uv_thread_t threads[THREADS];
    struct worker workers[THREADS];
    for (int i = 0; i < THREADS; i++) {
        workers[i] = (struct worker){.g = g, .expected = c.results[0]};
        assert_int_equal(uv_thread_create(&threads[i], worker_run, &workers[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        uv_thread_join(&threads[i]);
        assert_int_equal(workers[i].errors, 0);
        assert_int_equal(workers[i].mismatches, 0);
    }
    int replicas = generation_replica_count(g);
    assert_true(replicas >= 1 && replicas <= THREADS);
    generation_text_call_free(&c);
    generation_set_current(g);
    generation_shutdown();
}

/* Through Lua: g:call_text yields the task and resumes it with the text;
 * a task cancelled while its call is on the pool leaks nothing (ASan). */
static void test_call_text_from_a_task(void **state)
{
    (void)state;
    struct generation *g = build();
    generation_set_current(g);
    uv_loop_t loop;
    uv_loop_init(&loop);
    lua_State *L = app_vm_open(&loop, 64u << 20);
    assert_non_null(L);
    lua_pushstring(L, median_body);
    lua_setglobal(L, "BODY");
    const char *code =
        "local gen = require 'o2c.generation'\n"
        "local json = require 'json'\n"
        "local g <close> = gen.pin()\n"
        "local text, problems = g:call_text('preview_json', 'o2c', BODY)\n"
        "assert(problems == nil, problems)\n"
        "local out = json.encode({ scores = json.raw(text), n = 1, e = json.array() })\n"
        "local back = json.decode(out)\n"
        "assert(back.scores.overall.score > 0 and back.n == 1)\n"
        "assert(out:find('\"e\":[]', 1, true), out)\n"
        "RESULT = back.scores.overall.level_name\n";
    assert_int_equal(luaL_loadstring(L, code), LUA_OK);
    struct task *t = task_spawn(L, 0, NULL, NULL);
    assert_non_null(t); /* it waits for the pool */
    uv_run(&loop, UV_RUN_DEFAULT);
    lua_getglobal(L, "RESULT");
    assert_non_null(lua_tostring(L, -1)); /* nil: the task failed (its error is logged) */
    assert_string_equal(lua_tostring(L, -1), "Defined");
    lua_pop(L, 1);

    /* Cancelled while queued or on the pool. */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(luaL_loadstring(L, code), LUA_OK);
        assert_non_null(task_spawn(L, 0, NULL, NULL));
    }
    task_cancel_all();
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(task_count(), 0);

    host_close(L);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    generation_shutdown();
}

int main(void)
{
    const char *dir = getenv("O2C_SOURCE_DIR");
    snprintf(source_dir, sizeof source_dir, "%s", dir ? dir : ".");
    char *example = read_text(src_path("scripts/o2c/examples/median.json"));
    /* The body a preview sends: the example's answers and targets only. */
    uv_loop_t loop;
    uv_loop_init(&loop);
    lua_State *L = app_vm_open(&loop, 0);
    if (!L || luaL_loadstring(
                  L, "local cjson = require 'cjson'\n"
                     "local e = cjson.decode(...)\n"
                     "return cjson.encode({ answers = e.answers, targets = e.targets })") != LUA_OK)
        return 1;
    lua_pushstring(L, example);
    if (host_pcall(L, 1, 1) != LUA_OK)
        return 1;
    median_body = strdup(lua_tostring(L, -1));
    host_close(L);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_preview_json_matches_the_table_path),
        cmocka_unit_test(test_text_call_errors),
        cmocka_unit_test(test_runaway_scoring_on_a_replica_is_stopped),
        cmocka_unit_test(test_replicas_serve_threads_at_once),
        cmocka_unit_test(test_call_text_from_a_task),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    free(median_body);
    free(example);
    return rc;
}
