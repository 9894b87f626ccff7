/* The shared LLM budget (store/llm_budget.h) on a real PostgreSQL: two
 * `struct db` on one database play two o2c instances.
 *
 * Time is the database's clock, so a test that needs time to pass moves a
 * bucket's updated_ms (or a lease's expiry) back through its own
 * connection instead of sleeping.  Run through tests/lib/pg.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>
#include "store/db.h"
#include "store/llm_budget.h"

static const char *pg_url;

#define OK(expr) assert_int_equal((expr), STORE_OK)

struct fixture {
    struct db *a, *b; /* two instances */
};

static void admin_exec(const char *sql)
{
    PGconn *pq = PQconnectdb(pg_url);
    assert_int_equal(PQstatus(pq), CONNECTION_OK);
    PGresult *r = PQexec(pq, sql);
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(pq);
}

static struct db *open_instance(void)
{
    char err[512];
    struct db_config cfg = {.url = pg_url, .loop = uv_default_loop(), .pool_size = 1};
    struct db *db = db_open(&cfg, err, sizeof err);
    if (!db)
        fail_msg("db_open: %s", err);
    return db;
}

static int setup(void **state)
{
    admin_exec("SET client_min_messages = warning;"
               "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
    struct fixture *f = calloc(1, sizeof *f);
    f->a = open_instance();
    f->b = open_instance();
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    db_close(f->a);
    db_close(f->b);
    free(f);
    return 0;
}

/* 60 requests per minute (one per second), 6000 output tokens. */
static void configure(struct db *db, int64_t concurrency)
{
    struct llm_budget_limits l = {
        .window_ms = 60000, .max_concurrency = concurrency, .per_window = {60, 0, 6000, 0}};
    OK(llm_budget_configure(db, "anthropic", &l));
}

static struct llm_budget_take take_of(const char *instance, int64_t slot, const char *job,
                                      int64_t out)
{
    return (struct llm_budget_take){.provider = "anthropic",
                                    .instance = instance,
                                    .job_key = job,
                                    .slot = slot,
                                    .debit = {1, 100, out, 100 + out},
                                    .lease_ms = 30000,
                                    .grace_ms = 2000,
                                    .poll_ms = 100};
}

static int take(struct db *db, const char *instance, int64_t slot, const char *job, int64_t out,
                struct llm_budget_answer *ans)
{
    struct llm_budget_take t = take_of(instance, slot, job, out);
    OK(llm_budget_take(db, &t, ans));
    return ans->granted;
}

static void read_state(struct db *db, struct llm_budget_state *st)
{
    OK(llm_budget_read(db, "anthropic", st));
}

/* Every take is debited in the one shared row: what instance A spends,
 * instance B cannot spend again; once empty, both are refused with the
 * wait until one request has refilled (1000 ms at 60 per minute). */
static void test_takes_of_two_instances_share_one_bucket(void **state)
{
    struct fixture *f = *state;
    configure(f->a, 0);
    configure(f->b, 0); /* a second instance starting: the level stays */
    struct llm_budget_answer ans;
    int granted = 0;
    for (int i = 0; i < 40; i++)
        granted += take(f->a, "A", i + 1, "job-a", 10, &ans);
    for (int i = 0; i < 40; i++)
        granted += take(f->b, "B", i + 1, "job-b", 10, &ans);
    assert_int_equal(granted, 60);
    assert_false(ans.granted);
    assert_string_equal(ans.reason, "budget");
    assert_in_range(ans.wait_ms, 900, 1000);
    struct llm_budget_state st;
    read_state(f->a, &st);
    assert_int_equal(st.capacity[LLM_BUDGET_REQUESTS], 60);
    assert_in_range(st.level[LLM_BUDGET_REQUESTS], 0, 2); /* refilled while the test ran */
    assert_int_equal(st.capacity[LLM_BUDGET_OUTPUT_TOKENS], 6000);
    assert_in_range(st.level[LLM_BUDGET_OUTPUT_TOKENS], 5400, 5600);
    assert_int_equal(st.capacity[LLM_BUDGET_INPUT_TOKENS], 0); /* not configured: unlimited */
}

/* Refill is continuous: 30 s after the bucket emptied, 30 requests fit;
 * a call needing more of a budget than is there waits for exactly the
 * missing part, and is refused in every budget (nothing is debited). */
static void test_refill_and_the_wait_for_a_large_call(void **state)
{
    struct fixture *f = *state;
    configure(f->a, 0);
    admin_exec("UPDATE llm_budgets SET level = 0, updated_ms = o2c_llm_now() - 30000"
               " WHERE budget = 'requests';"
               "UPDATE llm_budgets SET level = 1000 * 60000, updated_ms = o2c_llm_now()"
               " WHERE budget = 'output_tokens'");
    struct llm_budget_answer ans;
    /* 1000 output tokens there, 100 per second refill: 3000 needs 20 s. */
    assert_false(take(f->a, "A", 1, "job", 3000, &ans));
    assert_string_equal(ans.reason, "budget");
    assert_in_range(ans.wait_ms, 19900, 20000);
    struct llm_budget_state st;
    read_state(f->a, &st);
    assert_in_range(st.level[LLM_BUDGET_REQUESTS], 30, 31);
    int granted = 0;
    for (int i = 0; i < 40; i++)
        granted += take(f->a, "A", i + 2, "job", 1, &ans);
    assert_int_equal(granted, 30);
}

/* A 429's retry-after paused on one instance refuses the others' takes
 * until it ends, with the remaining pause as the wait; pauses only extend. */
static void test_pause_reaches_every_instance(void **state)
{
    struct fixture *f = *state;
    configure(f->a, 0);
    OK(llm_budget_pause(f->a, "anthropic", 20000));
    OK(llm_budget_pause(f->a, "anthropic", 5000));
    struct llm_budget_answer ans;
    assert_false(take(f->b, "B", 1, "job-b", 10, &ans));
    assert_string_equal(ans.reason, "paused");
    assert_in_range(ans.wait_ms, 19000, 20000);
    admin_exec("UPDATE llm_providers SET paused_until_ms = o2c_llm_now() - 1");
    assert_true(take(f->b, "B", 1, "job-b", 10, &ans));
}

/* Finish credits back the unused output reservation (never above the
 * capacity) and debits usage beyond the estimate. */
static void test_finish_trues_up_the_reservation(void **state)
{
    struct fixture *f = *state;
    configure(f->a, 0);
    struct llm_budget_answer ans;
    assert_true(take(f->a, "A", 1, "job", 4000, &ans));
    struct llm_budget_state st;
    read_state(f->a, &st);
    assert_in_range(st.level[LLM_BUDGET_OUTPUT_TOKENS], 2000, 2001);
    /* 500 tokens of output used: 3500 come back. */
    int64_t credit[LLM_BUDGETS] = {0, 0, 3500, 3500};
    OK(llm_budget_finish(f->a, "anthropic", "A", 1, credit));
    read_state(f->a, &st);
    assert_in_range(st.level[LLM_BUDGET_OUTPUT_TOKENS], 5500, 5501);
    assert_int_equal(st.leases, 0);
    /* A credit never fills past the capacity. */
    int64_t huge[LLM_BUDGETS] = {5, 0, 100000, 0};
    OK(llm_budget_finish(f->a, "anthropic", "A", 99, huge));
    read_state(f->a, &st);
    assert_int_equal(st.level[LLM_BUDGET_OUTPUT_TOKENS], 6000);
    assert_int_equal(st.level[LLM_BUDGET_REQUESTS], 60);
}

/* Headers: a remaining below the shared level lowers it for everyone; a
 * learned limit lowers a configured capacity but never raises it, and
 * gives an unconfigured budget its capacity. */
static void test_headers_lower_the_shared_level_and_capacity(void **state)
{
    struct fixture *f = *state;
    configure(f->a, 0);
    int64_t limit[LLM_BUDGETS] = {-1, 20000, 9000, -1};
    int64_t remaining[LLM_BUDGETS] = {10, 5000, -1, -1};
    OK(llm_budget_observe(f->a, "anthropic", limit, remaining));
    struct llm_budget_state st;
    read_state(f->b, &st);
    assert_in_range(st.level[LLM_BUDGET_REQUESTS], 10, 11);
    assert_int_equal(st.capacity[LLM_BUDGET_REQUESTS], 60);
    assert_int_equal(st.capacity[LLM_BUDGET_OUTPUT_TOKENS], 6000);  /* configured: not raised */
    assert_int_equal(st.capacity[LLM_BUDGET_INPUT_TOKENS], 20000);  /* learned */
    assert_in_range(st.level[LLM_BUDGET_INPUT_TOKENS], 5000, 5100); /* refills 1/3 per ms */
    /* A remaining above the level never raises it. */
    int64_t none[LLM_BUDGETS] = {-1, -1, -1, -1}, high[LLM_BUDGETS] = {50, -1, -1, -1};
    OK(llm_budget_observe(f->b, "anthropic", none, high));
    read_state(f->a, &st);
    assert_in_range(st.level[LLM_BUDGET_REQUESTS], 10, 11);
    int64_t lower[LLM_BUDGETS] = {30, -1, -1, -1};
    OK(llm_budget_observe(f->b, "anthropic", lower, none));
    read_state(f->a, &st);
    assert_int_equal(st.capacity[LLM_BUDGET_REQUESTS], 30);
}

/* Concurrency: at most max_concurrency live leases across instances; a
 * finish frees one at once, and a crashed instance's leases (never renewed)
 * free theirs when they expire. */
static void test_leases_cap_concurrency_and_expire(void **state)
{
    struct fixture *f = *state;
    configure(f->a, 2);
    struct llm_budget_answer ans;
    assert_true(take(f->a, "A", 1, "job-a", 10, &ans));
    assert_true(take(f->b, "B", 1, "job-b", 10, &ans));
    assert_false(take(f->b, "B", 2, "job-b", 10, &ans));
    assert_string_equal(ans.reason, "busy");
    assert_in_range(ans.wait_ms, 1, 100);
    int64_t none[LLM_BUDGETS] = {0};
    OK(llm_budget_finish(f->b, "anthropic", "B", 1, none));
    assert_true(take(f->b, "B", 2, "job-b", 10, &ans));
    /* B renews; A "crashes": its lease runs out. */
    OK(llm_budget_renew(f->b, "anthropic", "B", 30000));
    admin_exec("UPDATE llm_leases SET expires_ms = o2c_llm_now() - 1 WHERE instance = 'A'");
    assert_true(take(f->b, "B", 3, "job-b", 10, &ans));
    struct llm_budget_state st;
    read_state(f->a, &st);
    assert_int_equal(st.leases, 2);
}

/* Across instances the next capacity goes to the job served least
 * recently (round-robin over the jobs at the head of each instance's
 * line): A's job was served before B's, so when capacity comes back B is
 * refused for turn while A's waiter is live, and A's call is granted. */
static void test_the_job_served_least_recently_goes_first(void **state)
{
    struct fixture *f = *state;
    struct llm_budget_limits l = {.window_ms = 60000, .per_window = {2, 0, 0, 0}};
    OK(llm_budget_configure(f->a, "anthropic", &l));
    struct llm_budget_answer ans;
    assert_true(take(f->a, "A", 1, "job-a", 10, &ans));
    assert_true(take(f->b, "B", 1, "job-b", 10, &ans));
    assert_false(take(f->a, "A", 2, "job-a", 10, &ans));
    assert_string_equal(ans.reason, "budget");
    admin_exec("UPDATE llm_budgets SET level = 60000, updated_ms = o2c_llm_now()"
               " WHERE budget = 'requests'");
    assert_false(take(f->b, "B", 2, "job-b", 10, &ans));
    assert_string_equal(ans.reason, "turn");
    struct llm_budget_state st;
    read_state(f->a, &st);
    assert_int_equal(st.waiters, 2);
    assert_true(take(f->a, "A", 2, "job-a", 10, &ans));
    /* B is next in line: its own waiter does not hold it back. */
    admin_exec("UPDATE llm_budgets SET level = 60000, updated_ms = o2c_llm_now()"
               " WHERE budget = 'requests'");
    assert_true(take(f->b, "B", 2, "job-b", 10, &ans));
    read_state(f->a, &st);
    assert_int_equal(st.waiters, 0);
}

/* A waiter whose instance went away stops holding the others back once
 * its wait and grace have passed. */
static void test_an_expired_waiter_is_ignored(void **state)
{
    struct fixture *f = *state;
    configure(f->a, 0);
    OK(llm_budget_pause(f->a, "anthropic", 10000));
    struct llm_budget_answer ans;
    assert_false(take(f->a, "A", 1, "job-a", 10, &ans));
    admin_exec("UPDATE llm_providers SET paused_until_ms = 0");
    assert_false(take(f->b, "B", 1, "job-b", 10, &ans));
    assert_string_equal(ans.reason, "turn");
    admin_exec("UPDATE llm_waiters SET expires_ms = o2c_llm_now() - 1 WHERE instance = 'A'");
    assert_true(take(f->b, "B", 1, "job-b", 10, &ans));
}

/* Without a configured provider a take is an error naming it. */
static void test_take_needs_a_configured_provider(void **state)
{
    struct fixture *f = *state;
    struct llm_budget_take t = take_of("A", 1, "job", 10);
    t.provider = "openai";
    struct llm_budget_answer ans;
    assert_int_equal(llm_budget_take(f->a, &t, &ans), STORE_INVALID);
    assert_non_null(strstr(db_errmsg(f->a), "no shared budget is configured for provider openai"));
}

/* On SQLite the functions refuse, saying why. */
static void test_sqlite_has_no_shared_budget(void **state)
{
    (void)state;
    char dir[] = "/tmp/o2c-test-budget-XXXXXX", err[512];
    assert_non_null(mkdtemp(dir));
    struct db_config cfg = {.data_dir = dir};
    struct db *db = db_open(&cfg, err, sizeof err);
    assert_non_null(db);
    struct llm_budget_limits l = {.window_ms = 60000};
    assert_int_equal(llm_budget_configure(db, "anthropic", &l), STORE_INVALID);
    assert_non_null(strstr(db_errmsg(db), "needs PostgreSQL"));
    db_close(db);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    pg_url = getenv("O2C_TEST_PG_URL");
    if (!pg_url || !pg_url[0]) {
        fprintf(stderr, "test_pg_llm_budget: O2C_TEST_PG_URL is not set; run it through "
                        "tests/lib/pg.sh run\n");
        return 1;
    }
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_takes_of_two_instances_share_one_bucket),
        T(test_refill_and_the_wait_for_a_large_call),
        T(test_pause_reaches_every_instance),
        T(test_finish_trues_up_the_reservation),
        T(test_headers_lower_the_shared_level_and_capacity),
        T(test_leases_cap_concurrency_and_expire),
        T(test_the_job_served_least_recently_goes_first),
        T(test_an_expired_waiter_is_ignored),
        T(test_take_needs_a_configured_provider),
        T(test_sqlite_has_no_shared_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
