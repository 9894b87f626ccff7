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

/* Reads report ID with its sections (as ACTOR) and pushes it, or pushes
 * nil, message, code.  Returns the number of values pushed. */
static int report_read_push(lua_State *L, struct db *db, const struct user *actor, const char *id)
{
    struct rowset *report = rowset_lua_new(L, 0), *sections = rowset_lua_new(L, 0);
    int rc = store_report_access(db, actor, id);
    if (rc == STORE_OK)
        rc = db_query(db, SQL_REPORT_GET, "reading a report", report, DB_ARGS(DB_TEXT(id)));
    if (rc == STORE_OK)
        rc = db_query(db, SQL_SECTIONS_GET, "reading report sections", sections,
                      DB_ARGS(DB_TEXT(id)));
    if (rc != STORE_OK)
        return store_lua_fail(L, db, rc);
    rowset_push_row(L, report, 0);
    rowset_push_list(L, sections, SIZE_MAX);
    lua_setfield(L, -2, "sections");
    return 1;
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

static int store_report_create_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct user actor;
    const char *assessment_id;
    int rc = store_lua_actor_and_id(L, s->db, "assessment", &actor, &assessment_id);
    luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    struct report_request req = {.assessment_id = assessment_id};
    req.generation = store_lua_field_string(L, 3, "generation", 1, NULL);
    req.provider = store_lua_field_string(L, 3, "provider", 0, NULL);
    req.model = store_lua_field_string(L, 3, "model", 0, NULL);
    if (lua_getfield(L, 3, "sections") != LUA_TTABLE) /* 4 */
        return luaL_error(L, "report_create: sections must be a list");
    size_t n = lua_rawlen(L, 4);
    if (n == 0 || n > REPORT_SECTIONS_MAX)
        return luaL_error(L, "report_create: 1 to %d sections expected (got %d)",
                          REPORT_SECTIONS_MAX, (int)n);
    lua_newtable(L);                                                                /* 5: anchors */
    const char **ids = lua_newuserdatauv(L, n * sizeof *ids, 0);                    /* 6 */
    struct report_section_plan *plans = lua_newuserdatauv(L, n * sizeof *plans, 0); /* 7 */
    read_sections(L, 4, 5, ids, plans, n);
    req.section_ids = ids;
    req.n_sections = n;
    req.plans = plans;
    if (rc == STORE_OK)
        rc = store_assessment_access(s->db, &actor, assessment_id, &req.revision);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    char report_id[UUID_STR_LEN], details[128];
    snprintf(details, sizeof details, "{\"assessment\":\"%s\",\"revision\":%lld,\"sections\":%d}",
             assessment_id, (long long)req.revision, (int)n);
    if ((rc = db_tx_begin(s->db)) == STORE_OK)
        rc = store_lua_audit_end(s->db, store_report_create(s->db, &actor, &req, report_id, NULL),
                                 &actor, "report.requested", report_id, NULL, details);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    return report_read_push(L, s->db, &actor, report_id);
}

/* Reading */

static int store_report_get_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct user actor;
    const char *id;
    int rc = store_lua_actor_and_id(L, s->db, "report", &actor, &id);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    return report_read_push(L, s->db, &actor, id);
}

static int store_report_list_lua(lua_State *L)
{
    return store_lua_assessment_read(L, SQL_REPORT_LIST, "listing reports", NULL, STORE_LUA_LIST);
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

/* Applies C to section (report id at 1, section id at 2). */
static int section_set(lua_State *L, const struct section_change *c)
{
    struct store_lua *s = store_lua_get(L);
    const char *rid = store_lua_check_text(L, 1), *sid = store_lua_check_text(L, 2);
    return store_lua_done(L, s->db, store_section_set(s->db, rid, sid, c));
}

static int store_section_start_lua(lua_State *L)
{
    struct section_change c = {.status = "running"};
    c.provider = store_lua_opt_text(L, 3);
    c.model = store_lua_opt_text(L, 4);
    return section_set(L, &c);
}

static int store_section_retrying_lua(lua_State *L)
{
    struct section_change c = {.status = "retrying", .error = store_lua_check_text(L, 3)};
    luaL_optnumber(L, 4, 0); /* wait_ms: for the caller's events; not stored */
    return section_set(L, &c);
}

static int store_section_done_lua(lua_State *L)
{
    struct section_change c = {.status = "done"};
    luaL_checktype(L, 3, LUA_TTABLE);
    c.text = store_lua_field_string(L, 3, "text", 1, NULL);
    c.warning = store_lua_field_string(L, 3, "warning", 0, NULL);
    read_usage(L, 3, &c);
    return section_set(L, &c);
}

static int store_section_fail_lua(lua_State *L)
{
    struct section_change c = {.status = "failed", .error = store_lua_check_text(L, 3)};
    read_usage(L, 4, &c);
    return section_set(L, &c);
}

static int store_section_retry_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct user actor;
    const char *rid;
    int rc = store_lua_actor_and_id(L, s->db, "report", &actor, &rid);
    const char *sid = store_lua_check_text(L, 3);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, "section");
    const char *details = store_lua_encode(L, -1, "audit details", NULL);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    if ((rc = db_tx_begin(s->db)) == STORE_OK)
        rc = store_lua_audit_end(s->db, store_section_retry(s->db, &actor, rid, sid, NULL), &actor,
                                 "report.section_retried", rid, NULL, details);
    return store_lua_done(L, s->db, rc);
}

static int store_report_start_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    const char *rid = store_lua_check_text(L, 1);
    return store_lua_done(L, s->db, store_report_start(s->db, rid));
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

static int store_report_finish_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    const char *rid = store_lua_check_text(L, 1);
    if (!uuid_is_v7(rid))
        return store_lua_failf(L, STORE_NOT_FOUND, "no report %.40s", rid);
    struct rowset *summary = rowset_lua_new(L, 0);
    int rc = db_tx_begin(s->db);
    if (rc == STORE_OK)
        rc = db_tx_end(s->db, report_finish_audited(s->db, rid, summary));
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    lua_pushstring(L, rowset_text(summary, 0, (size_t)rowset_column(summary, "status")));
    return 1;
}

static int store_jobs_unfinished_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct rowset *jobs = rowset_lua_new(L, 0);
    int rc =
        db_query(s->db, SQL_JOB_REPORTS_UNFINISHED, "listing unfinished jobs", jobs, DB_NO_ARGS);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    rowset_push_column(L, jobs, 0);
    return 1;
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
