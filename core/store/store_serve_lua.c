/* Storage for `o2c serve` and the CLI (store_lua.h): opening the database
 * a configuration names, the first-run admin, and the upkeep timers on the
 * loop (retention every retention.interval_s, expired-session cleanup every
 * few minutes), each run of retention audited with its counts.
 *
 * WAL checkpoints run off the loop: SQLite's automatic checkpoint copies up
 * to 1,000 pages inside whichever commit crosses the threshold, which held
 * the loop for ~4 ms about once per hundred answer saves (the p99 of a save
 * through the API).  The server's connection does not checkpoint: its WAL
 * hook sees each commit's WAL size and, past CHECKPOINT_FRAMES (SQLite's own
 * threshold), a passive checkpoint runs on the thread pool on a second
 * connection of its own while writers go on, and the loop then copies only
 * the frames written meanwhile.  The WAL stays as short as with automatic
 * checkpoints (a long WAL slows every read).
 *
 * The first admin's generated password goes to stdout once, never to the
 * log (stderr): it is for the person starting the server. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "host/log.h"
#include "store/db_internal.h"
#include "store/password.h"
#include "store/store_lua_internal.h"

#define SESSION_CLEANUP_MS (5 * 60 * 1000)
#define CHECKPOINT_FRAMES 1000

struct store_serve {
    struct db *db;
    struct store_lua_config settings;
    uv_timer_t retention, cleanup;
    int timers;
    uv_loop_t *loop;
    uv_work_t checkpoint_work;
    int checkpoint_running;   /* the work below is on the pool */
    sqlite3 *checkpoint_conn; /* used only by checkpoint_run, one at a time */
    char checkpoint_error[256];
};

struct db *store_open_config(const struct config *cfg, int no_migrate, char *err, size_t errlen)
{
    struct db_config dc = {.data_dir = cfg->data_dir,
                           .synchronous_full = strcmp(cfg->db.synchronous, "full") == 0,
                           .no_migrate = no_migrate};
    return db_open(&dc, err, errlen);
}

static void log_count(struct log_field *f, char *buf, const char *key, int64_t n)
{
    snprintf(buf, 24, "%lld", (long long)n);
    *f = (struct log_field){key, buf, 1};
}

static void retention_tick(uv_timer_t *t)
{
    struct store_serve *s = t->data;
    struct retention_counts c;
    int rc = store_retention_run_audited(s->db, &s->settings, &c);
    if (rc != STORE_OK) {
        log_msg(LOG_ERROR, "retention failed", "error", db_errmsg(s->db), NULL);
        return;
    }
    char b[5][24];
    struct log_field f[5];
    log_count(&f[0], b[0], "sessions", c.sessions);
    log_count(&f[1], b[1], "login_failures", c.login_failures);
    log_count(&f[2], b[2], "jobs", c.jobs);
    log_count(&f[3], b[3], "assessments", c.assessments);
    log_count(&f[4], b[4], "orphan_files", c.orphan_files);
    log_fields(LOG_INFO, "retention run", f, 5);
}

static void cleanup_tick(uv_timer_t *t)
{
    struct store_serve *s = t->data;
    int64_t n = 0;
    if (session_cleanup(s->db, &s->settings.sessions, &n) != STORE_OK)
        log_msg(LOG_WARN, "expired-session cleanup failed", "error", db_errmsg(s->db), NULL);
}

/* First start: no account yet.  Returns 0, or the exit code. */
static int serve_first_admin(struct db *db)
{
    int64_t users = 0;
    if (user_count(db, &users) != STORE_OK) {
        log_msg(LOG_ERROR, "cannot count accounts", "error", db_errmsg(db), NULL);
        return 1;
    }
    if (users > 0)
        return 0;
    const char *env = getenv("O2C_ADMIN_PASSWORD");
    char why[160];
    if (env && env[0] && password_check_policy(env, why, sizeof why) != 0) {
        fprintf(stderr,
                "o2c: O2C_ADMIN_PASSWORD cannot be used for the first admin: %s "
                "(at least %d characters)\n",
                why, PASSWORD_MIN_LEN);
        return 2;
    }
    char generated[25];
    int created = 0;
    if (user_ensure_admin(db, env, generated, &created) != STORE_OK) {
        log_msg(LOG_ERROR, "cannot create the first admin", "error", db_errmsg(db), NULL);
        return 1;
    }
    if (!created)
        return 0;
    store_lua_audit(db, NULL, "user.added", "admin", NULL,
                    generated[0]
                        ? "{\"role\":\"admin\",\"first_run\":true,\"password\":\"generated\"}"
                        : "{\"role\":\"admin\",\"first_run\":true,\"password\":\"env\"}");
    if (generated[0]) {
        printf("o2c: created user admin with password %s — change it with 'o2c user passwd "
               "admin'\n",
               generated);
        fflush(stdout);
    }
    log_msg(LOG_INFO, "created the first admin account", "user", "admin", "password",
            generated[0] ? "generated (printed on stdout)" : "from O2C_ADMIN_PASSWORD", NULL);
    return 0;
}

/* On the pool: a passive checkpoint on our own connection. */
static void checkpoint_run(uv_work_t *w)
{
    struct store_serve *s = w->data;
    s->checkpoint_error[0] = '\0';
    if (s->checkpoint_conn == NULL) {
        if (sqlite3_open_v2(db_path(s->db), &s->checkpoint_conn, SQLITE_OPEN_READWRITE, NULL) !=
            SQLITE_OK) {
            snprintf(s->checkpoint_error, sizeof s->checkpoint_error, "%s",
                     s->checkpoint_conn ? sqlite3_errmsg(s->checkpoint_conn) : "out of memory");
            sqlite3_close(s->checkpoint_conn);
            s->checkpoint_conn = NULL;
            return;
        }
        sqlite3_busy_timeout(s->checkpoint_conn, 1000);
    }
    int rc =
        sqlite3_wal_checkpoint_v2(s->checkpoint_conn, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        snprintf(s->checkpoint_error, sizeof s->checkpoint_error, "%s",
                 sqlite3_errmsg(s->checkpoint_conn));
}

static void checkpoint_done(uv_work_t *w, int status)
{
    (void)status;
    struct store_serve *s = w->data;
    s->checkpoint_running = 0;
    /* Saves went on meanwhile, so the WAL is never fully copied from the
     * pool; the few frames written since are copied here, on the loop, so
     * that the next commit can start the WAL over instead of growing it. */
    if (s->timers && !s->checkpoint_error[0])
        sqlite3_wal_checkpoint_v2(db_conn(s->db), NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (s->checkpoint_error[0])
        log_msg(LOG_ERROR, "WAL checkpoint failed", "error", s->checkpoint_error, NULL);
}

/* SQLite's WAL hook, on the loop after each commit: FRAMES in the WAL. */
static int checkpoint_hook(void *arg, sqlite3 *conn, const char *name, int frames)
{
    (void)conn;
    (void)name;
    struct store_serve *s = arg;
    if (frames < CHECKPOINT_FRAMES || s->checkpoint_running || !s->timers)
        return SQLITE_OK;
    s->checkpoint_work.data = s;
    if (uv_queue_work(s->loop, &s->checkpoint_work, checkpoint_run, checkpoint_done) == 0)
        s->checkpoint_running = 1;
    return SQLITE_OK;
}

struct store_serve *store_serve_open(uv_loop_t *loop, const struct config *cfg, int *exit_code)
{
    *exit_code = 1;
    char err[512];
    struct store_serve *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->db = store_open_config(cfg, 0, err, sizeof err);
    if (s->db == NULL) {
        log_msg(LOG_ERROR, "cannot open the database", "error", err, "fix",
                "check --data / O2C_DATA_DIR and its permissions", NULL);
        free(s);
        return NULL;
    }
    int rc = serve_first_admin(s->db);
    if (rc != 0) {
        *exit_code = rc;
        db_close(s->db);
        free(s);
        return NULL;
    }
    store_lua_config_from(&s->settings, cfg);
    uint64_t every = (uint64_t)(cfg->retention.interval_s * 1000);
    if (every == 0)
        every = 1;
    uv_timer_init(loop, &s->retention);
    uv_timer_init(loop, &s->cleanup);
    s->retention.data = s->cleanup.data = s;
    uv_timer_start(&s->retention, retention_tick, every, every);
    uv_timer_start(&s->cleanup, cleanup_tick, SESSION_CLEANUP_MS, SESSION_CLEANUP_MS);
    s->loop = loop;
    sqlite3_wal_hook(db_conn(s->db), checkpoint_hook, s); /* replaces the automatic checkpoint */
    s->timers = 1;
    *exit_code = 0;
    return s;
}

struct db *store_serve_db(struct store_serve *s)
{
    return s ? s->db : NULL;
}

void store_serve_stop(struct store_serve *s)
{
    if (s == NULL || !s->timers)
        return;
    s->timers = 0;
    uv_timer_stop(&s->retention);
    uv_timer_stop(&s->cleanup);
    uv_close((uv_handle_t *)&s->retention, NULL);
    uv_close((uv_handle_t *)&s->cleanup, NULL);
}

/* After the loop has run out (a checkpoint on the pool has finished). */
void store_serve_close(struct store_serve *s)
{
    if (s == NULL)
        return;
    sqlite3_wal_hook(db_conn(s->db), NULL, NULL);
    sqlite3_close(s->checkpoint_conn);
    db_close(s->db); /* checkpoints what is left */
    free(s);
}
