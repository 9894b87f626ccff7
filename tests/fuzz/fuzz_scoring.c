/* fuzz_scoring: answers through the generation's validate_answers and then
 * score, in the generation built once from the real scripts/ and kb/.
 *
 * The input becomes an answers table in one of two ways:
 *   - it starts with '{': JSON, either an answers object or an example file
 *     {"answers": {...}, "targets": ...} (scripts/o2c/examples), decoded by
 *     lua-cjson as the API does (nulls cross into the generation as nil);
 *   - otherwise, records read from the bytes, built against the real
 *     questionnaire so that most of them are valid answers (the scoring side
 *     is what we are after) and the rest are near misses: out-of-range
 *     levels, NaN and infinite KPIs, unknown or repeated choices, wrong
 *     types, wrapped {value, note} answers, unknown ids.
 *
 * Invariants (abort on violation): validate_answers never raises; for
 * answers it accepts (and targets validate_targets accepts), score never
 * raises and returns scores in range (levels 1-5, completeness 0-1). */
#include <lauxlib.h>
#include <lualib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "fuzz_common.h"
#include "host/lua_host.h"

#define TYPE_ID "o2c"
#define MAX_CHOICES 16
#define MAX_QUESTIONS 256
#define MAX_AREAS 32

enum qtype { Q_SCALE, Q_SINGLE, Q_MULTI, Q_KPI, Q_TEXT, Q_OTHER };

struct question {
    char id[64];
    enum qtype type;
    int na_allowed;
    double min, max;
    int max_length;
    int nchoices;
    char choices[MAX_CHOICES][64];
};

static struct generation *gen;
static lua_State *L; /* the harness's own state: answers are built here */
static struct question questions[MAX_QUESTIONS];
static int nquestions;
static char areas[MAX_AREAS][64];
static int nareas;
static int check_ref = LUA_NOREF, decode_ref = LUA_NOREF;

/* Checks the scores table (argument 1); raises with what is wrong. */
static const char check_scores_lua[] =
    "local s = ...\n"
    "local function range(x, lo, hi, what)\n"
    "  if x == nil then return end\n"
    "  if type(x) ~= 'number' or x ~= x or x < lo or x > hi then\n"
    "    error(what .. ' out of range: ' .. tostring(x), 0)\n"
    "  end\n"
    "end\n"
    "if type(s) ~= 'table' or type(s.overall) ~= 'table' or type(s.areas) ~= 'table' then\n"
    "  error('score returned no {overall, areas}', 0)\n"
    "end\n"
    "range(s.overall.score, 1, 5, 'overall.score')\n"
    "range(s.overall.level, 1, 5, 'overall.level')\n"
    "range(s.overall.completeness, 0, 1, 'overall.completeness')\n"
    "for i, a in ipairs(s.areas) do\n"
    "  range(a.score, 1, 5, 'areas[' .. i .. '].score')\n"
    "  range(a.level, 1, 5, 'areas[' .. i .. '].level')\n"
    "  range(a.completeness, 0, 1, 'areas[' .. i .. '].completeness')\n"
    "end\n"
    "for id, q in pairs(s.questions or {}) do range(q, 1, 5, 'questions.' .. id) end\n";

static void copy_field(lua_State *S, int idx, const char *name, char *out, size_t cap)
{
    lua_getfield(S, idx, name);
    snprintf(out, cap, "%s", lua_isstring(S, -1) ? lua_tostring(S, -1) : "");
    lua_pop(S, 1);
}

static double number_field(lua_State *S, int idx, const char *name, double fallback)
{
    lua_getfield(S, idx, name);
    double v = lua_isnumber(S, -1) ? lua_tonumber(S, -1) : fallback;
    lua_pop(S, 1);
    return v;
}

static enum qtype qtype_of(const char *name)
{
    static const char *names[] = {"scale", "single", "multi", "kpi", "text"};
    for (int i = 0; i < 5; i++)
        if (strcmp(name, names[i]) == 0)
            return (enum qtype)i;
    return Q_OTHER;
}

static void read_question(int idx, struct question *q)
{
    char type[32];
    copy_field(L, idx, "id", q->id, sizeof q->id);
    copy_field(L, idx, "type", type, sizeof type);
    q->type = qtype_of(type);
    lua_getfield(L, idx, "na_allowed");
    q->na_allowed = lua_toboolean(L, -1);
    lua_pop(L, 1);
    q->min = number_field(L, idx, "min", 0);
    q->max = number_field(L, idx, "max", 100);
    q->max_length = (int)number_field(L, idx, "max_length", 1000);
    lua_getfield(L, idx, "choices");
    if (lua_istable(L, -1)) {
        int n = (int)luaL_len(L, -1);
        for (int i = 1; i <= n && q->nchoices < MAX_CHOICES; i++) {
            lua_rawgeti(L, -1, i);
            copy_field(L, lua_gettop(L), "id", q->choices[q->nchoices++], 64);
            lua_pop(L, 1);
        }
    }
    lua_pop(L, 1);
}

/* The questionnaire's questions and areas, read once into C. */
static void read_questionnaire(void)
{
    lua_pushliteral(L, TYPE_ID);
    if (generation_call(gen, "questionnaire", L, 1, 1) != 0)
        fuzz_fail(L, "questionnaire() failed");
    int t = lua_gettop(L);
    lua_getfield(L, t, "questions");
    int n = (int)luaL_len(L, -1);
    for (int i = 1; i <= n && nquestions < MAX_QUESTIONS; i++) {
        lua_rawgeti(L, -1, i);
        read_question(lua_gettop(L), &questions[nquestions++]);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    lua_getfield(L, t, "areas");
    n = (int)luaL_len(L, -1);
    for (int i = 1; i <= n && nareas < MAX_AREAS; i++) {
        lua_rawgeti(L, -1, i);
        copy_field(L, lua_gettop(L), "id", areas[nareas++], 64);
        lua_pop(L, 1);
    }
    lua_settop(L, 0);
}

static int load_helper(const char *text, const char *name)
{
    if (luaL_loadbuffer(L, text, strlen(text), name) != LUA_OK)
        fuzz_fail(L, "helper does not compile");
    return luaL_ref(L, LUA_REGISTRYINDEX);
}

static void setup(void)
{
    gen = fuzz_generation();
    L = luaL_newstate();
    luaL_openlibs(L);
    lua_CFunction cjson = host_cjson_opener();
    if (!cjson)
        fuzz_fail(NULL, "lua-cjson is missing");
    luaL_requiref(L, "cjson", cjson, 1);
    /* As the product's json.lua: deeper documents are refused. */
    lua_getfield(L, -1, "decode_max_depth");
    lua_pushinteger(L, 64);
    lua_call(L, 1, 0);
    lua_getfield(L, -1, "decode");
    decode_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pop(L, 1);
    read_questionnaire();
    check_ref = load_helper(check_scores_lua, "=check_scores");
    if (nquestions == 0 || nareas == 0)
        fuzz_fail(NULL, "the questionnaire has no questions");
}

/* ---- answers from bytes ---- */

struct reader {
    const uint8_t *p;
    size_t left;
};

static unsigned next(struct reader *r)
{
    if (r->left == 0)
        return 0;
    r->left--;
    return *r->p++;
}

static double next_double(struct reader *r)
{
    uint8_t b[8] = {0};
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)next(r);
    double d;
    memcpy(&d, b, sizeof d);
    return d;
}

static void push_bytes_string(struct reader *r, size_t max)
{
    size_t n = next(r) % (max + 1);
    if (n > r->left)
        n = r->left;
    lua_pushlstring(L, (const char *)r->p, n);
    r->p += n;
    r->left -= n;
}

/* A value the question accepts: the common case. */
static void push_valid(struct reader *r, const struct question *q)
{
    switch (q->type) {
    case Q_SCALE:
        lua_pushinteger(L, (lua_Integer)(next(r) % 5 + 1));
        return;
    case Q_SINGLE:
        if (q->nchoices) {
            lua_pushstring(L, q->choices[next(r) % (unsigned)q->nchoices]);
            return;
        }
        break;
    case Q_MULTI: {
        unsigned mask = next(r) | next(r) << 8;
        lua_newtable(L);
        int n = 0;
        for (int i = 0; i < q->nchoices; i++)
            if (mask & (1u << i)) {
                lua_pushstring(L, q->choices[i]);
                lua_rawseti(L, -2, ++n);
            }
        return;
    }
    case Q_KPI: {
        unsigned step = next(r);
        double v = q->min + (q->max - q->min) * (double)step / 255.0;
        if (step & 1)
            lua_pushinteger(L, (lua_Integer)floor(v));
        else
            lua_pushnumber(L, v);
        return;
    }
    case Q_TEXT:
        push_bytes_string(r, 64);
        return;
    case Q_OTHER:
        break;
    }
    lua_pushinteger(L, 3);
}

/* A value of any shape: near misses and plain nonsense. */
static void push_value(struct reader *r, const struct question *q, int depth)
{
    unsigned kind = next(r) % 16;
    switch (kind) {
    case 0:
        lua_pushinteger(L, (lua_Integer)(int8_t)next(r));
        return;
    case 1:
        lua_pushnumber(L, next_double(r));
        return;
    case 2:
        lua_pushliteral(L, "na");
        return;
    case 3:
        push_bytes_string(r, 16);
        return;
    case 4:
        lua_pushboolean(L, (int)(next(r) & 1));
        return;
    case 5: { /* a list of choices, maybe repeated or unknown */
        int n = (int)(next(r) % 6);
        lua_createtable(L, n, 0);
        for (int i = 1; i <= n; i++) {
            unsigned c = next(r);
            if (q->nchoices && c % 8 != 7)
                lua_pushstring(L, q->choices[c % (unsigned)q->nchoices]);
            else
                lua_pushinteger(L, (lua_Integer)c);
            lua_rawseti(L, -2, i);
        }
        return;
    }
    case 6: /* {value =, note =} */
        if (depth < 3) {
            lua_createtable(L, 0, 2);
            push_value(r, q, depth + 1);
            lua_setfield(L, -2, "value");
            if (next(r) & 1) {
                push_bytes_string(r, 32);
                lua_setfield(L, -2, "note");
            }
            return;
        }
        break;
    case 7: /* an object with a stray key */
        lua_createtable(L, 0, 1);
        push_bytes_string(r, 8);
        lua_pushinteger(L, 1);
        lua_rawset(L, -3);
        return;
    case 8: /* KPI edge values */
    {
        static const double edges[] = {-0.0, 1e308, -1e308, 5e-324, 1e15, -1};
        unsigned e = next(r) % 8;
        if (e < 6)
            lua_pushnumber(L, edges[e]);
        else
            lua_pushnumber(L, e == 6 ? q->max + 1e-9 : q->min - 1e-9);
        return;
    }
    default:
        push_valid(r, q);
        return;
    }
    push_valid(r, q);
}

static void push_question_id(struct reader *r, const struct question **q)
{
    unsigned b = next(r);
    unsigned pick = b % (unsigned)(nquestions + 2);
    if ((int)pick < nquestions) {
        *q = &questions[pick];
        lua_pushstring(L, (*q)->id);
        return;
    }
    *q = &questions[b % (unsigned)nquestions];
    if ((int)pick == nquestions)
        lua_pushinteger(L, (lua_Integer)b); /* a key that is not an id */
    else
        push_bytes_string(r, 12);
}

static void push_targets(struct reader *r)
{
    unsigned mode = next(r) % 4;
    if (mode == 0) {
        lua_pushnil(L);
    } else if (mode == 1) {
        lua_pushinteger(L, (lua_Integer)(next(r) % 7));
    } else {
        lua_newtable(L);
        int n = (int)(next(r) % 4);
        for (int i = 0; i < n; i++) {
            unsigned a = next(r);
            if (mode == 3 && a % 9 == 8)
                push_bytes_string(r, 8);
            else
                lua_pushstring(L, areas[a % (unsigned)nareas]);
            lua_pushnumber(L, (double)(next(r) % 13) / 2.0);
            lua_rawset(L, -3);
        }
    }
}

/* Pushes answers, targets from byte records. */
static void build_from_bytes(const uint8_t *data, size_t size)
{
    struct reader r = {data, size};
    push_targets(&r);
    lua_newtable(L);
    while (r.left > 0) {
        const struct question *q;
        push_question_id(&r, &q);
        if (next(&r) & 1)
            push_valid(&r, q);
        else
            push_value(&r, q, 0);
        lua_rawset(L, -3);
    }
    lua_insert(L, -2); /* answers, targets */
}

/* Pushes answers, targets decoded from JSON; returns 0 when it is not JSON. */
static int build_from_json(const uint8_t *data, size_t size)
{
    lua_rawgeti(L, LUA_REGISTRYINDEX, decode_ref);
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1))
        return 0;
    int t = lua_gettop(L);
    if (lua_getfield(L, t, "answers") == LUA_TTABLE) {
        lua_getfield(L, t, "targets");
    } else {
        lua_pop(L, 1);
        lua_pushvalue(L, t);
        lua_pushnil(L);
    }
    lua_remove(L, t);
    return 1;
}

/* ---- the calls ---- */

/* gen:METHOD(TYPE_ID, args...) with NARGS values on top of L; true when it
 * returned a true first result.  Aborts when it raised. */
static int call_ok(const char *method, int nargs)
{
    lua_pushliteral(L, TYPE_ID);
    lua_insert(L, -nargs - 1);
    if (generation_call(gen, method, L, nargs + 1, 2) != 0) {
        fprintf(stderr, "fuzz_scoring: %s raised\n", method);
        fuzz_fail(L, method);
    }
    int ok = lua_toboolean(L, -2);
    return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!gen)
        setup();
    lua_settop(L, 0);
    if (size > 0 && data[0] == '{') {
        if (!build_from_json(data, size)) {
            lua_settop(L, 0);
            return 0;
        }
    } else {
        build_from_bytes(data, size);
    }
    int answers = 1, targets = 2;

    lua_pushvalue(L, answers);
    if (!call_ok("validate_answers", 1)) {
        lua_settop(L, 0);
        return 0;
    }
    lua_settop(L, 2);
    if (!lua_isnil(L, targets)) {
        lua_pushvalue(L, targets);
        if (!call_ok("validate_targets", 1)) {
            lua_pushnil(L);
            lua_replace(L, targets); /* invalid targets: score with the defaults */
        }
        lua_settop(L, 2);
    }
    lua_pushliteral(L, TYPE_ID);
    lua_pushvalue(L, answers);
    lua_pushvalue(L, targets);
    if (generation_call(gen, "score", L, 3, 1) != 0) {
        fprintf(stderr, "fuzz_scoring: score raised on answers validate_answers accepted\n");
        fuzz_fail(L, "score");
    }
    lua_rawgeti(L, LUA_REGISTRYINDEX, check_ref);
    lua_insert(L, -2);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK)
        fuzz_fail(L, "score returned scores out of range");
    lua_settop(L, 0);
    return 0;
}
