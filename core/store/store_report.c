#include <string.h>
#include "store/authz.h"
#include "store/rowset.h"
#include "store/store_internal.h"

#define SECTION_ID_MAX 128

static const char SQL_REPORT_INSERT[] =
    "INSERT INTO reports (id, assessment_id, revision, generation, requested_by, status,"
    " provider, model, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)";
static const char SQL_SECTION_INSERT[] =
    "INSERT INTO report_sections (report_id, section_id, position, status, attempts,"
    " tokens_in, tokens_out, created_at, updated_at, title, kind, depends)"
    " VALUES (?, ?, ?, 'queued', 0, 0, 0, ?, ?, ?, ?, ?)";
/* A report keeps its job; a new one only when it has none (new, or its
 * job purged by retention). */
static const char SQL_JOB_INSERT_IF_NONE[] =
    "INSERT INTO jobs (id, kind, report_id, status, attempts, created_at, updated_at)"
    " SELECT ?, 'report', ?, 'queued', 0, ?, ? WHERE NOT EXISTS"
    " (SELECT 1 FROM jobs WHERE report_id = ?)";
static const char SQL_REPORT_OWNER[] =
    "SELECT a.owner_id FROM reports r JOIN assessments a ON a.id = r.assessment_id"
    " WHERE r.id = ? AND a.deleted_at IS NULL";
static const char SQL_SECTION_START[] =
    "UPDATE report_sections SET status = 'running', attempts = attempts + 1, error = NULL,"
    " warning = NULL, provider = COALESCE(?, provider), model = COALESCE(?, model),"
    " started_at = ?, updated_at = ?, finished_at = NULL WHERE report_id = ? AND section_id = ?";
/* One statement for retrying / done / failed: tokens are added, text and
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
/* Sections still to write, and sections not done. */
static const char SQL_SECTIONS_OPEN[] =
    "SELECT COUNT(*) FILTER (WHERE status IN ('queued', 'running', 'retrying')),"
    " COUNT(*) FILTER (WHERE status <> 'done') FROM report_sections WHERE report_id = ?";
static const char SQL_REPORT_START[] =
    "UPDATE reports SET status = 'running', updated_at = ? WHERE id = ? AND status = 'queued'";
static const char SQL_REPORT_SET_STATUS[] =
    "UPDATE reports SET status = ?, updated_at = ?, finished_at = ? WHERE id = ?";
static const char SQL_JOB_FOR_REPORT[] =
    "SELECT id FROM jobs WHERE report_id = ? ORDER BY id DESC LIMIT 1";
static const char SQL_JOB_SET_STATUS[] =
    "UPDATE jobs SET status = ?, updated_at = ?, finished_at = ? WHERE report_id = ?";
static const char SQL_REPORT_JOBS_START[] =
    "UPDATE jobs SET status = 'running', attempts = attempts + 1, updated_at = ?"
    " WHERE report_id = ? AND status IN ('queued', 'running')";

/* Creation */

static int report_insert(struct db *db, const struct user *actor, const struct report_request *r,
                         const char *id, int64_t now)
{
    int rc = db_exec(db, SQL_REPORT_INSERT, "creating a report",
                     DB_ARGS(DB_TEXT(id), DB_TEXT(r->assessment_id), DB_INT(r->revision),
                             DB_TEXT(r->generation), DB_TEXT(actor->id), DB_TEXT(r->provider),
                             DB_TEXT(r->model), DB_INT(now), DB_INT(now)));
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
    static const struct report_section_plan none = {0};
    if (plan == NULL)
        plan = &none;
    int rc = db_exec(db, SQL_SECTION_INSERT, "creating a report section",
                     DB_ARGS(DB_TEXT(report_id), DB_TEXT(section_id), DB_INT(position), DB_INT(now),
                             DB_INT(now), DB_TEXT(plan->title), DB_TEXT(plan->kind),
                             DB_TEXT(plan->depends_json)));
    if (rc == STORE_EXISTS)
        rc = db_fail(db, STORE_INVALID, "report section \"%s\" listed twice", section_id);
    return rc;
}

/* The report's job into JOB_ID, queued first when it has none. */
static int job_queue(struct db *db, const char *report_id, char job_id[UUID_STR_LEN], int64_t now)
{
    uuid_v7_string(job_id);
    int rc = db_exec(
        db, SQL_JOB_INSERT_IF_NONE, "queueing a report job",
        DB_ARGS(DB_TEXT(job_id), DB_TEXT(report_id), DB_INT(now), DB_INT(now), DB_TEXT(report_id)));
    if (rc == STORE_OK)
        rc = db_query_first(db, SQL_JOB_FOR_REPORT, "finding a report's job", NULL, job_id,
                            UUID_STR_LEN, NULL, DB_ARGS(DB_TEXT(report_id)));
    return rc;
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
        rc = job_queue(db, report_id, job_id, now);
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
    if ((rc = db_tx_end(db, report_create_locked(db, actor, r, rid, jid))) != STORE_OK)
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

int store_report_access(struct db *db, const struct user *actor, const char *report_id)
{
    char owner[UUID_STR_LEN];
    int found = 0;
    int rc = db_query_first(db, SQL_REPORT_OWNER, "reading a report", NULL, owner, sizeof owner,
                            &found, DB_ARGS(DB_TEXT(report_id)));
    if (rc == STORE_OK && (!found || !authz_can_access_owner(actor, owner)))
        rc = report_not_found(db, report_id);
    return rc;
}

/* Section transitions */

static int section_not_found(struct db *db, const char *report_id, const char *section_id)
{
    return db_fail(db, STORE_NOT_FOUND, "no section %.80s in report %.40s",
                   section_id ? section_id : "", report_id ? report_id : "");
}

/* The result RC of an UPDATE of one section: STORE_NOT_FOUND when it
 * matched none. */
static int section_updated(struct db *db, int rc, const char *report_id, const char *section_id)
{
    if (rc == STORE_OK && db_changes(db) == 0)
        rc = section_not_found(db, report_id, section_id);
    return rc;
}

int store_section_set(struct db *db, const char *report_id, const char *section_id,
                      const struct section_change *c)
{
    int done = strcmp(c->status, "done") == 0, failed = strcmp(c->status, "failed") == 0;
    if (done && c->text == NULL)
        return db_fail(db, STORE_INVALID, "section %.80s done without text", section_id);
    if (failed && !store_text_ok(c->error, SIZE_MAX))
        return db_fail(db, STORE_INVALID, "section %.80s failed without a reason", section_id);
    int64_t now = db_now_ms(db);
    int rc;
    if (strcmp(c->status, "running") == 0)
        rc = db_exec(db, SQL_SECTION_START, "starting a section",
                     DB_ARGS(DB_TEXT(c->provider), DB_TEXT(c->model), DB_INT(now), DB_INT(now),
                             DB_TEXT(report_id), DB_TEXT(section_id)));
    else
        rc = db_exec(db, SQL_SECTION_SETTLE, "updating a section",
                     DB_ARGS(DB_TEXT(c->status), DB_TEXT(c->error), DB_TEXT(c->text),
                             DB_TEXT(c->warning), DB_TEXT(c->provider), DB_TEXT(c->model),
                             DB_INT(c->tokens_in), DB_INT(c->tokens_out), DB_INT(now),
                             done || failed ? DB_INT(now) : DB_NULL, DB_TEXT(report_id),
                             DB_TEXT(section_id)));
    return section_updated(db, rc, report_id, section_id);
}

/* Report and job status */

static int report_set_status(struct db *db, const char *report_id, const char *status, int finished)
{
    int64_t now = db_now_ms(db);
    struct db_arg finished_at = finished ? DB_INT(now) : DB_NULL;
    int rc = db_exec(db, SQL_REPORT_SET_STATUS, "updating a report",
                     DB_ARGS(DB_TEXT(status), DB_INT(now), finished_at, DB_TEXT(report_id)));
    if (rc == STORE_OK && db_changes(db) == 0)
        return report_not_found(db, report_id);
    if (rc != STORE_OK)
        return rc;
    return db_exec(db, SQL_JOB_SET_STATUS, "updating a report job",
                   DB_ARGS(DB_TEXT(status), DB_INT(now), finished_at, DB_TEXT(report_id)));
}

static int section_status(struct db *db, const char *report_id, const char *section_id, char *buf,
                          size_t cap)
{
    int found = 0;
    int rc = db_query_first(db, SQL_SECTION_STATUS, "reading a section", NULL, buf, cap, &found,
                            DB_ARGS(DB_TEXT(report_id), DB_TEXT(section_id)));
    return rc == STORE_OK && !found ? section_not_found(db, report_id, section_id) : rc;
}

static int section_retry_locked(struct db *db, const struct user *actor, const char *report_id,
                                const char *section_id, char job_id[UUID_STR_LEN])
{
    int rc = store_report_access(db, actor, report_id);
    char status[16];
    if (rc == STORE_OK)
        rc = section_status(db, report_id, section_id, status, sizeof status);
    if (rc != STORE_OK)
        return rc;
    if (strcmp(status, "failed") != 0)
        return db_fail(db, STORE_CONFLICT, "section %.80s is %s, only a failed one can be retried",
                       section_id, status);
    int64_t now = db_now_ms(db);
    rc = db_exec(db, SQL_SECTION_REQUEUE, "re-queueing a section",
                 DB_ARGS(DB_INT(now), DB_TEXT(report_id), DB_TEXT(section_id)));
    if (rc == STORE_OK)
        rc = job_queue(db, report_id, job_id, now);
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
    rc = db_tx_end(db, section_retry_locked(db, actor, report_id, section_id, jid));
    if (rc == STORE_OK && job_id)
        memcpy(job_id, jid, UUID_STR_LEN);
    return rc;
}

int store_report_start(struct db *db, const char *report_id)
{
    int64_t now = db_now_ms(db);
    int rc = db_tx_begin(db);
    if (rc != STORE_OK)
        return rc;
    rc = db_exec(db, SQL_REPORT_START, "starting a report",
                 DB_ARGS(DB_INT(now), DB_TEXT(report_id)));
    if (rc == STORE_OK)
        rc = db_exec(db, SQL_REPORT_JOBS_START, "starting a report's jobs",
                     DB_ARGS(DB_INT(now), DB_TEXT(report_id)));
    return db_tx_end(db, rc);
}

static int report_finish_locked(struct db *db, const char *report_id, const char **status)
{
    struct rowset counts;
    rowset_init(&counts, 0);
    int rc = db_query(db, SQL_SECTIONS_OPEN, "counting report sections", &counts,
                      DB_ARGS(DB_TEXT(report_id)));
    int64_t pending = rowset_int(&counts, 0, 0), unsettled = rowset_int(&counts, 0, 1);
    rowset_free(&counts);
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
    rc = db_tx_end(db, report_finish_locked(db, report_id, &result));
    if (status)
        *status = rc == STORE_OK ? result : NULL;
    return rc;
}
