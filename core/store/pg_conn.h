/* One PostgreSQL connection on a libuv loop: libpq's asynchronous API.
 *
 * Engine plumbing, no Lua (the store binds it; a pool of these is
 * pg_pool.h).  Nothing here blocks the loop: the connection is made with
 * PQconnectStart/PQconnectPoll, queries are sent with PQsendQueryParams (or
 * PQsendPrepare + PQsendQueryPrepared), flushed with PQflush when the socket
 * is writable and read with PQconsumeInput/PQisBusy/PQgetResult when it is
 * readable, the socket watched by a uv_poll.  One caveat from libpq: a host
 * NAME in the URL is resolved by a blocking getaddrinfo in PQconnectStart;
 * use a socket folder, an IP address or hostaddr= to avoid it.
 *
 * A connection heals itself: when it cannot be made or is lost, it waits
 * (exponential backoff, capped) and connects again, until closed.
 *
 * Threading: everything runs on the loop thread; callbacks run from raw
 * libuv callbacks, never from inside a call made by the caller (but for
 * pg_conn_close, which ends the query in flight at once), so they may
 * query, close and free freely.  (The one exception to "loop thread": a
 * timed-out query is cancelled with PQcancel on libuv's thread pool, as
 * libpq 15 has no asynchronous cancel.) */
#ifndef O2C_STORE_PG_CONN_H
#define O2C_STORE_PG_CONN_H
#include <libpq-fe.h>
#include <stdint.h>
#include <uv.h>

/* How a query failed.  The store maps UNAVAILABLE and LOST to 503
 * database_unavailable; QUERY carries the server's SQLSTATE (23505
 * unique_violation, 40001 serialization_failure, ...). */
enum pg_error {
    PG_OK = 0,
    PG_ERR_UNAVAILABLE, /* no connection to send it on: the query was not run */
    PG_ERR_LOST,        /* the connection dropped with the query in flight: outcome unknown */
    PG_ERR_QUERY,       /* the server answered with an error (sqlstate) */
    PG_ERR_TIMEOUT,     /* no answer in time; the server was asked to cancel it */
    PG_ERR_CLOSED,      /* closed by us with the query in flight or waiting */
    PG_ERR_BUSY,        /* misuse: another query is in flight on this connection */
    PG_ERR_NOMEM,
};

/* A query.  Everything is copied by pg_conn_query: the caller may free it
 * as soon as the call returns. */
struct pg_query {
    const char *sql; /* one statement, parameters $1..$N */
    int nparams;
    const char *const *values; /* NULL entries are SQL NULLs */
    const int *lengths;        /* of binary values; NULL: every value is a C string */
    const int *formats;        /* 1: binary (a bytea's raw bytes), 0: text; NULL: all text */
    /* A name: the statement is prepared once per connection (again after a
     * reconnect) and then executed by name.  NULL: not prepared. */
    const char *prepared;
    unsigned timeout_ms; /* 0: the connection's default */
    /* 1: SQL may hold several statements (a schema migration); no
     * parameters, not prepared: sent with libpq's simple protocol. */
    int simple;
};

/* What a query's callback gets.  RESULT (PG_OK: PGRES_TUPLES_OK or
 * PGRES_COMMAND_OK; PG_ERR_QUERY: the error result, else NULL) is cleared
 * when the callback returns: set it to NULL to keep it (then PQclear it). */
struct pg_reply {
    enum pg_error error;
    PGresult *result;
    const char *sqlstate; /* five characters, "" when none */
    const char *message;  /* "" when OK; else what failed (no secrets) */
};

typedef void (*pg_query_fn)(struct pg_reply *reply, void *ud);

enum pg_conn_state {
    PG_CONN_CONNECTING,
    PG_CONN_READY, /* connected, nothing in flight: pg_conn_query may be called */
    PG_CONN_BUSY,  /* a query in flight (or a timed-out one still being cancelled) */
    PG_CONN_DOWN,  /* not connected; connects again after a backoff */
    PG_CONN_CLOSING,
};

struct pg_conn;
/* Called on entering READY (connected, or idle again after a timed-out
 * query was cancelled) and DOWN (WHY says what failed).  Not called for the
 * READY that follows a query's callback (the callback says it). */
typedef void (*pg_conn_state_fn)(struct pg_conn *conn, enum pg_conn_state state, const char *why,
                                 void *ud);

#define PG_DEFAULT_CONNECT_TIMEOUT_MS 10000
#define PG_DEFAULT_QUERY_TIMEOUT_MS 30000
#define PG_DEFAULT_BACKOFF_MIN_MS 50
#define PG_DEFAULT_BACKOFF_MAX_MS 5000

/* Zero fields take the defaults above; CONNINFO is copied. */
struct pg_conn_config {
    const char *conninfo; /* libpq's "postgresql://..." URL or key=value string */
    unsigned connect_timeout_ms;
    unsigned query_timeout_ms;
    unsigned backoff_min_ms; /* first wait before connecting again; doubles per failure */
    unsigned backoff_max_ms; /* the cap */
    pg_conn_state_fn on_state;
    void *ud;
};

struct pg_conn_stats {
    uint64_t connects; /* connections made */
    uint64_t failures; /* attempts that failed */
    uint64_t lost;     /* connections lost after being made */
    uint64_t queries, timeouts;
    unsigned backoff_ms; /* the wait before the next attempt, after a failure */
};

/* Starts connecting; NULL only when out of memory. */
struct pg_conn *pg_conn_new(uv_loop_t *loop, const struct pg_conn_config *config);

/* Sends Q; DONE runs exactly once, later, from the loop.  Anything but
 * PG_OK: nothing was sent and DONE never runs (PG_ERR_UNAVAILABLE when not
 * connected, PG_ERR_BUSY when not READY for another reason). */
enum pg_error pg_conn_query(struct pg_conn *conn, const struct pg_query *q, pg_query_fn done,
                            void *ud);

enum pg_conn_state pg_conn_state(const struct pg_conn *conn);
/* 1 inside a transaction block (BEGIN without COMMIT/ROLLBACK yet, or an
 * aborted one), else 0. */
int pg_conn_in_transaction(const struct pg_conn *conn);
/* The server process serving the connection (0 when not connected). */
int pg_conn_backend_pid(const struct pg_conn *conn);
/* Why the connection last failed ("" when it never did). */
const char *pg_conn_last_error(const struct pg_conn *conn);
void pg_conn_get_stats(const struct pg_conn *conn, struct pg_conn_stats *out);

/* Closes CONN: a query in flight completes at once (inside this call) with
 * PG_ERR_CLOSED; CB (may be NULL) runs from the loop once CONN is freed. */
void pg_conn_close(struct pg_conn *conn, void (*cb)(void *ud), void *ud);

/* "ok", "unavailable", "lost", "query", "timeout", "closed", "busy", "nomem". */
const char *pg_error_name(enum pg_error error);

/* A copy of Q in one allocation (free() it), or NULL when out of memory. */
struct pg_query *pg_query_copy(const struct pg_query *q);

#endif
