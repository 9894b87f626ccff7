/* fuzz_provider: an LLM provider's HTTP response -- status line, headers,
 * body -- through what o2c does with one: every adapter's parse()
 * (core/lua/llm/anthropic.lua, openai.lua, in the product VM with lua-cjson),
 * then the C retry rules (retry_decide, retry-after parsing) and the rate
 * limiter's header learning (ratelimit_observe_headers) on its headers.
 *
 * Input: "HTTP/1.1 429 Too Many Requests\r\nretry-after: 5\r\n\r\n{...}" --
 * the first line gives the status, header lines up to an empty line, then
 * the body.  Two optional headers steer the retry rules: x-fuzz-attempt (the
 * attempt that failed, default 1) and x-fuzz-deadline-ms (the section
 * deadline from now; default none).
 *
 * Invariants (abort on violation): parse never raises and returns the
 * documented shapes; a decision's delay is never negative, is 0 when not
 * retrying and never passes the deadline; a message is always terminated;
 * the limiter's learned figures are never negative. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "app/app.h"
#include "fuzz_common.h"
#include "fuzz_lua_coverage.h"
#include "host/lua_host.h"
#include "llm/ratelimit.h"
#include "llm/retry.h"

#define MAX_HEADERS 64
#define NAME_MAX_LEN 64
#define VALUE_MAX_LEN 512
#define NOW_MS 1000000
#define WALL_MS 1714564800000LL /* 2024-05-01T12:00:00Z */

struct response {
    long status;
    size_t nheaders;
    char names[MAX_HEADERS][NAME_MAX_LEN];
    char values[MAX_HEADERS][VALUE_MAX_LEN];
    const char *body;
    size_t body_len;
};

static uv_loop_t loop;
static lua_State *vm;
static int parse_ref = LUA_NOREF;

static void setup(void)
{
    fuzz_quiet_logs();
    if (uv_loop_init(&loop) != 0)
        abort();
    vm = app_vm_open(&loop, (size_t)256 << 20);
    if (!vm)
        fuzz_fail(NULL, "cannot open the product VM");
    fuzz_lua_coverage_enable(vm);
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/fuzz/fuzz_provider.lua", fuzz_source_dir());
    if (luaL_loadfile(vm, path) != LUA_OK || host_pcall(vm, 0, 1) != LUA_OK)
        fuzz_fail(vm, "cannot load fuzz_provider.lua (are the adapters embedded?)");
    parse_ref = luaL_ref(vm, LUA_REGISTRYINDEX);
}

/* ---- splitting the input ---- */

static const char *line_end(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    return nl ? nl : end;
}

/* Copies [P, E) trimmed of blanks and CR into OUT (at most CAP-1 bytes, cut
 * at a NUL: a C header getter hands out C strings). */
static void copy_trimmed(const char *p, const char *e, char *out, size_t cap)
{
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
        e--;
    size_t n = (size_t)(e - p);
    if (n > cap - 1)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

static void split_response(const uint8_t *data, size_t size, struct response *r)
{
    const char *p = (const char *)data, *end = p + size;
    memset(r, 0, sizeof *r);
    const char *eol = line_end(p, end);
    const char *sp = memchr(p, ' ', (size_t)(eol - p));
    if (sp) {
        long v = 0;
        for (const char *d = sp + 1; d < eol && d < sp + 4 && *d >= '0' && *d <= '9'; d++)
            v = v * 10 + (*d - '0');
        r->status = v;
    }
    p = eol < end ? eol + 1 : end;
    while (p < end) {
        eol = line_end(p, end);
        if (eol == p || (eol == p + 1 && *p == '\r')) {
            p = eol < end ? eol + 1 : end;
            break;
        }
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (colon && r->nheaders < MAX_HEADERS) {
            char *name = r->names[r->nheaders];
            copy_trimmed(p, colon, name, NAME_MAX_LEN);
            for (char *c = name; *c; c++)
                if (*c >= 'A' && *c <= 'Z')
                    *c = (char)(*c - 'A' + 'a');
            copy_trimmed(colon + 1, eol, r->values[r->nheaders], VALUE_MAX_LEN);
            r->nheaders++;
        }
        p = eol < end ? eol + 1 : end;
    }
    r->body = p;
    r->body_len = (size_t)(end - p);
}

static const char *response_header(void *ctx, const char *name)
{
    const struct response *r = ctx;
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->names[i], name) == 0)
            return r->values[i];
    return NULL;
}

static int64_t header_int(const struct response *r, const char *name, int64_t fallback)
{
    const char *v = response_header((void *)r, name);
    return v ? strtoll(v, NULL, 10) : fallback;
}

/* ---- the C side ---- */

static uint32_t fixed_random(void *ctx, uint32_t upper_bound)
{
    (void)ctx;
    return upper_bound / 2; /* deterministic: the middle of the jitter range */
}

static void check_decision(const struct retry_decision *d, const struct retry_attempt *a)
{
    const char *why = NULL;
    if (!memchr(d->message, '\0', sizeof d->message))
        why = "message not terminated";
    else if (d->delay_ms < 0)
        why = "negative delay";
    else if (!d->retry && d->delay_ms != 0)
        why = "a delay without a retry";
    else if (d->retry && a->deadline && a->now + d->delay_ms > a->deadline)
        why = "a retry that passes the deadline";
    if (why) {
        fprintf(stderr, "fuzz_provider: %s (status %ld, attempt %d, delay %lld, reason %s: %s)\n",
                why, a->status, a->attempt, (long long)d->delay_ms, retry_reason_name(d->reason),
                d->message);
        abort();
    }
}

static void decide(struct response *r, long status, const char *error_type)
{
    struct retry_policy policy;
    retry_policy_default(&policy);
    policy.random = fixed_random;
    int64_t deadline_in = header_int(r, "x-fuzz-deadline-ms", -1);
    struct retry_attempt a = {
        .attempt = (int)(header_int(r, "x-fuzz-attempt", 1) % 100),
        .status = status,
        .error_type = error_type,
        .get_header = response_header,
        .header_ctx = r,
        .now = NOW_MS,
        .wall_ms = WALL_MS,
        .deadline = deadline_in >= 0 && deadline_in < INT64_MAX / 2 ? NOW_MS + deadline_in : 0,
    };
    struct retry_decision d;
    retry_decide(&policy, &a, &d);
    check_decision(&d, &a);
    int64_t server = retry_server_delay_ms(response_header, r, WALL_MS);
    if (server < -1) {
        fprintf(stderr, "fuzz_provider: retry_server_delay_ms returned %lld\n", (long long)server);
        abort();
    }
}

static void observe_limits(struct response *r)
{
    struct ratelimit_config cfg = {.max_concurrency = 4, .learn_from_headers = true};
    struct ratelimit *rl = ratelimit_new(&cfg);
    if (!rl)
        abort();
    ratelimit_observe_headers(rl, NOW_MS, WALL_MS, response_header, r);
    struct ratelimit_stats st;
    ratelimit_stats(rl, NOW_MS, &st);
    for (int i = 0; i < RATELIMIT_BUDGETS; i++)
        if (st.budget[i].capacity < 0) {
            fprintf(stderr, "fuzz_provider: learned a negative %s capacity\n",
                    ratelimit_budget_name((enum ratelimit_budget)i));
            abort();
        }
    ratelimit_free(rl);
    for (size_t i = 0; i < r->nheaders; i++) {
        int64_t ms;
        ratelimit_parse_duration_ms(r->values[i], &ms);
        ratelimit_parse_rfc3339_ms(r->values[i], &ms);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!vm)
        setup();
    static struct response r;
    split_response(data, size, &r);

    lua_rawgeti(vm, LUA_REGISTRYINDEX, parse_ref);
    lua_pushinteger(vm, r.status);
    lua_createtable(vm, 0, (int)r.nheaders);
    for (size_t i = 0; i < r.nheaders; i++) {
        lua_pushstring(vm, r.values[i]);
        lua_setfield(vm, -2, r.names[i]);
    }
    lua_pushlstring(vm, r.body, r.body_len);
    if (host_pcall(vm, 3, 1) != LUA_OK)
        fuzz_fail(vm, "an adapter's parse raised or returned a bad shape");
    /* {status, error_type or false} per failed parse */
    int t = lua_gettop(vm);
    lua_Integer n = luaL_len(vm, t);
    for (lua_Integer i = 1; i + 1 <= n; i += 2) {
        lua_rawgeti(vm, t, i);
        lua_rawgeti(vm, t, i + 1);
        long status = (long)lua_tointeger(vm, -2);
        const char *etype = lua_isstring(vm, -1) ? lua_tostring(vm, -1) : NULL;
        decide(&r, status, etype);
        lua_pop(vm, 2);
    }
    lua_settop(vm, 0);
    if (n == 0)
        decide(&r, r.status, NULL); /* a success: still classify the status */
    observe_limits(&r);
    return 0;
}
