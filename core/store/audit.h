/* The audit log: an append-only table (triggers refuse UPDATE and DELETE,
 * and nothing purges it).  Callers record who did what: logins (success and
 * failure, with the address), logouts, user changes, assessment create and
 * delete, answers saved (which questions), reports requested and finished,
 * generation changes, retention runs. */
#ifndef O2C_STORE_AUDIT_H
#define O2C_STORE_AUDIT_H
#include <stdint.h>
#include "store/db.h"

#define AUDIT_ACTION_MAX 64

struct audit_event {
    int64_t seq;         /* set by the store: increasing, never reused */
    int64_t at;          /* set by the store (db clock), Unix ms */
    const char *user;    /* acting user's name; NULL for the system or unknown */
    const char *action;  /* e.g. "login.failed", "answers.saved" (required) */
    const char *target;  /* e.g. an assessment id (may be NULL) */
    const char *address; /* client address (may be NULL) */
    const char *details; /* JSON text (may be NULL) */
};

/* Appends EV (seq and at are ignored); *SEQ (may be NULL) gets its number. */
int audit_append(struct db *db, const struct audit_event *ev, int64_t *seq);

struct audit_filter {
    int64_t since_ms;  /* events at or after (0: all) */
    const char *user;  /* only this user's (NULL: everyone's) */
    int64_t after_seq; /* paging: events after this seq (0: from the start) */
    int limit;         /* 0: 1000; clamped to 10000 */
};
typedef int (*audit_fn)(void *ud, const struct audit_event *ev);
/* Events in order of seq. */
int audit_query(struct db *db, const struct audit_filter *filter, audit_fn fn, void *ud);

/* The events of audit_query as rows {seq, at, user, action, target,
 * address, details} of RS (rowset.h). */
struct rowset;
int audit_rows(struct db *db, const struct audit_filter *filter, struct rowset *rs);

/* Writes EV as one JSON object (no newline) into BUF; truncated output is
 * still NUL-terminated.  Returns the length it needed (like snprintf). */
size_t audit_format_json(const struct audit_event *ev, char *buf, size_t cap);

#endif
