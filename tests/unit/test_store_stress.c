/* The storage promises under pressure:
 *  - 20 saves based on one revision at once, from 20 threads with their own
 *    connections: exactly one succeeds, 19 conflict, none errors;
 *  - a writer process SIGKILLed at 20 random moments: every acknowledged
 *    save is there after restart, nothing half-written, db check passes;
 *  - timings (printed, never asserted): session validation, answer save
 *    p50/p99, and the loop's lateness while 20 logins hash on the pool. */
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <sodium.h>
#include <uv.h>
#include "store/db.h"
#include "store/password.h"
#include "store/session.h"
#include "store/rowset.h"
#include "store/store.h"
#include "store/user.h"
#include "store_view.h"

struct fixture {
    char dir[64];
    struct db *db;
    struct user alice;
    struct assessment_view a;
};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static struct db *open_db(const char *dir)
{
    char err[512];
    struct db_config cfg = {.data_dir = dir};
    struct db *db = db_open(&cfg, err, sizeof err);
    if (db == NULL)
        fail_msg("db_open(%s): %s", dir, err);
    return db;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/o2c-test-stress-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    f->db = open_db(f->dir);
    assert_int_equal(user_add(f->db, "alice", USER_ROLE_CONSULTANT, "h", &f->alice), STORE_OK);
    assert_int_equal(create_assessment(f->db, &f->alice, "o2c", "ACME", NULL, &f->a), STORE_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    db_close(f->db);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Concurrency: 20 connections, one revision */

#define SAVERS 20
#define ROUNDS 5

struct saver {
    struct db *db;
    const struct user *user;
    const char *assessment_id;
    pthread_barrier_t *start;
    int64_t base;
    int index;
    int rc;
    int64_t revision;
    char err[256];
};

static void *saver_run(void *arg)
{
    struct saver *s = arg;
    char qid[32], value[32];
    snprintf(qid, sizeof qid, "q-round-%lld", (long long)s->base);
    snprintf(value, sizeof value, "%d", s->index);
    struct answer_input in[] = {{qid, value, NULL}, {"shared", value, "by one saver"}};
    pthread_barrier_wait(s->start);
    s->rc = store_save_answers(s->db, s->user, s->assessment_id, s->base, in, 2, &s->revision);
    snprintf(s->err, sizeof s->err, "%s", db_errmsg(s->db));
    return NULL;
}

static void test_twenty_concurrent_saves_one_wins(void **state)
{
    struct fixture *f = *state;
    struct saver savers[SAVERS];
    pthread_t threads[SAVERS];
    pthread_barrier_t start;
    for (int i = 0; i < SAVERS; i++)
        savers[i] = (struct saver){.db = open_db(f->dir),
                                   .user = &f->alice,
                                   .assessment_id = f->a.id,
                                   .start = &start,
                                   .index = i};
    for (int64_t round = 0; round < ROUNDS; round++) {
        pthread_barrier_init(&start, NULL, SAVERS);
        for (int i = 0; i < SAVERS; i++) {
            savers[i].base = round;
            assert_int_equal(pthread_create(&threads[i], NULL, saver_run, &savers[i]), 0);
        }
        int won = 0, conflicts = 0, winner = -1;
        for (int i = 0; i < SAVERS; i++) {
            pthread_join(threads[i], NULL);
            if (savers[i].rc == STORE_OK) {
                won++;
                winner = i;
                assert_int_equal(savers[i].revision, round + 1);
            } else if (savers[i].rc == STORE_CONFLICT) {
                conflicts++;
                assert_int_equal(savers[i].revision, round + 1); /* told the current one */
            } else {
                fail_msg("saver %d: %s: %s", i, store_rc_code(savers[i].rc), savers[i].err);
            }
        }
        pthread_barrier_destroy(&start);
        assert_int_equal(won, 1);
        assert_int_equal(conflicts, SAVERS - 1);
        struct assessment_view back;
        assert_int_equal(view_assessment(f->db, &f->alice, f->a.id, &back), STORE_OK);
        assert_int_equal(back.revision, round + 1);
        (void)winner;
    }
    for (int i = 0; i < SAVERS; i++)
        db_close(savers[i].db);
}

/* Crash: SIGKILL a writer 20 times */

#define KILLS 20

/* The child: saves revision r+1 as three answers q<r+1>.a/b/c plus "last",
 * and acknowledges each commit on FD.  Never returns. */
static void crash_writer(const char *dir, const struct user *u, const char *id, int fd)
{
    char err[512];
    struct db_config cfg = {.data_dir = dir};
    struct db *db = db_open(&cfg, err, sizeof err);
    if (db == NULL)
        _exit(2);
    struct assessment_view a;
    if (view_assessment(db, u, id, &a) != STORE_OK)
        _exit(3);
    for (int64_t rev = a.revision;;) {
        char qa[32], qb[32], qc[32], value[32];
        snprintf(qa, sizeof qa, "q%lld.a", (long long)rev + 1);
        snprintf(qb, sizeof qb, "q%lld.b", (long long)rev + 1);
        snprintf(qc, sizeof qc, "q%lld.c", (long long)rev + 1);
        snprintf(value, sizeof value, "%lld", (long long)rev + 1);
        struct answer_input in[] = {
            {qa, value, NULL}, {qb, value, NULL}, {qc, value, NULL}, {"last", value, NULL}};
        if (store_save_answers(db, u, id, rev, in, 4, &rev) != STORE_OK)
            _exit(4);
        if (write(fd, &rev, sizeof rev) != (ssize_t)sizeof rev)
            _exit(5);
    }
}

static int64_t drain_acks(int fd)
{
    int64_t rev, last = 0;
    ssize_t n;
    while ((n = read(fd, &rev, sizeof rev)) == (ssize_t)sizeof rev)
        last = rev;
    return last;
}

struct crash_check {
    int64_t revision;
    int64_t answers, bad, last;
};

/* One answer row: question id (0), value JSON (1), revision (5). */
static void check_answer(struct crash_check *c, const struct rowset *rs, size_t i)
{
    const char *qid = rowset_text(rs, i, 0), *value = rowset_text(rs, i, 1);
    c->answers++;
    long long q = 0;
    char part = 0;
    if (strcmp(qid, "last") == 0) {
        c->last = atoll(value);
        return;
    }
    /* q<n>.x must hold n, written by revision n, and n <= current revision. */
    if (sscanf(qid, "q%lld.%c", &q, &part) != 2 || atoll(value) != q || rowset_int(rs, i, 5) != q ||
        q > c->revision)
        c->bad++;
}

static void verify_after_crash(struct fixture *f, int64_t acked, int kill)
{
    assert_int_equal(db_check(f->db), STORE_OK);
    struct assessment_view a;
    assert_int_equal(view_assessment(f->db, &f->alice, f->a.id, &a), STORE_OK);
    if (a.revision < acked)
        fail_msg("kill %d: revision %lld but %lld was acknowledged", kill, (long long)a.revision,
                 (long long)acked);
    struct crash_check c = {.revision = a.revision};
    struct rowset rs;
    rowset_init(&rs, 0);
    assert_int_equal(view_answers(f->db, &f->alice, f->a.id, &rs), STORE_OK);
    for (size_t i = 0; i < rs.nrows; i++)
        check_answer(&c, &rs, i);
    rowset_free(&rs);
    assert_int_equal(c.bad, 0);
    /* All of revisions 1..R, three answers each, plus "last": none partial. */
    assert_int_equal(c.answers, a.revision > 0 ? 3 * a.revision + 1 : 0);
    assert_int_equal(c.last, a.revision);
}

static void test_sigkill_writer_loses_no_acknowledged_save(void **state)
{
    struct fixture *f = *state;
    int64_t acked_total = 0, previous = 0;
    for (int kill_no = 0; kill_no < KILLS; kill_no++) {
        int pipefd[2];
        assert_int_equal(pipe(pipefd), 0);
        db_close(f->db); /* no connection crosses fork() */
        f->db = NULL;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(pipefd[0]);
            crash_writer(f->dir, &f->alice, f->a.id, pipefd[1]);
        }
        close(pipefd[1]);
        /* A random moment 0-60 ms in: sometimes during open/recovery,
         * mostly in the middle of saves. */
        usleep(randombytes_uniform(60000));
        assert_int_equal(kill(pid, SIGKILL), 0);
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            fail_msg("kill %d: writer exited by itself (status %d)", kill_no, status);
        int64_t acked = drain_acks(pipefd[0]);
        close(pipefd[0]);
        if (acked == 0)
            acked = previous;
        f->db = open_db(f->dir);
        verify_after_crash(f, acked, kill_no);
        acked_total += acked - previous;
        previous = acked;
    }
    print_message("crash test: %d kills, %lld acknowledged saves, all present\n", KILLS,
                  (long long)acked_total);
    assert_true(acked_total > 0);
}

/* Timings (printed only) */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void print_percentiles(const char *what, int64_t *ns, int n)
{
    qsort(ns, (size_t)n, sizeof *ns, cmp_i64);
    print_message("%-40s n=%-6d p50=%8.1f us  p99=%8.1f us  max=%8.1f us\n", what, n,
                  ns[n / 2] / 1e3, ns[n * 99 / 100] / 1e3, ns[n - 1] / 1e3);
}

static void test_timing_session_validation(void **state)
{
    struct fixture *f = *state;
    enum { N = 20000 };
    struct session_config cfg;
    session_config_default(&cfg);
    char token[SESSION_TOKEN_LEN + 1];
    for (int i = 0; i < 100; i++) /* other sessions in the table */
        assert_int_equal(session_create(f->db, &cfg, f->alice.id, NULL, token, NULL), STORE_OK);
    int64_t *ns = malloc(N * sizeof *ns);
    struct user u;
    for (int i = 0; i < N; i++) {
        int64_t t0 = now_ns();
        int rc = session_validate(f->db, &cfg, token, &u, NULL);
        ns[i] = now_ns() - t0;
        assert_int_equal(rc, STORE_OK);
    }
    print_percentiles("session_validate", ns, N);
    free(ns);
}

static void time_saves(struct fixture *f, const char *what, int answers_per_save, int n)
{
    int64_t *ns = malloc((size_t)n * sizeof *ns);
    struct answer_input in[10];
    char qids[10][16];
    struct assessment_view a;
    assert_int_equal(view_assessment(f->db, &f->alice, f->a.id, &a), STORE_OK);
    int64_t rev = a.revision;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < answers_per_save; k++) {
            snprintf(qids[k], sizeof qids[k], "q%d", (i * answers_per_save + k) % 44);
            in[k] = (struct answer_input){qids[k], "{\"level\":3}", NULL};
        }
        int64_t t0 = now_ns();
        int rc =
            store_save_answers(f->db, &f->alice, f->a.id, rev, in, (size_t)answers_per_save, &rev);
        ns[i] = now_ns() - t0;
        assert_int_equal(rc, STORE_OK);
    }
    print_percentiles(what, ns, n);
    free(ns);
}

static void test_timing_answer_save(void **state)
{
    struct fixture *f = *state;
    time_saves(f, "store_save_answers (1 answer, NORMAL)", 1, 2000);
    time_saves(f, "store_save_answers (10 answers, NORMAL)", 10, 2000);
    db_close(f->db);
    char err[512];
    struct db_config cfg = {.data_dir = f->dir, .synchronous_full = 1};
    f->db = db_open(&cfg, err, sizeof err);
    assert_non_null(f->db);
    time_saves(f, "store_save_answers (1 answer, FULL)", 1, 500);
}

/* Loop responsiveness: 20 argon2id verifies on the libuv pool while a 1 ms
 * timer stands in for cheap requests; its lateness is what a request would
 * wait. */

#define LOGINS 20

struct login_bench {
    uv_loop_t *loop;
    uv_timer_t timer;
    uv_work_t work[LOGINS];
    const char *hash;
    int done, ok;
    uint64_t expected_ms;
    int64_t lateness_ns[20000];
    int samples;
    int64_t last_tick_ns;
};

static void login_verify(uv_work_t *w)
{
    struct login_bench *b = w->data;
    if (password_verify(b->hash, "correct horse battery"))
        __atomic_add_fetch(&b->ok, 1, __ATOMIC_RELAXED);
}

static void login_done(uv_work_t *w, int status)
{
    struct login_bench *b = w->data;
    (void)status;
    if (++b->done == LOGINS)
        uv_timer_stop(&b->timer);
}

static void tick(uv_timer_t *t)
{
    struct login_bench *b = t->data;
    int64_t now = now_ns();
    if (b->last_tick_ns && b->samples < 20000) {
        int64_t late = now - b->last_tick_ns - 1000000;
        b->lateness_ns[b->samples++] = late > 0 ? late : 0;
    }
    b->last_tick_ns = now;
}

static void test_timing_loop_while_logins_hash(void **state)
{
    (void)state;
    char hash[PASSWORD_HASH_MAX], err[128];
    assert_int_equal(password_hash("correct horse battery", hash, err, sizeof err), 0);
    struct login_bench *b = calloc(1, sizeof *b);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    b->loop = &loop;
    b->hash = hash;
    uv_timer_init(&loop, &b->timer);
    b->timer.data = b;
    uv_timer_start(&b->timer, tick, 1, 1);
    int64_t t0 = now_ns();
    for (int i = 0; i < LOGINS; i++) {
        b->work[i].data = b;
        assert_int_equal(uv_queue_work(&loop, &b->work[i], login_verify, login_done), 0);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    int64_t total = now_ns() - t0;
    uv_close((uv_handle_t *)&b->timer, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(b->ok, LOGINS);
    print_message("%d argon2id verifies on the pool: %.0f ms total\n", LOGINS, total / 1e6);
    if (b->samples > 0)
        print_percentiles("loop lateness during 20 logins (1 ms tick)", b->lateness_ns, b->samples);
    free(b);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_twenty_concurrent_saves_one_wins),
        T(test_sigkill_writer_loses_no_acknowledged_save),
        T(test_timing_session_validation),
        T(test_timing_answer_save),
        cmocka_unit_test(test_timing_loop_while_logins_hash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
