/* o2c.store report functions: reports, their sections and the jobs that
 * write them.
 *
 *   store.report_create(actor, assessment_id, {generation=, provider=?, model=?,
 *       sections = {{id=, title=?, kind=?, depends={ids}?}...}}) -> report
 *   store.report_get(actor_or_system, id) -> report with sections
 *   store.report_list(actor, assessment_id) -> {report...} (no sections; counts)
 *   store.report_start(id) -> true                  (queued -> running, job started)
 *   store.report_finish(id) -> "done" | "partial" | "failed"
 *   store.section_start(report_id, section_id, provider?, model?) -> true
 *   store.section_retrying(report_id, section_id, error, wait_ms?) -> true
 *   store.section_done(report_id, section_id, {text=, tokens_in=?, tokens_out=?,
 *       warning=?, provider=?, model=?}) -> true
 *   store.section_fail(report_id, section_id, error, {tokens_in=?, tokens_out=?}?) -> true
 *   store.section_retry(actor, report_id, section_id) -> true | nil, msg, "conflict"
 *   store.jobs_unfinished() -> {report_id...}
 *
 * A report is {id, assessment_id, revision, status, provider, model,
 * generation, requested_by, created_at, updated_at, finished_at (+ _ms),
 * sections = {{id, title, kind, depends, position, status, attempts,
 * provider, model, tokens_in, tokens_out, error, warning, text, started_at,
 * finished_at}}}.  Status "partial" is a finished report with some sections
 * done and some failed (stored as "failed"). */
#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "store/query.h"
#include "store/store.h"
#include "store/rowset_lua.h"
#include "store/store_lua_call.h"
#include "store/store_lua_internal.h"
#include "store/uuid.h"

#define REPORT_SECTIONS_MAX 200

/* Named for the Lua fields (rowset_lua.h).  A failed report with some
 * sections done is "partial". */
#define SECTIONS_OF_R "(SELECT COUNT(*) FROM report_sections s WHERE s.report_id = r.id"
#define SECTIONS_DONE SECTIONS_OF_R " AND s.status = 'done')"
#define REPORT_SELECT                                                                              \
    "SELECT r.id, r.assessment_id, r.revision,"                                                    \
    " CASE WHEN r.status = 'failed' AND " SECTIONS_DONE " > 0 THEN 'partial'"                      \
    " ELSE r.status END AS status, r.provider, r.model, r.generation, u.name AS requested_by,"     \
    " r.created_at AS \"created_at:time\", r.updated_at AS \"updated_at:time\","                   \
    " r.finished_at AS \"finished_at:time\""
#define REPORT_FROM " FROM reports r JOIN users u ON u.id = r.requested_by"
static const char SQL_REPORT_GET[] = REPORT_SELECT REPORT_FROM " WHERE r.id = ?";
#define REPORT_WITH_COUNTS                                                                         \
    REPORT_SELECT ", " SECTIONS_OF_R ") AS sections_total, " SECTIONS_DONE                         \
                  " AS sections_done, " SECTIONS_OF_R                                              \
                  " AND s.status = 'failed') AS sections_failed" REPORT_FROM
static const char SQL_REPORT_LIST[] =
    REPORT_WITH_COUNTS " WHERE r.assessment_id = ? ORDER BY r.id DESC";
static const char SQL_REPORT_SUMMARY[] = REPORT_WITH_COUNTS " WHERE r.id = ?";
static const char SQL_SECTIONS_GET[] =
    "SELECT section_id AS id, title, kind, depends AS \"depends:list\", position, status, attempts,"
    " provider, model, tokens_in, tokens_out, error, warning, text,"
    " started_at AS \"started_at:time\", finished_at AS \"finished_at:time\""
    " FROM report_sections WHERE report_id = ? ORDER BY position";

/* Each report once (it may have several jobs after retries), by its oldest
 * unfinished job: running ones were cut short by a restart. */
static const char SQL_JOB_REPORTS_UNFINISHED[] =
    "SELECT report_id FROM jobs WHERE status IN ('queued', 'running') AND report_id IS NOT NULL"
    " GROUP BY report_id ORDER BY MIN(id)";

/* Every binding runs its database work as one operation (store_lua_call.h):
 * its arguments are read into a report_call on the task, RUN does the
 * store work (plain C), PUSH pushes the results. */
struct report_call {
    struct store_call base;
    char actor_id[UUID_STR_LEN]; /* "" for the system actor */
    const char *kind;            /* what ID names: "assessment" or "report" */
    const char *id, *section_id, *details;
    struct report_request req;
    struct section_change change;
    struct rowset *rows, *sections; /* owned by userdata on the stack */
    char report_id[UUID_STR_LEN];
};

/* Keeps the first NARGS arguments (absent optional ones stay none, not the
 * call pushed above them), pushes the call and ROWSETS rowsets for it. */
static struct report_call *report_call_new(lua_State *L, int nargs, store_call_run_fn run,
                                           store_call_push_fn push, int rowsets)
{
    struct store_lua *s = store_lua_get(L);
    lua_settop(L, nargs);
    struct report_call *c = store_call_new(L, sizeof *c, s->db, run, push, NULL);
    c->rows = rowsets > 0 ? rowset_lua_new(L, 0) : NULL;
    c->sections = rowsets > 1 ? rowset_lua_new(L, 0) : NULL;
    return c;
}

/* On the task: the actor at 1 and at 2 the id of a KIND of record. */
static void read_actor_and_id(lua_State *L, struct report_call *c, const char *kind)
{
    store_lua_actor_ref(L, 1, c->actor_id);
    c->id = store_lua_check_text(L, 2);
    c->kind = kind;
}

/* In RUN: the actor reloaded; an id that cannot exist is not found. */
static int load_actor(struct db *db, const struct report_call *c, struct user *actor)
{
    int rc = store_actor_load(db, c->actor_id, actor);
    if (rc == STORE_OK && !uuid_is_v7(c->id))
        rc = db_fail(db, STORE_NOT_FOUND, "no %s %.40s", c->kind, c->id);
    return rc;
}

/* In RUN: report ID with its sections, as ACTOR sees it. */
static int report_read(struct db *db, const struct user *actor, struct report_call *c,
                       const char *id)
{
    int rc = store_report_access(db, actor, id);
    if (rc == STORE_OK)
        rc = db_query(db, SQL_REPORT_GET, "reading a report", c->rows, DB_ARGS(DB_TEXT(id)));
    if (rc == STORE_OK)
        rc = db_query(db, SQL_SECTIONS_GET, "reading report sections", c->sections,
                      DB_ARGS(DB_TEXT(id)));
    return rc;
}

static int report_push(lua_State *L, struct store_call *call)
{
    struct report_call *c = (struct report_call *)call;
    if (call->rc != STORE_OK)
        return store_call_fail(L, call, call->rc);
    rowset_push_row(L, c->rows, 0);
    rowset_push_list(L, c->sections, SIZE_MAX);
    lua_setfield(L, -2, "sections");
    return 1;
}

static int done_push(lua_State *L, struct store_call *call)
{
    return store_lua_done(L, call->db, call->rc);
}

/* Creation */

/* Reads the sections list at IDX into IDS and PLANS (N entries); depends
 * lists are encoded and anchored in the table at ANCHOR. */
static void read_sections(lua_State *L, int idx, int anchor, const char **ids,
                          struct report_section_plan *plans, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        lua_rawgeti(L, idx, (lua_Integer)i + 1);
        if (!lua_istable(L, -1))
            luaL_error(L, "report_create: section %d must be {id=, title=, kind=, depends=}",
                       (int)i + 1);
        int t = lua_gettop(L);
        ids[i] = store_lua_field_string(L, t, "id", 1, NULL);
        plans[i].title = store_lua_field_string(L, t, "title", 0, NULL);
        plans[i].kind = store_lua_field_string(L, t, "kind", 0, NULL);
        plans[i].depends_json = NULL;
        if (lua_getfield(L, t, "depends") != LUA_TNIL) {
            if (!lua_istable(L, -1))
                luaL_error(L, "report_create: section %s: depends must be a list of ids", ids[i]);
            store_lua_mark_array(L, -1);
            plans[i].depends_json = store_lua_encode(L, -1, "depends", NULL);
            lua_rawseti(L, anchor, (lua_Integer)i + 1);
        }
        lua_pop(L, 2); /* depends (or nil), the section; strings stay in it */
    }
}

static void report_create_run(struct db *db, struct store_call *call)
{
    struct report_call *c = (struct report_call *)call;
    struct user actor;
    int rc = load_actor(db, c, &actor);
    if (rc == STORE_OK)
        rc = store_assessment_access(db, &actor, c->id, &c->req.revision);
    if (rc == STORE_OK) {
        char details[128];
        snprintf(details, sizeof details,
                 "{\"assessment\":\"%s\",\"revision\":%lld,\"sections\":%d}", c->id,
                 (long long)c->req.revision, (int)c->req.n_sections);
        if ((rc = db_tx_begin(db)) == STORE_OK)
            rc = store_lua_audit_end(db,
                                     store_report_create(db, &actor, &c->req, c->report_id, NULL),
                                     &actor, "report.requested", c->report_id, NULL, details);
    }
    if (rc == STORE_OK)
        rc = report_read(db, &actor, c, c->report_id);
    call->rc = rc;
}

static int store_report_create_lua(lua_State *L)
{
    struct report_call *c = report_call_new(L, 3, report_create_run, report_push, 2);
    read_actor_and_id(L, c, "assessment");
    luaL_checktype(L, 3, LUA_TTABLE);
    struct report_request *req = &c->req;
    req->assessment_id = c->id;
    req->generation = store_lua_field_string(L, 3, "generation", 1, NULL);
    req->provider = store_lua_field_string(L, 3, "provider", 0, NULL);
    req->model = store_lua_field_string(L, 3, "model", 0, NULL);
    if (lua_getfield(L, 3, "sections") != LUA_TTABLE)
        return luaL_error(L, "report_create: sections must be a list");
    int list = lua_gettop(L);
    size_t n = lua_rawlen(L, list);
    if (n == 0 || n > REPORT_SECTIONS_MAX)
        return luaL_error(L, "report_create: 1 to %d sections expected (got %d)",
                          REPORT_SECTIONS_MAX, (int)n);
    lua_newtable(L); /* anchors the encoded depends */
    const char **ids = lua_newuserdatauv(L, n * sizeof *ids, 0);
    struct report_section_plan *plans = lua_newuserdatauv(L, n * sizeof *plans, 0);
    read_sections(L, list, list + 1, ids, plans, n);
    req->section_ids = ids;
    req->n_sections = n;
    req->plans = plans;
    return store_lua_call(L, &c->base);
}

/* Reading */

static void report_get_run(struct db *db, struct store_call *call)
{
    struct report_call *c = (struct report_call *)call;
    struct user actor;
    call->rc = load_actor(db, c, &actor);
    if (call->rc == STORE_OK)
        call->rc = report_read(db, &actor, c, c->id);
}

static int store_report_get_lua(lua_State *L)
{
    struct report_call *c = report_call_new(L, 2, report_get_run, report_push, 2);
    read_actor_and_id(L, c, "report");
    return store_lua_call(L, &c->base);
}

static void report_list_run(struct db *db, struct store_call *call)
{
    struct report_call *c = (struct report_call *)call;
    struct user actor;
    call->rc = load_actor(db, c, &actor);
    if (call->rc == STORE_OK)
        call->rc = store_assessment_query(db, &actor, c->id, SQL_REPORT_LIST, "listing reports",
                                          c->rows, DB_ARGS(DB_TEXT(c->id)));
}

static int report_list_push(lua_State *L, struct store_call *call)
{
    return store_lua_push_rows(L, call->db, call->rc, ((struct report_call *)call)->rows,
                               STORE_LUA_LIST);
}

static int store_report_list_lua(lua_State *L)
{
    struct report_call *c = report_call_new(L, 2, report_list_run, report_list_push, 1);
    read_actor_and_id(L, c, "assessment");
    return store_lua_call(L, &c->base);
}

/* Transitions for the runner */

/* Reads {tokens_in=, tokens_out=, provider=, model=} at IDX (may be nil). */
static void read_usage(lua_State *L, int idx, struct section_change *c)
{
    if (lua_isnoneornil(L, idx))
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    c->tokens_in = store_lua_field_int(L, idx, "tokens_in", 0);
    c->tokens_out = store_lua_field_int(L, idx, "tokens_out", 0);
    c->provider = store_lua_field_string(L, idx, "provider", 0, NULL);
    c->model = store_lua_field_string(L, idx, "model", 0, NULL);
}

static void section_set_run(struct db *db, struct store_call *call)
{
    struct report_call *c = (struct report_call *)call;
    call->rc = store_section_set(db, c->id, c->section_id, &c->change);
}

/* A call that sets the section (report id at 1, section id at 2) to
 * STATUS, with the rest of its change filled in by the binding. */
static struct report_call *section_call_new(lua_State *L, int nargs, const char *status)
{
    struct report_call *c = report_call_new(L, nargs, section_set_run, done_push, 0);
    c->id = store_lua_check_text(L, 1);
    c->section_id = store_lua_check_text(L, 2);
    c->change.status = status;
    return c;
}

static int store_section_start_lua(lua_State *L)
{
    struct report_call *c = section_call_new(L, 4, "running");
    c->change.provider = store_lua_opt_text(L, 3);
    c->change.model = store_lua_opt_text(L, 4);
    return store_lua_call(L, &c->base);
}

static int store_section_retrying_lua(lua_State *L)
{
    struct report_call *c = section_call_new(L, 4, "retrying");
    c->change.error = store_lua_check_text(L, 3);
    luaL_optnumber(L, 4, 0); /* wait_ms: for the caller's events; not stored */
    return store_lua_call(L, &c->base);
}

static int store_section_done_lua(lua_State *L)
{
    struct report_call *c = section_call_new(L, 3, "done");
    luaL_checktype(L, 3, LUA_TTABLE);
    c->change.text = store_lua_field_string(L, 3, "text", 1, NULL);
    c->change.warning = store_lua_field_string(L, 3, "warning", 0, NULL);
    read_usage(L, 3, &c->change);
    return store_lua_call(L, &c->base);
}

static int store_section_fail_lua(lua_State *L)
{
    struct report_call *c = section_call_new(L, 4, "failed");
    c->change.error = store_lua_check_text(L, 3);
    read_usage(L, 4, &c->change);
    return store_lua_call(L, &c->base);
}

static void section_retry_run(struct db *db, struct store_call *call)
{
    struct report_call *c = (struct report_call *)call;
    struct user actor;
    int rc = load_actor(db, c, &actor);
    if (rc == STORE_OK && (rc = db_tx_begin(db)) == STORE_OK)
        rc = store_lua_audit_end(db, store_section_retry(db, &actor, c->id, c->section_id, NULL),
                                 &actor, "report.section_retried", c->id, NULL, c->details);
    call->rc = rc;
}

static int store_section_retry_lua(lua_State *L)
{
    struct report_call *c = report_call_new(L, 3, section_retry_run, done_push, 0);
    read_actor_and_id(L, c, "report");
    c->section_id = store_lua_check_text(L, 3);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, "section");
    c->details = store_lua_encode(L, -1, "audit details", NULL); /* stays on the stack */
    return store_lua_call(L, &c->base);
}

static void report_start_run(struct db *db, struct store_call *call)
{
    call->rc = store_report_start(db, ((struct report_call *)call)->id);
}

static int store_report_start_lua(lua_State *L)
{
    struct report_call *c = report_call_new(L, 1, report_start_run, done_push, 0);
    c->id = store_lua_check_text(L, 1);
    return store_lua_call(L, &c->base);
}

/* The status shown ("partial" too) and the section counts, for the audit
 * event, read in the transaction that finishes the report. */
static int report_finish_audited(struct db *db, const char *rid, struct rowset *summary)
{
    int rc = store_report_finish(db, rid, NULL);
    if (rc == STORE_OK)
        rc = db_query(db, SQL_REPORT_SUMMARY, "reading a report", summary, DB_ARGS(DB_TEXT(rid)));
    if (rc != STORE_OK)
        return rc;
    char details[64];
    snprintf(details, sizeof details, "{\"status\":\"%s\",\"done\":%lld,\"failed\":%lld}",
             rowset_text(summary, 0, (size_t)rowset_column(summary, "status")),
             (long long)rowset_int(summary, 0, (size_t)rowset_column(summary, "sections_done")),
             (long long)rowset_int(summary, 0, (size_t)rowset_column(summary, "sections_failed")));
    return store_lua_audit(db, NULL, "report.finished", rid, NULL, details);
}

static void report_finish_run(struct db *db, struct store_call *call)
{
    struct report_call *c = (struct report_call *)call;
    call->rc = db_tx_begin(db);
    if (call->rc == STORE_OK)
        call->rc = db_tx_end(db, report_finish_audited(db, c->id, c->rows));
}

static int report_finish_push(lua_State *L, struct store_call *call)
{
    struct report_call *c = (struct report_call *)call;
    if (call->rc != STORE_OK)
        return store_call_fail(L, call, call->rc);
    lua_pushstring(L, rowset_text(c->rows, 0, (size_t)rowset_column(c->rows, "status")));
    return 1;
}

static int store_report_finish_lua(lua_State *L)
{
    struct report_call *c = report_call_new(L, 1, report_finish_run, report_finish_push, 1);
    c->id = store_lua_check_text(L, 1);
    if (!uuid_is_v7(c->id))
        return store_lua_failf(L, STORE_NOT_FOUND, "no report %.40s", c->id);
    return store_lua_call(L, &c->base);
}

static void jobs_unfinished_run(struct db *db, struct store_call *call)
{
    call->rc = db_query(db, SQL_JOB_REPORTS_UNFINISHED, "listing unfinished jobs",
                        ((struct report_call *)call)->rows, DB_NO_ARGS);
}

static int jobs_unfinished_push(lua_State *L, struct store_call *call)
{
    struct report_call *c = (struct report_call *)call;
    if (call->rc != STORE_OK)
        return store_call_fail(L, call, call->rc);
    rowset_push_column(L, c->rows, 0);
    return 1;
}

static int store_jobs_unfinished_lua(lua_State *L)
{
    struct report_call *c = report_call_new(L, 0, jobs_unfinished_run, jobs_unfinished_push, 1);
    return store_lua_call(L, &c->base);
}

void store_lua_report_funcs(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"report_create", store_report_create_lua},
                                     {"report_get", store_report_get_lua},
                                     {"report_list", store_report_list_lua},
                                     {"report_start", store_report_start_lua},
                                     {"report_finish", store_report_finish_lua},
                                     {"section_start", store_section_start_lua},
                                     {"section_retrying", store_section_retrying_lua},
                                     {"section_done", store_section_done_lua},
                                     {"section_fail", store_section_fail_lua},
                                     {"section_retry", store_section_retry_lua},
                                     {"jobs_unfinished", store_jobs_unfinished_lua},
                                     {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
}
