/* Fibers on glibc's ucontext (makecontext/swapcontext); see fiber.h. */
#include "host/fiber.h"
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define FIBER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FIBER_ASAN 1
#endif
#endif
#ifdef FIBER_ASAN
#include <sanitizer/common_interface_defs.h>
#define FIBER_DEFAULT_STACK (1024 * 1024)
#else
#define FIBER_DEFAULT_STACK (256 * 1024)
#endif

enum fiber_state { FIBER_IDLE, FIBER_RUNNING, FIBER_SUSPENDED };

struct fiber {
    ucontext_t self, caller;
    char *map;        /* guard page + stack */
    size_t map_size;  /* both */
    size_t page_size; /* the guard */
    fiber_fn fn;
    void *arg;
    enum fiber_state state;
    int finished;
    /* The stack we switched from, for the sanitizer's bookkeeping. */
    void *fake_stack;
    const void *caller_bottom;
    size_t caller_size;
};

static _Thread_local struct fiber *fiber_running;

/* The sanitizer must hear of every stack switch, before and after. */
static void switch_begin(void **fake_save, const void *bottom, size_t size)
{
#ifdef FIBER_ASAN
    __sanitizer_start_switch_fiber(fake_save, bottom, size);
#else
    (void)fake_save, (void)bottom, (void)size;
#endif
}

static void switch_end(void *fake_save, const void **old_bottom, size_t *old_size)
{
#ifdef FIBER_ASAN
    __sanitizer_finish_switch_fiber(fake_save, old_bottom, old_size);
#else
    (void)fake_save, (void)old_bottom, (void)old_size;
#endif
}

static void *stack_bottom(const struct fiber *f)
{
    return f->map + f->page_size;
}

static size_t stack_size(const struct fiber *f)
{
    return f->map_size - f->page_size;
}

struct fiber *fiber_new(size_t size)
{
    struct fiber *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NULL;
    long page = sysconf(_SC_PAGESIZE);
    f->page_size = page > 0 ? (size_t)page : 4096;
    size = size ? size : FIBER_DEFAULT_STACK;
    size = (size + f->page_size - 1) / f->page_size * f->page_size;
    f->map_size = size + f->page_size;
    f->map = mmap(NULL, f->map_size, PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (f->map == MAP_FAILED || mprotect(f->map, f->page_size, PROT_NONE) != 0) {
        if (f->map != MAP_FAILED)
            munmap(f->map, f->map_size);
        free(f);
        return NULL;
    }
    return f;
}

void fiber_free(struct fiber *f)
{
    if (f == NULL)
        return;
    if (f->state != FIBER_IDLE)
        abort(); /* freeing a live stack would leave FN's frames dangling */
    munmap(f->map, f->map_size);
    free(f);
}

/* Switches from the caller's stack into F; back when F suspends or ends. */
static int switch_into(struct fiber *f)
{
    if (fiber_running != NULL)
        abort(); /* fibers do not nest (fiber.h) */
    fiber_running = f;
    f->state = FIBER_RUNNING;
    void *fake = NULL;
    switch_begin(&fake, stack_bottom(f), stack_size(f));
    swapcontext(&f->caller, &f->self);
    switch_end(fake, NULL, NULL);
    fiber_running = NULL;
    if (f->finished) {
        f->state = FIBER_IDLE;
        return 1;
    }
    f->state = FIBER_SUSPENDED;
    return 0;
}

static void fiber_entry(void)
{
    struct fiber *f = fiber_running;
    switch_end(NULL, &f->caller_bottom, &f->caller_size);
    f->fn(f->arg);
    f->finished = 1;
    /* NULL: this stack is done with, the sanitizer may forget its frames. */
    switch_begin(NULL, f->caller_bottom, f->caller_size);
    setcontext(&f->caller);
}

int fiber_start(struct fiber *f, fiber_fn fn, void *arg)
{
    if (f->state != FIBER_IDLE)
        abort();
    if (getcontext(&f->self) != 0)
        abort(); /* cannot fail on glibc */
    f->self.uc_stack.ss_sp = stack_bottom(f);
    f->self.uc_stack.ss_size = stack_size(f);
    f->self.uc_link = NULL;
    makecontext(&f->self, fiber_entry, 0);
    f->fn = fn;
    f->arg = arg;
    f->finished = 0;
    return switch_into(f);
}

int fiber_resume(struct fiber *f)
{
    if (f->state != FIBER_SUSPENDED)
        abort();
    return switch_into(f);
}

void fiber_suspend(void)
{
    struct fiber *f = fiber_running;
    if (f == NULL)
        abort(); /* not on a fiber */
    switch_begin(&f->fake_stack, f->caller_bottom, f->caller_size);
    swapcontext(&f->self, &f->caller);
    switch_end(f->fake_stack, &f->caller_bottom, &f->caller_size);
}

struct fiber *fiber_current(void)
{
    return fiber_running;
}

int fiber_is_suspended(const struct fiber *f)
{
    return f->state == FIBER_SUSPENDED;
}
