/* The database: one SQLite file in the data dir, WAL mode, foreign keys on,
 * versioned migrations, a cache of prepared statements per connection.
 *
 * Every module in core/store returns one of the codes below; on anything but
 * STORE_OK, db_errmsg() says what failed and with what input.  A `struct db`
 * is one connection: use it from one thread at a time (the loop thread in
 * the server; tests open one per thread).  No SQL leaves core/store: callers
 * see functions named for what they do, so another engine (PostgreSQL) can
 * stand behind the same functions later. */
#ifndef O2C_STORE_DB_H
#define O2C_STORE_DB_H
#include <stddef.h>
#include <stdint.h>

enum store_rc {
    STORE_OK = 0,
    STORE_NOT_FOUND,   /* missing, deleted, or not visible to the caller */
    STORE_CONFLICT,    /* stale revision or wrong state; the current state is returned */
    STORE_EXISTS,      /* unique name already taken */
    STORE_INVALID,     /* input refused (name, length, role...) */
    STORE_REFUSED,     /* throttled, disabled, password policy */
    STORE_BUSY,        /* the database stayed locked past busy_timeout */
    STORE_ERROR,       /* I/O, corruption, out of memory: a bug or an outage */
    STORE_FULL,        /* the disk (or quota) is full: nothing was written */
    STORE_UNAVAILABLE, /* the database cannot be reached (PostgreSQL down, connection lost) */
};

/* Short machine code for RC ("ok", "not_found", "conflict", "exists",
 * "invalid", "refused", "busy", "error", "disk_full",
 * "database_unavailable"): the `code` of Lua's
 * nil, msg, code. */
const char *store_rc_code(int rc);

/* The schema version this build creates and expects (PRAGMA user_version). */
#define DB_SCHEMA_VERSION 5

struct db_config {
    /* "postgresql://..." (libpq's URL or key=value string): the PostgreSQL
     * engine, on LOOP; NULL or "": SQLite in DATA_DIR. */
    const char *url;
    void *loop;            /* the uv_loop_t PostgreSQL's connections live on */
    unsigned pool_size;    /* PostgreSQL connections; 0: 4 */
    const char *data_dir;  /* created (0700, with parents) when missing */
    const char *file_name; /* NULL: "o2c.db" */
    int synchronous_full;  /* 0: synchronous=NORMAL (WAL-safe against crashes), 1: FULL */
    int busy_timeout_ms;   /* 0: 5000 */
    int no_migrate;        /* 1: open as is (for `o2c db check`); 0: migrate at open */
};

struct db;

/* Opens (creating when needed) the database and applies pending migrations.
 * On failure returns NULL and writes the reason to ERR. */
struct db *db_open(const struct db_config *cfg, char *err, size_t errlen);
void db_close(struct db *db);

/* Message of the last failure on this connection ("" when none). */
const char *db_errmsg(const struct db *db);
const char *db_data_dir(const struct db *db);
const char *db_path(const struct db *db);
/* Joins DIR and NAME into BUF; -1 when it does not fit. */
int db_join_path(char *buf, size_t cap, const char *dir, const char *name);
/* fsyncs the directory DIR (after a rename into it); -1 with errno. */
int db_fsync_dir(const char *dir);

/* Clock in Unix milliseconds used for every timestamp and expiry check on
 * this connection.  Tests inject their own; NULL restores the wall clock. */
typedef int64_t (*db_clock_fn)(void *ud);
void db_set_clock(struct db *db, db_clock_fn clock, void *ud);
int64_t db_now_ms(const struct db *db);

/* Applies pending migrations in one transaction; *APPLIED (may be NULL)
 * receives how many ran.  Refuses a database newer than this build. */
int db_migrate(struct db *db, int *applied);
/* Current PRAGMA user_version, or -1 on error. */
int db_schema_version(struct db *db);

/* Integrity check, foreign-key check and schema version.  STORE_OK when all
 * pass; otherwise STORE_ERROR and db_errmsg() lists the first problems. */
int db_check(struct db *db);

/* Copies the live database to PATH, replacing it (backup_write in backup.h,
 * which also refuses to replace a file: that is what `o2c db backup` uses). */
int db_backup(struct db *db, const char *path);

/* Rebuilds the file (VACUUM) and truncates the WAL. */
int db_vacuum(struct db *db);

/* Operations.  A store function (anything taking a `struct db *`) runs
 * inside one: on SQLite at once; on PostgreSQL on a fiber holding one
 * connection, suspended while the server answers (db_pg.h), with its own
 * transaction depth and error message, so many run at once on one DB.
 *
 * db_run: SQLite runs FN(DB, ARG) before returning 1 (DONE is not called).
 * PostgreSQL returns 0 and calls DONE(UD, ERR) from the loop once FN has
 * returned (ERR NULL) or could not start (ERR says why: the database is
 * unreachable; answer STORE_UNAVAILABLE).  -1: refused at once, with
 * db_errmsg saying why.  FN must not raise (no Lua errors on a fiber). */
typedef void (*db_op_fn)(struct db *db, void *arg);
typedef void (*db_done_fn)(void *ud, const char *not_started);
int db_run(struct db *db, db_op_fn fn, void *arg, db_done_fn done, void *ud);
/* db_run, waiting: runs the loop until FN has returned.  For the CLI,
 * start-up and tests, never from a loop callback.  STORE_OK when FN ran,
 * STORE_UNAVAILABLE (db_errmsg says why) when it could not start. */
int db_run_wait(struct db *db, db_op_fn fn, void *arg);
/* PostgreSQL: a database just opened answers store calls made anywhere
 * (each waits by running the loop: the CLI, start-up, tests).  A server
 * calls this once its loop runs; from then on every store call runs inside
 * db_run.  Nothing on SQLite. */
void db_serve_operations(struct db *db);
/* 1 when store calls on DB must run inside db_run (PostgreSQL, once
 * db_serve_operations was called); 0 when they may be made anywhere. */
int db_is_async(const struct db *db);
/* "sqlite" or "postgresql". */
const char *db_engine(const struct db *db);

/* Transactions, nestable: the outermost is BEGIN IMMEDIATE (takes the write
 * lock at once, so busy_timeout applies and no upgrade deadlock happens);
 * inner ones are savepoints, so an inner failure undoes only its own part.
 * Store functions use these themselves; callers use them to group several
 * calls (e.g. save answers + audit) into one commit. */
int db_tx_begin(struct db *db);
int db_tx_commit(struct db *db);
void db_tx_rollback(struct db *db);
/* Ends the transaction begun last: commits when RC is STORE_OK (returning
 * the commit's code), else rolls back and returns RC. */
int db_tx_end(struct db *db, int rc);

#endif
