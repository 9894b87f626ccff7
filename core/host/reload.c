#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "host/log.h"
#include "host/notify.h"
#include "host/reload.h"

#define RELOAD_DEBOUNCE_MS 25
#define RELOAD_WATCH_MAX 256

/* One build on the thread pool.  Only the worker touches it until
 * after_work runs on the loop. */
struct reload_job {
    uv_work_t work;
    char scripts[CONFIG_PATH_MAX], kb[CONFIG_PATH_MAX];
    struct sandbox_limits limits;
    struct generation *result;
    struct gen_errors errors;
    uint64_t started_ms, elapsed_ms;
};

static struct {
    uv_loop_t *loop;
    const struct config *cfg;
    uv_timer_t debounce;
    uv_fs_event_t *watches[RELOAD_WATCH_MAX];
    size_t nwatches;
    int building, dirty, stopped, started;
    int announced; /* reload_now told the service manager RELOADING=1 */
    struct gen_errors errors;
    uint64_t loads, failures;
    double last_ms;
    reload_listener_fn listener;
    void *listener_ud;
} rl;

static void reload_schedule(void);

static void watch_closed(uv_handle_t *h)
{
    free(h);
}

static void watch_event(uv_fs_event_t *h, const char *name, int events, int status)
{
    (void)h;
    (void)events;
    if (status < 0 || (name && (name[0] == '.' || name[0] == '#')))
        return; /* editor swap files and the like */
    reload_schedule();
}

static void watch_folder(const char *dir)
{
    if (rl.nwatches >= RELOAD_WATCH_MAX)
        return;
    uv_fs_event_t *h = malloc(sizeof *h);
    if (!h || uv_fs_event_init(rl.loop, h) != 0) {
        free(h);
        return;
    }
    if (uv_fs_event_start(h, watch_event, dir, 0) != 0) {
        uv_close((uv_handle_t *)h, watch_closed);
        return;
    }
    rl.watches[rl.nwatches++] = h;
}

static void watch_tree(const char *dir)
{
    watch_folder(dir);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[CONFIG_PATH_MAX * 2];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            watch_tree(path);
    }
    if (d)
        closedir(d);
}

static void unwatch_all(void)
{
    for (size_t i = 0; i < rl.nwatches; i++)
        uv_close((uv_handle_t *)rl.watches[i], watch_closed);
    rl.nwatches = 0;
}

static int watching(uv_fs_event_t *const *list, size_t n, const char *path)
{
    char buf[CONFIG_PATH_MAX * 2];
    for (size_t i = 0; i < n; i++) {
        size_t len = sizeof buf;
        if (uv_fs_event_getpath(list[i], buf, &len) == 0 && strcmp(buf, path) == 0)
            return 1;
    }
    return 0;
}

/* Folders may have appeared or gone: watch the trees afresh.  Returns 1
 * when a folder is watched now that was not before: files written in it
 * before its watch began were possibly missed by the build that just ran. */
static int rewatch(void)
{
    uv_fs_event_t *old[RELOAD_WATCH_MAX];
    size_t nold = rl.nwatches;
    memcpy(old, rl.watches, nold * sizeof *old);
    rl.nwatches = 0;
    watch_tree(rl.cfg->scripts_dir);
    watch_tree(rl.cfg->kb_dir);
    int added = 0;
    char buf[CONFIG_PATH_MAX * 2];
    for (size_t i = 0; i < rl.nwatches && !added; i++) {
        size_t len = sizeof buf;
        if (uv_fs_event_getpath(rl.watches[i], buf, &len) == 0 && !watching(old, nold, buf))
            added = 1;
    }
    for (size_t i = 0; i < nold; i++)
        uv_close((uv_handle_t *)old[i], watch_closed);
    return added && nold > 0;
}

static void job_build(struct reload_job *job)
{
    struct gen_sources src;
    uint64_t t0 = uv_hrtime();
    if (gen_sources_read(&src, job->scripts, job->kb, &job->errors) == 0)
        job->result = generation_build(&src, &job->limits, &job->errors);
    job->elapsed_ms = (uv_hrtime() - t0) / 1000000u;
}

static void job_work(uv_work_t *w)
{
    job_build(w->data);
}

static void reload_apply(struct reload_job *job)
{
    rl.last_ms = (double)job->elapsed_ms;
    if (job->result) {
        struct generation *old = generation_current();
        int same = old && strcmp(generation_hash(old), generation_hash(job->result)) == 0;
        gen_errors_free(&rl.errors);
        rl.loads++;
        if (same) {
            generation_set_current(job->result); /* identical; keeps the newest state */
            return;
        }
        generation_set_current(job->result);
        log_msg(LOG_INFO, "generation loaded", "generation", generation_hash(job->result), NULL);
        if (rl.listener)
            rl.listener(job->result, rl.listener_ud);
        return;
    }
    rl.failures++;
    gen_errors_free(&rl.errors);
    rl.errors = job->errors;
    memset(&job->errors, 0, sizeof job->errors);
    for (size_t i = 0; i < rl.errors.count; i++) {
        char line[16];
        snprintf(line, sizeof line, "%d", rl.errors.items[i].line);
        log_msg(LOG_ERROR, "reload failed: the last good generation keeps serving", "file",
                rl.errors.items[i].file, "line", line, "error", rl.errors.items[i].message, NULL);
    }
}

/* READY=1 after a requested reload, once no other build is queued: with
 * what serves now, as `systemctl status` shows it. */
static void reload_announce_done(void)
{
    if (!rl.announced || rl.building || uv_is_active((uv_handle_t *)&rl.debounce))
        return;
    rl.announced = 0;
    char status[400];
    struct generation *g = generation_current();
    if (rl.errors.count > 0)
        snprintf(status, sizeof status, "reload failed (%.200s:%d), generation %s serves",
                 rl.errors.items[0].file, rl.errors.items[0].line, g ? generation_hash(g) : "none");
    else
        snprintf(status, sizeof status, "serving generation %s", g ? generation_hash(g) : "none");
    notify_ready(status);
}

static void job_done(uv_work_t *w, int status)
{
    struct reload_job *job = w->data;
    rl.building = 0;
    if (status == 0 && !rl.stopped)
        reload_apply(job);
    else if (job->result) {
        struct generation *g = job->result; /* never made current: free it */
        generation_pin(g);
        generation_unpin(g); /* never current: freed here */
    }
    gen_errors_free(&job->errors);
    free(job);
    if (rl.stopped)
        return;
    if (rewatch())
        rl.dirty = 1;
    if (rl.dirty) {
        rl.dirty = 0;
        reload_schedule();
    }
    reload_announce_done();
}

static struct reload_job *job_new(void)
{
    struct reload_job *job = calloc(1, sizeof *job);
    if (!job)
        return NULL;
    job->work.data = job;
    snprintf(job->scripts, sizeof job->scripts, "%s", rl.cfg->scripts_dir);
    snprintf(job->kb, sizeof job->kb, "%s", rl.cfg->kb_dir);
    generation_limits(rl.cfg, &job->limits);
    return job;
}

static void debounce_fired(uv_timer_t *t)
{
    (void)t;
    if (rl.stopped)
        return;
    if (rl.building) {
        rl.dirty = 1;
        return;
    }
    struct reload_job *job = job_new();
    if (!job)
        return;
    rl.building = 1;
    if (uv_queue_work(rl.loop, &job->work, job_work, job_done) != 0) {
        rl.building = 0;
        free(job);
        reload_announce_done(); /* nothing will finish: the old generation serves on */
    }
}

static void reload_schedule(void)
{
    if (!rl.stopped && rl.started)
        uv_timer_start(&rl.debounce, debounce_fired, RELOAD_DEBOUNCE_MS, 0);
}

void reload_start(uv_loop_t *loop, const struct config *cfg)
{
    rl.loop = loop;
    rl.cfg = cfg;
    rl.stopped = 0;
    uv_timer_init(loop, &rl.debounce);
    rl.started = 1;
    struct reload_job *job = job_new();
    if (job) {
        job_build(job);
        rl.building = 1;
        job->work.data = job;
        job_done(&job->work, 0);
    }
}

void reload_now(const char *why)
{
    log_msg(LOG_INFO, "reloading scripts and KB", "reason", why, NULL);
    if (rl.stopped || !rl.started)
        return;
    notify_reloading();
    rl.announced = 1;
    reload_schedule();
}

void reload_stop(void)
{
    if (!rl.started || rl.stopped)
        return;
    rl.stopped = 1;
    unwatch_all();
    uv_close((uv_handle_t *)&rl.debounce, NULL);
    gen_errors_free(&rl.errors);
}

void reload_get_status(struct reload_status *out)
{
    out->errors = &rl.errors;
    out->loads = rl.loads;
    out->failures = rl.failures;
    out->last_ms = rl.last_ms;
}

void reload_set_listener(reload_listener_fn fn, void *ud)
{
    rl.listener = fn;
    rl.listener_ud = ud;
}
