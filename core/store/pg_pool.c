/* pg_pool.h: N pg_conns, a FIFO of waiting queries and acquires, leases. */
#include "store/pg_pool.h"
#include <stdlib.h>
#include <string.h>

struct pg_wait {
    struct pg_wait *next;
    struct pg_query *query; /* NULL: an acquire */
    pg_query_fn done;
    pg_acquire_fn acquired;
    void *ud;
};

struct pg_lease {
    struct pg_slot *slot;
};

struct pg_slot {
    struct pg_pool *pool;
    struct pg_conn *conn;
    struct pg_lease lease;
    int leased;
    int broken;        /* the leased connection went down */
    int busy;          /* a query of the pool's (or the lease's) in flight */
    int release_after; /* released with a query in flight */
    int rolling_back;  /* the pool's ROLLBACK of a released lease */
    pg_query_fn done;  /* the query in flight's */
    void *ud;
};

struct pg_pool {
    uv_loop_t *loop;
    char *conninfo;
    struct pg_slot *slots;
    unsigned size;
    struct pg_wait *head, *tail;
    size_t waiting, max_waiting;
    uv_timer_t kick; /* runs the dispatch from the loop */
    int closing;
    unsigned open; /* connections (and the kick timer) not yet freed */
    void (*close_cb)(void *ud);
    void *close_ud;
};

static void dispatch(struct pg_pool *pool);

static void on_kick(uv_timer_t *t)
{
    dispatch(t->data);
}

static void kick(struct pg_pool *pool)
{
    if (!pool->closing)
        uv_timer_start(&pool->kick, on_kick, 0, 0);
}

static int slot_free(const struct pg_slot *s)
{
    return !s->leased && !s->busy && !s->rolling_back && pg_conn_state(s->conn) == PG_CONN_READY;
}

static void roll_back(struct pg_slot *s);

/* A free connection for the next in line.  One left inside a transaction
 * (a timed-out statement of a released lease, cancelled since) is rolled
 * back first. */
static struct pg_slot *free_slot(struct pg_pool *pool)
{
    for (unsigned i = 0; i < pool->size; i++) {
        struct pg_slot *s = &pool->slots[i];
        if (!slot_free(s))
            continue;
        if (!pg_conn_in_transaction(s->conn))
            return s;
        roll_back(s);
    }
    return NULL;
}

/* Down: nothing connected, and at least one connection failed (rather
 * than all still connecting for the first time). */
static int pool_down(const struct pg_pool *pool)
{
    int failed = 0;
    for (unsigned i = 0; i < pool->size; i++) {
        enum pg_conn_state st = pg_conn_state(pool->slots[i].conn);
        if (st == PG_CONN_READY || st == PG_CONN_BUSY)
            return 0;
        failed |= st == PG_CONN_DOWN;
    }
    return failed;
}

const char *pg_pool_why_down(const struct pg_pool *pool)
{
    for (unsigned i = 0; i < pool->size; i++)
        if (pg_conn_state(pool->slots[i].conn) == PG_CONN_DOWN)
            return pg_conn_last_error(pool->slots[i].conn);
    return "the database is unavailable";
}

static struct pg_wait *pop_wait(struct pg_pool *pool)
{
    struct pg_wait *w = pool->head;
    if (w) {
        pool->head = w->next;
        if (pool->head == NULL)
            pool->tail = NULL;
        pool->waiting--;
    }
    return w;
}

static void push_wait(struct pg_pool *pool, struct pg_wait *w, int front)
{
    w->next = NULL;
    if (front) {
        w->next = pool->head;
        pool->head = w;
        if (pool->tail == NULL)
            pool->tail = w;
    } else if (pool->tail) {
        pool->tail->next = w;
        pool->tail = w;
    } else {
        pool->head = pool->tail = w;
    }
    pool->waiting++;
}

static void fail_wait(struct pg_wait *w, enum pg_error error, const char *message)
{
    if (w->query) {
        struct pg_reply reply = {.error = error, .sqlstate = "", .message = message};
        w->done(&reply, w->ud);
    } else {
        w->acquired(NULL, error, message, w->ud);
    }
    free(w->query);
    free(w);
}

static void fail_all_waiting(struct pg_pool *pool, enum pg_error error, const char *message)
{
    struct pg_wait *w;
    while ((w = pop_wait(pool)) != NULL)
        fail_wait(w, error, message);
}

/* ------------------------------------------------------------ queries */

static void release_now(struct pg_slot *s);

static void on_slot_query_done(struct pg_reply *reply, void *ud)
{
    struct pg_slot *s = ud;
    pg_query_fn done = s->done;
    void *done_ud = s->ud;
    s->busy = 0;
    s->done = NULL;
    done(reply, done_ud);
    if (s->release_after) {
        s->release_after = 0;
        release_now(s);
    }
    dispatch(s->pool);
}

static enum pg_error slot_query(struct pg_slot *s, const struct pg_query *q, pg_query_fn done,
                                void *ud)
{
    s->busy = 1;
    s->done = done;
    s->ud = ud;
    enum pg_error rc = pg_conn_query(s->conn, q, on_slot_query_done, s);
    if (rc != PG_OK) {
        s->busy = 0;
        s->done = NULL;
    }
    return rc;
}

/* Hands out waiting work to free connections; when the database is down,
 * fails what waits. */
static void dispatch(struct pg_pool *pool)
{
    struct pg_slot *s;
    while (!pool->closing && pool->head && (s = free_slot(pool)) != NULL) {
        struct pg_wait *w = pop_wait(pool);
        if (w->query == NULL) {
            s->leased = 1;
            s->broken = 0;
            w->acquired(&s->lease, PG_OK, "", w->ud);
            free(w);
            continue;
        }
        enum pg_error rc = slot_query(s, w->query, w->done, w->ud);
        if (rc == PG_ERR_UNAVAILABLE || rc == PG_ERR_BUSY) {
            push_wait(pool, w, 1); /* that connection just went down: another */
            continue;
        }
        if (rc != PG_OK)
            fail_wait(w, rc, "out of memory");
        else
            free(w->query), free(w);
    }
    if (!pool->closing && pool->head && pool_down(pool))
        fail_all_waiting(pool, PG_ERR_UNAVAILABLE, pg_pool_why_down(pool));
}

static enum pg_error enqueue(struct pg_pool *pool, const struct pg_query *q, pg_query_fn done,
                             pg_acquire_fn acquired, void *ud)
{
    if (pool->closing)
        return PG_ERR_CLOSED;
    if (pool_down(pool))
        return PG_ERR_UNAVAILABLE;
    if (pool->waiting >= pool->max_waiting)
        return PG_ERR_BUSY;
    struct pg_wait *w = calloc(1, sizeof *w);
    if (w == NULL || (q && (w->query = pg_query_copy(q)) == NULL)) {
        free(w);
        return PG_ERR_NOMEM;
    }
    w->done = done;
    w->acquired = acquired;
    w->ud = ud;
    push_wait(pool, w, 0);
    kick(pool);
    return PG_OK;
}

enum pg_error pg_pool_query(struct pg_pool *pool, const struct pg_query *q, pg_query_fn done,
                            void *ud)
{
    return enqueue(pool, q, done, NULL, ud);
}

enum pg_error pg_pool_acquire(struct pg_pool *pool, pg_acquire_fn cb, void *ud)
{
    return enqueue(pool, NULL, NULL, cb, ud);
}

/* ------------------------------------------------------------ leases */

enum pg_error pg_lease_query(struct pg_lease *lease, const struct pg_query *q, pg_query_fn done,
                             void *ud)
{
    struct pg_slot *s = lease->slot;
    if (s->broken)
        return PG_ERR_LOST;
    if (s->busy)
        return PG_ERR_BUSY;
    enum pg_error rc = slot_query(s, q, done, ud);
    if (rc == PG_ERR_UNAVAILABLE)
        s->broken = 1; /* whatever the transaction did is gone with the session */
    return rc == PG_ERR_UNAVAILABLE ? PG_ERR_LOST : rc;
}

struct pg_conn *pg_lease_conn(const struct pg_lease *lease)
{
    return lease->slot->conn;
}

static void on_rolled_back(struct pg_reply *reply, void *ud)
{
    (void)reply; /* a failed ROLLBACK means a lost connection: it reconnects */
    struct pg_slot *s = ud;
    s->rolling_back = 0;
    dispatch(s->pool);
}

static void roll_back(struct pg_slot *s)
{
    static const struct pg_query rollback = {.sql = "ROLLBACK"};
    s->rolling_back = pg_conn_query(s->conn, &rollback, on_rolled_back, s) == PG_OK;
}

static void release_now(struct pg_slot *s)
{
    s->leased = 0;
    s->broken = 0;
    if (pg_conn_in_transaction(s->conn))
        roll_back(s);
    kick(s->pool);
}

void pg_lease_release(struct pg_lease *lease)
{
    struct pg_slot *s = lease->slot;
    if (s->busy)
        s->release_after = 1;
    else
        release_now(s);
}

/* ------------------------------------------------------------ life */

static void on_conn_state(struct pg_conn *conn, enum pg_conn_state state, const char *why, void *ud)
{
    (void)conn;
    (void)why;
    struct pg_slot *s = ud;
    if (state == PG_CONN_DOWN && s->leased)
        s->broken = 1;
    dispatch(s->pool);
}

struct pg_pool *pg_pool_new(uv_loop_t *loop, const struct pg_pool_config *config)
{
    struct pg_pool *pool = calloc(1, sizeof *pool);
    if (pool == NULL)
        return NULL;
    pool->size = config->size ? config->size : PG_POOL_DEFAULT_SIZE;
    pool->max_waiting = config->max_waiting ? config->max_waiting : PG_POOL_DEFAULT_MAX_WAITING;
    pool->slots = calloc(pool->size, sizeof *pool->slots);
    pool->conninfo = strdup(config->conninfo ? config->conninfo : "");
    if (pool->slots == NULL || pool->conninfo == NULL) {
        free(pool->slots);
        free(pool->conninfo);
        free(pool);
        return NULL;
    }
    pool->loop = loop;
    uv_timer_init(loop, &pool->kick);
    pool->kick.data = pool;
    pool->open = 1;
    for (unsigned i = 0; i < pool->size; i++) {
        struct pg_slot *s = &pool->slots[i];
        struct pg_conn_config cc = {.conninfo = pool->conninfo,
                                    .connect_timeout_ms = config->connect_timeout_ms,
                                    .query_timeout_ms = config->query_timeout_ms,
                                    .backoff_min_ms = config->backoff_min_ms,
                                    .backoff_max_ms = config->backoff_max_ms,
                                    .on_state = on_conn_state,
                                    .ud = s};
        s->pool = pool;
        s->lease.slot = s;
        s->conn = pg_conn_new(loop, &cc);
        if (s->conn == NULL) {
            pool->size = i; /* close what was made */
            pg_pool_close(pool, NULL, NULL);
            return NULL;
        }
        pool->open++;
    }
    return pool;
}

void pg_pool_get_stats(const struct pg_pool *pool, struct pg_pool_stats *out)
{
    memset(out, 0, sizeof *out);
    out->size = pool->size;
    out->waiting = pool->waiting;
    for (unsigned i = 0; i < pool->size; i++) {
        const struct pg_slot *s = &pool->slots[i];
        enum pg_conn_state st = pg_conn_state(s->conn);
        struct pg_conn_stats cs;
        pg_conn_get_stats(s->conn, &cs);
        out->connected += st == PG_CONN_READY || st == PG_CONN_BUSY;
        out->idle += slot_free(s);
        out->leased += s->leased;
        out->queries += cs.queries;
        out->connects += cs.connects;
        out->lost += cs.lost;
        out->failures += cs.failures;
        out->timeouts += cs.timeouts;
    }
}

static void pool_maybe_free(struct pg_pool *pool)
{
    if (--pool->open)
        return;
    void (*cb)(void *) = pool->close_cb;
    void *ud = pool->close_ud;
    free(pool->slots);
    free(pool->conninfo);
    free(pool);
    if (cb)
        cb(ud);
}

static void on_conn_closed(void *ud)
{
    pool_maybe_free(ud);
}

static void on_kick_closed(uv_handle_t *h)
{
    pool_maybe_free(h->data);
}

void pg_pool_close(struct pg_pool *pool, void (*cb)(void *ud), void *ud)
{
    if (pool->closing)
        return;
    pool->closing = 1;
    pool->close_cb = cb;
    pool->close_ud = ud;
    fail_all_waiting(pool, PG_ERR_CLOSED, "the database pool was closed");
    for (unsigned i = 0; i < pool->size; i++)
        pg_conn_close(pool->slots[i].conn, on_conn_closed, pool);
    uv_timer_stop(&pool->kick);
    uv_close((uv_handle_t *)&pool->kick, on_kick_closed);
}
