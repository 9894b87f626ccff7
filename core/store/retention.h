/* Retention: one call that removes what is past its keep-by date.  The host
 * runs it on a timer and audits the counts it returns. */
#ifndef O2C_STORE_RETENTION_H
#define O2C_STORE_RETENTION_H
#include <stdint.h>
#include "store/db.h"
#include "store/session.h"
#include "store/throttle.h"

struct retention_config {
    int64_t deleted_assessment_ms; /* keep soft-deleted assessments this long (default 30 d) */
    int64_t finished_job_ms;       /* keep finished jobs this long (default 7 d) */
    int64_t orphan_grace_ms;       /* unreferenced attachment files older than this go (1 h) */
};

void retention_config_default(struct retention_config *cfg);

struct retention_counts {
    int64_t sessions;       /* expired sessions deleted */
    int64_t login_failures; /* throttle rows past the window */
    int64_t jobs;           /* finished jobs deleted */
    int64_t assessments;    /* soft-deleted assessments purged, with their answers,
                               scores, reports and attachment rows */
    int64_t orphan_files;   /* attachment files removed */
};

/* Runs every purge (each in its own transaction, so a long run does not hold
 * the write lock); orphan files are removed after the assessments, so the
 * files of purged assessments go in the same run once past their grace. */
int retention_run(struct db *db, const struct retention_config *cfg,
                  const struct session_config *sessions, const struct throttle_config *throttle,
                  struct retention_counts *counts);

#endif
