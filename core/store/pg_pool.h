/* A pool of PostgreSQL connections (pg_conn.h) on one libuv loop.
 *
 * Queries wait in one FIFO for the next READY connection.  Each connection
 * reconnects by itself when lost (backoff, capped); while no connection is
 * up and one has failed, waiting and new queries fail at once with
 * PG_ERR_UNAVAILABLE (the store's 503 database_unavailable) rather than
 * queue behind a database that is not there.
 *
 * A transaction needs every statement on one connection: pg_pool_acquire
 * lends one (a lease) until pg_lease_release; a lease whose connection was
 * lost stays broken (every query on it fails PG_ERR_LOST) so that no
 * statement of a transaction runs on a fresh session outside it.  A lease
 * released inside a transaction is rolled back before the connection
 * serves anyone else.
 *
 * Callbacks run from the loop, never inside a call into the pool (but for
 * pg_pool_close, which ends everything waiting or in flight at once). */
#ifndef O2C_STORE_PG_POOL_H
#define O2C_STORE_PG_POOL_H
#include "store/pg_conn.h"
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define PG_POOL_DEFAULT_SIZE 4
#define PG_POOL_DEFAULT_MAX_WAITING 10000

/* Zero fields take the defaults (pg_conn.h's for the timeouts). */
struct pg_pool_config {
    const char *conninfo; /* copied */
    unsigned size;        /* connections */
    size_t max_waiting;   /* queued queries and acquires; beyond: PG_ERR_BUSY */
    unsigned connect_timeout_ms, query_timeout_ms, backoff_min_ms, backoff_max_ms;
};

struct pg_pool;
struct pg_lease;

/* LEASE is NULL when ERROR is not PG_OK (MESSAGE says why). */
typedef void (*pg_acquire_fn)(struct pg_lease *lease, enum pg_error error, const char *message,
                              void *ud);

struct pg_pool_stats {
    unsigned size, connected, idle, leased;
    size_t waiting;
    uint64_t queries, connects, lost, failures, timeouts; /* over every connection */
};

/* NULL only when out of memory. */
struct pg_pool *pg_pool_new(uv_loop_t *loop, const struct pg_pool_config *config);

/* Runs Q on the next free connection; DONE runs exactly once, from the
 * loop.  Anything but PG_OK: DONE never runs (UNAVAILABLE: the database is
 * down; BUSY: too many waiting; CLOSED: the pool is closing; NOMEM). */
enum pg_error pg_pool_query(struct pg_pool *pool, const struct pg_query *q, pg_query_fn done,
                            void *ud);

/* Lends a connection (FIFO with the queries); CB runs once, from the loop.
 * The return value is as for pg_pool_query. */
enum pg_error pg_pool_acquire(struct pg_pool *pool, pg_acquire_fn cb, void *ud);

/* A query on the leased connection (one at a time), as pg_conn_query;
 * PG_ERR_LOST when the connection was lost since the lease began. */
enum pg_error pg_lease_query(struct pg_lease *lease, const struct pg_query *q, pg_query_fn done,
                             void *ud);
struct pg_conn *pg_lease_conn(const struct pg_lease *lease);
/* Gives the connection back (rolled back first when inside a transaction;
 * with a query in flight, once that has finished).  LEASE is invalid after. */
void pg_lease_release(struct pg_lease *lease);

/* What the last failed connection attempt said (for PG_ERR_UNAVAILABLE
 * returned by pg_pool_query or pg_pool_acquire). */
const char *pg_pool_why_down(const struct pg_pool *pool);

void pg_pool_get_stats(const struct pg_pool *pool, struct pg_pool_stats *out);

/* Closes POOL: everything waiting or in flight completes at once with
 * PG_ERR_CLOSED; CB (may be NULL) runs from the loop once POOL is freed.
 * Leases must have been released. */
void pg_pool_close(struct pg_pool *pool, void (*cb)(void *ud), void *ud);

#endif
