/* Storage for `o2c serve` and the CLI (store_lua.h): opening the database
 * a configuration names, the first-run admin, and the upkeep timers on the
 * loop (retention every retention.interval_s, expired-session cleanup every
 * few minutes), each run of retention audited with its counts, and WAL
 * checkpoints off the loop (db_checkpoint.h).
 *
 * The first admin's generated password goes to stdout once, never to the
 * log (stderr): it is for the person starting the server. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "host/log.h"
#include "store/db_checkpoint.h"
#include "store/password.h"
#include "store/store_lua_internal.h"

#define SESSION_CLEANUP_MS (5 * 60 * 1000)

struct store_serve {
    struct db *db;
    struct store_lua_config settings;
    uv_timer_t retention, cleanup;
    int timers;
    struct db_checkpoint *checkpoint;
};

struct db *store_open_config(const struct config *cfg, uv_loop_t *loop, int no_migrate, char *err,
                             size_t errlen)
{
    struct db_config dc = {.url = cfg->db.url,
                           .loop = loop,
                           .pool_size = (unsigned)cfg->db.pool_size,
                           .data_dir = cfg->data_dir,
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

struct store_serve *store_serve_open(uv_loop_t *loop, const struct config *cfg, int *exit_code)
{
    *exit_code = 1;
    char err[512];
    struct store_serve *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    if (cfg->db.url[0]) {
        /* The store runs on PostgreSQL (db_pg.h) and the CLI uses it; the
         * Lua bindings do not run their calls as operations yet. */
        log_msg(LOG_ERROR, "o2c serve cannot use PostgreSQL yet", "fix",
                "unset O2C_DATABASE_URL (database.url) to serve from SQLite; o2c db and o2c user "
                "work on PostgreSQL",
                NULL);
        free(s);
        return NULL;
    }
    s->db = store_open_config(cfg, loop, 0, err, sizeof err);
    if (s->db == NULL)
        log_msg(LOG_ERROR, "cannot open the database", "error", err, "fix",
                "check --data / O2C_DATA_DIR and its permissions", NULL);
    int rc = s->db ? serve_first_admin(s->db) : 1;
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
    s->checkpoint = db_checkpoint_start(s->db, loop);
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
    db_checkpoint_stop(s->checkpoint);
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
    db_checkpoint_close(s->checkpoint);
    db_close(s->db); /* checkpoints what is left */
    free(s);
}
