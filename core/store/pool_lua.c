/* Thread-pool work for storage bindings (store_lua_work in
 * store_lua_internal.h): argon2id hashing and verifying, attachment files.
 *
 * Argon2 takes 19 MiB and tens of ms of CPU per job (password.c's limits
 * since the move off libsodium's INTERACTIVE 64 MiB).  Run unbounded on the
 * libuv pool, 20 logins at once would take every core from the loop thread
 * and every pool thread from file reads, so "limited" jobs pass through a
 * FIFO: at most store_lua_hash_slots() on the pool, STORE_LUA_HASH_QUEUE
 * waiting, and the rest refused at once with "busy".
 *
 * Lifetime of a job: created by store_lua_work; either still queued, on the
 * pool, or finished.  The task's wait owns it (task.h): done(cancelled=0)
 * after push() frees it; done(cancelled=1) frees a queued job at once and
 * marks a job on the pool as orphaned, which its after-work callback then
 * frees.  Everything here runs on the loop thread except job_work. */
#include <lauxlib.h>
#include <stdlib.h>
#include <uv.h>
#include "host/lua_host.h"
#include "host/task.h"
#include "store/password.h"
#include "store/store_lua_internal.h"

enum job_state { JOB_QUEUED, JOB_ON_POOL, JOB_FINISHED };

struct store_job {
    uv_work_t req;
    struct task *task;
    enum job_state state;
    int orphaned; /* the task died: nothing to resume */
    int limited;
    store_work_fn work;
    store_work_push_fn push;
    store_work_release_fn release;
    void *data;
    struct store_job *next;
};

static struct {
    int running;
    int queued;
    struct store_job *head; /* the jobs waiting, oldest first (at most STORE_LUA_HASH_QUEUE) */
} hash_gate;

int store_lua_hash_slots(void)
{
    static int slots;
    if (slots == 0) {
        int cores = (int)uv_available_parallelism();
        int pool = 4; /* libuv's default */
        const char *env = getenv("UV_THREADPOOL_SIZE");
        if (env && atoi(env) > 0)
            pool = atoi(env);
        slots = cores - 1 < pool - 1 ? cores - 1 : pool - 1;
        if (slots < 1)
            slots = 1;
    }
    return slots;
}

void store_lua_hash_load(int *running, int *queued)
{
    *running = hash_gate.running;
    *queued = hash_gate.queued;
}

int store_lua_hash_full(void)
{
    return hash_gate.running >= store_lua_hash_slots() && hash_gate.queued >= STORE_LUA_HASH_QUEUE;
}

static void job_free(struct store_job *job)
{
    job->release(job->data);
    free(job);
}

static void job_work(uv_work_t *req)
{
    struct store_job *job = req->data;
    job->work(job->data);
}

static void job_after(uv_work_t *req, int status);

static int job_submit(struct store_job *job)
{
    job->state = JOB_ON_POOL;
    job->req.data = job;
    if (job->limited)
        hash_gate.running++;
    int rc = uv_queue_work(host_loop(), &job->req, job_work, job_after);
    if (rc != 0 && job->limited)
        hash_gate.running--;
    return rc;
}

/* Moves waiting argon2 jobs onto the pool while slots are free. */
static void gate_pump(void)
{
    while (hash_gate.head && hash_gate.running < store_lua_hash_slots()) {
        struct store_job *job = hash_gate.head;
        hash_gate.head = job->next;
        hash_gate.queued--;
        job->next = NULL;
        if (job_submit(job) != 0) {
            /* Cannot happen with a live loop; fail the job rather than hang. */
            job->state = JOB_FINISHED;
            task_wake(job->task);
        }
    }
}

/* The link in the queue that points at JOB (with JOB NULL: the end). */
static struct store_job **gate_link(const struct store_job *job)
{
    struct store_job **p = &hash_gate.head;
    while (*p && *p != job)
        p = &(*p)->next;
    return p;
}

static void job_after(uv_work_t *req, int status)
{
    (void)status; /* UV_ECANCELED only for orphaned jobs: freed below either way */
    struct store_job *job = req->data;
    job->state = JOB_FINISHED;
    if (job->limited) {
        hash_gate.running--;
        gate_pump();
    }
    if (job->orphaned)
        job_free(job);
    else
        task_wake(job->task);
}

static int job_push(lua_State *co, void *data)
{
    struct store_job *job = data;
    return job->push(co, job->data);
}

static void job_done(void *data, int cancelled)
{
    struct store_job *job = data;
    if (!cancelled || job->state == JOB_FINISHED) {
        job_free(job);
        return;
    }
    if (job->state == JOB_QUEUED) {
        *gate_link(job) = job->next;
        hash_gate.queued--;
        job_free(job);
        return;
    }
    /* On the pool: let it end there; job_after frees it. */
    job->orphaned = 1;
    uv_cancel((uv_req_t *)&job->req);
}

int store_lua_work(lua_State *L, int limited, store_work_fn work, store_work_push_fn push,
                   store_work_release_fn release, void *data)
{
    struct task *t = task_from_state(L);
    if (t == NULL) {
        release(data);
        return luaL_error(L, "this o2c.store function waits for the thread pool, so it must run "
                             "in a task (not at top level or in a nested coroutine)");
    }
    if (limited && store_lua_hash_full()) {
        release(data);
        return store_lua_failf(L, STORE_BUSY,
                               "too many password checks at once (%d running, %d waiting); "
                               "try again in a moment",
                               hash_gate.running, hash_gate.queued);
    }
    struct store_job *job = calloc(1, sizeof *job);
    if (job == NULL) {
        release(data);
        return luaL_error(L, "out of memory");
    }
    *job = (struct store_job){.task = t,
                              .state = JOB_QUEUED,
                              .limited = limited,
                              .work = work,
                              .push = push,
                              .release = release,
                              .data = data};
    if (limited && hash_gate.running >= store_lua_hash_slots()) {
        *gate_link(NULL) = job;
        hash_gate.queued++;
    } else if (job_submit(job) != 0) {
        job_free(job);
        return store_lua_failf(L, STORE_ERROR, "cannot queue work on the thread pool");
    }
    struct task_wait wait = {job_push, job_done, job};
    return task_yield(L, &wait);
}

/* The dummy hash (password.h) is made once per process; making it on the
 * pool at start-up keeps the first unknown-name login as slow as the rest
 * instead of twice as slow. */
static void warm_work(uv_work_t *req)
{
    (void)req;
    password_dummy_hash();
}

static void warm_after(uv_work_t *req, int status)
{
    (void)status;
    free(req);
}

void store_lua_warm_dummy_hash(void)
{
    static int started;
    if (started || host_loop() == NULL)
        return;
    uv_work_t *req = malloc(sizeof *req);
    if (req == NULL)
        return;
    started = 1;
    if (uv_queue_work(host_loop(), req, warm_work, warm_after) != 0)
        free(req);
}
