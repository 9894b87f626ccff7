#include <string.h>
#include "store/authz.h"
#include "store/rowset.h"
#include "store/store_internal.h"

#define SECTION_ID_MAX 128
/* Named for the Lua fields (rowset_lua.h).  A failed report with some
 * sections done is "partial". */
#define SECTIONS_WITH(st) "(SELECT COUNT(*) FROM report_sections s WHERE s.report_id = r.id" st ")"
#define REPORT_COLUMNS                                                                             \
    "r.id, r.assessment_id, r.revision, CASE WHEN r.status = 'failed' AND " SECTIONS_WITH(         \
        " AND s.status = 'done'") " > 0 THEN 'partial' ELSE r.status END AS status,"               \
                                  " r.provider, r.model, r.generation, u.name AS requested_by,"    \
                                  " r.created_at AS \"created_at:time\", r.updated_at AS "         \
                                  "\"updated_at:time\","                                           \
                                  " r.finished_at AS \"finished_at:time\", a.owner_id AS "         \
                                  "\"owner:omit\""
#define REPORT_OWNER_COLUMN 11
#define REPORT_FROM                                                                                \
    " FROM reports r JOIN users u ON u.id = r.requested_by"                                        \
    " JOIN assessments a ON a.id = r.assessment_id"

static const char SQL_REPORT_INSERT[] =
    "INSERT INTO reports (id, assessment_id, revision, generation, requested_by, status,"
    " provider, model, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)";
static const char SQL_SECTION_INSERT[] =
    "INSERT INTO report_sections (report_id, section_id, position, status, attempts,"
    " tokens_in, tokens_out, created_at, updated_at, title, kind, depends)"
    " VALUES (?, ?, ?, 'queued', 0, 0, 0, ?, ?, ?, ?, ?)";
static const char SQL_JOB_INSERT[] =
    "INSERT INTO jobs (id, kind, report_id, status, attempts, created_at, updated_at)"
    " VALUES (?, 'report', ?, 'queued', 0, ?, ?)";
static const char SQL_REPORT_GET[] =
    "SELECT " REPORT_COLUMNS REPORT_FROM " WHERE r.id = ? AND a.deleted_at IS NULL";
static const char
    SQL_REPORT_LIST[] =
        "SELECT " REPORT_COLUMNS ", " SECTIONS_WITH("") " AS sections_total, " SECTIONS_WITH(
            " AND s.status = 'done'") " AS sections_done, " SECTIONS_WITH(" AND s.status = "
                                                                          "'failed'") " AS "
                                                                                      "sections_"
                                                                                      "faile"
                                                                                      "d" REPORT_FROM
                                                                                      " WHERE "
                                                                                      "r."
                                                                                      "assessment_"
                                                                                      "id = ? "
                                                                                      "ORDER BY "
                                                                                      "r.id DESC";
static const char SQL_SECTIONS_GET[] =
    "SELECT section_id AS id, title, kind, depends AS \"depends:list\", position, status, attempts,"
    " provider, model, tokens_in, tokens_out, error, warning, text,"
    " started_at AS \"started_at:time\", finished_at AS \"finished_at:time\""
    " FROM report_sections WHERE report_id = ? ORDER BY position";
static const char SQL_SECTION_START[] =
    "UPDATE report_sections SET status = 'running', attempts = attempts + 1, error = NULL,"
    " warning = NULL, provider = COALESCE(?, provider), model = COALESCE(?, model),"
    " started_at = ?, updated_at = ?, finished_at = NULL WHERE report_id = ? AND section_id = ?";
/* One statement for retrying / done / failed: usage is added, text and
 * provider/model kept when NULL is bound. */
static const char SQL_SECTION_SETTLE[] =
    "UPDATE report_sections SET status = ?, error = ?, text = COALESCE(?, text), warning = ?,"
    " provider = COALESCE(?, provider), model = COALESCE(?, model),"
    " tokens_in = tokens_in + ?, tokens_out = tokens_out + ?, updated_at = ?, finished_at = ?"
    " WHERE report_id = ? AND section_id = ?";
static const char SQL_SECTION_REQUEUE[] =
    "UPDATE report_sections SET status = 'queued', error = NULL, finished_at = NULL,"
    " updated_at = ? WHERE report_id = ? AND section_id = ? AND status = 'failed'";
static const char SQL_SECTION_STATUS[] =
    "SELECT status FROM report_sections WHERE report_id = ? AND section_id = ?";
static const char SQL_SECTIONS_UNSETTLED[] =
    "SELECT COUNT(*), SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END) FROM report_sections"
    " WHERE report_id = ? AND status <> 'done'";
static const char SQL_SECTIONS_PENDING[] =
    "SELECT COUNT(*) FROM report_sections WHERE report_id = ?"
    " AND status IN ('queued', 'running', 'retrying')";
static const char SQL_REPORT_START[] =
    "UPDATE reports SET status = 'running', updated_at = ? WHERE id = ? AND status = 'queued'";
static const char SQL_REPORT_SET_STATUS[] =
    "UPDATE reports SET status = ?, updated_at = ?, finished_at = ? WHERE id = ?";
static const char SQL_JOB_FOR_REPORT[] =
    "SELECT id FROM jobs WHERE report_id = ? ORDER BY id DESC LIMIT 1";
static const char SQL_JOB_SET_STATUS[] =
    "UPDATE jobs SET status = ?, updated_at = ?, finished_at = ? WHERE report_id = ?";
static const char SQL_JOBS_UNFINISHED[] =
    "SELECT id, kind, report_id, status, attempts, created_at AS \"created_at:time\","
    " updated_at AS \"updated_at:time\" FROM jobs WHERE status IN ('queued', 'running') ORDER BY "
    "id";
static const char SQL_JOB_START[] =
    "UPDATE jobs SET status = 'running', attempts = attempts + 1, updated_at = ?"
    " WHERE id = ? AND status IN ('queued', 'running')";
static const char SQL_REPORT_JOBS_START[] =
    "UPDATE jobs SET status = 'running', attempts = attempts + 1, updated_at = ?"
    " WHERE report_id = ? AND status IN ('queued', 'running')";

/* Creation */

static int report_insert(struct db *db, const struct user *actor, const struct report_request *r,
                         const char *id, int64_t now)
{
    sqlite3_stmt *st = db_stmt(db, SQL_REPORT_INSERT);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, id);
    db_bind_text(st, 2, r->assessment_id);
    sqlite3_bind_int64(st, 3, r->revision);
    db_bind_text(st, 4, r->generation);
    db_bind_text(st, 5, actor->id);
    db_bind_text(st, 6, r->provider);
    db_bind_text(st, 7, r->model);
    sqlite3_bind_int64(st, 8, now);
    sqlite3_bind_int64(st, 9, now);
    int rc = db_step_done(db, st, "creating a report");
    if (rc == STORE_INVALID)
        rc = db_fail(db, STORE_INVALID,
                     "creating a report: generation %.80s not stored (store_generation_put "
                     "first) or %s is not an account",
                     r->generation, actor->name);
    return rc;
}

static int section_insert(struct db *db, const char *report_id, const char *section_id,
                          const struct report_section_plan *plan, int position, int64_t now)
{
    sqlite3_stmt *st = db_stmt(db, SQL_SECTION_INSERT);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, report_id);
    db_bind_text(st, 2, section_id);
    sqlite3_bind_int(st, 3, position);
    sqlite3_bind_int64(st, 4, now);
    sqlite3_bind_int64(st, 5, now);
    if (plan) {
        db_bind_text(st, 6, plan->title);
        db_bind_text(st, 7, plan->kind);
        db_bind_text(st, 8, plan->depends_json);
    }
    int rc = db_step_done(db, st, "creating a report section");
    if (rc == STORE_EXISTS)
        rc = db_fail(db, STORE_INVALID, "report section \"%s\" listed twice", section_id);
    return rc;
}

static int job_insert(struct db *db, const char *report_id, char job_id[UUID_STR_LEN], int64_t now)
{
    uuid_v7_string(job_id);
    sqlite3_stmt *st = db_stmt(db, SQL_JOB_INSERT);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, job_id);
    db_bind_text(st, 2, report_id);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, now);
    return db_step_done(db, st, "queueing a report job");
}

static int report_create_locked(struct db *db, const struct user *actor,
                                const struct report_request *r, const char *report_id,
                                char job_id[UUID_STR_LEN])
{
    int rc = store_assessment_access(db, actor, r->assessment_id, NULL);
    int64_t now = db_now_ms(db);
    if (rc == STORE_OK)
        rc = report_insert(db, actor, r, report_id, now);
    for (size_t i = 0; i < r->n_sections && rc == STORE_OK; i++)
        rc = section_insert(db, report_id, r->section_ids[i], r->plans ? &r->plans[i] : NULL,
                            (int)i, now);
    if (rc == STORE_OK)
        rc = job_insert(db, report_id, job_id, now);
    return rc;
}

int store_report_create(struct db *db, const struct user *actor, const struct report_request *r,
                        char report_id[UUID_STR_LEN], char job_id[UUID_STR_LEN])
{
    if (r->n_sections == 0 || !store_text_ok(r->generation, STORE_GENERATION_MAX))
        return db_fail(db, STORE_INVALID, "a report needs a generation and at least one section");
    for (size_t i = 0; i < r->n_sections; i++)
        if (!store_text_ok(r->section_ids[i], SECTION_ID_MAX))
            return db_fail(db, STORE_INVALID, "report section %zu: id must be 1-%d bytes", i + 1,
                           SECTION_ID_MAX);
    char rid[UUID_STR_LEN], jid[UUID_STR_LEN];
    uuid_v7_string(rid);
    int rc = db_tx_begin(db);
    if (rc != STORE_OK)
        return rc;
    if ((rc = report_create_locked(db, actor, r, rid, jid)) != STORE_OK) {
        db_tx_rollback(db);
        return rc;
    }
    if ((rc = db_tx_commit(db)) != STORE_OK)
        return rc;
    memcpy(report_id, rid, UUID_STR_LEN);
    if (job_id)
        memcpy(job_id, jid, UUID_STR_LEN);
    return STORE_OK;
}

/* Reading */

static int report_not_found(struct db *db, const char *id)
{
    return db_fail(db, STORE_NOT_FOUND, "no report %.40s", id ? id : "");
}

int store_report_rows(struct db *db, const struct user *actor, const char *report_id,
                      struct rowset *report, struct rowset *sections)
{
    sqlite3_stmt *st = db_stmt(db, SQL_REPORT_GET);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, report_id);
    int rc = rowset_capture_sqlite(db, st, report, "reading a report");
    if (rc == STORE_OK &&
        (report->nrows == 0 ||
         !authz_can_access_owner(actor, rowset_text(report, 0, REPORT_OWNER_COLUMN))))
        rc = report_not_found(db, report_id);
    if (rc == STORE_OK && sections) {
        if ((st = db_stmt(db, SQL_SECTIONS_GET)) == NULL)
            return STORE_ERROR;
        db_bind_text(st, 1, report_id);
        rc = rowset_capture_sqlite(db, st, sections, "reading report sections");
    }
    return rc;
}

int store_report_list_rows(struct db *db, const struct user *actor, const char *assessment_id,
                           struct rowset *rs)
{
    int rc = store_assessment_access(db, actor, assessment_id, NULL);
    if (rc != STORE_OK)
        return rc;
    sqlite3_stmt *st = db_stmt(db, SQL_REPORT_LIST);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, assessment_id);
    return rowset_capture_sqlite(db, st, rs, "listing reports");
}

/* Section transitions */

static int section_not_found(struct db *db, const char *report_id, const char *section_id)
{
    return db_fail(db, STORE_NOT_FOUND, "no section %.80s in report %.40s",
                   section_id ? section_id : "", report_id ? report_id : "");
}

/* Runs the bound UPDATE in ST; STORE_NOT_FOUND when it matched no section. */
static int section_update(struct db *db, sqlite3_stmt *st, const char *report_id,
                          const char *section_id, const char *what)
{
    int rc = db_step_done(db, st, what);
    if (rc == STORE_OK && db_changes(db) == 0)
        rc = section_not_found(db, report_id, section_id);
    return rc;
}

int store_section_begin(struct db *db, const char *report_id, const char *section_id,
                        const char *provider, const char *model)
{
    sqlite3_stmt *st = db_stmt(db, SQL_SECTION_START);
    if (st == NULL)
        return STORE_ERROR;
    int64_t now = db_now_ms(db);
    db_bind_text(st, 1, provider);
    db_bind_text(st, 2, model);
    sqlite3_bind_int64(st, 3, now);
    sqlite3_bind_int64(st, 4, now);
    db_bind_text(st, 5, report_id);
    db_bind_text(st, 6, section_id);
    return section_update(db, st, report_id, section_id, "starting a section");
}

int store_section_start(struct db *db, const char *report_id, const char *section_id)
{
    return store_section_begin(db, report_id, section_id, NULL, NULL);
}

static int section_settle(struct db *db, const char *report_id, const char *section_id,
                          const char *status, const char *error, const char *text,
                          const char *warning, const struct section_usage *usage)
{
    static const struct section_usage none = {0};
    if (usage == NULL)
        usage = &none;
    sqlite3_stmt *st = db_stmt(db, SQL_SECTION_SETTLE);
    if (st == NULL)
        return STORE_ERROR;
    int64_t now = db_now_ms(db);
    db_bind_text(st, 1, status);
    db_bind_text(st, 2, error);
    db_bind_text(st, 3, text);
    db_bind_text(st, 4, warning);
    db_bind_text(st, 5, usage->provider);
    db_bind_text(st, 6, usage->model);
    sqlite3_bind_int64(st, 7, usage->tokens_in);
    sqlite3_bind_int64(st, 8, usage->tokens_out);
    sqlite3_bind_int64(st, 9, now);
    if (strcmp(status, "retrying") == 0)
        sqlite3_bind_null(st, 10);
    else
        sqlite3_bind_int64(st, 10, now);
    db_bind_text(st, 11, report_id);
    db_bind_text(st, 12, section_id);
    return section_update(db, st, report_id, section_id, "updating a section");
}

int store_section_retrying(struct db *db, const char *report_id, const char *section_id,
                           const char *error, const struct section_usage *usage)
{
    return section_settle(db, report_id, section_id, "retrying", error, NULL, NULL, usage);
}

int store_section_complete(struct db *db, const char *report_id, const char *section_id,
                           const char *text, const char *warning, const struct section_usage *usage)
{
    if (text == NULL)
        return db_fail(db, STORE_INVALID, "section %.80s done without text", section_id);
    return section_settle(db, report_id, section_id, "done", NULL, text, warning, usage);
}

int store_section_done(struct db *db, const char *report_id, const char *section_id,
                       const char *text, const struct section_usage *usage)
{
    return store_section_complete(db, report_id, section_id, text, NULL, usage);
}

int store_section_fail(struct db *db, const char *report_id, const char *section_id,
                       const char *error, const struct section_usage *usage)
{
    if (!store_text_ok(error, SIZE_MAX))
        return db_fail(db, STORE_INVALID, "section %.80s failed without a reason", section_id);
    return section_settle(db, report_id, section_id, "failed", error, NULL, NULL, usage);
}

/* Report and job status */

static int report_set_status(struct db *db, const char *report_id, const char *status, int finished)
{
    int64_t now = db_now_ms(db);
    sqlite3_stmt *st = db_stmt(db, SQL_REPORT_SET_STATUS);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, status);
    sqlite3_bind_int64(st, 2, now);
    if (finished)
        sqlite3_bind_int64(st, 3, now);
    else
        sqlite3_bind_null(st, 3);
    db_bind_text(st, 4, report_id);
    int rc = db_step_done(db, st, "updating a report");
    if (rc == STORE_OK && db_changes(db) == 0)
        return report_not_found(db, report_id);
    if (rc != STORE_OK)
        return rc;
    if ((st = db_stmt(db, SQL_JOB_SET_STATUS)) == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, status);
    sqlite3_bind_int64(st, 2, now);
    if (finished)
        sqlite3_bind_int64(st, 3, now);
    else
        sqlite3_bind_null(st, 3);
    db_bind_text(st, 4, report_id);
    return db_step_done(db, st, "updating a report job");
}

static int section_status(struct db *db, const char *report_id, const char *section_id, char *buf,
                          size_t cap)
{
    sqlite3_stmt *st = db_stmt(db, SQL_SECTION_STATUS);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, report_id);
    db_bind_text(st, 2, section_id);
    int step = sqlite3_step(st), rc = STORE_OK;
    if (step == SQLITE_ROW)
        db_col_copy(st, 0, buf, cap);
    else
        rc = step == SQLITE_DONE ? section_not_found(db, report_id, section_id)
                                 : db_sqlite_fail(db, "reading a section");
    db_stmt_done(st);
    return rc;
}

static int report_job_id(struct db *db, const char *report_id, char job_id[UUID_STR_LEN])
{
    sqlite3_stmt *st = db_stmt(db, SQL_JOB_FOR_REPORT);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, report_id);
    int step = sqlite3_step(st), rc = STORE_OK;
    if (step == SQLITE_ROW)
        db_col_copy(st, 0, job_id, UUID_STR_LEN);
    else if (step == SQLITE_DONE)
        rc = STORE_NOT_FOUND; /* purged by retention: the caller queues a new one */
    else
        rc = db_sqlite_fail(db, "finding a report's job");
    db_stmt_done(st);
    return rc;
}

static int section_retry_locked(struct db *db, const struct user *actor, const char *report_id,
                                const char *section_id, char job_id[UUID_STR_LEN])
{
    struct rowset report;
    rowset_init(&report, 0);
    int rc = store_report_rows(db, actor, report_id, &report, NULL);
    rowset_free(&report);
    char status[16];
    if (rc == STORE_OK)
        rc = section_status(db, report_id, section_id, status, sizeof status);
    if (rc != STORE_OK)
        return rc;
    if (strcmp(status, "failed") != 0)
        return db_fail(db, STORE_CONFLICT, "section %.80s is %s, only a failed one can be retried",
                       section_id, status);
    sqlite3_stmt *st = db_stmt(db, SQL_SECTION_REQUEUE);
    if (st == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, db_now_ms(db));
    db_bind_text(st, 2, report_id);
    db_bind_text(st, 3, section_id);
    if ((rc = section_update(db, st, report_id, section_id, "re-queueing a section")) != STORE_OK)
        return rc;
    rc = report_job_id(db, report_id, job_id);
    if (rc == STORE_NOT_FOUND)
        rc = job_insert(db, report_id, job_id, db_now_ms(db));
    if (rc == STORE_OK)
        rc = report_set_status(db, report_id, "queued", 0);
    return rc;
}

int store_section_retry(struct db *db, const struct user *actor, const char *report_id,
                        const char *section_id, char job_id[UUID_STR_LEN])
{
    char jid[UUID_STR_LEN];
    int rc = db_tx_begin(db);
    if (rc != STORE_OK)
        return rc;
    if ((rc = section_retry_locked(db, actor, report_id, section_id, jid)) != STORE_OK) {
        db_tx_rollback(db);
        return rc;
    }
    if ((rc = db_tx_commit(db)) == STORE_OK && job_id)
        memcpy(job_id, jid, UUID_STR_LEN);
    return rc;
}

int store_report_start(struct db *db, const char *report_id)
{
    sqlite3_stmt *st = db_stmt(db, SQL_REPORT_START);
    if (st == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, db_now_ms(db));
    db_bind_text(st, 2, report_id);
    return db_step_done(db, st, "starting a report");
}

static int count_query(struct db *db, const char *sql, const char *report_id, int64_t *a,
                       int64_t *b)
{
    sqlite3_stmt *st = db_stmt(db, sql);
    if (st == NULL)
        return STORE_ERROR;
    db_bind_text(st, 1, report_id);
    int rc = STORE_OK;
    if (sqlite3_step(st) == SQLITE_ROW) {
        *a = store_col_i64(st, 0);
        if (b)
            *b = store_col_i64(st, 1);
    } else {
        rc = db_sqlite_fail(db, "counting report sections");
    }
    db_stmt_done(st);
    return rc;
}

static int report_finish_locked(struct db *db, const char *report_id, const char **status)
{
    int64_t pending = 0, unsettled = 0, failed = 0;
    int rc = count_query(db, SQL_SECTIONS_PENDING, report_id, &pending, NULL);
    if (rc == STORE_OK)
        rc = count_query(db, SQL_SECTIONS_UNSETTLED, report_id, &unsettled, &failed);
    if (rc != STORE_OK)
        return rc;
    if (pending > 0)
        return db_fail(db, STORE_CONFLICT, "report %s has %lld section(s) still to write",
                       report_id, (long long)pending);
    *status = unsettled == 0 ? "done" : "failed";
    return report_set_status(db, report_id, *status, 1);
}

int store_report_finish(struct db *db, const char *report_id, const char **status)
{
    const char *result = NULL;
    int rc = db_tx_begin(db);
    if (rc != STORE_OK)
        return rc;
    if ((rc = report_finish_locked(db, report_id, &result)) != STORE_OK) {
        db_tx_rollback(db);
        return rc;
    }
    rc = db_tx_commit(db);
    if (status)
        *status = rc == STORE_OK ? result : NULL;
    return rc;
}

/* Jobs */

int store_jobs_unfinished(struct db *db, struct rowset *rs)
{
    sqlite3_stmt *st = db_stmt(db, SQL_JOBS_UNFINISHED);
    if (st == NULL)
        return STORE_ERROR;
    return rowset_capture_sqlite(db, st, rs, "listing unfinished jobs");
}

int store_report_jobs_start(struct db *db, const char *report_id)
{
    sqlite3_stmt *st = db_stmt(db, SQL_REPORT_JOBS_START);
    if (st == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, db_now_ms(db));
    db_bind_text(st, 2, report_id);
    return db_step_done(db, st, "starting a report's jobs");
}

int store_job_start(struct db *db, const char *job_id)
{
    sqlite3_stmt *st = db_stmt(db, SQL_JOB_START);
    if (st == NULL)
        return STORE_ERROR;
    sqlite3_bind_int64(st, 1, db_now_ms(db));
    db_bind_text(st, 2, job_id);
    int rc = db_step_done(db, st, "starting a job");
    if (rc == STORE_OK && db_changes(db) == 0)
        rc = db_fail(db, STORE_NOT_FOUND, "no unfinished job %.40s", job_id ? job_id : "");
    return rc;
}
