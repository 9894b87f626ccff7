#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include "host/log.h"
#include "store/db_checkpoint.h"
#include "store/db_internal.h"

#define CHECKPOINT_FRAMES 1000

struct db_checkpoint {
    struct db *db;
    uv_loop_t *loop;
    int active;
    uv_work_t work;
    int running;   /* the work below is on the pool */
    sqlite3 *conn; /* used only by checkpoint_run, one at a time */
    char error[256];
};

/* On the pool: a passive checkpoint on our own connection. */
static void checkpoint_run(uv_work_t *w)
{
    struct db_checkpoint *c = w->data;
    c->error[0] = '\0';
    if (c->conn == NULL) {
        if (sqlite3_open_v2(db_path(c->db), &c->conn, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
            snprintf(c->error, sizeof c->error, "%s",
                     c->conn ? sqlite3_errmsg(c->conn) : "out of memory");
            sqlite3_close(c->conn);
            c->conn = NULL;
            return;
        }
        sqlite3_busy_timeout(c->conn, 1000);
    }
    int rc = sqlite3_wal_checkpoint_v2(c->conn, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY)
        snprintf(c->error, sizeof c->error, "%s", sqlite3_errmsg(c->conn));
}

static void checkpoint_done(uv_work_t *w, int status)
{
    (void)status;
    struct db_checkpoint *c = w->data;
    c->running = 0;
    /* Saves went on meanwhile, so the WAL is never fully copied from the
     * pool; the few frames written since are copied here, on the loop, so
     * that the next commit can start the WAL over instead of growing it. */
    if (c->active && !c->error[0])
        sqlite3_wal_checkpoint_v2(db_conn(c->db), NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (c->error[0])
        log_msg(LOG_ERROR, "WAL checkpoint failed", "error", c->error, NULL);
}

/* SQLite's WAL hook, on the loop after each commit: FRAMES in the WAL. */
static int checkpoint_hook(void *arg, sqlite3 *conn, const char *name, int frames)
{
    (void)conn;
    (void)name;
    struct db_checkpoint *c = arg;
    if (frames < CHECKPOINT_FRAMES || c->running || !c->active)
        return SQLITE_OK;
    c->work.data = c;
    if (uv_queue_work(c->loop, &c->work, checkpoint_run, checkpoint_done) == 0)
        c->running = 1;
    return SQLITE_OK;
}

struct db_checkpoint *db_checkpoint_start(struct db *db, uv_loop_t *loop)
{
    struct db_checkpoint *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    *c = (struct db_checkpoint){.db = db, .loop = loop, .active = 1};
    sqlite3_wal_hook(db_conn(db), checkpoint_hook, c); /* replaces the automatic checkpoint */
    return c;
}

void db_checkpoint_stop(struct db_checkpoint *c)
{
    if (c)
        c->active = 0;
}

void db_checkpoint_close(struct db_checkpoint *c)
{
    if (c == NULL)
        return;
    sqlite3_wal_hook(db_conn(c->db), NULL, NULL);
    sqlite3_close(c->conn);
    free(c);
}
