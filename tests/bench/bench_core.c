/* bench_core: the µs-level operations of `make bench`, timed in-process on
 * the same code the server runs (o2c_core), one JSON line per figure.
 *
 *   bench_core score SCRIPTS KB ANSWERS.json [N]
 *       generation_call(g, "score") with a full answer set: answers copied
 *       into the generation's sandboxed state, scored under its budgets,
 *       scores copied back (what the preview route does after validation);
 *       plus "validate_answers" alone, both as the route runs them, and
 *       "has_type" (the fixed cost of one generation call); and
 *       "preview_json", what the preview route runs: the body's JSON text
 *       in, decoded, validated and scored in the generation, encoded there.
 *   bench_core session DATADIR [N]
 *       session_validate on a database holding 101 live sessions.
 *   bench_core save DATADIR [N]
 *       store_save_answers: one answer per save (an autosave), then a full
 *       set of 44 answers per save, each one transaction, synchronous=NORMAL.
 *
 * Every figure is the distribution of N timed calls after a warm-up; the
 * caller (run.sh) reports the median and p99.  Never a pass/fail test. */
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>
#include "app/app.h"
#include "host/config.h"
#include "host/generation.h"
#include "host/lua_host.h"
#include "store/db.h"
#include "store/session.h"
#include "store/store.h"
#include "store/user.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void report(const char *name, int64_t *ns, int n)
{
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += (double)ns[i];
    qsort(ns, (size_t)n, sizeof *ns, cmp_i64);
    printf("{\"name\":\"%s\",\"n\":%d,\"p50_us\":%.2f,\"p99_us\":%.2f,\"mean_us\":%.2f,"
           "\"min_us\":%.2f,\"max_us\":%.2f}\n",
           name, n, ns[n / 2] / 1e3, ns[(int64_t)n * 99 / 100] / 1e3, sum / n / 1e3, ns[0] / 1e3,
           ns[n - 1] / 1e3);
    fflush(stdout);
}

static int die(const char *what, const char *why)
{
    fprintf(stderr, "bench_core: %s: %s\n", what, why ? why : "failed");
    return 1;
}

/* ---- scoring ---- */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = (size_t)n;
    }
    return buf;
}

/* One generation call with (type, answers[, nil]) from L's registry refs. */
static int call(struct generation *g, lua_State *L, const char *method, int answers_ref, int nres)
{
    lua_pushliteral(L, "o2c");
    lua_rawgeti(L, LUA_REGISTRYINDEX, answers_ref);
    int nargs = 2;
    if (strcmp(method, "score") == 0) {
        lua_pushnil(L); /* targets: the script's defaults */
        nargs = 3;
    }
    if (generation_call(g, method, L, nargs, nres) != 0)
        return -1;
    return 0;
}

static int bench_score(const char *scripts, const char *kb, const char *answers_path, int n)
{
    struct config cfg;
    config_defaults(&cfg);
    struct sandbox_limits limits;
    generation_limits(&cfg, &limits);

    struct gen_sources src;
    struct gen_errors errs = {0};
    if (gen_sources_read(&src, scripts, kb, &errs) != 0)
        return die("reading sources", errs.count ? errs.items[0].message : NULL);
    struct generation *g = generation_build(&src, &limits, &errs);
    if (!g)
        return die("building the generation", errs.count ? errs.items[0].message : NULL);

    uv_loop_t loop;
    uv_loop_init(&loop);
    lua_State *L = app_vm_open(&loop, 0);
    if (!L)
        return die("host_open", NULL);
    size_t len;
    char *text = read_file(answers_path, &len);
    if (!text)
        return die(answers_path, "cannot read");
    if (host_require(L, "cjson") != LUA_OK)
        return die("require cjson", lua_tostring(L, -1));
    int cjson_idx = lua_gettop(L);
    lua_getfield(L, -1, "decode");
    lua_pushlstring(L, text, len);
    free(text);
    if (host_pcall(L, 1, 1) != LUA_OK || !lua_istable(L, -1))
        return die(answers_path, "not a JSON object");
    int example_idx = lua_gettop(L);
    /* The preview's body: the example's answers and targets, nothing else. */
    lua_getfield(L, cjson_idx, "encode");
    lua_createtable(L, 0, 2);
    lua_getfield(L, example_idx, "answers");
    lua_setfield(L, -2, "answers");
    lua_getfield(L, example_idx, "targets");
    lua_setfield(L, -2, "targets");
    if (host_pcall(L, 1, 1) != LUA_OK)
        return die(answers_path, "cannot encode the body");
    int body_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_getfield(L, example_idx, "answers");
    if (!lua_istable(L, -1))
        return die(answers_path, "no \"answers\" object");
    int answers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_settop(L, 0);

    /* The answer set must be valid and score, or the figure means nothing. */
    if (call(g, L, "validate_answers", answers_ref, 2) != 0 || !lua_toboolean(L, -2))
        return die("validate_answers", "the answer set does not validate");
    lua_settop(L, 0);
    if (call(g, L, "score", answers_ref, 1) != 0 || !lua_istable(L, -1))
        return die("score", lua_tostring(L, -1));
    lua_getfield(L, -1, "overall");
    lua_getfield(L, -1, "score");
    fprintf(stderr, "bench_core: overall score %.2f, generation %s\n", lua_tonumber(L, -1),
            generation_hash(g));
    lua_settop(L, 0);

    int64_t *ns = malloc((size_t)n * sizeof *ns);
    const char *what[] = {"score", "validate_answers"};
    for (int w = 0; w < 2; w++) {
        int nres = w == 0 ? 1 : 2;
        for (int i = 0; i < n / 10; i++) { /* warm-up */
            call(g, L, what[w], answers_ref, nres);
            lua_settop(L, 0);
        }
        for (int i = 0; i < n; i++) {
            int64_t t0 = now_ns();
            int rc = call(g, L, what[w], answers_ref, nres);
            ns[i] = now_ns() - t0;
            lua_settop(L, 0); /* the copied-back result is freed by the next GC step */
            if (rc != 0)
                return die(what[w], "failed while timing");
        }
        report(what[w], ns, n);
    }
    /* As the preview route runs them: validate, then score. */
    for (int i = 0; i < n; i++) {
        int64_t t0 = now_ns();
        call(g, L, "validate_answers", answers_ref, 2);
        lua_settop(L, 0);
        call(g, L, "score", answers_ref, 1);
        ns[i] = now_ns() - t0;
        lua_settop(L, 0);
    }
    report("validate_and_score", ns, n);
    /* What the preview route does now: the request body's text in, the
     * scores' JSON text out (decode, validate, score, encode in the
     * generation). */
    lua_rawgeti(L, LUA_REGISTRYINDEX, body_ref);
    const char *body = lua_tostring(L, -1);
    for (int i = 0; i < n + n / 10; i++) {
        lua_pushliteral(L, "o2c");
        lua_pushstring(L, body);
        int64_t t0 = now_ns();
        int rc = generation_call(g, "preview_json", L, 2, 2);
        if (i >= n / 10)
            ns[i - n / 10] = now_ns() - t0;
        if (rc != 0 || !lua_isstring(L, -2))
            return die("preview_json", lua_tostring(L, -1));
        lua_settop(L, 1);
    }
    report("preview_json", ns, n);
    lua_settop(L, 0);
    /* The bridge's fixed cost: a call that copies one string in and a boolean out. */
    for (int i = 0; i < n; i++) {
        lua_pushliteral(L, "o2c");
        int64_t t0 = now_ns();
        int rc = generation_call(g, "has_type", L, 1, 1);
        ns[i] = now_ns() - t0;
        lua_settop(L, 0);
        if (rc != 0)
            return die("has_type", "failed while timing");
    }
    report("has_type", ns, n);
    free(ns);
    host_close(L);
    generation_set_current(g);
    generation_shutdown();
    uv_loop_close(&loop);
    return 0;
}

/* ---- storage ---- */

static struct db *open_db(const char *dir)
{
    char err[512];
    struct db_config cfg = {.data_dir = dir};
    struct db *db = db_open(&cfg, err, sizeof err);
    if (!db)
        die("db_open", err);
    return db;
}

static int bench_session(const char *dir, int n)
{
    struct db *db = open_db(dir);
    if (!db)
        return 1;
    struct user u;
    if (user_add(db, "bench", USER_ROLE_CONSULTANT, "x", &u) != STORE_OK)
        return die("user_add", db_errmsg(db));
    struct session_config cfg;
    session_config_default(&cfg);
    char token[SESSION_TOKEN_LEN + 1];
    for (int i = 0; i < 101; i++)
        if (session_create(db, &cfg, u.id, "127.0.0.1", token, NULL) != STORE_OK)
            return die("session_create", db_errmsg(db));
    int64_t *ns = malloc((size_t)n * sizeof *ns);
    struct user who;
    for (int i = 0; i < n / 10; i++)
        session_validate(db, &cfg, token, &who, NULL);
    for (int i = 0; i < n; i++) {
        int64_t t0 = now_ns();
        int rc = session_validate(db, &cfg, token, &who, NULL);
        ns[i] = now_ns() - t0;
        if (rc != STORE_OK)
            return die("session_validate", db_errmsg(db));
    }
    report("session_validate", ns, n);
    free(ns);
    db_close(db);
    return 0;
}

static int time_saves(struct db *db, const struct user *u, const char *id, const char *name,
                      int per_save, int n)
{
    int64_t *ns = malloc((size_t)n * sizeof *ns);
    struct answer_input in[44];
    char qids[44][16];
    int64_t rev = 0;
    if (store_assessment_access(db, u, id, &rev) != STORE_OK)
        return die("store_assessment_access", db_errmsg(db));
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < per_save; k++) {
            snprintf(qids[k], sizeof qids[k], "q%d", (i * per_save + k) % 44);
            in[k] = (struct answer_input){qids[k], (i + k) % 2 ? "3" : "\"same_day\"", NULL};
        }
        int64_t t0 = now_ns();
        int rc = store_save_answers(db, u, id, rev, in, (size_t)per_save, &rev);
        ns[i] = now_ns() - t0;
        if (rc != STORE_OK)
            return die("store_save_answers", db_errmsg(db));
    }
    if (name)
        report(name, ns, n);
    free(ns);
    return 0;
}

static int bench_save(const char *dir, int n)
{
    struct db *db = open_db(dir);
    if (!db)
        return 1;
    struct user u;
    char id[UUID_STR_LEN];
    if (user_add(db, "bench", USER_ROLE_CONSULTANT, "x", &u) != STORE_OK ||
        store_assessment_create(db, &u, "o2c", "Bench Ltd", NULL, id) != STORE_OK)
        return die("set-up", db_errmsg(db));
    if (time_saves(db, &u, id, NULL, 1, n / 10 + 1) ||
        time_saves(db, &u, id, "save_1_answer", 1, n) ||
        time_saves(db, &u, id, "save_44_answers", 44, n / 2))
        return 1;
    db_close(db);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 5 && strcmp(argv[1], "score") == 0)
        return bench_score(argv[2], argv[3], argv[4], argc > 5 ? atoi(argv[5]) : 2000);
    if (argc >= 3 && strcmp(argv[1], "session") == 0)
        return bench_session(argv[2], argc > 3 ? atoi(argv[3]) : 20000);
    if (argc >= 3 && strcmp(argv[1], "save") == 0)
        return bench_save(argv[2], argc > 3 ? atoi(argv[3]) : 2000);
    fprintf(stderr, "usage: bench_core score SCRIPTS KB ANSWERS.json [N]\n"
                    "       bench_core session DATADIR [N]\n"
                    "       bench_core save DATADIR [N]\n");
    return 2;
}
