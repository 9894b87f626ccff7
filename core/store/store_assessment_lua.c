/* o2c.store assessment functions: assessments, answers, score snapshots and
 * generations.
 *
 *   store.assessment_create(actor, {type=, client=, targets=?}) -> assessment
 *   store.assessment_get(actor, id) -> assessment
 *   store.assessment_list(actor, {limit=?, after=?}) -> {items=, next=}
 *   store.assessment_delete(actor, id) -> true
 *   store.answers_get(actor, id) -> {[qid] = {value=, note=, by=, at=, at_ms=, revision=}}
 *   store.answers_save(actor, id, base_revision, {[qid] = {value=, note=} | false})
 *       -> new_revision | nil, message, "conflict", current_revision
 *   store.score_put(actor, id, generation, scores) -> {id=, revision=}
 *       (scores: a table, or its JSON text)
 *   store.score_latest(actor, id) -> {scores=, generation=, revision=, at=, at_ms=}
 *   store.generation_put(hash, {{path=, text=}...}) -> true, created
 *   store.generation_exists(hash) -> bool
 *   store.generation_get(hash) -> {{path=, text=}...}
 *
 * An assessment is {id, type, client, owner, owner_name, targets, revision,
 * created_at, updated_at (+ _ms)}.  What the actor may not see is
 * "not_found".  Each change and its audit event are one transaction. */
#include <lauxlib.h>
#include <string.h>
#include "store/query.h"
#include "store/store.h"
#include "store/rowset_lua.h"
#include "store/store_lua_call.h"
#include "store/store_lua_internal.h"
#include "store/uuid.h"

#define LIST_LIMIT_DEFAULT 50
#define LIST_LIMIT_MAX 200
#define ANSWERS_SAVE_MAX 2000

/* Named for the Lua fields (rowset_lua.h). */
static const char SQL_ANSWERS_GET[] =
    "SELECT a.question_id AS \"question_id:key\", a.value AS \"value:json\", a.note,"
    " u.name AS \"by\", a.updated_at AS \"at:time\", a.revision"
    " FROM answers a JOIN users u ON u.id = a.updated_by"
    " WHERE a.assessment_id = ? ORDER BY a.question_id";
static const char SQL_SCORE_LATEST[] =
    "SELECT scores AS \"scores:json\", generation, revision, created_at AS \"at:time\""
    " FROM score_snapshots WHERE assessment_id = ? ORDER BY id DESC LIMIT 1";
static const char SQL_GENERATION_GET[] = "SELECT sources FROM generations WHERE hash = ?";

/* Reads assessment ID (as ACTOR) and pushes it, or nil, message, code. */
static int assessment_read_push(lua_State *L, struct db *db, const struct user *actor,
                                const char *id)
{
    struct rowset *rs = rowset_lua_new(L, 0);
    int rc = store_assessment_rows(db, actor, id, NULL, rs);
    return store_lua_push_rows(L, db, rc, rs, STORE_LUA_ROW);
}

static int store_assessment_create_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct user actor;
    int rc = store_lua_actor(L, 1, s->db, &actor);
    luaL_checktype(L, 2, LUA_TTABLE);
    const char *type = store_lua_field_string(L, 2, "type", 0, NULL);
    const char *client = store_lua_field_string(L, 2, "client", 0, NULL);
    const char *targets = NULL;
    if (lua_getfield(L, 2, "targets") != LUA_TNIL) {
        luaL_argcheck(L, lua_istable(L, -1), 2, "targets must be a table");
        targets = store_lua_encode(L, -1, "targets", NULL); /* stays on the stack */
    }
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    /* Audit details, encoded before the transaction. */
    lua_createtable(L, 0, 2);
    lua_pushstring(L, type ? type : "");
    lua_setfield(L, -2, "type");
    lua_pushstring(L, client ? client : "");
    lua_setfield(L, -2, "client");
    const char *details = store_lua_encode(L, -1, "audit details", NULL);
    char id[UUID_STR_LEN];
    if ((rc = db_tx_begin(s->db)) == STORE_OK)
        rc = store_lua_audit_end(s->db,
                                 store_assessment_create(s->db, &actor, type, client, targets, id),
                                 &actor, "assessment.created", id, NULL, details);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    return assessment_read_push(L, s->db, &actor, id);
}

static int store_assessment_get_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct user actor;
    const char *id;
    int rc = store_lua_actor_and_id(L, s->db, "assessment", &actor, &id);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    return assessment_read_push(L, s->db, &actor, id);
}

/* store.assessment_list(actor, {limit=, after=}) -> {items=, next=}: newest
 * first; NEXT (absent on the last page) is the AFTER of the next page. */
static int store_assessment_list_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct user actor;
    int rc = store_lua_actor(L, 1, s->db, &actor);
    int64_t limit = LIST_LIMIT_DEFAULT;
    const char *after = NULL;
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        limit = store_lua_field_int(L, 2, "limit", LIST_LIMIT_DEFAULT);
        after = store_lua_field_string(L, 2, "after", 0, NULL);
    }
    if (limit < 1)
        limit = 1;
    if (limit > LIST_LIMIT_MAX)
        limit = LIST_LIMIT_MAX;
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    if (after && !uuid_is_v7(after))
        return store_lua_failf(L, STORE_INVALID, "after must be an assessment id from 'next'");
    /* One more than asked tells whether another page exists. */
    struct rowset *rs = rowset_lua_new(L, 0);
    struct store_page page = {.before_id = after, .limit = (int)limit + 1};
    if ((rc = store_assessment_rows(s->db, &actor, NULL, &page, rs)) != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    rowset_push_page(L, rs, (size_t)limit, (size_t)rowset_column(rs, "id"));
    return 1;
}

static int store_assessment_delete_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct user actor;
    const char *id;
    int rc = store_lua_actor_and_id(L, s->db, "assessment", &actor, &id);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    if ((rc = db_tx_begin(s->db)) == STORE_OK)
        rc = store_lua_audit_end(s->db, store_assessment_delete(s->db, &actor, id), &actor,
                                 "assessment.deleted", id, NULL, NULL);
    return store_lua_done(L, s->db, rc);
}

/* Answers */

static int store_answers_get_lua(lua_State *L)
{
    return store_lua_assessment_read(L, SQL_ANSWERS_GET, "reading answers", NULL, STORE_LUA_MAP);
}

/* Reads CHANGES (the table at IDX) into IN, anchoring encoded values in
 * the table at ANCHOR; the question ids (sorted) go to the list at QIDS. */
static size_t read_changes(lua_State *L, int idx, int anchor, int qids, struct answer_input *in,
                           size_t cap)
{
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        /* Stack: qid, change. */
        if (lua_type(L, -2) != LUA_TSTRING)
            luaL_error(L, "answers_save: question ids must be strings (got %s)",
                       luaL_typename(L, -2));
        if (n == cap)
            luaL_error(L, "answers_save: more than %d answers in one save", ANSWERS_SAVE_MAX);
        size_t qid_len;
        const char *qid = lua_tolstring(L, -2, &qid_len);
        if (memchr(qid, '\0', qid_len) != NULL)
            luaL_error(L, "answers_save: a question id holds a NUL byte");
        struct answer_input *a = &in[n++];
        a->question_id = qid;
        lua_pushvalue(L, -2);
        lua_rawseti(L, qids, (lua_Integer)n);
        if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
            lua_pop(L, 1);
            continue; /* false: remove the answer */
        }
        if (!lua_istable(L, -1))
            luaL_error(L, "answers_save: answer %s must be {value=, note=} or false", qid);
        lua_getfield(L, -1, "value");
        if (lua_isnil(L, -1))
            luaL_error(L, "answers_save: answer %s has no value (use false to remove it)", qid);
        a->value_json = store_lua_encode(L, -1, qid, NULL);
        lua_rawseti(L, anchor, (lua_Integer)(2 * n)); /* keeps the text alive */
        lua_pop(L, 1);
        a->note = store_lua_field_string(L, -1, "note", 0, NULL);
        lua_pop(L, 1);
    }
    return n;
}

/* store.answers_save(actor, id, base_revision, changes) */
static int store_answers_save_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct user actor;
    const char *id;
    int rc = store_lua_actor_and_id(L, s->db, "assessment", &actor, &id);
    int64_t base = (int64_t)luaL_checkinteger(L, 3);
    luaL_checktype(L, 4, LUA_TTABLE);
    lua_settop(L, 4);
    lua_newtable(L); /* 5: anchor for encoded values */
    lua_newtable(L); /* 6: question ids, for the audit event */
    size_t count = 0;
    for (lua_pushnil(L); lua_next(L, 4); lua_pop(L, 1))
        count++;
    if (count > ANSWERS_SAVE_MAX)
        return luaL_error(L, "answers_save: more than %d answers in one save", ANSWERS_SAVE_MAX);
    struct answer_input *in = lua_newuserdatauv(L, (count ? count : 1) * sizeof *in, 0); /* 7 */
    memset(in, 0, (count ? count : 1) * sizeof *in);
    size_t n = read_changes(L, 4, 5, 6, in, count);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    /* Audit details: which questions, sorted. */
    lua_getglobal(L, "table");
    lua_getfield(L, -1, "sort");
    lua_pushvalue(L, 6);
    lua_call(L, 1, 0);
    lua_pop(L, 1);
    store_lua_mark_array(L, 6);
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, 6);
    lua_setfield(L, -2, "questions");
    lua_pushinteger(L, base + 1);
    lua_setfield(L, -2, "revision");
    const char *details = store_lua_encode(L, -1, "audit details", NULL);

    int64_t revision = 0;
    if ((rc = db_tx_begin(s->db)) != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    rc = store_lua_audit_end(s->db, store_save_answers(s->db, &actor, id, base, in, n, &revision),
                             &actor, "answers.saved", id, NULL, details);
    if (rc != STORE_OK) {
        int nres = store_lua_fail(L, s->db, rc);
        if (rc != STORE_CONFLICT)
            return nres;
        lua_pushinteger(L, revision); /* the current revision */
        return 4;
    }
    lua_pushinteger(L, revision);
    return 1;
}

/* Scores */

static int store_score_put_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct user actor;
    const char *id;
    int rc = store_lua_actor_and_id(L, s->db, "assessment", &actor, &id);
    const char *generation = store_lua_check_text(L, 3);
    const char *scores; /* a table, or JSON text a generation encoded (score_json) */
    if (lua_type(L, 4) == LUA_TSTRING) {
        scores = lua_tostring(L, 4);
    } else {
        luaL_checktype(L, 4, LUA_TTABLE);
        scores = store_lua_encode(L, 4, "scores", NULL);
    }
    int64_t revision = 0;
    if (rc == STORE_OK)
        rc = store_assessment_access(s->db, &actor, id, &revision);
    char snapshot[UUID_STR_LEN];
    if (rc == STORE_OK)
        rc = store_score_put(s->db, id, revision, generation, scores, snapshot);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    lua_createtable(L, 0, 2);
    lua_pushstring(L, snapshot);
    lua_setfield(L, -2, "id");
    lua_pushinteger(L, revision);
    lua_setfield(L, -2, "revision");
    return 1;
}

static int store_score_latest_lua(lua_State *L)
{
    return store_lua_assessment_read(L, SQL_SCORE_LATEST, "reading scores", "scores",
                                     STORE_LUA_ROW);
}

/* Generations */

/* Copies the string KEY of the source table below the new one, whole: a
 * script's text is kept exactly, whatever bytes it holds. */
static void copy_source_field(lua_State *L, const char *key)
{
    if (lua_getfield(L, -2, key) != LUA_TSTRING)
        luaL_error(L, "field '%s' must be a string (got %s)", key, luaL_typename(L, -1));
    lua_setfield(L, -2, key);
}

/* Sources normalised to a JSON list of {path, text}, stored once. */
/* The generation functions run their database work as one operation each
 * (store_lua_call.h), so they work the same on both engines. */
struct generation_call {
    struct store_call base;
    const char *hash, *json;
    size_t len;
    struct rowset *rs;
    int found, created;
};

static struct generation_call *generation_call_new(lua_State *L, store_call_run_fn run,
                                                   store_call_push_fn push)
{
    struct store_lua *s = store_lua_get(L);
    struct generation_call *g = store_call_new(L, sizeof *g, s->db, run, push, NULL);
    g->hash = store_lua_check_text(L, 1);
    return g;
}

static void generation_put_run(struct db *db, struct store_call *call)
{
    struct generation_call *g = (struct generation_call *)call;
    if (!store_generation_exists(db, g->hash))
        call->rc = store_generation_put(db, g->hash, g->json, g->len, &g->created);
}

static int generation_put_push(lua_State *L, struct store_call *call)
{
    struct generation_call *g = (struct generation_call *)call;
    if (call->rc != STORE_OK)
        return store_call_fail(L, call, call->rc);
    lua_pushboolean(L, 1);
    lua_pushboolean(L, g->created);
    return 2;
}

static int store_generation_put_lua(lua_State *L)
{
    luaL_checktype(L, 2, LUA_TTABLE);
    struct generation_call *g = generation_call_new(L, generation_put_run, generation_put_push);
    lua_Integer n = (lua_Integer)lua_rawlen(L, 2);
    lua_createtable(L, (int)n, 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 2, i);
        luaL_argcheck(L, lua_istable(L, -1), 2, "sources must be a list of {path=, text=}");
        lua_createtable(L, 0, 2);
        copy_source_field(L, "path");
        copy_source_field(L, "text");
        lua_rawseti(L, -3, i);
        lua_pop(L, 1);
    }
    store_lua_mark_array(L, -1);
    g->json = store_lua_encode(L, -1, "generation sources", &g->len); /* stays on the stack */
    return store_lua_call(L, &g->base);
}

static void generation_exists_run(struct db *db, struct store_call *call)
{
    struct generation_call *g = (struct generation_call *)call;
    g->found = store_generation_exists(db, g->hash);
}

static int generation_exists_push(lua_State *L, struct store_call *call)
{
    lua_pushboolean(L, ((struct generation_call *)call)->found);
    return 1;
}

static int store_generation_exists_lua(lua_State *L)
{
    struct generation_call *g =
        generation_call_new(L, generation_exists_run, generation_exists_push);
    return store_lua_call(L, &g->base);
}

static void generation_get_run(struct db *db, struct store_call *call)
{
    struct generation_call *g = (struct generation_call *)call;
    call->rc =
        db_query(db, SQL_GENERATION_GET, "reading a generation", g->rs, DB_ARGS(DB_TEXT(g->hash)));
    if (call->rc == STORE_OK && g->rs->nrows == 0)
        call->rc = db_fail(db, STORE_NOT_FOUND, "no generation %.80s stored", g->hash);
}

static int generation_get_push(lua_State *L, struct store_call *call)
{
    struct generation_call *g = (struct generation_call *)call;
    if (call->rc != STORE_OK)
        return store_call_fail(L, call, call->rc);
    const struct rowset_value *sources = rowset_value(g->rs, 0, 0);
    store_lua_decode(L, sources->bytes, sources->len);
    return 1;
}

static int store_generation_get_lua(lua_State *L)
{
    struct generation_call *g = generation_call_new(L, generation_get_run, generation_get_push);
    g->rs = rowset_lua_new(L, 0); /* on the stack: kept until the call ends */
    return store_lua_call(L, &g->base);
}

void store_lua_assessment_funcs(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"assessment_create", store_assessment_create_lua},
                                     {"assessment_get", store_assessment_get_lua},
                                     {"assessment_list", store_assessment_list_lua},
                                     {"assessment_delete", store_assessment_delete_lua},
                                     {"answers_get", store_answers_get_lua},
                                     {"answers_save", store_answers_save_lua},
                                     {"score_put", store_score_put_lua},
                                     {"score_latest", store_score_latest_lua},
                                     {"generation_put", store_generation_put_lua},
                                     {"generation_exists", store_generation_exists_lua},
                                     {"generation_get", store_generation_get_lua},
                                     {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
}
