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
#include <stdio.h>
#include <string.h>
#include "store/authz.h"
#include "store/db_internal.h"
#include "store/store.h"
#include "store/store_lua_internal.h"
#include "store/uuid.h"

#define REPORT_SECTIONS_MAX 200

/* Copies */

struct section_row {
    struct section_row *next;
    struct report_section s; /* strings point into the arena */
};

struct report_row {
    struct report_row *next;
    struct report r;
    int sections, done, failed;
};

struct report_copy {
    struct store_arena *arena;
    struct report_row *reports, **reports_tail;
    struct section_row *sections, **sections_tail;
    struct report_row *counting; /* report whose sections are being counted */
};

static void report_copy_init(struct report_copy *c, struct store_arena *arena)
{
    memset(c, 0, sizeof *c);
    c->arena = arena;
    c->reports_tail = &c->reports;
    c->sections_tail = &c->sections;
}

#define DUP(field) store_arena_strdup(c->arena, (field))

static int copy_report(void *ud, const struct report *r)
{
    struct report_copy *c = ud;
    struct report_row *row = store_arena_alloc(c->arena, sizeof *row);
    if (row == NULL)
        return 1;
    memset(row, 0, sizeof *row);
    row->r = *r;
    row->r.id = DUP(r->id);
    row->r.assessment_id = DUP(r->assessment_id);
    row->r.generation = DUP(r->generation);
    row->r.requested_by = DUP(r->requested_by);
    row->r.status = DUP(r->status);
    row->r.provider = DUP(r->provider);
    row->r.model = DUP(r->model);
    *c->reports_tail = row;
    c->reports_tail = &row->next;
    return store_arena_oom(c->arena);
}

static int copy_section(void *ud, const struct report_section *s)
{
    struct report_copy *c = ud;
    struct section_row *row = store_arena_alloc(c->arena, sizeof *row);
    if (row == NULL)
        return 1;
    row->next = NULL;
    row->s = *s;
    row->s.report_id = DUP(s->report_id);
    row->s.section_id = DUP(s->section_id);
    row->s.status = DUP(s->status);
    row->s.provider = DUP(s->provider);
    row->s.model = DUP(s->model);
    row->s.error = DUP(s->error);
    row->s.text = DUP(s->text);
    row->s.title = DUP(s->title);
    row->s.kind = DUP(s->kind);
    row->s.depends_json = DUP(s->depends_json);
    row->s.warning = DUP(s->warning);
    *c->sections_tail = row;
    c->sections_tail = &row->next;
    return store_arena_oom(c->arena);
}

static int count_section(void *ud, const struct report_section *s)
{
    struct report_row *row = ((struct report_copy *)ud)->counting;
    row->sections++;
    row->done += strcmp(s->status, "done") == 0;
    row->failed += strcmp(s->status, "failed") == 0;
    return 0;
}

/* "failed" with some sections done is "partial". */
static const char *report_status(const char *stored, int done)
{
    return strcmp(stored, "failed") == 0 && done > 0 ? "partial" : stored;
}

/* Pushing */

static void set_string(lua_State *L, const char *key, const char *value)
{
    if (value == NULL)
        return;
    lua_pushstring(L, value);
    lua_setfield(L, -2, key);
}

static void set_int(lua_State *L, const char *key, int64_t value)
{
    lua_pushinteger(L, (lua_Integer)value);
    lua_setfield(L, -2, key);
}

static void push_report(lua_State *L, const struct report *r, const char *status)
{
    lua_createtable(L, 0, 16);
    set_string(L, "id", r->id);
    set_string(L, "assessment_id", r->assessment_id);
    set_int(L, "revision", r->revision);
    set_string(L, "status", status);
    set_string(L, "provider", r->provider);
    set_string(L, "model", r->model);
    set_string(L, "generation", r->generation);
    set_string(L, "requested_by", r->requested_by);
    store_lua_set_time(L, "created_at", r->created_at);
    store_lua_set_time(L, "updated_at", r->updated_at);
    store_lua_set_time(L, "finished_at", r->finished_at);
}

static void push_section(lua_State *L, const struct report_section *s)
{
    lua_createtable(L, 0, 20);
    set_string(L, "id", s->section_id);
    set_string(L, "title", s->title);
    set_string(L, "kind", s->kind);
    if (s->depends_json)
        store_lua_decode(L, s->depends_json, strlen(s->depends_json));
    else
        lua_newtable(L);
    store_lua_mark_array(L, -1);
    lua_setfield(L, -2, "depends");
    set_int(L, "position", s->position);
    set_string(L, "status", s->status);
    set_int(L, "attempts", s->attempts);
    set_string(L, "provider", s->provider);
    set_string(L, "model", s->model);
    set_int(L, "tokens_in", s->tokens_in);
    set_int(L, "tokens_out", s->tokens_out);
    set_string(L, "error", s->error);
    set_string(L, "warning", s->warning);
    set_string(L, "text", s->text);
    store_lua_set_time(L, "started_at", s->started_at);
    store_lua_set_time(L, "finished_at", s->finished_at);
}

/* Reads report ID with its sections (as ACTOR) and pushes it, or pushes
 * nil, message, code.  Returns the number of values pushed. */
static int report_read_push(lua_State *L, struct db *db, const struct user *actor, const char *id)
{
    if (!uuid_is_v7(id))
        return store_lua_failf(L, STORE_NOT_FOUND, "no report %.40s", id);
    struct report_copy c;
    report_copy_init(&c, store_arena_push(L));
    int rc = store_report_get(db, actor, id, copy_report, copy_section, &c);
    if (rc == STORE_OK && (store_arena_oom(c.arena) || c.reports == NULL))
        rc = db_fail(db, STORE_ERROR, "out of memory reading report %s", id);
    if (rc != STORE_OK) {
        lua_pop(L, 1);
        return store_lua_fail(L, db, rc);
    }
    int done = 0, n = 0;
    for (struct section_row *s = c.sections; s; s = s->next, n++)
        done += strcmp(s->s.status, "done") == 0;
    push_report(L, &c.reports->r, report_status(c.reports->r.status, done));
    lua_createtable(L, n, 0);
    int i = 0;
    for (struct section_row *s = c.sections; s; s = s->next) {
        push_section(L, &s->s);
        lua_rawseti(L, -2, ++i);
    }
    store_lua_mark_array(L, -1);
    lua_setfield(L, -2, "sections");
    store_arena_free(c.arena);
    lua_remove(L, -2); /* the arena */
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
    int rc = store_lua_actor(L, 1, s->db, &actor);
    const char *assessment_id = store_lua_check_text(L, 2);
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
    struct assessment a;
    if (rc == STORE_OK && !uuid_is_v7(assessment_id))
        rc = db_fail(s->db, STORE_NOT_FOUND, "no assessment %.40s", assessment_id);
    if (rc == STORE_OK)
        rc = store_assessment_get(s->db, &actor, assessment_id, &a);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    req.revision = a.revision;
    char report_id[UUID_STR_LEN], details[128];
    if ((rc = db_tx_begin(s->db)) != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    rc = store_report_create(s->db, &actor, &req, report_id, NULL);
    snprintf(details, sizeof details, "{\"assessment\":\"%s\",\"revision\":%lld,\"sections\":%d}",
             a.id, (long long)a.revision, (int)n);
    if (rc == STORE_OK)
        rc = store_lua_audit(s->db, &actor, "report.requested", report_id, NULL, details);
    if ((rc = store_lua_tx_end(s->db, rc)) != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    return report_read_push(L, s->db, &actor, report_id);
}

/* Reading */

static int store_report_get_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct user actor;
    int rc = store_lua_actor(L, 1, s->db, &actor);
    const char *id = store_lua_check_text(L, 2);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    return report_read_push(L, s->db, &actor, id);
}

static int store_report_list_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct user actor;
    int rc = store_lua_actor(L, 1, s->db, &actor);
    const char *assessment_id = store_lua_check_text(L, 2);
    if (rc == STORE_OK && !uuid_is_v7(assessment_id))
        rc = db_fail(s->db, STORE_NOT_FOUND, "no assessment %.40s", assessment_id);
    struct report_copy c;
    report_copy_init(&c, store_arena_push(L));
    if (rc == STORE_OK)
        rc = store_report_list(s->db, &actor, assessment_id, copy_report, &c);
    for (struct report_row *r = c.reports; r && rc == STORE_OK; r = r->next) {
        c.counting = r;
        rc = store_report_get(s->db, &actor, r->r.id, NULL, count_section, &c);
    }
    if (rc == STORE_OK && store_arena_oom(c.arena))
        rc = db_fail(s->db, STORE_ERROR, "out of memory listing reports");
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    lua_newtable(L);
    int i = 0;
    for (struct report_row *r = c.reports; r; r = r->next) {
        push_report(L, &r->r, report_status(r->r.status, r->done));
        set_int(L, "sections_total", r->sections);
        set_int(L, "sections_done", r->done);
        set_int(L, "sections_failed", r->failed);
        lua_rawseti(L, -2, ++i);
    }
    store_lua_mark_array(L, -1);
    store_arena_free(c.arena);
    return 1;
}

/* Transitions for the runner */

static const char *check_report_id(lua_State *L, int idx)
{
    return store_lua_check_text(L, idx);
}

static int done_or_fail(lua_State *L, struct db *db, int rc)
{
    if (rc != STORE_OK)
        return store_lua_fail(L, db, rc);
    lua_pushboolean(L, 1);
    return 1;
}

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
    const char *rid = check_report_id(L, 1), *sid = store_lua_check_text(L, 2);
    const char *provider = store_lua_opt_text(L, 3), *model = store_lua_opt_text(L, 4);
    return done_or_fail(L, s->db, store_section_begin(s->db, rid, sid, provider, model));
}

static int store_section_retrying_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    const char *rid = check_report_id(L, 1), *sid = store_lua_check_text(L, 2);
    const char *error = store_lua_check_text(L, 3);
    luaL_optnumber(L, 4, 0); /* wait_ms: for the caller's events; not stored */
    return done_or_fail(L, s->db, store_section_retrying(s->db, rid, sid, error, NULL));
}

static int store_section_done_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    const char *rid = check_report_id(L, 1), *sid = store_lua_check_text(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    const char *text = store_lua_field_string(L, 3, "text", 1, NULL);
    const char *warning = store_lua_field_string(L, 3, "warning", 0, NULL);
    struct section_usage usage;
    read_usage(L, 3, &usage);
    return done_or_fail(L, s->db, store_section_complete(s->db, rid, sid, text, warning, &usage));
}

static int store_section_fail_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    const char *rid = check_report_id(L, 1), *sid = store_lua_check_text(L, 2);
    const char *error = store_lua_check_text(L, 3);
    struct section_usage usage;
    read_usage(L, 4, &usage);
    return done_or_fail(L, s->db, store_section_fail(s->db, rid, sid, error, &usage));
}

static int store_section_retry_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct user actor;
    int rc = store_lua_actor(L, 1, s->db, &actor);
    const char *rid = check_report_id(L, 2), *sid = store_lua_check_text(L, 3);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, "section");
    const char *details = store_lua_encode(L, -1, "audit details", NULL);
    if (rc == STORE_OK && !uuid_is_v7(rid))
        rc = db_fail(s->db, STORE_NOT_FOUND, "no report %.40s", rid);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    if ((rc = db_tx_begin(s->db)) != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    rc = store_section_retry(s->db, &actor, rid, sid, NULL);
    if (rc == STORE_OK)
        rc = store_lua_audit(s->db, &actor, "report.section_retried", rid, NULL, details);
    return done_or_fail(L, s->db, store_lua_tx_end(s->db, rc));
}

/* Jobs of one report, or all unfinished ones (REPORT_ID NULL). */
struct job_ids {
    struct store_arena *arena;
    const char *report_id;
    char **ids; /* job ids, or report ids when listing */
    size_t n, cap;
};

static int collect_job(void *ud, const struct job *j)
{
    struct job_ids *c = ud;
    if (j->report_id == NULL || (c->report_id && strcmp(c->report_id, j->report_id) != 0))
        return 0;
    if (c->report_id == NULL)
        for (size_t i = 0; i < c->n; i++)
            if (strcmp(c->ids[i], j->report_id) == 0)
                return 0; /* one report, several jobs (retries): resume it once */
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        char **ids = store_arena_alloc(c->arena, cap * sizeof *ids);
        if (ids == NULL)
            return 1;
        if (c->n)
            memcpy(ids, c->ids, c->n * sizeof *ids);
        c->ids = ids;
        c->cap = cap;
    }
    c->ids[c->n] = store_arena_strdup(c->arena, c->report_id ? j->id : j->report_id);
    c->n++;
    return store_arena_oom(c->arena);
}

static int store_report_start_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    const char *rid = check_report_id(L, 1);
    struct job_ids jobs = {.arena = store_arena_push(L), .report_id = rid};
    int rc = db_tx_begin(s->db);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    rc = store_report_start(s->db, rid);
    if (rc == STORE_OK)
        rc = store_jobs_unfinished(s->db, collect_job, &jobs);
    if (rc == STORE_OK && store_arena_oom(jobs.arena))
        rc = db_fail(s->db, STORE_ERROR, "out of memory starting report %.40s", rid);
    for (size_t i = 0; i < jobs.n && rc == STORE_OK; i++)
        rc = store_job_start(s->db, jobs.ids[i]);
    return done_or_fail(L, s->db, store_lua_tx_end(s->db, rc));
}

/* Sections done / failed of a report, for "partial". */
struct section_tally {
    struct report_row row;
    struct report_copy copy;
};

static int store_report_finish_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    const char *rid = check_report_id(L, 1);
    if (!uuid_is_v7(rid))
        return store_lua_failf(L, STORE_NOT_FOUND, "no report %.40s", rid);
    struct section_tally t;
    memset(&t, 0, sizeof t);
    t.copy.counting = &t.row;
    const char *status = NULL;
    char details[64];
    int rc = db_tx_begin(s->db);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    rc = store_report_finish(s->db, rid, &status);
    if (rc == STORE_OK)
        rc = store_report_get(s->db, authz_system_user(), rid, NULL, count_section, &t.copy);
    if (rc == STORE_OK) {
        status = report_status(status, t.row.done);
        snprintf(details, sizeof details, "{\"status\":\"%s\",\"done\":%d,\"failed\":%d}", status,
                 t.row.done, t.row.failed);
        rc = store_lua_audit(s->db, NULL, "report.finished", rid, NULL, details);
    }
    if ((rc = store_lua_tx_end(s->db, rc)) != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    lua_pushstring(L, status);
    return 1;
}

static int store_jobs_unfinished_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct job_ids jobs = {.arena = store_arena_push(L)};
    int rc = store_jobs_unfinished(s->db, collect_job, &jobs);
    if (rc == STORE_OK && store_arena_oom(jobs.arena))
        rc = db_fail(s->db, STORE_ERROR, "out of memory listing jobs");
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    lua_createtable(L, (int)jobs.n, 0);
    for (size_t i = 0; i < jobs.n; i++) {
        lua_pushstring(L, jobs.ids[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    store_lua_mark_array(L, -1);
    store_arena_free(jobs.arena);
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
