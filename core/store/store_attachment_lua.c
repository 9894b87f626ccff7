/* o2c.store attachment functions: evidence files of an assessment.
 *
 *   store.attachment_put(actor, id, name, media_type, bytes) -> meta
 *       | nil, msg, "refused" (limits.attachments_per_assessment reached)
 *   store.attachment_get(actor, id, name) -> meta, bytes
 *   store.attachment_list(actor, id) -> {meta...} (by name)
 *   store.attachment_delete(actor, id, name) -> true
 *
 * meta = {name, media_type, size, sha, created_by, created_at, created_at_ms}.
 * The handler checks the media type and name rules; the store checks
 * access and the count limit.  The bytes are written under their content
 * hash (temp file, fsync, rename) on the thread pool while the task waits;
 * the row is written after, with the limit checked again inside the
 * transaction.  A deleted attachment's file is left for retention (the same
 * content may be attached elsewhere). */
#include <errno.h>
#include <lauxlib.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/query.h"
#include "store/store.h"
#include "store/rowset_lua.h"
#include "store/store_lua_internal.h"
#include "store/uuid.h"

/* Named for the Lua fields (rowset_lua.h). */
#define ATTACHMENT_SELECT                                                                          \
    "SELECT a.name, a.content_hash AS sha, a.media_type, a.size, u.name AS created_by,"            \
    " a.created_at AS \"created_at:time\""                                                         \
    " FROM attachments a JOIN users u ON u.id = a.created_by"
static const char SQL_ATTACHMENT_GET[] =
    ATTACHMENT_SELECT " WHERE a.assessment_id = ? AND a.name = ?";
static const char SQL_ATTACHMENT_LIST[] =
    ATTACHMENT_SELECT " WHERE a.assessment_id = ? ORDER BY a.name";

/* Attachment NAME of assessment ID (STORE_NOT_FOUND when none), or all of
 * them by name (NAME NULL), as ACTOR may see them. */
static int attachment_rows(struct db *db, const struct user *actor, const char *id,
                           const char *name, struct rowset *rs)
{
    if (name == NULL)
        return store_assessment_query(db, actor, id, SQL_ATTACHMENT_LIST, "listing attachments", rs,
                                      DB_ARGS(DB_TEXT(id)));
    int rc = store_assessment_query(db, actor, id, SQL_ATTACHMENT_GET, "reading an attachment", rs,
                                    DB_ARGS(DB_TEXT(id), DB_TEXT(name)));
    if (rc == STORE_OK && rs->nrows == 0)
        rc = db_fail(db, STORE_NOT_FOUND, "no attachment %.128s", name);
    return rc;
}

/* How many attachments assessment ? has, and whether one is named ?. */
static const char SQL_ATTACHMENT_ROOM[] =
    "SELECT COUNT(*), COUNT(*) FILTER (WHERE name = ?) FROM attachments WHERE assessment_id = ?";

/* STORE_OK when ACTOR may add NAME to assessment ID without passing LIMIT
 * (replacing an existing name always may). */
static int attachment_room(struct db *db, const struct user *actor, const char *id,
                           const char *name, int64_t limit)
{
    struct rowset counts;
    rowset_init(&counts, 0);
    int rc = store_assessment_query(db, actor, id, SQL_ATTACHMENT_ROOM, "counting attachments",
                                    &counts, DB_ARGS(DB_TEXT(name), DB_TEXT(id)));
    int64_t count = rowset_int(&counts, 0, 0), replaces = rowset_int(&counts, 0, 1);
    rowset_free(&counts);
    if (rc == STORE_OK && !replaces && count >= limit)
        return db_fail(db, STORE_REFUSED,
                       "assessment %s already has %lld attachments, the limit "
                       "(limits.attachments_per_assessment); delete one first",
                       id, (long long)count);
    return rc;
}

struct put_op {
    struct user actor;
    char id[UUID_STR_LEN];
    char name[STORE_ATTACHMENT_NAME_MAX + 1];
    char media_type[STORE_MEDIA_TYPE_MAX + 1];
    char *data_dir;
    char *bytes;
    size_t len;
    char hash[STORE_HASH_HEX];
    char err[512];
    int ok;
    int full; /* the write failed for lack of space */
};

static void put_release(void *data)
{
    struct put_op *op = data;
    free(op->data_dir);
    free(op->bytes);
    free(op);
}

static void put_work(void *data)
{
    struct put_op *op = data;
    int rc =
        store_blob_write_file(op->data_dir, op->bytes, op->len, op->hash, op->err, sizeof op->err);
    op->ok = rc == 0;
    op->full = rc == -2;
}

static int put_push(lua_State *co, void *data)
{
    struct put_op *op = data;
    struct store_lua *s = store_lua_get(co);
    if (!op->ok)
        return store_lua_failf(co, op->full ? STORE_FULL : STORE_ERROR, "%s", op->err);
    lua_createtable(co, 0, 3);
    lua_pushstring(co, op->name);
    lua_setfield(co, -2, "name");
    lua_pushstring(co, op->media_type);
    lua_setfield(co, -2, "media_type");
    lua_pushinteger(co, (lua_Integer)op->len);
    lua_setfield(co, -2, "size");
    const char *details = store_lua_encode(co, -1, "audit details", NULL);
    struct rowset *rs = rowset_lua_new(co, 0);
    int rc = db_tx_begin(s->db);
    if (rc != STORE_OK)
        return store_lua_fail(co, s->db, rc);
    rc = attachment_room(s->db, &op->actor, op->id, op->name, s->cfg.attachments_per_assessment);
    if (rc == STORE_OK)
        rc = store_attachment_put(s->db, &op->actor, op->id, op->name, op->media_type, op->hash,
                                  (int64_t)op->len);
    rc = store_lua_audit_end(s->db, rc, &op->actor, "attachment.added", op->id, NULL, details);
    if (rc == STORE_OK)
        rc = attachment_rows(s->db, &op->actor, op->id, op->name, rs);
    return store_lua_push_rows(co, s->db, rc, rs, STORE_LUA_ROW);
}

static int store_attachment_put_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct user actor;
    const char *id;
    int rc = store_lua_actor_and_id(L, s->db, "assessment", &actor, &id);
    size_t name_len, type_len, len;
    const char *name = luaL_checklstring(L, 3, &name_len);
    const char *media_type = luaL_checklstring(L, 4, &type_len);
    const char *bytes = luaL_checklstring(L, 5, &len);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    if (name_len == 0 || name_len > STORE_ATTACHMENT_NAME_MAX || strlen(name) != name_len)
        return store_lua_failf(L, STORE_INVALID, "attachment name must be 1-%d bytes",
                               STORE_ATTACHMENT_NAME_MAX);
    if (type_len == 0 || type_len > STORE_MEDIA_TYPE_MAX)
        return store_lua_failf(L, STORE_INVALID, "media type must be 1-%d bytes",
                               STORE_MEDIA_TYPE_MAX);
    /* Checked before writing the file (no work for a refused upload), and
     * again with the row. */
    rc = attachment_room(s->db, &actor, id, name, s->cfg.attachments_per_assessment);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    struct put_op *op = calloc(1, sizeof *op);
    if (op == NULL)
        return luaL_error(L, "out of memory");
    op->actor = actor;
    snprintf(op->id, sizeof op->id, "%s", id);
    snprintf(op->name, sizeof op->name, "%s", name);
    snprintf(op->media_type, sizeof op->media_type, "%s", media_type);
    op->data_dir = strdup(db_data_dir(s->db));
    /* A copy: the task may die while the pool still reads it. */
    op->bytes = malloc(len ? len : 1);
    op->len = len;
    if (op->data_dir == NULL || op->bytes == NULL) {
        put_release(op);
        return luaL_error(L, "out of memory");
    }
    memcpy(op->bytes, bytes, len);
    return store_lua_work(L, 0, put_work, put_push, put_release, op);
}

/* Reads the file of the attachment in RS into a new userdata; STORE_OK or
 * STORE_ERROR. */
static int read_blob(lua_State *L, struct db *db, const struct rowset *rs, size_t *size)
{
    const char *name = rowset_text(rs, 0, (size_t)rowset_column(rs, "name"));
    *size = (size_t)rowset_int(rs, 0, (size_t)rowset_column(rs, "size"));
    char path[4200];
    int rc = store_blob_path(db, rowset_text(rs, 0, (size_t)rowset_column(rs, "sha")), path,
                             sizeof path);
    if (rc != STORE_OK)
        return rc;
    char *buf = lua_newuserdatauv(L, *size ? *size : 1, 0); /* may raise: nothing open yet */
    FILE *f = fopen(path, "rbe");
    if (f == NULL)
        return db_fail(db, STORE_ERROR, "attachment %s: cannot open %s: %s", name, path,
                       strerror(errno));
    size_t got = fread(buf, 1, *size, f);
    fclose(f);
    if (got != *size)
        return db_fail(db, STORE_ERROR, "attachment %s: %s is shorter than its %zu bytes", name,
                       path, *size);
    return STORE_OK;
}

static int store_attachment_get_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct user actor;
    const char *id;
    int rc = store_lua_actor_and_id(L, s->db, "assessment", &actor, &id);
    const char *name = store_lua_check_text(L, 3);
    struct rowset *rs = rowset_lua_new(L, 0);
    size_t size = 0;
    if (rc == STORE_OK)
        rc = attachment_rows(s->db, &actor, id, name, rs);
    if (rc == STORE_OK)
        rc = read_blob(L, s->db, rs, &size); /* pushes the buffer */
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    rowset_push_row(L, rs, 0);
    lua_pushlstring(L, lua_touserdata(L, -2), size);
    return 2;
}

static int store_attachment_list_lua(lua_State *L)
{
    return store_lua_assessment_read(L, SQL_ATTACHMENT_LIST, "listing attachments", NULL,
                                     STORE_LUA_LIST);
}

static int store_attachment_delete_lua(lua_State *L)
{
    struct store_lua *s = store_lua_get(L);
    struct user actor;
    const char *id;
    int rc = store_lua_actor_and_id(L, s->db, "assessment", &actor, &id);
    const char *name = store_lua_check_text(L, 3);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, "name");
    const char *details = store_lua_encode(L, -1, "audit details", NULL);
    if (rc != STORE_OK)
        return store_lua_fail(L, s->db, rc);
    if ((rc = db_tx_begin(s->db)) == STORE_OK)
        rc = store_lua_audit_end(s->db, store_attachment_delete(s->db, &actor, id, name), &actor,
                                 "attachment.deleted", id, NULL, details);
    return store_lua_done(L, s->db, rc);
}

void store_lua_attachment_funcs(lua_State *L)
{
    static const luaL_Reg funcs[] = {{"attachment_put", store_attachment_put_lua},
                                     {"attachment_get", store_attachment_get_lua},
                                     {"attachment_list", store_attachment_list_lua},
                                     {"attachment_delete", store_attachment_delete_lua},
                                     {NULL, NULL}};
    luaL_setfuncs(L, funcs, 0);
}
