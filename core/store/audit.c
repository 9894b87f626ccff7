#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include "host/utf8.h"
#include "store/audit.h"
#include "store/query.h"
#include "store/rowset.h"

#define AUDIT_LIMIT_DEFAULT 1000
#define AUDIT_LIMIT_MAX 10000

static const char SQL_AUDIT_INSERT[] =
    "INSERT INTO audit_log (at, user_name, action, target, address, details)"
    " VALUES (?, ?, ?, ?, ?, ?) RETURNING seq";
/* Named for the Lua fields (rowset_lua.h); C reads them by position. */
#define AUDIT_COLUMNS                                                                              \
    "SELECT seq, at AS \"at:time\", user_name AS user, action, target, address,"                   \
    " details AS \"details:json\" FROM audit_log"
static const char SQL_AUDIT_QUERY[] =
    AUDIT_COLUMNS " WHERE at >= ? AND seq > ? ORDER BY seq LIMIT ?";
static const char SQL_AUDIT_QUERY_USER[] =
    AUDIT_COLUMNS " WHERE user_name = ? AND at >= ? AND seq > ? ORDER BY seq LIMIT ?";

int audit_append(struct db *db, const struct audit_event *ev, int64_t *seq)
{
    if (ev->action == NULL || ev->action[0] == '\0' || strlen(ev->action) > AUDIT_ACTION_MAX)
        return db_fail(db, STORE_INVALID, "audit event needs an action of 1-%d bytes",
                       AUDIT_ACTION_MAX);
    /* RETURNING: the one way both engines name the new row's number. */
    return db_query_first(db, SQL_AUDIT_INSERT, "appending to the audit log", seq, NULL, 0, NULL,
                          DB_ARGS(DB_INT(db_now_ms(db)), DB_TEXT(ev->user), DB_TEXT(ev->action),
                                  DB_TEXT(ev->target), DB_TEXT(ev->address), DB_TEXT(ev->details)));
}

int audit_rows(struct db *db, const struct audit_filter *f, struct rowset *rs)
{
    static const struct audit_filter all = {0};
    if (f == NULL)
        f = &all;
    int limit = f->limit > 0 ? f->limit : AUDIT_LIMIT_DEFAULT;
    if (limit > AUDIT_LIMIT_MAX)
        limit = AUDIT_LIMIT_MAX;
    if (f->user)
        return db_query(
            db, SQL_AUDIT_QUERY_USER, "reading the audit log", rs,
            DB_ARGS(DB_TEXT(f->user), DB_INT(f->since_ms), DB_INT(f->after_seq), DB_INT(limit)));
    return db_query(db, SQL_AUDIT_QUERY, "reading the audit log", rs,
                    DB_ARGS(DB_INT(f->since_ms), DB_INT(f->after_seq), DB_INT(limit)));
}

int audit_query(struct db *db, const struct audit_filter *f, audit_fn fn, void *ud)
{
    struct rowset rs;
    rowset_init(&rs, 0);
    int rc = audit_rows(db, f, &rs);
    for (size_t i = 0; rc == STORE_OK && i < rs.nrows; i++) {
        struct audit_event ev = {.seq = rowset_int(&rs, i, 0),
                                 .at = rowset_int(&rs, i, 1),
                                 .user = rowset_text(&rs, i, 2),
                                 .action = rowset_text(&rs, i, 3),
                                 .target = rowset_text(&rs, i, 4),
                                 .address = rowset_text(&rs, i, 5),
                                 .details = rowset_text(&rs, i, 6)};
        if (fn(ud, &ev) != 0)
            break;
    }
    rowset_free(&rs);
    return rc;
}

/* Appends "key":"escaped value" (or null) to the output. */
struct audit_out {
    char *buf;
    size_t cap, len;
};

static void audit_put(struct audit_out *o, const char *s, size_t n)
{
    if (o->len < o->cap) {
        size_t room = o->cap - o->len - 1;
        memcpy(o->buf + o->len, s, n < room ? n : room);
        o->buf[o->len + (n < room ? n : room)] = '\0';
    }
    o->len += n;
}

/* Appends S with each byte that does not begin a valid UTF-8 character (in
 * a row stored before text was checked) as U+FFFD; when ESCAPE, quotes,
 * backslashes and control characters as in a JSON string. */
static void audit_put_utf8(struct audit_out *o, const char *s, int escape)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t left = strlen(s), used; left > 0; p += used, left -= used) {
        char esc[8];
        used = utf8_char_len(p, left);
        if (used == 0) {
            audit_put(o, UTF8_REPLACEMENT, 3);
            used = 1;
        } else if (escape && (*p == '"' || *p == '\\')) {
            esc[0] = '\\';
            esc[1] = (char)*p;
            audit_put(o, esc, 2);
        } else if (escape && *p < 0x20) {
            audit_put(o, esc, (size_t)snprintf(esc, sizeof esc, "\\u%04x", *p));
        } else {
            audit_put(o, (const char *)p, used);
        }
    }
}

static void audit_put_string(struct audit_out *o, const char *key, const char *s)
{
    audit_put(o, ",\"", 2);
    audit_put(o, key, strlen(key));
    audit_put(o, "\":", 2);
    if (s == NULL) {
        audit_put(o, "null", 4);
        return;
    }
    audit_put(o, "\"", 1);
    audit_put_utf8(o, s, 1);
    audit_put(o, "\"", 1);
}

size_t audit_format_json(const struct audit_event *ev, char *buf, size_t cap)
{
    struct audit_out o = {buf, cap, 0};
    if (cap)
        buf[0] = '\0';
    char head[64];
    audit_put(&o, head,
              (size_t)snprintf(head, sizeof head, "{\"seq\":%" PRId64 ",\"at\":%" PRId64, ev->seq,
                               ev->at));
    audit_put_string(&o, "user", ev->user);
    audit_put_string(&o, "action", ev->action);
    audit_put_string(&o, "target", ev->target);
    audit_put_string(&o, "address", ev->address);
    /* details is JSON already: embedded as is. */
    audit_put(&o, ",\"details\":", 11);
    const char *details = ev->details && ev->details[0] ? ev->details : "null";
    audit_put_utf8(&o, details, 0);
    audit_put(&o, "}", 1);
    return o.len;
}
