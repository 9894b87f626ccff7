/* pg_conn.h: a libpq connection driven by a uv_poll on its socket and one
 * uv_timer (connect timeout, query timeout, cancel deadline or backoff:
 * never two at once). */
#include "store/pg_conn.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A uv_poll of its own per socket: libpq may change sockets while
 * connecting, and a closed poll handle lives on until its close callback. */
struct pg_poll {
    uv_poll_t handle;
    struct pg_conn *conn;
};

struct pg_name {
    struct pg_name *next;
    char name[];
};

enum pg_phase { PHASE_NONE, PHASE_PREPARE, PHASE_EXECUTE, PHASE_DRAIN };

struct pg_conn {
    uv_loop_t *loop;
    struct pg_conn_config cfg;
    char *conninfo;
    PGconn *pq;
    struct pg_poll *poll;
    int fd;
    int events; /* what POLL watches now */
    uv_timer_t timer;
    enum pg_conn_state state;
    unsigned failures; /* connect attempts failed in a row */
    int open_handles;  /* timer and polls not yet closed */
    int cancel_pending;
    struct pg_name *prepared; /* names prepared on this connection */
    /* The query in flight. */
    enum pg_phase phase;
    struct pg_query *query;
    pg_query_fn done;
    void *ud;
    PGresult *result; /* the result kept so far: the first error, else the last */
    int want_write;
    void (*close_cb)(void *ud);
    void *close_ud;
    struct pg_conn_stats stats;
    char error[512];
};

static void conn_connect(struct pg_conn *c);
static void conn_on_poll(uv_poll_t *h, int status, int events);

const char *pg_error_name(enum pg_error error)
{
    switch (error) {
    case PG_OK:
        return "ok";
    case PG_ERR_UNAVAILABLE:
        return "unavailable";
    case PG_ERR_LOST:
        return "lost";
    case PG_ERR_QUERY:
        return "query";
    case PG_ERR_TIMEOUT:
        return "timeout";
    case PG_ERR_CLOSED:
        return "closed";
    case PG_ERR_BUSY:
        return "busy";
    case PG_ERR_NOMEM:
        return "nomem";
    }
    return "error";
}

/* ------------------------------------------------------------ query copy */

struct pg_query *pg_query_copy(const struct pg_query *q)
{
    int n = q->nparams > 0 ? q->nparams : 0;
    size_t size = sizeof(struct pg_query) + (size_t)n * (sizeof(char *) + 2 * sizeof(int));
    size_t sql_len = strlen(q->sql) + 1, name_len = q->prepared ? strlen(q->prepared) + 1 : 0;
    size += sql_len + name_len;
    for (int i = 0; i < n; i++)
        if (q->values[i])
            size +=
                (q->formats && q->formats[i] ? (size_t)q->lengths[i] : strlen(q->values[i])) + 1;
    struct pg_query *copy = malloc(size);
    if (copy == NULL)
        return NULL;
    /* Layout: the struct, values[], lengths[], formats[], then the bytes. */
    const char **values = (const char **)(copy + 1);
    int *lengths = (int *)(values + n), *formats = lengths + n;
    char *p = (char *)(formats + n);
    *copy = *q;
    copy->nparams = n;
    copy->sql = memcpy(p, q->sql, sql_len);
    p += sql_len;
    copy->prepared = name_len ? memcpy(p, q->prepared, name_len) : NULL;
    p += name_len;
    for (int i = 0; i < n; i++) {
        formats[i] = q->formats ? q->formats[i] : 0;
        values[i] = NULL;
        lengths[i] = 0;
        if (q->values[i] == NULL)
            continue;
        size_t len = formats[i] ? (size_t)q->lengths[i] : strlen(q->values[i]);
        memcpy(p, q->values[i], len);
        p[len] = '\0';
        values[i] = p;
        lengths[i] = (int)len;
        p += len + 1;
    }
    copy->values = values;
    copy->lengths = lengths;
    copy->formats = formats;
    return copy;
}

/* ------------------------------------------------------------ small parts */

static void set_error(struct pg_conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
    /* libpq's messages end in a newline (sometimes several lines). */
    size_t len = strlen(c->error);
    while (len && (c->error[len - 1] == '\n' || c->error[len - 1] == ' '))
        c->error[--len] = '\0';
    for (char *s = c->error; *s; s++)
        if (*s == '\n')
            *s = ' ';
}

static void maybe_free(struct pg_conn *c)
{
    if (c->state != PG_CONN_CLOSING || c->open_handles || c->cancel_pending)
        return;
    void (*cb)(void *) = c->close_cb;
    void *ud = c->close_ud;
    free(c->conninfo);
    free(c);
    if (cb)
        cb(ud);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct pg_conn *c = h->data;
    if (h != (uv_handle_t *)&c->timer)
        free(h); /* a struct pg_poll: its handle comes first */
    c->open_handles--;
    maybe_free(c);
}

static void stop_polling(struct pg_conn *c)
{
    if (c->poll == NULL)
        return;
    uv_poll_stop(&c->poll->handle);
    c->poll->handle.data = c;
    uv_close((uv_handle_t *)&c->poll->handle, on_handle_closed);
    c->poll = NULL;
    c->fd = -1;
    c->events = 0;
}

/* Watches the connection's current socket for EVENTS (a new poll handle
 * when libpq changed sockets).  Returns 0, or -1 (reason in c->error). */
static int watch(struct pg_conn *c, int events)
{
    int fd = PQsocket(c->pq);
    if (fd < 0) {
        set_error(c, "no socket: %s", PQerrorMessage(c->pq));
        return -1;
    }
    if (c->poll && c->fd != fd)
        stop_polling(c);
    if (c->poll == NULL) {
        struct pg_poll *p = calloc(1, sizeof *p);
        int rc = p ? uv_poll_init_socket(c->loop, &p->handle, fd) : UV_ENOMEM;
        if (rc != 0) {
            free(p);
            set_error(c, "cannot watch the socket: %s", uv_strerror(rc));
            return -1;
        }
        p->conn = c;
        p->handle.data = p;
        c->poll = p;
        c->fd = fd;
        c->open_handles++;
    }
    if (events != c->events) {
        int rc = uv_poll_start(&c->poll->handle, events, conn_on_poll);
        if (rc != 0) {
            set_error(c, "cannot watch the socket: %s", uv_strerror(rc));
            return -1;
        }
        c->events = events;
    }
    return 0;
}

static void forget_prepared(struct pg_conn *c)
{
    while (c->prepared) {
        struct pg_name *n = c->prepared;
        c->prepared = n->next;
        free(n);
    }
}

static int is_prepared(const struct pg_conn *c, const char *name)
{
    for (const struct pg_name *n = c->prepared; n; n = n->next)
        if (strcmp(n->name, name) == 0)
            return 1;
    return 0;
}

static void remember_prepared(struct pg_conn *c, const char *name)
{
    size_t len = strlen(name) + 1;
    struct pg_name *n = malloc(sizeof *n + len);
    if (n == NULL)
        return; /* prepared again next time: harmless but for a 42P05 */
    memcpy(n->name, name, len);
    n->next = c->prepared;
    c->prepared = n;
}

static void drop_pq(struct pg_conn *c)
{
    stop_polling(c);
    if (c->pq)
        PQfinish(c->pq);
    c->pq = NULL;
    forget_prepared(c);
}

static void arm_timer(struct pg_conn *c, unsigned ms, uv_timer_cb cb)
{
    uv_timer_stop(&c->timer);
    uv_update_time(c->loop); /* MS from now, not from the loop's last wake-up */
    uv_timer_start(&c->timer, cb, ms, 0);
}

static void notify_state(struct pg_conn *c, const char *why)
{
    if (c->cfg.on_state)
        c->cfg.on_state(c, c->state, why, c->cfg.ud);
}

/* Ends the query in flight with ERROR (RESULT, sqlstate and message from
 * it when given) and calls its callback.  The connection's state is set
 * before: the callback may send the next query or close. */
static void finish_query(struct pg_conn *c, enum pg_error error, PGresult *result,
                         const char *message)
{
    pg_query_fn done = c->done;
    void *ud = c->ud;
    free(c->query);
    c->query = NULL;
    c->done = NULL;
    c->ud = NULL;
    c->result = NULL;
    if (done == NULL) {
        PQclear(result);
        return;
    }
    const char *sqlstate = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : NULL;
    struct pg_reply reply = {.error = error,
                             .result = result,
                             .sqlstate = sqlstate ? sqlstate : "",
                             .message = message ? message : ""};
    done(&reply, ud);
    PQclear(reply.result);
}

/* ------------------------------------------------------------ going down */

static void on_backoff_over(uv_timer_t *t)
{
    conn_connect(t->data);
}

static unsigned backoff_ms(const struct pg_conn *c)
{
    unsigned ms = c->cfg.backoff_min_ms;
    for (unsigned i = 1; i < c->failures && ms < c->cfg.backoff_max_ms; i++)
        ms *= 2;
    return ms < c->cfg.backoff_max_ms ? ms : c->cfg.backoff_max_ms;
}

/* The connection is gone (or could not be made): the query in flight, if
 * any, fails with ERROR, and a new connection is tried after a backoff.
 * NOTIFY: whether to call the state callback (not from inside a call made
 * by the caller). */
static void go_down(struct pg_conn *c, enum pg_error error, int notify)
{
    int was_connected = c->state == PG_CONN_READY || c->state == PG_CONN_BUSY;
    drop_pq(c);
    if (was_connected)
        c->stats.lost++;
    else
        c->stats.failures++;
    c->failures++;
    c->state = PG_CONN_DOWN;
    c->phase = PHASE_NONE;
    c->stats.backoff_ms = backoff_ms(c);
    arm_timer(c, c->stats.backoff_ms, on_backoff_over);
    char why[sizeof c->error];
    memcpy(why, c->error, sizeof why);
    if (c->query) {
        PQclear(c->result);
        c->result = NULL;
        finish_query(c, error, NULL, why); /* without a callback when timed out */
    }
    if (notify && c->state == PG_CONN_DOWN)
        notify_state(c, why);
}

static void lost(struct pg_conn *c, const char *what)
{
    set_error(c, "connection to the database lost (%s): %s", what,
              c->pq ? PQerrorMessage(c->pq) : "");
    go_down(c, PG_ERR_LOST, 1);
}

/* ------------------------------------------------------------ connecting */

static void on_connect_timeout(uv_timer_t *t)
{
    struct pg_conn *c = t->data;
    set_error(c, "cannot connect to the database: no answer within %u ms",
              c->cfg.connect_timeout_ms);
    go_down(c, PG_ERR_UNAVAILABLE, 1);
}

static void became_ready(struct pg_conn *c)
{
    uv_timer_stop(&c->timer);
    c->state = PG_CONN_READY;
    c->phase = PHASE_NONE;
    notify_state(c, "");
}

/* One step of PQconnectPoll; watches the socket for what it needs next. */
static void connect_step(struct pg_conn *c)
{
    /* PQconnectPoll may close the socket and open another (same number
     * perhaps): not watched meanwhile, watched again below. */
    if (c->poll) {
        uv_poll_stop(&c->poll->handle);
        c->events = 0;
    }
    PostgresPollingStatusType st = PQconnectPoll(c->pq);
    if (st == PGRES_POLLING_FAILED) {
        set_error(c, "cannot connect to the database: %s", PQerrorMessage(c->pq));
        go_down(c, PG_ERR_UNAVAILABLE, 1);
        return;
    }
    if (st == PGRES_POLLING_OK) {
        if (PQsetnonblocking(c->pq, 1) != 0 || watch(c, UV_READABLE) != 0) {
            set_error(c, "cannot use the connection: %s", PQerrorMessage(c->pq));
            go_down(c, PG_ERR_UNAVAILABLE, 1);
            return;
        }
        c->failures = 0;
        c->stats.connects++;
        became_ready(c);
        return;
    }
    if (watch(c, st == PGRES_POLLING_READING ? UV_READABLE : UV_WRITABLE) != 0)
        go_down(c, PG_ERR_UNAVAILABLE, 1);
}

/* libpq prints notices (and a server's goodbye on an idle connection) to
 * stderr by default; the reason for a lost connection reaches the caller
 * through pg_conn_last_error instead. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static void conn_connect(struct pg_conn *c)
{
    c->state = PG_CONN_CONNECTING;
    c->pq = PQconnectStart(c->conninfo);
    if (c->pq == NULL || PQstatus(c->pq) == CONNECTION_BAD) {
        set_error(c, "cannot connect to the database: %s",
                  c->pq ? PQerrorMessage(c->pq) : "out of memory");
        go_down(c, PG_ERR_UNAVAILABLE, 1);
        return;
    }
    PQsetNoticeProcessor(c->pq, ignore_notice, NULL);
    arm_timer(c, c->cfg.connect_timeout_ms, on_connect_timeout);
    /* libpq: behave as if PQconnectPoll had asked for a writable socket. */
    if (watch(c, UV_WRITABLE) != 0)
        go_down(c, PG_ERR_UNAVAILABLE, 1);
}

/* ------------------------------------------------------------ queries */

static int send_phase(struct pg_conn *c)
{
    const struct pg_query *q = c->query;
    int ok;
    if (c->phase == PHASE_PREPARE)
        ok = PQsendPrepare(c->pq, q->prepared, q->sql, q->nparams, NULL);
    else if (q->simple && q->nparams == 0 && q->prepared == NULL)
        ok = PQsendQuery(c->pq, q->sql);
    else if (q->prepared)
        ok = PQsendQueryPrepared(c->pq, q->prepared, q->nparams, q->values, q->lengths, q->formats,
                                 0);
    else
        ok = PQsendQueryParams(c->pq, q->sql, q->nparams, NULL, q->values, q->lengths, q->formats,
                               0);
    if (!ok) {
        set_error(c, "cannot send the query: %s", PQerrorMessage(c->pq));
        return -1;
    }
    return 0;
}

/* Flushes what libpq holds; watches for writable while some is left. */
static int flush(struct pg_conn *c)
{
    int rc = PQflush(c->pq);
    if (rc < 0) {
        set_error(c, "cannot send the query: %s", PQerrorMessage(c->pq));
        return -1;
    }
    c->want_write = rc == 1;
    return watch(c, c->want_write ? UV_READABLE | UV_WRITABLE : UV_READABLE);
}

static void on_query_timeout(uv_timer_t *t);

enum pg_error pg_conn_query(struct pg_conn *c, const struct pg_query *q, pg_query_fn done, void *ud)
{
    if (c->state == PG_CONN_DOWN || c->state == PG_CONN_CONNECTING)
        return PG_ERR_UNAVAILABLE;
    if (c->state != PG_CONN_READY)
        return PG_ERR_BUSY;
    if ((c->query = pg_query_copy(q)) == NULL)
        return PG_ERR_NOMEM;
    c->phase = q->prepared && !is_prepared(c, q->prepared) ? PHASE_PREPARE : PHASE_EXECUTE;
    if (send_phase(c) != 0 || flush(c) != 0) {
        /* Not sent: the caller hears it from the return code (no state
         * callback); the connection goes down and connects again. */
        free(c->query);
        c->query = NULL;
        go_down(c, PG_ERR_UNAVAILABLE, 0);
        return PG_ERR_UNAVAILABLE;
    }
    c->done = done;
    c->ud = ud;
    c->state = PG_CONN_BUSY;
    c->stats.queries++;
    arm_timer(c, q->timeout_ms ? q->timeout_ms : c->cfg.query_timeout_ms, on_query_timeout);
    return PG_OK;
}

/* The thread-pool half of a cancel (PQcancel blocks until the server has
 * the request). */
struct pg_cancel {
    uv_work_t work;
    struct pg_conn *conn;
    PGcancel *cancel;
};

static void cancel_work(uv_work_t *w)
{
    struct pg_cancel *k = w->data;
    char err[256];
    PQcancel(k->cancel, err, sizeof err); /* a failure shows as the drain deadline */
}

static void drained(struct pg_conn *c);

static void cancel_after(uv_work_t *w, int status)
{
    (void)status;
    struct pg_cancel *k = w->data;
    struct pg_conn *c = k->conn;
    PQfreeCancel(k->cancel);
    free(k);
    c->cancel_pending = 0;
    if (c->state == PG_CONN_CLOSING)
        maybe_free(c);
    else if (c->phase == PHASE_NONE && c->state == PG_CONN_BUSY)
        drained(c);
}

static void on_drain_deadline(uv_timer_t *t)
{
    struct pg_conn *c = t->data;
    set_error(c, "a timed-out query was not cancelled in time; reconnecting");
    go_down(c, PG_ERR_TIMEOUT, 1);
}

/* A timed-out query: its caller hears TIMEOUT now; the server is asked to
 * cancel it; the connection is READY again once its answer has been read
 * (and the cancel request has been delivered, so that it cannot hit the
 * next query), or is dropped if that takes longer than the query had. */
static void on_query_timeout(uv_timer_t *t)
{
    struct pg_conn *c = t->data;
    unsigned ms = c->query->timeout_ms ? c->query->timeout_ms : c->cfg.query_timeout_ms;
    c->stats.timeouts++;
    pg_query_fn done = c->done;
    void *ud = c->ud;
    c->done = NULL;
    c->ud = NULL;
    c->phase = PHASE_DRAIN;
    arm_timer(c, ms > 1000 ? ms : 1000, on_drain_deadline);
    struct pg_cancel *k = calloc(1, sizeof *k);
    if (k && (k->cancel = PQgetCancel(c->pq)) != NULL) {
        k->conn = c;
        k->work.data = k;
        if (uv_queue_work(c->loop, &k->work, cancel_work, cancel_after) == 0)
            c->cancel_pending = 1;
        else
            PQfreeCancel(k->cancel), free(k);
    } else {
        free(k);
    }
    char msg[128];
    snprintf(msg, sizeof msg, "the database did not answer within %u ms", ms);
    struct pg_reply reply = {.error = PG_ERR_TIMEOUT, .sqlstate = "", .message = msg};
    if (done)
        done(&reply, ud);
}

static void drained(struct pg_conn *c)
{
    if (c->cancel_pending)
        return; /* cancel_after comes back here */
    became_ready(c);
}

static int is_error_result(const PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    return st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK;
}

/* Keeps the first error result, else the latest. */
static void keep_result(struct pg_conn *c, PGresult *r)
{
    if (c->result && is_error_result(c->result)) {
        PQclear(r);
        return;
    }
    PQclear(c->result);
    c->result = r;
}

/* Every result of the phase has been read (PQgetResult gave NULL). */
static void phase_done(struct pg_conn *c)
{
    PGresult *r = c->result;
    ExecStatusType st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    int ok = st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK;
    if (c->phase == PHASE_DRAIN) {
        PQclear(r);
        c->result = NULL;
        free(c->query);
        c->query = NULL;
        c->phase = PHASE_NONE;
        drained(c);
        return;
    }
    if (c->phase == PHASE_PREPARE && ok) {
        PQclear(r);
        c->result = NULL;
        remember_prepared(c, c->query->prepared);
        c->phase = PHASE_EXECUTE;
        if (send_phase(c) != 0 || flush(c) != 0)
            lost(c, "sending");
        return;
    }
    uv_timer_stop(&c->timer);
    c->state = PG_CONN_READY;
    c->phase = PHASE_NONE;
    if (ok) {
        finish_query(c, PG_OK, r, "");
        return;
    }
    const char *primary = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    set_error(c, "%s", primary ? primary : r ? PQresultErrorMessage(r) : "no result");
    char msg[sizeof c->error];
    memcpy(msg, c->error, sizeof msg);
    finish_query(c, PG_ERR_QUERY, r, msg);
}

/* Reads what arrived; ends the phase when its last result is in. */
static void read_results(struct pg_conn *c)
{
    if (!PQconsumeInput(c->pq)) {
        lost(c, "reading");
        return;
    }
    while (!PQisBusy(c->pq)) {
        PGresult *r = PQgetResult(c->pq);
        if (r == NULL) {
            /* A server that hung up after its error (pg_terminate_backend,
             * shutdown) leaves the connection bad: that is a lost one. */
            if (PQstatus(c->pq) == CONNECTION_BAD) {
                PQclear(c->result);
                c->result = NULL;
                lost(c, "the server ended it");
                return;
            }
            phase_done(c);
            return;
        }
        keep_result(c, r);
    }
}

/* Idle: anything readable is a notice, a notification or the end. */
static void read_idle(struct pg_conn *c)
{
    if (!PQconsumeInput(c->pq) || PQstatus(c->pq) == CONNECTION_BAD) {
        lost(c, "idle");
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(c->pq)) != NULL)
        PQfreemem(n); /* LISTEN is not used yet */
}

static void conn_on_poll(uv_poll_t *h, int status, int events)
{
    struct pg_conn *c = ((struct pg_poll *)h->data)->conn;
    /* A refused connect shows as a poll error (libuv's EBADF for POLLERR):
     * PQconnectPoll reads the socket's own error and says it. */
    if (c->state == PG_CONN_CONNECTING) {
        connect_step(c);
        return;
    }
    if (status < 0) {
        set_error(c, "connection to the database lost: %s", uv_strerror(status));
        go_down(c, PG_ERR_LOST, 1);
        return;
    }
    if (c->state == PG_CONN_READY) {
        read_idle(c);
        return;
    }
    if (c->state != PG_CONN_BUSY)
        return;
    if ((events & UV_WRITABLE) || c->want_write) {
        if (flush(c) != 0) {
            lost(c, "sending");
            return;
        }
    }
    if (events & UV_READABLE)
        read_results(c);
}

/* ------------------------------------------------------------ life */

struct pg_conn *pg_conn_new(uv_loop_t *loop, const struct pg_conn_config *config)
{
    struct pg_conn *c = calloc(1, sizeof *c);
    if (c == NULL || (c->conninfo = strdup(config->conninfo ? config->conninfo : "")) == NULL) {
        free(c);
        return NULL;
    }
    c->loop = loop;
    c->cfg = *config;
    c->cfg.conninfo = c->conninfo;
    if (!c->cfg.connect_timeout_ms)
        c->cfg.connect_timeout_ms = PG_DEFAULT_CONNECT_TIMEOUT_MS;
    if (!c->cfg.query_timeout_ms)
        c->cfg.query_timeout_ms = PG_DEFAULT_QUERY_TIMEOUT_MS;
    if (!c->cfg.backoff_min_ms)
        c->cfg.backoff_min_ms = PG_DEFAULT_BACKOFF_MIN_MS;
    if (!c->cfg.backoff_max_ms)
        c->cfg.backoff_max_ms = PG_DEFAULT_BACKOFF_MAX_MS;
    if (c->cfg.backoff_max_ms < c->cfg.backoff_min_ms)
        c->cfg.backoff_max_ms = c->cfg.backoff_min_ms;
    c->fd = -1;
    uv_timer_init(loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 1;
    /* Connects from the loop: every callback runs from the loop. */
    c->state = PG_CONN_CONNECTING;
    arm_timer(c, 0, on_backoff_over);
    return c;
}

void pg_conn_close(struct pg_conn *c, void (*cb)(void *ud), void *ud)
{
    if (c->state == PG_CONN_CLOSING)
        return;
    c->close_cb = cb;
    c->close_ud = ud;
    drop_pq(c);
    c->state = PG_CONN_CLOSING;
    PQclear(c->result);
    c->result = NULL;
    if (c->query)
        finish_query(c, PG_ERR_CLOSED, NULL, "the database connection was closed");
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

enum pg_conn_state pg_conn_state(const struct pg_conn *c)
{
    return c->state;
}

int pg_conn_in_transaction(const struct pg_conn *c)
{
    if (c->pq == NULL || c->state != PG_CONN_READY)
        return 0;
    PGTransactionStatusType t = PQtransactionStatus(c->pq);
    return t == PQTRANS_INTRANS || t == PQTRANS_INERROR;
}

int pg_conn_backend_pid(const struct pg_conn *c)
{
    return c->pq && (c->state == PG_CONN_READY || c->state == PG_CONN_BUSY) ? PQbackendPID(c->pq)
                                                                            : 0;
}

const char *pg_conn_last_error(const struct pg_conn *c)
{
    return c->error;
}

void pg_conn_get_stats(const struct pg_conn *c, struct pg_conn_stats *out)
{
    *out = c->stats;
}
