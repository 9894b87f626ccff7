/* o2c audit: the audit log as JSON lines. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "store/audit.h"
#include "store/db.h"
#include "store/store_lua.h"
#include "cli/store_cli.h"

/* o2c audit */

struct audit_print {
    char *buf;
    size_t cap;
    int64_t last;
    int n, oom;
};

/* Prints the store's JSON of EV with "at" as the API gives it: RFC 3339,
 * and the Unix ms beside it as "at_ms".  The store writes "at" in ms right
 * after "seq"; that head is replaced, the rest printed as it is. */
static void audit_print_line(const struct audit_event *ev, const char *json)
{
    char head[64], iso[32];
    int n = snprintf(head, sizeof head, "{\"seq\":%" PRId64 ",\"at\":%" PRId64, ev->seq, ev->at);
    if (n <= 0 || (size_t)n >= sizeof head || strncmp(json, head, (size_t)n) != 0 ||
        (json[n] != ',' && json[n] != '}')) {
        puts(json); /* a layout this does not know: printed unchanged */
        return;
    }
    const char *rest = json + n;
    store_lua_format_time(ev->at, iso);
    printf("{\"seq\":%" PRId64 ",\"at\":\"%s\",\"at_ms\":%" PRId64 "%s\n", ev->seq, iso, ev->at,
           rest);
}

static int audit_print_event(void *ud, const struct audit_event *ev)
{
    struct audit_print *p = ud;
    size_t need = audit_format_json(ev, p->buf, p->cap);
    if (need >= p->cap) {
        char *bigger = realloc(p->buf, need + 1);
        if (bigger == NULL) {
            p->oom = 1;
            return 1;
        }
        p->buf = bigger;
        p->cap = need + 1;
        audit_format_json(ev, p->buf, p->cap);
    }
    audit_print_line(ev, p->buf);
    p->last = ev->seq;
    p->n++;
    return 0;
}

int cmd_audit(int argc, char **argv)
{
    struct store_opts o;
    int rc = store_cli_parse("audit", argc, argv, "cdsu", &o);
    if (rc != CLI_OK)
        return rc;
    if (o.nargs != 0)
        return cli_usage_error("audit", "takes no positional arguments");
    struct audit_filter f = {.user = o.user, .limit = 1000};
    if (o.since && store_lua_parse_time(o.since, &f.since_ms) != 0)
        return cli_usage_error("audit", "--since must be an ISO 8601 time "
                                        "(2026-11-28T09:00:00Z) or a date (2026-11-28)");
    struct db *db;
    if ((rc = store_cli_open(&o, 0, 1, &db)) != CLI_OK)
        return rc;
    struct audit_print p = {.cap = 4096};
    p.buf = malloc(p.cap);
    rc = p.buf ? CLI_OK : CLI_FAILED;
    while (rc == CLI_OK) {
        p.n = 0;
        if (audit_query(db, &f, audit_print_event, &p) != STORE_OK || p.oom) {
            fprintf(stderr, "o2c audit: %s\n", p.oom ? "out of memory" : db_errmsg(db));
            rc = CLI_FAILED;
        }
        if (p.n < f.limit)
            break;
        f.after_seq = p.last;
    }
    free(p.buf);
    db_close(db);
    return rc;
}
