#include <errno.h>
#include <string.h>
#include <unistd.h>
#include "store/query.h"
#include "store/retention.h"
#include "store/store.h"

static const char SQL_RETENTION_JOBS[] =
    "DELETE FROM jobs WHERE status IN ('done', 'failed') AND finished_at <= ?";
static const char SQL_RETENTION_ASSESSMENTS[] =
    "DELETE FROM assessments WHERE deleted_at IS NOT NULL AND deleted_at <= ?";

void retention_config_default(struct retention_config *cfg)
{
    cfg->deleted_assessment_ms = 30 * 24 * 3600 * 1000LL;
    cfg->finished_job_ms = 7 * 24 * 3600 * 1000LL;
    cfg->orphan_grace_ms = 3600 * 1000LL;
}

struct orphan_sweep {
    struct db *db;
    int64_t removed;
    int failed;
};

static int retention_unlink_orphan(void *ud, const char *path)
{
    struct orphan_sweep *s = ud;
    if (unlink(path) == 0)
        s->removed++;
    else if (errno != ENOENT && !s->failed++)
        db_fail(s->db, STORE_ERROR, "retention: cannot remove %s: %s", path, strerror(errno));
    return 0;
}

int retention_run(struct db *db, const struct retention_config *cfg,
                  const struct session_config *sessions, const struct throttle_config *throttle,
                  struct retention_counts *counts)
{
    memset(counts, 0, sizeof *counts);
    int64_t now = db_now_ms(db);
    int rc = session_cleanup(db, sessions, &counts->sessions);
    if (rc == STORE_OK)
        rc = throttle_purge(db, throttle, &counts->login_failures);
    if (rc == STORE_OK)
        rc = db_exec_count(db, SQL_RETENTION_JOBS, "deleting finished jobs", &counts->jobs,
                           DB_ARGS(DB_INT(now - cfg->finished_job_ms)));
    /* Cascades to answers, scores, reports, sections, their jobs and
     * attachment rows (foreign keys ON DELETE CASCADE). */
    if (rc == STORE_OK)
        rc = db_exec_count(db, SQL_RETENTION_ASSESSMENTS, "purging deleted assessments",
                           &counts->assessments, DB_ARGS(DB_INT(now - cfg->deleted_assessment_ms)));
    if (rc != STORE_OK)
        return rc;
    struct orphan_sweep sweep = {.db = db};
    rc = store_attachment_orphans(db, cfg->orphan_grace_ms, retention_unlink_orphan, &sweep);
    counts->orphan_files = sweep.removed;
    return rc == STORE_OK && sweep.failed ? STORE_ERROR : rc;
}
