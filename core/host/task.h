/* Tasks: Lua coroutines run by the host, one per request and per report job.
 *
 * A C function that has to wait (timer, HTTP transfer, work on the thread
 * pool) starts its operation, describes it with a `struct task_wait` and
 * calls task_yield().  When the operation completes, its libuv/curl callback
 * calls task_wake(): the host pushes the results onto the coroutine and
 * resumes it.  If the task dies first (cancelled, deadline, shutdown), the
 * host calls the wait's done() with cancelled=1 so the operation is aborted
 * and nothing ever resumes a dead task.
 *
 * Lua errors raised inside a task end at lua_resume(): they never unwind
 * through a libuv callback.  Every function here may be called from a raw
 * libuv callback. */
#ifndef O2C_HOST_TASK_H
#define O2C_HOST_TASK_H
#include <lua.h>
#include <stdint.h>

struct task;

struct task_wait {
    /* Pushes the operation's results onto CO; returns how many. */
    int (*push)(lua_State *co, void *data);
    /* Releases the operation.  CANCELLED is 1 when the task died before the
     * operation completed: abort it, never call task_wake for it afterwards. */
    void (*done)(void *data, int cancelled);
    void *data;
};

/* What the creator of a task hears when it ends.  STATUS is LUA_OK with NRES
 * results on CO's stack, or an error status with the message and traceback
 * in ERROR (CO's stack then holds nothing useful).  Also called with
 * status = LUA_ERRRUN and error "cancelled" when the task is cancelled. */
typedef void (*task_exit_fn)(struct task *t, lua_State *co, int status, int nres, const char *error,
                             void *ud);

/* Starts a task running the function under NARGS arguments on top of L's
 * stack (both popped).  L is the product VM's main state.  ON_EXIT may be
 * NULL (errors are then logged).  Returns the task, or NULL when it already
 * finished during this call (ON_EXIT has then been called). */
struct task *task_spawn(lua_State *L, int nargs, task_exit_fn on_exit, void *ud);

/* From a lua_CFunction running directly in a task's coroutine: records WAIT
 * and yields.  Use as `return task_yield(L, &wait);`.  Raises a Lua error when
 * L is not a task (e.g. inside a nested coroutine or at top level). */
int task_yield(lua_State *L, const struct task_wait *wait);

/* Completes the task's pending wait: resumes the task, which runs push()
 * (protected) and then done(data, 0) before its Lua code continues. */
void task_wake(struct task *t);

/* Kills T: cancels its pending wait, closes the coroutine (to-be-closed
 * variables run), reports "cancelled" to its on_exit. */
void task_cancel(struct task *t);

/* The task whose coroutine is L, or NULL. */
struct task *task_from_state(lua_State *L);

/* The coroutine running T. */
lua_State *task_thread(const struct task *t);

/* Number of live tasks (for shutdown and metrics). */
size_t task_count(void);

/* Cancels every live task (used at shutdown after the grace period). */
void task_cancel_all(void);

/* Per-task value the creator may attach (e.g. the request id for logs). */
void task_set_label(struct task *t, const char *label);
const char *task_label(const struct task *t);

#endif
