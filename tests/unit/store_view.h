/* Assessments and attachments as the tests check them, read through the
 * row reader o2c.store pushes to Lua (store_assessment_rows) and, for what
 * the bindings read with their own SQL, through the same access rule
 * (store_assessment_query) with the SQL below; field by column name. */
#ifndef TEST_STORE_VIEW_H
#define TEST_STORE_VIEW_H
#include <stdio.h>
#include <string.h>
#include "store/query.h"
#include "store/rowset.h"
#include "store/store.h"

static const char VIEW_SQL_ANSWERS[] =
    "SELECT a.question_id, a.value, a.note, u.name AS \"by\", a.updated_at, a.revision"
    " FROM answers a JOIN users u ON u.id = a.updated_by"
    " WHERE a.assessment_id = ? ORDER BY a.question_id";
static const char VIEW_SQL_SCORE_LATEST[] =
    "SELECT id, scores, generation, revision FROM score_snapshots WHERE assessment_id = ?"
    " ORDER BY id DESC LIMIT 1";
static const char VIEW_SQL_GENERATION[] = "SELECT sources FROM generations WHERE hash = ?";
static const char VIEW_SQL_JOBS_UNFINISHED[] =
    "SELECT id, report_id, status FROM jobs WHERE status IN ('queued', 'running') ORDER BY id";
#define VIEW_ATTACHMENT_SELECT                                                                     \
    "SELECT a.name, a.content_hash AS sha, a.media_type, a.size, u.name AS created_by,"            \
    " a.created_at FROM attachments a JOIN users u ON u.id = a.created_by"
static const char VIEW_SQL_ATTACHMENT[] =
    VIEW_ATTACHMENT_SELECT " WHERE a.assessment_id = ? AND a.name = ?";
static const char VIEW_SQL_ATTACHMENTS[] =
    VIEW_ATTACHMENT_SELECT " WHERE a.assessment_id = ? ORDER BY a.name";

/* The answers of assessment ID as ACTOR may read them, in question order:
 * {question_id, value, note, by, updated_at, revision}. */
static inline int view_answers(struct db *db, const struct user *actor, const char *id,
                               struct rowset *rs)
{
    return store_assessment_query(db, actor, id, VIEW_SQL_ANSWERS, "reading answers", rs,
                                  DB_ARGS(DB_TEXT(id)));
}

/* Attachment NAME (STORE_NOT_FOUND when none) or, NAME NULL, all of them. */
static inline int view_attachment_rows(struct db *db, const struct user *actor, const char *id,
                                       const char *name, struct rowset *rs)
{
    if (name == NULL)
        return store_assessment_query(db, actor, id, VIEW_SQL_ATTACHMENTS, "listing attachments",
                                      rs, DB_ARGS(DB_TEXT(id)));
    int rc = store_assessment_query(db, actor, id, VIEW_SQL_ATTACHMENT, "reading an attachment", rs,
                                    DB_ARGS(DB_TEXT(id), DB_TEXT(name)));
    return rc == STORE_OK && rs->nrows == 0 ? STORE_NOT_FOUND : rc;
}

struct assessment_view {
    char id[UUID_STR_LEN];
    char type[STORE_TYPE_MAX + 1];
    char client[STORE_CLIENT_MAX + 1];
    char owner_id[UUID_STR_LEN];
    char owner_name[USER_NAME_MAX + 1];
    char targets[STORE_TARGETS_MAX + 1];
    int64_t revision, created_at, updated_at;
};

struct attachment_view {
    char name[STORE_ATTACHMENT_NAME_MAX + 1];
    char content_hash[STORE_HASH_HEX];
    char media_type[STORE_MEDIA_TYPE_MAX + 1];
    char created_by[USER_NAME_MAX + 1];
    int64_t size, created_at;
};

static inline void view_copy(char *out, size_t cap, const struct rowset *rs, const char *key)
{
    int col = rowset_column(rs, key);
    const char *s = col >= 0 ? rowset_text(rs, 0, (size_t)col) : NULL;
    snprintf(out, cap, "%s", s ? s : "");
}

static inline int64_t view_int(const struct rowset *rs, const char *key)
{
    int col = rowset_column(rs, key);
    return col >= 0 ? rowset_int(rs, 0, (size_t)col) : -1;
}

/* Assessment ID as ACTOR sees it (OUT zeroed when it cannot). */
static inline int view_assessment(struct db *db, const struct user *actor, const char *id,
                                  struct assessment_view *out)
{
    struct rowset rs;
    rowset_init(&rs, 0);
    int rc = store_assessment_rows(db, actor, id, NULL, &rs);
    memset(out, 0, sizeof *out);
    if (rc == STORE_OK) {
        view_copy(out->id, sizeof out->id, &rs, "id");
        view_copy(out->type, sizeof out->type, &rs, "type");
        view_copy(out->client, sizeof out->client, &rs, "client");
        view_copy(out->owner_id, sizeof out->owner_id, &rs, "owner");
        view_copy(out->owner_name, sizeof out->owner_name, &rs, "owner_name");
        view_copy(out->targets, sizeof out->targets, &rs, "targets");
        out->revision = view_int(&rs, "revision");
        out->created_at = view_int(&rs, "created_at");
        out->updated_at = view_int(&rs, "updated_at");
    }
    rowset_free(&rs);
    return rc;
}

/* store_assessment_create, then the new assessment as its owner sees it. */
static inline int create_assessment(struct db *db, const struct user *owner, const char *type,
                                    const char *client, const char *targets,
                                    struct assessment_view *out)
{
    char id[UUID_STR_LEN];
    int rc = store_assessment_create(db, owner, type, client, targets, id);
    return rc == STORE_OK && out ? view_assessment(db, owner, id, out) : rc;
}

static inline int view_attachment(struct db *db, const struct user *actor, const char *id,
                                  const char *name, struct attachment_view *out)
{
    struct rowset rs;
    rowset_init(&rs, 0);
    int rc = view_attachment_rows(db, actor, id, name, &rs);
    memset(out, 0, sizeof *out);
    if (rc == STORE_OK) {
        view_copy(out->name, sizeof out->name, &rs, "name");
        view_copy(out->content_hash, sizeof out->content_hash, &rs, "sha");
        view_copy(out->media_type, sizeof out->media_type, &rs, "media_type");
        view_copy(out->created_by, sizeof out->created_by, &rs, "created_by");
        out->size = view_int(&rs, "size");
        out->created_at = view_int(&rs, "created_at");
    }
    rowset_free(&rs);
    return rc;
}

/* store_attachment_put, then (OUT not NULL) the attachment as ACTOR sees it. */
static inline int put_attachment(struct db *db, const struct user *actor, const char *id,
                                 const char *name, const char *media_type, const char *hash,
                                 int64_t size, struct attachment_view *out)
{
    int rc = store_attachment_put(db, actor, id, name, media_type, hash, size);
    return rc == STORE_OK && out ? view_attachment(db, actor, id, name, out) : rc;
}

/* How many assessments ACTOR sees (the list o2c.store shows, one page). */
static inline int count_assessments(struct db *db, const struct user *actor, int64_t *n)
{
    struct rowset rs;
    rowset_init(&rs, 0);
    struct store_page all = {.limit = 500};
    int rc = store_assessment_rows(db, actor, NULL, &all, &rs);
    *n = (int64_t)rs.nrows;
    rowset_free(&rs);
    return rc;
}

/* The blob write the attachment upload does on the pool, as a store code. */
static inline int blob_write(struct db *db, const void *data, size_t len, char hash[STORE_HASH_HEX])
{
    char err[512];
    int rc = store_blob_write_file(db_data_dir(db), data, len, hash, err, sizeof err);
    return rc == 0 ? STORE_OK : rc == -2 ? STORE_FULL : STORE_ERROR;
}

#endif
