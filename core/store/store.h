/* Assessments, answers, score snapshots, reports and their sections, jobs,
 * attachments and generations.  Implemented by store_assessment.c,
 * store_report.c, store_attachment.c and store_generation.c.
 *
 * Conventions:
 * - Every function returns an enum store_rc; db_errmsg() explains failures.
 * - Functions taking `const struct user *actor` apply the access rule of
 *   authz.h themselves: what the actor may not see is STORE_NOT_FOUND, the
 *   same as what does not exist.  Background work (the job runner) passes
 *   authz_system_user().
 * - Readers named ..._rows (and store_assessment_query) capture their records into a rowset
 *   (rowset.h) whose columns are named for the fields o2c.store shows
 *   (rowset_lua.h), so the Lua side needs no per-record code and no engine
 *   is visible above this header.
 * - JSON values (answers, targets, scores, details) are opaque text here;
 *   the Lua side encodes and decodes them.
 * - Each function that changes data is one transaction (nested inside the
 *   caller's when one is open, see db_tx_begin). */
#ifndef O2C_STORE_STORE_H
#define O2C_STORE_STORE_H
#include <stddef.h>
#include <stdint.h>
#include "store/db.h"
#include "store/rowset.h"
#include "store/user.h"
#include "store/uuid.h"

#define STORE_TYPE_MAX 64        /* assessment type id, [a-z0-9_-] */
#define STORE_CLIENT_MAX 256     /* client name, bytes */
#define STORE_TARGETS_MAX 4096   /* targets JSON, bytes */
#define STORE_QUESTION_MAX 128   /* question id, bytes */
#define STORE_HASH_HEX 65        /* 64 hex characters + NUL */
#define STORE_GENERATION_MAX 128 /* generation hash, bytes */

/* Assessments */

/* Creates an assessment owned by OWNER; ID (may be NULL) receives its id.
 * TARGETS_JSON NULL means "{}".  STORE_INVALID for an empty or oversized
 * type, client or targets. */
int store_assessment_create(struct db *db, const struct user *owner, const char *type,
                            const char *client, const char *targets_json, char id[UUID_STR_LEN]);

/* STORE_OK when assessment ID is live and ACTOR may see it; *REVISION (may
 * be NULL) gets its revision.  STORE_NOT_FOUND otherwise. */
int store_assessment_access(struct db *db, const struct user *actor, const char *id,
                            int64_t *revision);

/* Keyset pagination, newest first: pass the last id of the previous page as
 * BEFORE_ID (NULL for the first page).  LIMIT is clamped to 1..500. */
struct store_page {
    const char *before_id;
    int limit;
};
/* Assessment ID when not NULL (STORE_NOT_FOUND unless live and ACTOR may
 * see it), else a PAGE of the live assessments ACTOR may see (its own, or
 * all for an admin), as rows {id, type, client, owner, owner_name, targets,
 * revision, created_at, updated_at}. */
int store_assessment_rows(struct db *db, const struct user *actor, const char *id,
                          const struct store_page *page, struct rowset *rs);

/* The rows of SQL (query.h, ARGS bound) into RS when assessment ID is live
 * and ACTOR may see it, else STORE_NOT_FOUND: how a binding reads what
 * belongs to an assessment (answers, scores, reports, attachments) with
 * the access rule applied here. */
struct db_arg;
int store_assessment_query(struct db *db, const struct user *actor, const char *id, const char *sql,
                           const char *what, struct rowset *rs, const struct db_arg *args,
                           size_t n);

/* Soft delete (kept until retention purges it).  STORE_NOT_FOUND when
 * missing, already deleted, or not visible to ACTOR. */
int store_assessment_delete(struct db *db, const struct user *actor, const char *id);

/* Answers */

struct answer_input {
    const char *question_id;
    const char *value_json; /* NULL removes the answer */
    const char *note;       /* may be NULL */
};

/* Saves N answers on top of BASE_REVISION in one transaction.
 * STORE_OK: *REVISION is the new revision (BASE_REVISION + 1).
 * STORE_CONFLICT: someone saved first; *REVISION is the current revision
 * and nothing was written.  STORE_NOT_FOUND: no such assessment for ACTOR.
 * STORE_INVALID: an empty or oversized question id. */
int store_save_answers(struct db *db, const struct user *actor, const char *assessment_id,
                       int64_t base_revision, const struct answer_input *answers, size_t n,
                       int64_t *revision);

/* Score snapshots */

/* Stores scores computed for REVISION of an assessment by GENERATION, which
 * must have been stored with store_generation_put (STORE_INVALID if not).
 * ID (may be NULL) receives the snapshot id. */
int store_score_put(struct db *db, const char *assessment_id, int64_t revision,
                    const char *generation, const char *scores_json, char id[UUID_STR_LEN]);

/* Generations: hash -> the exact script and KB sources, stored once */

/* Stores SOURCES under HASH unless already there; *CREATED (may be NULL)
 * says whether this call stored it.  The hash is the caller's (the host's
 * content hash); the store does not recompute it. */
int store_generation_put(struct db *db, const char *hash, const void *sources, size_t len,
                         int *created);
int store_generation_exists(struct db *db, const char *hash);

/* Reports, sections, jobs */

/* What the runner shows of a section besides its id; any field may be NULL. */
struct report_section_plan {
    const char *title;
    const char *kind;
    const char *depends_json; /* JSON list of section ids */
};

struct report_request {
    const char *assessment_id;
    int64_t revision; /* the answers the report is written from */
    const char *generation;
    const char *const *section_ids; /* in display order */
    size_t n_sections;
    const char *provider, *model;            /* may be NULL */
    const struct report_section_plan *plans; /* NULL, or n_sections entries */
};

/* Creates the report (queued), its sections (queued) and a job to write it,
 * in one transaction.  Writes the ids to REPORT_ID and JOB_ID (may be NULL). */
int store_report_create(struct db *db, const struct user *actor, const struct report_request *r,
                        char report_id[UUID_STR_LEN], char job_id[UUID_STR_LEN]);

/* STORE_OK when report ID exists, its assessment is live and ACTOR may see
 * it; STORE_NOT_FOUND otherwise. */
int store_report_access(struct db *db, const struct user *actor, const char *report_id);

/* A section's next state, for the job runner: STATUS "running" (a call
 * begins), "retrying" (ERROR says why), "done" (TEXT required; WARNING may
 * say e.g. that it was cut at the token limit) or "failed" (ERROR required).
 * PROVIDER and MODEL NULL keep the stored ones; the call's tokens are added
 * to the section's totals. */
struct section_change {
    const char *status;
    const char *text, *warning, *error;
    const char *provider, *model;
    int64_t tokens_in, tokens_out;
};

/* Each change is its own transaction, so a crash loses at most the calls
 * in flight.  STORE_NOT_FOUND for an unknown report or section. */
int store_section_set(struct db *db, const char *report_id, const char *section_id,
                      const struct section_change *c);

/* The user's "retry" button: a failed section goes back to queued, and the
 * report (and its job) back to running/queued.  STORE_CONFLICT when the
 * section is not failed.  JOB_ID (may be NULL) gets the job to run. */
int store_section_retry(struct db *db, const struct user *actor, const char *report_id,
                        const char *section_id, char job_id[UUID_STR_LEN]);

/* Marks a queued report running (a no-op for one already running or
 * finished) and starts every unfinished job of it (queued -> running,
 * attempts + 1), in one transaction: when the runner picks it up. */
int store_report_start(struct db *db, const char *report_id);
/* Ends the report from its sections: "done" when all are done, else
 * "failed"; ends its job the same way.  *STATUS (may be NULL) gets which. */
int store_report_finish(struct db *db, const char *report_id, const char **status);

/* Attachments */

#define STORE_ATTACHMENT_NAME_MAX 128
#define STORE_MEDIA_TYPE_MAX 64

/* Writes DATA to <data>/attachments/<hash> (BLAKE2b-256, hex) unless that
 * file exists: temp file, fsync, rename, fsync of the directory, so a crash
 * leaves either nothing or the whole file.  HASH receives the name.  Call it
 * before store_attachment_put (an unreferenced file is an orphan that
 * retention removes after a grace period).  Touches only files under
 * DATA_DIR, so a thread-pool worker may call it while the loop uses the
 * database.  0, or -1 with the reason in ERR (-2 when the disk or quota is
 * full). */
int store_blob_write_file(const char *data_dir, const void *data, size_t len,
                          char hash[STORE_HASH_HEX], char *err, size_t errlen);
/* Full path of the file for HASH (validated as 64 hex characters). */
int store_blob_path(struct db *db, const char *hash, char *buf, size_t cap);

/* Adds or replaces the attachment NAME of an assessment.  The caller checks
 * media type and count limits before. */
int store_attachment_put(struct db *db, const struct user *actor, const char *assessment_id,
                         const char *name, const char *media_type, const char *hash, int64_t size);
int store_attachment_delete(struct db *db, const struct user *actor, const char *assessment_id,
                            const char *name);

/* Files under <data>/attachments that no attachment refers to (or temp
 * files left by a crash) and older than MIN_AGE_MS: FN gets each path. */
typedef int (*store_path_fn)(void *ud, const char *path);
int store_attachment_orphans(struct db *db, int64_t min_age_ms, store_path_fn fn, void *ud);

#endif
