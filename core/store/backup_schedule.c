/* Scheduled backups (backup_schedule.h).  Everything runs on the loop thread
 * except backup_job_run, which touches only the job's own fields. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include "host/log.h"
#include "store/backup.h"
#include "store/backup_schedule.h"
#include "store/db.h"

struct backup_schedule {
    uv_loop_t *loop;
    uv_timer_t timer;
    uv_work_t work;
    int running; /* the job below is on the pool */
    int stopped;
    int keep;
    char db_file[4096];
    char dir[4096];
    /* The job's input and output, written by backup_job_run. */
    char path[4200];
    int rc, pruned, prune_rc;
    struct backup_info info;
    char err[BACKUP_ERR_MAX];
};

static int make_dirs(const char *dir)
{
    char buf[4096];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, 0700) != 0 && errno != EEXIST ? -1 : 0;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* On the pool. */
static void backup_job_run(uv_work_t *w)
{
    struct backup_schedule *s = w->data;
    s->pruned = 0;
    s->prune_rc = STORE_OK;
    s->err[0] = '\0';
    s->rc = backup_write(s->db_file, s->path, 0, &s->info, s->err, sizeof s->err);
    if (s->rc == STORE_OK)
        s->prune_rc = backup_prune(s->dir, s->keep, &s->pruned, s->err, sizeof s->err);
}

static void backup_job_done(uv_work_t *w, int status)
{
    struct backup_schedule *s = w->data;
    s->running = 0;
    if (status != 0) /* cancelled before it ran */
        return;
    if (s->rc != STORE_OK) {
        log_msg(LOG_ERROR, "scheduled backup failed", "file", s->path, "error", s->err, "fix",
                "check the free space and permissions of backup.dir", NULL);
        return;
    }
    char bytes[24], pruned[24];
    snprintf(bytes, sizeof bytes, "%lld", (long long)s->info.bytes);
    snprintf(pruned, sizeof pruned, "%d", s->pruned);
    struct log_field f[] = {{"file", s->path, 0}, {"bytes", bytes, 1}, {"pruned", pruned, 1}};
    log_fields(LOG_INFO, "backup written", f, 3);
    if (s->prune_rc != STORE_OK)
        log_msg(LOG_WARN, "pruning old backups failed", "dir", s->dir, "error", s->err, NULL);
}

static void backup_tick(uv_timer_t *t)
{
    struct backup_schedule *s = t->data;
    if (s->running || s->stopped) {
        log_msg(LOG_WARN, "scheduled backup skipped: the previous one is still running", NULL);
        return;
    }
    if (backup_scheduled_path(s->path, sizeof s->path, s->dir, wall_ms()) != 0) {
        log_msg(LOG_ERROR, "scheduled backup failed", "dir", s->dir, "error", "path too long",
                NULL);
        return;
    }
    s->work.data = s;
    if (uv_queue_work(s->loop, &s->work, backup_job_run, backup_job_done) == 0)
        s->running = 1;
}

struct backup_schedule *backup_schedule_start(uv_loop_t *loop, const char *db_file, const char *dir,
                                              double every_s, int keep, char *err, size_t cap)
{
    struct backup_schedule *s = calloc(1, sizeof *s);
    if (s == NULL) {
        snprintf(err, cap, "out of memory");
        return NULL;
    }
    if (snprintf(s->db_file, sizeof s->db_file, "%s", db_file) >= (int)sizeof s->db_file ||
        snprintf(s->dir, sizeof s->dir, "%s", dir) >= (int)sizeof s->dir) {
        snprintf(err, cap, "backup.dir: path too long");
        free(s);
        return NULL;
    }
    if (make_dirs(dir) != 0) {
        snprintf(err, cap, "backup.dir: cannot create %s: %s", dir, strerror(errno));
        free(s);
        return NULL;
    }
    s->loop = loop;
    s->keep = keep;
    uint64_t every = (uint64_t)(every_s * 1000);
    if (every == 0)
        every = 1;
    uv_timer_init(loop, &s->timer);
    s->timer.data = s;
    uv_timer_start(&s->timer, backup_tick, every, every);
    return s;
}

void backup_schedule_stop(struct backup_schedule *s)
{
    if (s == NULL || s->stopped)
        return;
    s->stopped = 1;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, NULL);
}

void backup_schedule_free(struct backup_schedule *s)
{
    free(s);
}
