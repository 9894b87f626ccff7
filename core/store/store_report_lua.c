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
#include "store/authz.h"
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
static const char SQL_REPORT_LIST[] = REPORT_SELECT
    ", " SECTIONS_OF_R ") AS sections_total, " SECTIONS_DONE " AS sections_done, " SECTIONS_OF_R
    " AND s.status = 'failed') AS sections_failed" REPORT_FROM
    " WHERE r.assessment_id = ? ORDER BY r.id DESC";
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

/* Report ID as one row of REPORT and its sections, in order, in SECTIONS
 * when ACTOR may see it. */
static int report_rows(struct db *db, const struct user *actor, const char *id,
                       struct rowset *report, struct rowset *sections)
{
    int rc = store_report_access(db, actor, id);
    if (rc == STORE_OK)
        rc = db_query(db, SQL_REPORT_GET, "reading a report", report, DB_ARGS(DB_TEXT(id)));
    if (rc == STORE_OK)
        rc = db_query(db, SQL_SECTIONS_GET, "reading report sections", sections,
                      DB_ARGS(DB_TEXT(id)));
    return rc;
}

/* Reads report ID with its sections (as ACTOR) and pushes it, or pushes
 * nil, message, code.  Returns the number of values pushed. */
static int report_read_push(lua_State *L, struct db *db, const struct user *actor, const char *id)
{
    struct rowset *report = rowset_lua_new(L, 0), *sections = rowset_lua_new(L, 0);
    int rc = report_rows(db, actor, id, report, sections);
    if (rc != STORE_OK) {
        lua_pop(L, 2);
        return store_lua_fail(L, db, rc);
    }
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
static void read_usage(lua_State *L, int idx, struct section_usage *u)
{
    memset(u, 0, sizeof *u);
    if (lua_isnoneornil(L, idx))
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    u->tokens_in = store_lua_field_int(L, idx, "tokens_in", 0);
    u->tokens_out = store_lua_field_int(L, idx, "tokens_out", 0);
    u->provider = store_lua_field_string(L, idx, "provider", 0, NULL);
    u->model = store_lua_field_string(L, idx, "model", 0, NULL);
}

static int store_section_start_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    const char *rid = store_lua_check_text(L, 1), *sid = store_lua_check_text(L, 2);
    const char *provider = store_lua_opt_text(L, 3), *model = store_lua_opt_text(L, 4);
    return store_lua_done(L, s->db, store_section_begin(s->db, rid, sid, provider, model));
}

static int store_section_retrying_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    const char *rid = store_lua_check_text(L, 1), *sid = store_lua_check_text(L, 2);
    const char *error = store_lua_check_text(L, 3);
    luaL_optnumber(L, 4, 0); /* wait_ms: for the caller's events; not stored */
    return store_lua_done(L, s->db, store_section_retrying(s->db, rid, sid, error, NULL));
}

static int store_section_done_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    const char *rid = store_lua_check_text(L, 1), *sid = store_lua_check_text(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    const char *text = store_lua_field_string(L, 3, "text", 1, NULL);
    const char *warning = store_lua_field_string(L, 3, "warning", 0, NULL);
    struct section_usage usage;
    read_usage(L, 3, &usage);
    return store_lua_done(L, s->db, store_section_complete(s->db, rid, sid, text, warning, &usage));
}

static int store_section_fail_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    const char *rid = store_lua_check_text(L, 1), *sid = store_lua_check_text(L, 2);
    const char *error = store_lua_check_text(L, 3);
    struct section_usage usage;
    read_usage(L, 4, &usage);
    return store_lua_done(L, s->db, store_section_fail(s->db, rid, sid, error, &usage));
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

/* Counts the sections with STATUS. */
static int count_status(const struct rowset *sections, const char *status)
{
    int col = rowset_column(sections, "status"), n = 0;
    for (size_t i = 0; i < sections->nrows; i++)
        n += strcmp(rowset_text(sections, i, (size_t)col), status) == 0;
    return n;
}

static int store_report_finish_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    const char *rid = store_lua_check_text(L, 1);
    if (!uuid_is_v7(rid))
        return store_lua_failf(L, STORE_NOT_FOUND, "no report %.40s", rid);
    struct rowset *report = rowset_lua_new(L, 0), *sections = rowset_lua_new(L, 0);
    const char *status = NULL;
    char details[64];
    int rc = db_tx_begin(s->db);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    rc = store_report_finish(s->db, rid, &status);
    if (rc == STORE_OK)
        rc = report_rows(s->db, authz_system_user(), rid, report, sections);
    if (rc == STORE_OK) {
        status = rowset_text(report, 0, (size_t)rowset_column(report, "status"));
        snprintf(details, sizeof details, "{\"status\":\"%s\",\"done\":%d,\"failed\":%d}", status,
                 count_status(sections, "done"), count_status(sections, "failed"));
        rc = store_lua_audit(s->db, NULL, "report.finished", rid, NULL, details);
    }
    if ((rc = db_tx_end(s->db, rc)) != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    lua_pushstring(L, status);
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
