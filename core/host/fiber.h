/* Fibers: a C function run on a stack of its own, suspended and resumed.
 *
 * Why: the store's functions are plain sequential C (begin, a few
 * statements, commit).  SQLite answers them at once; PostgreSQL answers
 * later, on the loop.  Running a store function on a fiber lets the
 * PostgreSQL engine send a query, suspend until libpq's callback resumes
 * it, and go on, so one implementation of the store serves both engines
 * and no query blocks the loop (Tarantool runs its Lua and C this way).
 *
 * A fiber runs only on the thread that started it, and fibers do not nest:
 * resume one from ordinary code (a libuv callback), never from inside
 * another fiber.  Lua must not be called on a fiber: a Lua error would
 * longjmp off its stack.  The stack is mmap'd with a guard page below it,
 * so an overflow faults instead of corrupting memory.  ASan builds tell
 * the sanitizer about each switch. */
#ifndef O2C_HOST_FIBER_H
#define O2C_HOST_FIBER_H
#include <stddef.h>

struct fiber;
typedef void (*fiber_fn)(void *arg);

/* 0: the default stack size (256 KiB; 1 MiB under ASan).  NULL when out of
 * memory. */
struct fiber *fiber_new(size_t stack_size);
/* Frees F, which must not be suspended inside FN (finished or never
 * started). */
void fiber_free(struct fiber *f);

/* Runs FN(ARG) on F until it suspends or returns.  Returns 1 when FN has
 * returned, 0 when it is suspended.  F must be new or finished (a finished
 * fiber is reused). */
int fiber_start(struct fiber *f, fiber_fn fn, void *arg);
/* Continues suspended F until it suspends again or returns (1 when done). */
int fiber_resume(struct fiber *f);
/* Inside a fiber: returns to whoever started or resumed it; comes back
 * when someone calls fiber_resume. */
void fiber_suspend(void);

/* The fiber running now, or NULL on an ordinary stack. */
struct fiber *fiber_current(void);
/* 1 while F is suspended (started and neither resumed nor finished). */
int fiber_is_suspended(const struct fiber *f);

#endif
