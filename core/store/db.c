#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>
#include "store/db_internal.h"
#include "store/db_schema.h"
#include "store/rowset.h"
#ifdef O2C_HAVE_PQ
#include "store/db_pg.h"
#endif

/* Enough slots for every statement in core/store with room to spare; the
 * table is open-addressed on the SQL literal's address. */
#define DB_STMT_SLOTS 512
#define DB_DEFAULT_FILE "o2c.db"
#define DB_DEFAULT_BUSY_MS 5000

struct db_stmt_slot {
    const char *sql;
    sqlite3_stmt *st;
};

struct db {
    sqlite3 *conn;
    struct db_pg *pg; /* the PostgreSQL engine instead (conn is NULL) */
    uv_loop_t *loop;  /* PostgreSQL's */
    /* PostgreSQL outside db_run: one connection held from db_open until
     * db_serve_operations, each statement waiting by running the loop. */
    struct db_pg_op *blocking;
    char *data_dir;
    char *path;
    db_clock_fn clock;
    void *clock_ud;
    int tx_depth;
    struct db_stmt_slot stmts[DB_STMT_SLOTS];
    char err[1024];
};

static struct db *db_open_pg(const struct db_config *cfg, char *err, size_t errlen);

static const char SQL_BEGIN[] = "BEGIN IMMEDIATE";
static const char SQL_COMMIT[] = "COMMIT";
static const char SQL_ROLLBACK[] = "ROLLBACK";
static const char SQL_SAVEPOINT[] = "SAVEPOINT o2c_nested";
static const char SQL_RELEASE[] = "RELEASE o2c_nested";
static const char SQL_ROLLBACK_TO[] = "ROLLBACK TO o2c_nested";

const char *store_rc_code(int rc)
{
    static const char *const codes[] = {
        "ok",      "not_found", "conflict", "exists",    "invalid",
        "refused", "busy",      "error",    "disk_full", "database_unavailable"};
    if (rc < 0 || rc >= (int)(sizeof codes / sizeof *codes))
        return "error";
    return codes[rc];
}

/* Where the message of a failure goes: the running operation's own
 * buffer on PostgreSQL (many run at once), else the connection's. */
static char *db_err_buf(struct db *db, size_t *cap)
{
#ifdef O2C_HAVE_PQ
    struct db_pg_op *op = db->pg ? db_pg_current(db) : NULL;
    if (op) {
        *cap = sizeof op->err;
        return op->err;
    }
#endif
    *cap = sizeof db->err;
    return db->err;
}

int db_fail(struct db *db, int rc, const char *fmt, ...)
{
    size_t cap;
    char *buf = db_err_buf(db, &cap);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return rc;
}

int db_sqlite_fail(struct db *db, const char *what)
{
    int code = sqlite3_extended_errcode(db->conn);
    const char *msg = sqlite3_errmsg(db->conn);
    int rc = STORE_ERROR;
    switch (code & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        rc = STORE_BUSY;
        break;
    case SQLITE_FULL:
        rc = STORE_FULL;
        break;
    case SQLITE_CONSTRAINT:
        if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY)
            rc = STORE_EXISTS;
        else if (code == SQLITE_CONSTRAINT_TRIGGER)
            rc = STORE_REFUSED;
        else
            rc = STORE_INVALID;
        break;
    }
    return db_fail(db, rc, "%s: %s (sqlite code %d)", what, msg, code);
}

sqlite3 *db_conn(struct db *db)
{
    return db->conn;
}

const char *db_errmsg(const struct db *db)
{
    size_t cap;
    return db_err_buf((struct db *)db, &cap);
}

int db_is_pg(const struct db *db)
{
    return db->pg != NULL;
}

int db_is_async(const struct db *db)
{
    return db->pg != NULL && db->blocking == NULL;
}

const char *db_engine(const struct db *db)
{
    return db->pg ? "postgresql" : "sqlite";
}

const char *db_data_dir(const struct db *db)
{
    return db->data_dir;
}

const char *db_path(const struct db *db)
{
    return db->path;
}

static int64_t db_wall_clock(void *ud)
{
    (void)ud;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void db_set_clock(struct db *db, db_clock_fn clock, void *ud)
{
    db->clock = clock ? clock : db_wall_clock;
    db->clock_ud = clock ? ud : NULL;
}

int64_t db_now_ms(const struct db *db)
{
    return db->clock(db->clock_ud);
}

int db_join_path(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int db_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_CLOEXEC | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

/* mkdir -p with mode 0700 for the parts it creates. */
static int db_mkdirs(const char *dir)
{
    char buf[4096];
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, dir, len + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(buf, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* Statement cache */

static size_t db_stmt_hash(const char *sql)
{
    uint64_t h = (uint64_t)(uintptr_t)sql * UINT64_C(0x9E3779B97F4A7C15);
    return (size_t)(h >> 40) % DB_STMT_SLOTS;
}

sqlite3_stmt *db_stmt(struct db *db, const char *sql)
{
    if (db->conn == NULL) {
        db_fail(db, STORE_ERROR, "a SQLite statement on a PostgreSQL database (a bug)");
        return NULL;
    }
    size_t h = db_stmt_hash(sql);
    for (size_t i = 0; i < DB_STMT_SLOTS; i++) {
        struct db_stmt_slot *slot = &db->stmts[(h + i) % DB_STMT_SLOTS];
        if (slot->sql == sql) {
            sqlite3_reset(slot->st);
            sqlite3_clear_bindings(slot->st);
            return slot->st;
        }
        if (slot->sql != NULL)
            continue;
        if (sqlite3_prepare_v3(db->conn, sql, -1, SQLITE_PREPARE_PERSISTENT, &slot->st, NULL) !=
            SQLITE_OK) {
            db_sqlite_fail(db, "preparing a statement");
            slot->st = NULL;
            return NULL;
        }
        slot->sql = sql;
        return slot->st;
    }
    db_fail(db, STORE_ERROR, "statement cache full (%d): raise DB_STMT_SLOTS", DB_STMT_SLOTS);
    return NULL;
}

int64_t db_changes(struct db *db)
{
#ifdef O2C_HAVE_PQ
    if (db->pg)
        return db_pg_call_changes(db);
#endif
    return (int64_t)sqlite3_changes64(db->conn);
}

/* Transactions */

/* Errors are ignored here on purpose: the caller is already failing and its
 * message (in db->err) is the one worth keeping.  SQLite may also have rolled
 * back by itself (I/O error, disk full). */
static void db_step_quietly(struct db *db, const char *sql)
{
    char saved[sizeof db->err];
    memcpy(saved, db->err, sizeof saved);
    sqlite3_stmt *st = db_stmt(db, sql);
    if (st) {
        sqlite3_step(st);
        sqlite3_reset(st);
    }
    memcpy(db->err, saved, sizeof saved);
}

int db_tx_begin(struct db *db)
{
#ifdef O2C_HAVE_PQ
    if (db->pg)
        return db_pg_call_tx_begin(db);
#endif
    int rc = db->tx_depth == 0 ? db_exec(db, SQL_BEGIN, "beginning a transaction", DB_NO_ARGS)
                               : db_exec(db, SQL_SAVEPOINT, "opening a savepoint", DB_NO_ARGS);
    if (rc == STORE_OK)
        db->tx_depth++;
    return rc;
}

int db_tx_commit(struct db *db)
{
#ifdef O2C_HAVE_PQ
    if (db->pg)
        return db_pg_call_tx_commit(db);
#endif
    if (db->tx_depth <= 0)
        return db_fail(db, STORE_ERROR, "commit without an open transaction (a bug)");
    if (db->tx_depth > 1) {
        db->tx_depth--;
        return db_exec(db, SQL_RELEASE, "releasing a savepoint", DB_NO_ARGS);
    }
    int rc = db_exec(db, SQL_COMMIT, "committing", DB_NO_ARGS);
    if (rc != STORE_OK && !sqlite3_get_autocommit(db->conn))
        db_step_quietly(db, SQL_ROLLBACK);
    db->tx_depth = 0;
    return rc;
}

void db_tx_rollback(struct db *db)
{
#ifdef O2C_HAVE_PQ
    if (db->pg) {
        db_pg_call_tx_rollback(db);
        return;
    }
#endif
    if (db->tx_depth <= 0)
        return;
    if (db->tx_depth > 1) {
        db_step_quietly(db, SQL_ROLLBACK_TO);
        db_step_quietly(db, SQL_RELEASE);
    } else if (!sqlite3_get_autocommit(db->conn)) {
        db_step_quietly(db, SQL_ROLLBACK);
    }
    db->tx_depth--;
}

int db_tx_end(struct db *db, int rc)
{
    if (rc == STORE_OK)
        return db_tx_commit(db);
    db_tx_rollback(db);
    return rc;
}

/* Open, configure, migrate */

static int db_configure(struct db *db, const struct db_config *cfg)
{
    sqlite3_extended_result_codes(db->conn, 1);
    sqlite3_busy_timeout(db->conn,
                         cfg->busy_timeout_ms > 0 ? cfg->busy_timeout_ms : DB_DEFAULT_BUSY_MS);
    char mode[16] = "";
    int rc = db_query_first(db, "PRAGMA journal_mode=WAL", "switching to WAL mode", NULL, mode,
                            sizeof mode, NULL, DB_NO_ARGS);
    if (rc == STORE_OK && strcmp(mode, "wal") != 0)
        rc = db_fail(db, STORE_ERROR, "%s: cannot switch to WAL mode (got \"%s\")", db->path, mode);
    if (rc == STORE_OK)
        rc = db_exec(db, "PRAGMA foreign_keys=ON", "enabling foreign keys", DB_NO_ARGS);
    if (rc == STORE_OK)
        rc = db_exec(
            db, cfg->synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
            "setting synchronous", DB_NO_ARGS);
    return rc;
}

struct db *db_open(const struct db_config *cfg, char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return NULL;
    }
    if (cfg->url && cfg->url[0])
        return db_open_pg(cfg, err, errlen);
    if (cfg->data_dir == NULL || cfg->data_dir[0] == '\0') {
        snprintf(err, errlen, "no data dir configured (set O2C_DATA_DIR or --data)");
        return NULL;
    }
    if (db_mkdirs(cfg->data_dir) != 0) {
        snprintf(err, errlen, "cannot create data dir %s: %s", cfg->data_dir, strerror(errno));
        return NULL;
    }
    struct db *db = calloc(1, sizeof *db);
    char path[4096];
    const char *file = cfg->file_name ? cfg->file_name : DB_DEFAULT_FILE;
    if (db == NULL || db_join_path(path, sizeof path, cfg->data_dir, file) != 0) {
        snprintf(err, errlen, "cannot open database in %s: %s", cfg->data_dir,
                 db ? "path too long" : "out of memory");
        free(db);
        return NULL;
    }
    db_set_clock(db, NULL, NULL);
    db->data_dir = strdup(cfg->data_dir);
    db->path = strdup(path);
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = STORE_ERROR;
    if (db->data_dir == NULL || db->path == NULL)
        db_fail(db, STORE_ERROR, "out of memory");
    else if (sqlite3_open_v2(path, &db->conn, flags, NULL) != SQLITE_OK)
        db_fail(db, STORE_ERROR, "cannot open database %s: %s", path,
                db->conn ? sqlite3_errmsg(db->conn) : "out of memory");
    else if ((rc = db_configure(db, cfg)) == STORE_OK && !cfg->no_migrate)
        rc = db_migrate(db, NULL);
    if (rc != STORE_OK) {
        snprintf(err, errlen, "%s", db->err);
        db_close(db);
        return NULL;
    }
    return db;
}

/* A PostgreSQL database: the engine on CFG->loop, migrated before use. */
static struct db *db_open_pg(const struct db_config *cfg, char *err, size_t errlen)
{
#ifdef O2C_HAVE_PQ
    if (cfg->loop == NULL) {
        snprintf(err, errlen, "PostgreSQL needs the event loop (a bug: db_config.loop)");
        return NULL;
    }
    struct db *db = calloc(1, sizeof *db);
    if (db == NULL || (db->data_dir = strdup(cfg->data_dir ? cfg->data_dir : "")) == NULL ||
        (db->path = strdup("postgresql")) == NULL) {
        snprintf(err, errlen, "out of memory");
        db_close(db);
        return NULL;
    }
    db_set_clock(db, NULL, NULL);
    db->loop = cfg->loop;
    struct db_pg_config pc = {.url = cfg->url, .pool_size = cfg->pool_size};
    if ((db->pg = db_pg_new(db->loop, &pc)) == NULL) {
        snprintf(err, errlen, "out of memory");
        db_close(db);
        return NULL;
    }
    if ((db->blocking = calloc(1, sizeof *db->blocking)) == NULL ||
        db_pg_blocking_begin(db->pg, db->blocking) != 0) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s",
                 db->blocking ? db->blocking->err : "out of memory");
        db_close(db);
        return NULL;
    }
    if (!cfg->no_migrate && db_migrate(db, NULL) != STORE_OK) {
        snprintf(err, errlen, "%s", db_errmsg(db));
        db_close(db);
        return NULL;
    }
    return db;
#else
    (void)cfg;
    snprintf(err, errlen,
             "this o2c was built without PostgreSQL: install libpq-dev "
             "(config/install-deps.sh) and build again, or unset O2C_DATABASE_URL for SQLite");
    return NULL;
#endif
}

int db_run(struct db *db, db_op_fn fn, void *arg, db_done_fn done, void *ud)
{
#ifdef O2C_HAVE_PQ
    if (db->pg)
        return db_pg_call_run(db, fn, arg, done, ud);
#endif
    (void)done, (void)ud;
    fn(db, arg);
    return 1;
}

int db_run_wait(struct db *db, db_op_fn fn, void *arg)
{
#ifdef O2C_HAVE_PQ
    if (db->pg)
        return db_pg_call_run_wait(db, fn, arg);
#endif
    fn(db, arg);
    return STORE_OK;
}

#ifdef O2C_HAVE_PQ
struct db_pg *db_pg_engine(struct db *db)
{
    return db->pg;
}

struct db_pg_op *db_pg_current(struct db *db)
{
    struct db_pg_op *op = db_pg_running();
    return op ? op : db->blocking;
}

void db_serve_operations(struct db *db)
{
    if (db->blocking == NULL)
        return;
    db_pg_blocking_end(db->blocking);
    free(db->blocking);
    db->blocking = NULL;
}
#else
void db_serve_operations(struct db *db)
{
    (void)db;
}
#endif

void db_close(struct db *db)
{
    if (db == NULL)
        return;
#ifdef O2C_HAVE_PQ
    db_serve_operations(db);
    db_pg_close_engine(db->pg, db->loop);
#endif
    for (size_t i = 0; i < DB_STMT_SLOTS; i++)
        if (db->stmts[i].st)
            sqlite3_finalize(db->stmts[i].st);
    if (db->conn)
        sqlite3_close(db->conn);
    free(db->data_dir);
    free(db->path);
    free(db);
}

int db_schema_version(struct db *db)
{
#ifdef O2C_HAVE_PQ
    if (db->pg)
        return db_pg_call_schema_version(db);
#endif
    int64_t version = -1;
    if (db_query_first(db, "PRAGMA user_version", "reading the schema version", &version, NULL, 0,
                       NULL, DB_NO_ARGS) != STORE_OK)
        return -1;
    return (int)version;
}

/* The step to VERSION and its PRAGMA user_version (which takes no
 * parameters; VERSION is our own constant, not input). */
static int db_apply_migration(struct db *db, int version)
{
    char set_version[48];
    snprintf(set_version, sizeof set_version, "PRAGMA user_version = %d", version);
    const char *const steps[] = {db_schema_migrations[version], set_version};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        char *msg = NULL;
        if (sqlite3_exec(db->conn, steps[i], NULL, NULL, &msg) != SQLITE_OK) {
            db_fail(db, STORE_ERROR, "%s: migration to schema version %d failed: %s", db->path,
                    version, msg ? msg : "unknown error");
            sqlite3_free(msg);
            return STORE_ERROR;
        }
    }
    return STORE_OK;
}

int db_migrate(struct db *db, int *applied)
{
#ifdef O2C_HAVE_PQ
    if (db->pg)
        return db_pg_call_migrate(db, applied);
#endif
    if (applied)
        *applied = 0;
    int rc = db_tx_begin(db);
    if (rc != STORE_OK)
        return rc;
    /* Read inside the write transaction: two processes starting at once
     * cannot both apply the same step. */
    int version = db_schema_version(db);
    if (version < 0)
        rc = STORE_ERROR;
    else if (version > db_schema_latest)
        rc = db_fail(db, STORE_ERROR,
                     "%s: schema version %d is newer than this o2c understands (%d); "
                     "run a newer o2c or restore a backup",
                     db->path, version, db_schema_latest);
    for (int v = version + 1; rc == STORE_OK && v <= db_schema_latest; v++)
        if ((rc = db_apply_migration(db, v)) == STORE_OK && applied)
            (*applied)++;
    return db_tx_end(db, rc);
}

/* Check, vacuum (backup: backup.c) */

static void db_append(char *buf, size_t cap, const char *s)
{
    size_t len = strlen(buf);
    snprintf(buf + len, cap - len, "%s%s", len ? "; " : "", s);
}

/* Adds the rows of SQL (a check PRAGMA) that are not "ok", the first
 * five, to PROBLEMS as "LABEL: row". */
static int db_check_pragma(struct db *db, const char *sql, const char *label, char *problems,
                           size_t cap)
{
    struct rowset rs;
    rowset_init(&rs, 0);
    int rc = db_query(db, sql, sql, &rs, DB_NO_ARGS);
    for (size_t i = 0, found = 0; rc == STORE_OK && i < rs.nrows && found < 5; i++) {
        const char *text = rowset_text(&rs, i, 0);
        if (text && strcmp(text, "ok") == 0)
            continue;
        char line[256];
        snprintf(line, sizeof line, "%s: %s", label, text ? text : "?");
        db_append(problems, cap, line);
        found++;
    }
    rowset_free(&rs);
    return rc;
}

int db_check(struct db *db)
{
#ifdef O2C_HAVE_PQ
    if (db->pg)
        return db_pg_call_check(db);
#endif
    char problems[768] = "";
    int rc =
        db_check_pragma(db, "PRAGMA integrity_check(20)", "integrity", problems, sizeof problems);
    if (rc == STORE_OK)
        rc = db_check_pragma(db, "PRAGMA foreign_key_check", "foreign key in table", problems,
                             sizeof problems);
    if (rc != STORE_OK)
        return rc;
    int version = db_schema_version(db);
    if (version != db_schema_latest) {
        char line[128];
        snprintf(line, sizeof line, "schema version %d, expected %d (run `o2c db migrate`)",
                 version, db_schema_latest);
        db_append(problems, sizeof problems, line);
    }
    if (problems[0])
        return db_fail(db, STORE_ERROR, "%s: check failed: %s", db->path, problems);
    db->err[0] = '\0';
    return STORE_OK;
}

int db_vacuum(struct db *db)
{
    if (db->pg)
        return db_fail(db, STORE_INVALID,
                       "o2c db vacuum rebuilds a SQLite file; PostgreSQL vacuums by itself "
                       "(autovacuum)");
    if (db->tx_depth > 0)
        return db_fail(db, STORE_ERROR, "vacuum inside a transaction (a bug)");
    if (sqlite3_exec(db->conn, "VACUUM", NULL, NULL, NULL) != SQLITE_OK)
        return db_sqlite_fail(db, "vacuum");
    if (sqlite3_exec(db->conn, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL) != SQLITE_OK)
        return db_sqlite_fail(db, "checkpointing after vacuum");
    return STORE_OK;
}
