#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "store/authz.h"
#include "store/rowset.h"
#include "store/store_internal.h"

/* Named for the Lua fields (rowset_lua.h); C reads them by position. */
#define ASSESSMENT_COLUMNS                                                                         \
    "a.id, a.type, a.client, a.owner_id AS owner, u.name AS owner_name,"                           \
    " a.targets AS \"targets:json\", a.revision, a.created_at AS \"created_at:time\","             \
    " a.updated_at AS \"updated_at:time\","                                                        \
    " u.removed_at IS NOT NULL AS \"read_only:bool\"" /* the owner was removed (user.h) */
#define ASSESSMENT_FROM " FROM assessments a JOIN users u ON u.id = a.owner_id"
#define PAGE_LIMIT_MAX 500

static const char SQL_ASSESSMENT_INSERT[] =
    "INSERT INTO assessments (id, type, client, owner_id, targets, revision, created_at,"
    " updated_at) VALUES (?, ?, ?, ?, ?, 0, ?, ?)";
static const char SQL_ASSESSMENT_GET[] =
    "SELECT " ASSESSMENT_COLUMNS ASSESSMENT_FROM " WHERE a.id = ? AND a.deleted_at IS NULL";
static const char SQL_ASSESSMENT_ACCESS[] =
    "SELECT owner_id, revision FROM assessments WHERE id = ? AND deleted_at IS NULL";
/* The first page binds "~" as the cursor: it sorts after every hex id. */
static const char SQL_ASSESSMENT_LIST_ALL[] =
    "SELECT " ASSESSMENT_COLUMNS ASSESSMENT_FROM
    " WHERE a.deleted_at IS NULL AND a.id < ? ORDER BY a.id DESC LIMIT ?";
static const char SQL_ASSESSMENT_LIST_OWN[] =
    "SELECT " ASSESSMENT_COLUMNS ASSESSMENT_FROM
    " WHERE a.owner_id = ? AND a.deleted_at IS NULL AND a.id < ? ORDER BY a.id DESC LIMIT ?";
static const char SQL_ASSESSMENT_SOFT_DELETE[] =
    "UPDATE assessments SET deleted_at = ?, updated_at = ? WHERE id = ? AND deleted_at IS NULL";
static const char SQL_ASSESSMENT_BUMP[] =
    "UPDATE assessments SET revision = revision + 1, updated_at = ?"
    " WHERE id = ? AND revision = ? AND deleted_at IS NULL";
static const char SQL_ANSWER_UPSERT[] =
    "INSERT INTO answers (assessment_id, question_id, value, note, updated_by, updated_at,"
    " revision) VALUES (?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (assessment_id, question_id) DO UPDATE SET value = excluded.value,"
    " note = excluded.note, updated_by = excluded.updated_by,"
    " updated_at = excluded.updated_at, revision = excluded.revision";
static const char SQL_ANSWER_DELETE[] =
    "DELETE FROM answers WHERE assessment_id = ? AND question_id = ?";
static const char SQL_SCORE_INSERT[] =
    "INSERT INTO score_snapshots (id, assessment_id, revision, generation, scores, created_at)"
    " VALUES (?, ?, ?, ?, ?, ?)";

int store_text_ok(const char *s, size_t max)
{
    return s != NULL && s[0] != '\0' && strlen(s) <= max;
}

static int store_type_ok(const char *type)
{
    if (!store_text_ok(type, STORE_TYPE_MAX))
        return 0;
    for (const char *p = type; *p; p++)
        if (!islower((unsigned char)*p) && !isdigit((unsigned char)*p) && *p != '_' && *p != '-')
            return 0;
    return 1;
}

int store_assessment_create(struct db *db, const struct user *owner, const char *type,
                            const char *client, const char *targets_json, char id[UUID_STR_LEN])
{
    if (owner == NULL || owner->disabled || owner->id[0] == '\0')
        return db_fail(db, STORE_INVALID, "creating an assessment needs an enabled account");
    if (!store_type_ok(type))
        return db_fail(db, STORE_INVALID,
                       "invalid assessment type \"%.80s\": use 1-%d of a-z 0-9 _ -",
                       type ? type : "", STORE_TYPE_MAX);
    if (!store_text_ok(client, STORE_CLIENT_MAX))
        return db_fail(db, STORE_INVALID, "client must be 1-%d bytes", STORE_CLIENT_MAX);
    if (targets_json == NULL)
        targets_json = "{}";
    if (!store_text_ok(targets_json, STORE_TARGETS_MAX))
        return db_fail(db, STORE_INVALID, "targets must be 1-%d bytes of JSON", STORE_TARGETS_MAX);
    char new_id[UUID_STR_LEN];
    uuid_v7_string(new_id);
    int64_t now = db_now_ms(db);
    int rc = db_exec(db, SQL_ASSESSMENT_INSERT, "creating an assessment",
                     DB_ARGS(DB_TEXT(new_id), DB_TEXT(type), DB_TEXT(client), DB_TEXT(owner->id),
                             DB_TEXT(targets_json), DB_INT(now), DB_INT(now)));
    if (rc == STORE_OK && id)
        memcpy(id, new_id, UUID_STR_LEN);
    return rc;
}

static int assessment_not_found(struct db *db, const char *id)
{
    return db_fail(db, STORE_NOT_FOUND, "no assessment %.40s", id ? id : "");
}

int store_assessment_access(struct db *db, const struct user *actor, const char *id,
                            int64_t *revision)
{
    struct rowset rs;
    rowset_init(&rs, 0);
    int rc =
        db_query(db, SQL_ASSESSMENT_ACCESS, "reading an assessment", &rs, DB_ARGS(DB_TEXT(id)));
    if (rc == STORE_OK && (rs.nrows == 0 || !authz_can_access_owner(actor, rowset_text(&rs, 0, 0))))
        rc = assessment_not_found(db, id);
    if (rc == STORE_OK && revision)
        *revision = rowset_int(&rs, 0, 1);
    rowset_free(&rs);
    return rc;
}

int store_assessment_rows(struct db *db, const struct user *actor, const char *id,
                          const struct store_page *page, struct rowset *rs)
{
    if (id)
        return store_assessment_query(db, actor, id, SQL_ASSESSMENT_GET, "reading an assessment",
                                      rs, DB_ARGS(DB_TEXT(id)));
    const char *owner = authz_list_owner(actor);
    const char *cursor = page && page->before_id ? page->before_id : "~";
    int limit = page && page->limit > 0 ? page->limit : 50;
    if (limit > PAGE_LIMIT_MAX)
        limit = PAGE_LIMIT_MAX;
    if (owner)
        return db_query(db, SQL_ASSESSMENT_LIST_OWN, "listing assessments", rs,
                        DB_ARGS(DB_TEXT(owner), DB_TEXT(cursor), DB_INT(limit)));
    return db_query(db, SQL_ASSESSMENT_LIST_ALL, "listing assessments", rs,
                    DB_ARGS(DB_TEXT(cursor), DB_INT(limit)));
}

int store_assessment_query(struct db *db, const struct user *actor, const char *id, const char *sql,
                           const char *what, struct rowset *rs, const struct db_arg *args, size_t n)
{
    int rc = store_assessment_access(db, actor, id, NULL);
    return rc == STORE_OK ? db_query(db, sql, what, rs, args, n) : rc;
}

int store_assessment_delete(struct db *db, const struct user *actor, const char *id)
{
    int rc = db_tx_begin(db);
    if (rc != STORE_OK)
        return rc;
    rc = store_assessment_access(db, actor, id, NULL);
    int64_t now = db_now_ms(db);
    if (rc == STORE_OK)
        rc = user_assessment_writable(db, id);
    if (rc == STORE_OK)
        rc = db_exec(db, SQL_ASSESSMENT_SOFT_DELETE, "deleting an assessment",
                     DB_ARGS(DB_INT(now), DB_INT(now), DB_TEXT(id)));
    return db_tx_end(db, rc);
}

/* Answers */

static int answers_validate(struct db *db, const struct answer_input *answers, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!store_text_ok(answers[i].question_id, STORE_QUESTION_MAX))
            return db_fail(db, STORE_INVALID, "answer %zu: question id must be 1-%d bytes", i + 1,
                           STORE_QUESTION_MAX);
        if (answers[i].value_json && answers[i].value_json[0] == '\0')
            return db_fail(db, STORE_INVALID, "answer %s: empty value (use NULL to remove)",
                           answers[i].question_id);
    }
    return STORE_OK;
}

static int answer_write(struct db *db, const char *assessment_id, const struct answer_input *in,
                        const char *user_id, int64_t now, int64_t revision)
{
    if (in->value_json == NULL)
        return db_exec(db, SQL_ANSWER_DELETE, "removing an answer",
                       DB_ARGS(DB_TEXT(assessment_id), DB_TEXT(in->question_id)));
    return db_exec(db, SQL_ANSWER_UPSERT, "saving an answer",
                   DB_ARGS(DB_TEXT(assessment_id), DB_TEXT(in->question_id),
                           DB_TEXT(in->value_json), DB_TEXT(in->note), DB_TEXT(user_id),
                           DB_INT(now), DB_INT(revision)));
}

/* Moves the revision from BASE to BASE + 1.  The WHERE guard is what makes
 * the save safe on engines that do not serialise writers the way SQLite's
 * BEGIN IMMEDIATE does. */
static int assessment_bump_revision(struct db *db, const char *id, int64_t base, int64_t now)
{
    int rc = db_exec(db, SQL_ASSESSMENT_BUMP, "updating the revision",
                     DB_ARGS(DB_INT(now), DB_TEXT(id), DB_INT(base)));
    if (rc == STORE_OK && db_changes(db) != 1)
        rc = db_fail(db, STORE_CONFLICT, "assessment %s changed during the save", id);
    return rc;
}

static int answers_save_locked(struct db *db, const struct user *actor, const char *id,
                               int64_t base, const struct answer_input *answers, size_t n,
                               int64_t *revision)
{
    int rc = store_assessment_access(db, actor, id, revision);
    if (rc == STORE_OK)
        rc = user_assessment_writable(db, id);
    if (rc != STORE_OK)
        return rc;
    if (*revision != base)
        return db_fail(db, STORE_CONFLICT,
                       "assessment %s is at revision %lld, the save was based on %lld", id,
                       (long long)*revision, (long long)base);
    int64_t now = db_now_ms(db);
    if ((rc = assessment_bump_revision(db, id, base, now)) != STORE_OK)
        return rc;
    for (size_t i = 0; i < n && rc == STORE_OK; i++)
        rc = answer_write(db, id, &answers[i], actor->id, now, base + 1);
    if (rc == STORE_INVALID) /* foreign key on updated_by: the actor is no account */
        rc = db_fail(db, STORE_INVALID, "saving answers: %s is not an account", actor->name);
    if (rc == STORE_OK)
        *revision = base + 1;
    return rc;
}

int store_save_answers(struct db *db, const struct user *actor, const char *assessment_id,
                       int64_t base_revision, const struct answer_input *answers, size_t n,
                       int64_t *revision)
{
    *revision = 0;
    int rc = answers_validate(db, answers, n);
    if (rc != STORE_OK)
        return rc;
    if ((rc = db_tx_begin(db)) != STORE_OK)
        return rc;
    int64_t current = 0;
    rc = answers_save_locked(db, actor, assessment_id, base_revision, answers, n, &current);
    rc = db_tx_end(db, rc);
    if (rc == STORE_OK || rc == STORE_CONFLICT)
        *revision = current;
    return rc;
}

/* Score snapshots */

int store_score_put(struct db *db, const char *assessment_id, int64_t revision,
                    const char *generation, const char *scores_json, char id[UUID_STR_LEN])
{
    if (!store_text_ok(generation, STORE_GENERATION_MAX) || !store_text_ok(scores_json, SIZE_MAX))
        return db_fail(db, STORE_INVALID, "score snapshot needs a generation and scores");
    char new_id[UUID_STR_LEN];
    uuid_v7_string(new_id);
    int rc = db_exec(db, SQL_SCORE_INSERT, "storing scores",
                     DB_ARGS(DB_TEXT(new_id), DB_TEXT(assessment_id), DB_INT(revision),
                             DB_TEXT(generation), DB_TEXT(scores_json), DB_INT(db_now_ms(db))));
    if (rc == STORE_INVALID)
        return db_fail(db, STORE_INVALID,
                       "storing scores: no assessment %.40s, or generation %.80s not stored "
                       "(store_generation_put first)",
                       assessment_id ? assessment_id : "", generation);
    if (rc == STORE_OK && id)
        memcpy(id, new_id, UUID_STR_LEN);
    return rc;
}
