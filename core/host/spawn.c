/* Child processes on the loop (see spawn.h).
 *
 * A job owns five handles: the process, its three pipes and a timer.  It
 * finishes when the process has exited and both output pipes reached their
 * end (or were closed at the output limit); then DONE runs, every handle is
 * closed and the last close callback frees the job.  Time and size limits
 * kill the child's whole process group (it is started detached: its own
 * group), so a helper's own children go too. */
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "host/spawn.h"

#define SPAWN_MAX_ARGS 64
#define SPAWN_CHUNK 65536

struct spawn_job {
    uv_loop_t *loop;
    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_timer_t timer;
    uv_write_t write_req;
    char *input; /* our copy of the input while it is written */
    int open_handles;
    int exited, out_done, err_done, finished, cancelled, killed;
    size_t max_output;
    size_t out_cap, err_cap;
    struct spawn_result res;
    char workdir[512];
    char chunk[SPAWN_CHUNK];
    spawn_done_fn done;
    void *ud;
};

const char *spawn_status_name(enum spawn_status status)
{
    switch (status) {
    case SPAWN_EXITED:
        return "exited";
    case SPAWN_NOT_FOUND:
        return "not_found";
    case SPAWN_TIMEOUT:
        return "timeout";
    case SPAWN_TOO_LARGE:
        return "too_large";
    default:
        return "error";
    }
}

/* A name without a slash, made of the characters program names use. */
static int spawn_bare_name(const char *name)
{
    if (!name || !*name || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    for (const char *p = name; *p; p++)
        if (!(*p == '-' || *p == '_' || *p == '.' || *p == '+' || (*p >= '0' && *p <= '9') ||
              (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            return 0;
    return 1;
}

int spawn_find_program(const char *program, char *buf, size_t cap)
{
    if (!spawn_bare_name(program))
        return -1;
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/bin:/bin";
    while (*path) {
        size_t len = strcspn(path, ":");
        if (len > 0) {
            int n = snprintf(buf, cap, "%.*s/%s", (int)len, path, program);
            struct stat st;
            if (n > 0 && (size_t)n < cap && stat(buf, &st) == 0 && S_ISREG(st.st_mode) &&
                access(buf, X_OK) == 0)
                return 0;
        }
        path += len;
        if (*path == ':')
            path++;
    }
    return -1;
}

__attribute__((format(printf, 3, 4))) static void
spawn_fail(struct spawn_result *res, enum spawn_status status, const char *fmt, ...)
{
    memset(res, 0, sizeof *res);
    res->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->message, sizeof res->message, fmt, ap);
    va_end(ap);
}

static int spawn_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static void spawn_remove_workdir(char *workdir)
{
    if (workdir[0])
        nftw(workdir, spawn_remove_entry, 8, FTW_DEPTH | FTW_PHYS);
    workdir[0] = '\0';
}

static int spawn_write_file(const char *dir, const struct spawn_file *f)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, f->name);
    FILE *fp = fopen(path, "wbx");
    if (!fp)
        return -1;
    size_t wrote = f->len ? fwrite(f->data, 1, f->len, fp) : 0;
    int closed = fclose(fp);
    return wrote == f->len && closed == 0 ? 0 : -1;
}

/* A private folder under TMPDIR holding REQ's files: the child's cwd and HOME. */
static int spawn_make_workdir(struct spawn_job *job, const struct spawn_request *req,
                              struct spawn_result *res)
{
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    snprintf(job->workdir, sizeof job->workdir, "%s/o2c-spawn-XXXXXX", tmp);
    if (!mkdtemp(job->workdir)) {
        spawn_fail(res, SPAWN_ERROR, "cannot make a working folder in %s: %s", tmp,
                   strerror(errno));
        job->workdir[0] = '\0';
        return -1;
    }
    for (size_t i = 0; i < req->nfiles; i++) {
        if (spawn_write_file(job->workdir, &req->files[i]) != 0) {
            spawn_fail(res, SPAWN_ERROR, "cannot write %s for the program: %s", req->files[i].name,
                       strerror(errno));
            spawn_remove_workdir(job->workdir);
            return -1;
        }
    }
    return 0;
}

static const char *spawn_check_request(const struct spawn_request *req)
{
    if (req->nfiles > SPAWN_MAX_FILES)
        return "too many files for one program";
    for (size_t i = 0; i < req->nfiles; i++)
        if (!spawn_bare_name(req->files[i].name))
            return "a file name must be a plain name (letters, digits, - _ . +)";
    size_t n = 0;
    while (req->args && req->args[n])
        n++;
    if (n + 2 > SPAWN_MAX_ARGS)
        return "too many arguments";
    return NULL;
}

/* ------------------------------------------------------------------------ */

static void spawn_handle_closed(uv_handle_t *h)
{
    struct spawn_job *job = h->data;
    if (--job->open_handles == 0) {
        free(job->res.out);
        free(job->res.err);
        free(job->input);
        free(job);
    }
}

static void spawn_close(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, spawn_handle_closed);
}

static void spawn_stop_stream(uv_pipe_t *pipe, int *done)
{
    uv_read_stop((uv_stream_t *)pipe);
    spawn_close((uv_handle_t *)pipe);
    *done = 1;
}

/* Kills the child's whole group (it leads one: a helper's children end
 * too, also one that outlived it holding the pipes) and stops reading. */
static void spawn_kill(struct spawn_job *job)
{
    if (!job->killed) {
        job->killed = 1;
        if (kill(-job->proc.pid, SIGKILL) != 0 && !job->exited)
            uv_process_kill(&job->proc, SIGKILL);
    }
    spawn_stop_stream(&job->out, &job->out_done);
    spawn_stop_stream(&job->err, &job->err_done);
}

static void spawn_finish(struct spawn_job *job)
{
    if (job->finished || !job->exited || !job->out_done || !job->err_done)
        return;
    job->finished = 1;
    uv_timer_stop(&job->timer);
    spawn_remove_workdir(job->workdir);
    if (!job->cancelled && job->done)
        job->done(job, &job->res, job->ud);
    spawn_close((uv_handle_t *)&job->proc);
    spawn_close((uv_handle_t *)&job->in);
    spawn_close((uv_handle_t *)&job->out);
    spawn_close((uv_handle_t *)&job->err);
    spawn_close((uv_handle_t *)&job->timer);
}

static void spawn_on_exit(uv_process_t *proc, int64_t exit_status, int term_signal)
{
    struct spawn_job *job = proc->data;
    job->exited = 1;
    job->res.exit_code = exit_status;
    job->res.term_signal = term_signal;
    if (job->res.status == SPAWN_EXITED && term_signal != 0) {
        job->res.status = SPAWN_ERROR;
        snprintf(job->res.message, sizeof job->res.message, "the program was killed by signal %d",
                 term_signal);
    }
    spawn_finish(job);
}

static void spawn_on_timeout(uv_timer_t *timer)
{
    struct spawn_job *job = timer->data;
    if (job->res.status == SPAWN_EXITED) {
        job->res.status = SPAWN_TIMEOUT;
        snprintf(job->res.message, sizeof job->res.message,
                 "the program ran past its time limit and was stopped");
    }
    spawn_kill(job);
    spawn_finish(job);
}

static void spawn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct spawn_job *job = h->data;
    (void)suggested;
    *buf = uv_buf_init(job->chunk, sizeof job->chunk);
}

/* Appends LEN bytes to *DATA (NUL-terminated), growing *CAP. */
static int spawn_append(char **data, size_t *len, size_t *cap, const char *bytes, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t want = *cap ? *cap : 4096;
        while (want < *len + n + 1)
            want *= 2;
        char *grown = realloc(*data, want);
        if (!grown)
            return -1;
        *data = grown;
        *cap = want;
    }
    memcpy(*data + *len, bytes, n);
    *len += n;
    (*data)[*len] = '\0';
    return 0;
}

static void spawn_on_stdout(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct spawn_job *job = s->data;
    if (n < 0) {
        spawn_stop_stream(&job->out, &job->out_done);
        spawn_finish(job);
        return;
    }
    if (job->res.out_len + (size_t)n > job->max_output) {
        if (job->res.status == SPAWN_EXITED) {
            job->res.status = SPAWN_TOO_LARGE;
            snprintf(job->res.message, sizeof job->res.message,
                     "the program wrote more than %zu bytes and was stopped", job->max_output);
        }
        spawn_kill(job);
        spawn_finish(job);
        return;
    }
    if (spawn_append(&job->res.out, &job->res.out_len, &job->out_cap, buf->base, (size_t)n) != 0) {
        job->res.status = SPAWN_ERROR;
        snprintf(job->res.message, sizeof job->res.message, "out of memory reading the output");
        spawn_kill(job);
        spawn_finish(job);
    }
}

static void spawn_on_stderr(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct spawn_job *job = s->data;
    if (n < 0) {
        spawn_stop_stream(&job->err, &job->err_done);
        spawn_finish(job);
        return;
    }
    /* Keep the start (where the reason usually is); read and drop the rest
     * so the child never blocks on a full pipe. */
    size_t room = SPAWN_MAX_STDERR - job->res.err_len;
    size_t keep = (size_t)n < room ? (size_t)n : room;
    if (keep > 0)
        spawn_append(&job->res.err, &job->res.err_len, &job->err_cap, buf->base, keep);
}

static void spawn_on_written(uv_write_t *w, int status)
{
    struct spawn_job *job = w->data;
    (void)status; /* a child that stops reading early is judged by its exit */
    free(job->input);
    job->input = NULL;
    spawn_close((uv_handle_t *)&job->in);
}

/* ------------------------------------------------------------------------ */

static void spawn_init_handles(struct spawn_job *job)
{
    uv_pipe_init(job->loop, &job->in, 0);
    uv_pipe_init(job->loop, &job->out, 0);
    uv_pipe_init(job->loop, &job->err, 0);
    uv_timer_init(job->loop, &job->timer);
    job->proc.data = job->in.data = job->out.data = job->err.data = job->timer.data = job;
    job->open_handles = 4; /* the process handle counts once uv_spawn has run */
}

/* uv_spawn failed: close what was opened; the job frees itself. */
static void spawn_abandon(struct spawn_job *job, int with_proc)
{
    spawn_remove_workdir(job->workdir);
    if (with_proc) {
        job->open_handles++;
        spawn_close((uv_handle_t *)&job->proc);
    }
    spawn_close((uv_handle_t *)&job->in);
    spawn_close((uv_handle_t *)&job->out);
    spawn_close((uv_handle_t *)&job->err);
    spawn_close((uv_handle_t *)&job->timer);
}

static int spawn_launch(struct spawn_job *job, const char *path, const struct spawn_request *req,
                        struct spawn_result *res)
{
    const char *argv[SPAWN_MAX_ARGS];
    size_t argc = 0;
    argv[argc++] = path;
    while (req->args && req->args[argc - 1])
        argv[argc] = req->args[argc - 1], argc++;
    argv[argc] = NULL;

    const char *tmp = getenv("TMPDIR");
    char env_path[4096], env_home[600], env_tmp[600];
    snprintf(env_path, sizeof env_path, "PATH=%s",
             getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    snprintf(env_home, sizeof env_home, "HOME=%s", job->workdir);
    snprintf(env_tmp, sizeof env_tmp, "TMPDIR=%s", tmp && *tmp ? tmp : "/tmp");
    char *env[] = {env_path, env_home, env_tmp, "LANG=C.UTF-8", NULL};

    uv_stdio_container_t stdio[3];
    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&job->in;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&job->out;
    stdio[2].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[2].data.stream = (uv_stream_t *)&job->err;

    uv_process_options_t opts = {0};
    opts.exit_cb = spawn_on_exit;
    opts.file = path;
    opts.args = (char **)argv;
    opts.env = env;
    opts.cwd = job->workdir;
    opts.flags = UV_PROCESS_DETACHED;
    opts.stdio_count = 3;
    opts.stdio = stdio;
    int rc = uv_spawn(job->loop, &job->proc, &opts);
    if (rc != 0) {
        spawn_fail(res, rc == UV_ENOENT ? SPAWN_NOT_FOUND : SPAWN_ERROR, "cannot start %s: %s",
                   req->program, uv_strerror(rc));
        return -1;
    }
    return 0;
}

static void spawn_feed_input(struct spawn_job *job, const struct spawn_request *req)
{
    if (req->input_len == 0 || !(job->input = malloc(req->input_len))) {
        spawn_close((uv_handle_t *)&job->in);
        return;
    }
    memcpy(job->input, req->input, req->input_len);
    uv_buf_t buf = uv_buf_init(job->input, (unsigned)req->input_len);
    job->write_req.data = job;
    if (uv_write(&job->write_req, (uv_stream_t *)&job->in, &buf, 1, spawn_on_written) != 0) {
        free(job->input);
        job->input = NULL;
        spawn_close((uv_handle_t *)&job->in);
    }
}

struct spawn_job *spawn_start(uv_loop_t *loop, const struct spawn_request *req, spawn_done_fn done,
                              void *ud, struct spawn_result *res_now)
{
    char path[1024];
    if (!spawn_bare_name(req->program)) {
        spawn_fail(res_now, SPAWN_ERROR, "not a program name: %s",
                   req->program ? req->program : "(none)");
        return NULL;
    }
    if (spawn_find_program(req->program, path, sizeof path) != 0) {
        spawn_fail(res_now, SPAWN_NOT_FOUND, "%s is not installed (not found in PATH)",
                   req->program);
        return NULL;
    }
    const char *bad = spawn_check_request(req);
    if (bad) {
        spawn_fail(res_now, SPAWN_ERROR, "%s: %s", req->program, bad);
        return NULL;
    }
    /* A child that exits before reading all its input must not kill us. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
    struct spawn_job *job = calloc(1, sizeof *job);
    if (!job) {
        spawn_fail(res_now, SPAWN_ERROR, "out of memory starting %s", req->program);
        return NULL;
    }
    job->loop = loop;
    job->done = done;
    job->ud = ud;
    job->max_output = req->max_output ? req->max_output : SPAWN_DEFAULT_MAX_OUTPUT;
    if (spawn_make_workdir(job, req, res_now) != 0) {
        free(job);
        return NULL;
    }
    spawn_init_handles(job);
    if (spawn_launch(job, path, req, res_now) != 0) {
        spawn_abandon(job, 1);
        return NULL;
    }
    job->open_handles++;
    uv_read_start((uv_stream_t *)&job->out, spawn_alloc, spawn_on_stdout);
    uv_read_start((uv_stream_t *)&job->err, spawn_alloc, spawn_on_stderr);
    spawn_feed_input(job, req);
    uv_timer_start(&job->timer, spawn_on_timeout,
                   req->timeout_ms ? req->timeout_ms : SPAWN_DEFAULT_TIMEOUT_MS, 0);
    return job;
}

void spawn_cancel(struct spawn_job *job)
{
    /* The handles stay open until the child is reaped (no zombie is left),
     * which SIGKILL makes quick; DONE is skipped. */
    job->cancelled = 1;
    if (!job->finished) {
        spawn_kill(job);
        spawn_finish(job);
    }
}
