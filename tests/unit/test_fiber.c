/* Fibers: a function suspends and is resumed where it stopped, on its own
 * stack, interleaved with others, and an overflow hits the guard page. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include "host/fiber.h"

struct trace {
    char steps[64];
    size_t n;
};

static void note(struct trace *t, char c)
{
    if (t->n + 1 < sizeof t->steps)
        t->steps[t->n++] = c;
}

/* Writes a, suspends, b, suspends, c. */
static void three_steps(void *arg)
{
    struct trace *t = arg;
    assert_ptr_not_equal(fiber_current(), NULL);
    note(t, 'a');
    fiber_suspend();
    note(t, 'b');
    fiber_suspend();
    note(t, 'c');
}

static void test_suspend_and_resume_in_order(void **state)
{
    (void)state;
    struct trace t = {0};
    struct fiber *f = fiber_new(0);
    assert_non_null(f);
    assert_int_equal(fiber_start(f, three_steps, &t), 0);
    note(&t, '1');
    assert_true(fiber_is_suspended(f));
    assert_null(fiber_current());
    assert_int_equal(fiber_resume(f), 0);
    note(&t, '2');
    assert_int_equal(fiber_resume(f), 1);
    assert_false(fiber_is_suspended(f));
    assert_string_equal(t.steps, "a1b2c");
    fiber_free(f);
}

/* Locals live on the fiber's stack across suspensions. */
static void sum_with_locals(void *arg)
{
    int *out = arg;
    int local[64];
    for (int i = 0; i < 64; i++) {
        local[i] = i;
        if (i % 16 == 0)
            fiber_suspend();
    }
    int sum = 0;
    for (int i = 0; i < 64; i++)
        sum += local[i];
    *out = sum;
}

static void test_interleaved_fibers_keep_their_stacks(void **state)
{
    (void)state;
    enum { N = 8 };
    struct fiber *f[N];
    int out[N] = {0}, done[N] = {0}, left = N;
    for (int i = 0; i < N; i++) {
        f[i] = fiber_new(64 * 1024);
        assert_non_null(f[i]);
        done[i] = fiber_start(f[i], sum_with_locals, &out[i]);
    }
    while (left > 0) {
        left = 0;
        for (int i = 0; i < N; i++) {
            if (!done[i])
                done[i] = fiber_resume(f[i]);
            left += !done[i];
        }
    }
    for (int i = 0; i < N; i++) {
        assert_int_equal(out[i], 64 * 63 / 2);
        fiber_free(f[i]);
    }
}

static void finish_at_once(void *arg)
{
    (*(int *)arg)++;
}

static void test_finished_fiber_is_reused(void **state)
{
    (void)state;
    int runs = 0;
    struct fiber *f = fiber_new(0);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(fiber_start(f, finish_at_once, &runs), 1);
    assert_int_equal(runs, 1000);
    fiber_free(f);
}

/* Recurses DEPTH frames of a little over 512 bytes. */
static int recurse(volatile char *prev, long depth)
{
    volatile char frame[512];
    frame[0] = prev ? prev[0] : 1;
    if (depth == 0)
        return frame[0];
    return recurse(frame, depth - 1) + frame[1];
}

static void overflow(void *arg)
{
    (void)arg;
    recurse(NULL, 256); /* about 128 KiB */
}

/* A child overflows a 64 KiB fiber stack by about 64 KiB, into the
 * mapping just below it (a second fiber's stack, mapped after it): it must
 * die of a signal (or ASan's report) at the guard page, not scribble over
 * its neighbour and exit normally. */
static void test_overflow_hits_the_guard_page(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct fiber *f = fiber_new(64 * 1024);
        struct fiber *neighbour = fiber_new(1024 * 1024);
        (void)neighbour;
        fiber_start(f, overflow, NULL);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_suspend_and_resume_in_order),
        cmocka_unit_test(test_interleaved_fibers_keep_their_stacks),
        cmocka_unit_test(test_finished_fiber_is_reused),
        cmocka_unit_test(test_overflow_hits_the_guard_page),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
