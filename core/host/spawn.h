/* Child processes on the loop: run one of our fixed helper programs
 * (weasyprint, pandoc, rsvg-convert, zip) with an argv array, never a shell,
 * feed it STDIN, collect its stdout and stderr, and end it when it runs past
 * its time limit or writes more than its output limit.
 *
 * The program is a bare name looked up in the server's PATH (a name with a
 * slash is refused): "not installed" is then a clear answer of its own
 * (SPAWN_NOT_FOUND), decided before anything starts.  The child gets a
 * minimal environment (PATH, HOME, TMPDIR, LANG) and, when FILES are given,
 * a private working folder holding them, removed when the job ends.
 *
 * Everything runs on the loop thread; DONE is called once, from a libuv
 * callback, unless the job was cancelled first. */
#ifndef O2C_HOST_SPAWN_H
#define O2C_HOST_SPAWN_H
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

enum spawn_status {
    SPAWN_EXITED = 0, /* the program ran and exited (any exit code) */
    SPAWN_NOT_FOUND,  /* no such program in PATH */
    SPAWN_TIMEOUT,    /* killed at the time limit */
    SPAWN_TOO_LARGE,  /* killed at the output limit */
    SPAWN_ERROR,      /* could not start, killed by a signal, or a system error */
};

struct spawn_file {
    const char *name; /* a plain file name, no slash */
    const char *data;
    size_t len;
};

struct spawn_request {
    const char *program;     /* bare name, e.g. "weasyprint" */
    const char *const *args; /* arguments after the program name, NULL-terminated (or NULL) */
    const char *input;       /* written to the child's stdin, then closed */
    size_t input_len;
    uint64_t timeout_ms;            /* 0: SPAWN_DEFAULT_TIMEOUT_MS */
    size_t max_output;              /* stdout cap in bytes; 0: SPAWN_DEFAULT_MAX_OUTPUT */
    const struct spawn_file *files; /* written into the child's working folder */
    size_t nfiles;
};

#define SPAWN_DEFAULT_TIMEOUT_MS 60000u
#define SPAWN_DEFAULT_MAX_OUTPUT ((size_t)64 << 20)
#define SPAWN_MAX_STDERR ((size_t)16 << 10) /* kept for messages; the rest dropped */
#define SPAWN_MAX_FILES 16

struct spawn_result {
    enum spawn_status status;
    int64_t exit_code; /* SPAWN_EXITED */
    int term_signal;   /* the signal that ended it, or 0 */
    char *out;         /* stdout (NUL-terminated; OUT_LEN bytes), owned by the job */
    size_t out_len;
    char *err; /* stderr, at most SPAWN_MAX_STDERR bytes */
    size_t err_len;
    char message[512]; /* what went wrong, for SPAWN_* other than EXITED */
};

struct spawn_job;

/* RES is valid during the call only: to keep OUT or ERR, take the pointer
 * and set the field to NULL (it is then the caller's to free). */
typedef void (*spawn_done_fn)(struct spawn_job *job, struct spawn_result *res, void *ud);

/* Starts REQ.  Returns the job, or NULL after filling RES_NOW (not found,
 * bad request, could not start): then DONE is never called. */
struct spawn_job *spawn_start(uv_loop_t *loop, const struct spawn_request *req, spawn_done_fn done,
                              void *ud, struct spawn_result *res_now);

/* Kills the child if it still runs and releases the job once its handles
 * close; DONE is not called.  Only before DONE has been called. */
void spawn_cancel(struct spawn_job *job);

/* The full path of PROGRAM in PATH into BUF; 0, or -1 when it is not there
 * (or the name is not a bare name). */
int spawn_find_program(const char *program, char *buf, size_t cap);

/* "exited", "not_found", "timeout", "too_large", "error". */
const char *spawn_status_name(enum spawn_status status);

#endif
