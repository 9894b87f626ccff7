/* The shared LLM budget's store functions: each calls one of the
 * PostgreSQL functions of llm_budget_sql.h (see llm_budget.h). */
#include <stdio.h>
#include <string.h>
#include "store/db_internal.h"
#include "store/llm_budget.h"
#include "store/query.h"
#include "store/rowset.h"

static const char SQL_LLM_CONFIGURE[] = "SELECT o2c_llm_configure(?, ?, ?, ?, ?, ?, ?)";
static const char SQL_LLM_TAKE[] = "SELECT granted, wait_ms, reason, now_ms"
                                   " FROM o2c_llm_take(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
static const char SQL_LLM_FINISH[] = "SELECT o2c_llm_finish(?, ?, ?, ?, ?, ?, ?)";
static const char SQL_LLM_OBSERVE[] = "SELECT o2c_llm_observe(?, ?, ?, ?)";
static const char SQL_LLM_PAUSE[] =
    "UPDATE llm_providers SET paused_until_ms = GREATEST(paused_until_ms, o2c_llm_now() + ?)"
    " WHERE provider = ?";
static const char SQL_LLM_RENEW[] =
    "UPDATE llm_leases SET expires_ms = o2c_llm_now() + ?"
    " WHERE provider = ? AND instance = ? AND expires_ms > o2c_llm_now()";
static const char SQL_LLM_READ_PROVIDER[] =
    "SELECT window_ms, max_concurrency, GREATEST(paused_until_ms - o2c_llm_now(), 0),"
    " (SELECT count(*) FROM llm_leases l WHERE l.provider = p.provider"
    "   AND l.expires_ms > o2c_llm_now()),"
    " (SELECT count(*) FROM llm_waiters w WHERE w.provider = p.provider"
    "   AND w.expires_ms > o2c_llm_now())"
    " FROM llm_providers p WHERE provider = ?";
static const char SQL_LLM_READ_BUDGETS[] =
    "SELECT budget, capacity, floor(o2c_llm_refilled(capacity, level, updated_ms, ?, o2c_llm_now())"
    " / ?)::bigint FROM llm_budgets WHERE provider = ?";

static const char *const budget_names[LLM_BUDGETS] = {"requests", "input_tokens", "output_tokens",
                                                      "tokens"};

static int llm_budget_engine(struct db *db)
{
    if (db_is_pg(db))
        return STORE_OK;
    return db_fail(db, STORE_INVALID,
                   "the shared LLM budget needs PostgreSQL (one SQLite process uses its own)");
}

int llm_budget_configure(struct db *db, const char *provider, const struct llm_budget_limits *l)
{
    int rc = llm_budget_engine(db);
    if (rc != STORE_OK)
        return rc;
    if (l->window_ms < 1 || l->max_concurrency < 0)
        return db_fail(db, STORE_INVALID, "shared LLM budget of %s: window_ms must be >= 1",
                       provider);
    int64_t now = 0;
    return db_query_first(
        db, SQL_LLM_CONFIGURE, "configuring the shared LLM budget", &now, NULL, 0, NULL,
        DB_ARGS(DB_TEXT(provider), DB_INT(l->window_ms), DB_INT(l->max_concurrency),
                DB_INT(l->per_window[0]), DB_INT(l->per_window[1]), DB_INT(l->per_window[2]),
                DB_INT(l->per_window[3])));
}

int llm_budget_take(struct db *db, const struct llm_budget_take *t, struct llm_budget_answer *out)
{
    memset(out, 0, sizeof *out);
    int rc = llm_budget_engine(db);
    if (rc != STORE_OK)
        return rc;
    struct rowset rs;
    rowset_init(&rs, 0);
    rc = db_query(db, SQL_LLM_TAKE, "taking a call's permit from the shared LLM budget", &rs,
                  DB_ARGS(DB_TEXT(t->provider), DB_TEXT(t->instance), DB_INT(t->slot),
                          DB_TEXT(t->job_key), DB_INT(t->debit[0]), DB_INT(t->debit[1]),
                          DB_INT(t->debit[2]), DB_INT(t->debit[3]), DB_INT(t->lease_ms),
                          DB_INT(t->grace_ms), DB_INT(t->poll_ms)));
    if (rc == STORE_OK && rs.nrows != 1)
        rc = db_fail(db, STORE_ERROR, "the shared LLM budget's take gave %zu rows", rs.nrows);
    if (rc == STORE_OK) {
        out->granted = rowset_int(&rs, 0, 0) != 0;
        out->wait_ms = rowset_int(&rs, 0, 1);
        const char *reason = rowset_text(&rs, 0, 2);
        snprintf(out->reason, sizeof out->reason, "%s", reason ? reason : "");
        out->now_ms = rowset_int(&rs, 0, 3);
    }
    rowset_free(&rs);
    return rc;
}

int llm_budget_finish(struct db *db, const char *provider, const char *instance, int64_t slot,
                      const int64_t credit[LLM_BUDGETS])
{
    int rc = llm_budget_engine(db);
    if (rc != STORE_OK)
        return rc;
    int64_t now = 0;
    return db_query_first(
        db, SQL_LLM_FINISH, "settling a call in the shared LLM budget", &now, NULL, 0, NULL,
        DB_ARGS(DB_TEXT(provider), DB_TEXT(instance), DB_INT(slot), DB_INT(credit[0]),
                DB_INT(credit[1]), DB_INT(credit[2]), DB_INT(credit[3])));
}

int llm_budget_observe(struct db *db, const char *provider, const int64_t limit[LLM_BUDGETS],
                       const int64_t remaining[LLM_BUDGETS])
{
    int rc = llm_budget_engine(db);
    for (int i = 0; rc == STORE_OK && i < LLM_BUDGETS; i++) {
        if (limit[i] <= 0 && remaining[i] < 0)
            continue;
        int64_t now = 0;
        rc = db_query_first(db, SQL_LLM_OBSERVE, "sharing what the provider's headers said", &now,
                            NULL, 0, NULL,
                            DB_ARGS(DB_TEXT(provider), DB_TEXT(budget_names[i]), DB_INT(limit[i]),
                                    DB_INT(remaining[i])));
    }
    return rc;
}

int llm_budget_pause(struct db *db, const char *provider, int64_t delay_ms)
{
    int rc = llm_budget_engine(db);
    if (rc == STORE_OK && delay_ms > 0)
        rc = db_exec(db, SQL_LLM_PAUSE, "pausing the shared LLM budget",
                     DB_ARGS(DB_INT(delay_ms), DB_TEXT(provider)));
    return rc;
}

int llm_budget_renew(struct db *db, const char *provider, const char *instance, int64_t lease_ms)
{
    int rc = llm_budget_engine(db);
    if (rc == STORE_OK)
        rc = db_exec(db, SQL_LLM_RENEW, "renewing the shared LLM budget's leases",
                     DB_ARGS(DB_INT(lease_ms), DB_TEXT(provider), DB_TEXT(instance)));
    return rc;
}

static int llm_budget_read_budgets(struct db *db, const char *provider,
                                   struct llm_budget_state *out)
{
    struct rowset rs;
    rowset_init(&rs, 0);
    int rc = db_query(db, SQL_LLM_READ_BUDGETS, "reading the shared LLM budget", &rs,
                      DB_ARGS(DB_INT(out->window_ms), DB_INT(out->window_ms), DB_TEXT(provider)));
    for (size_t r = 0; rc == STORE_OK && r < rs.nrows; r++)
        for (int i = 0; i < LLM_BUDGETS; i++)
            if (strcmp(rowset_text(&rs, r, 0), budget_names[i]) == 0) {
                out->capacity[i] = rowset_int(&rs, r, 1);
                out->level[i] = out->capacity[i] ? rowset_int(&rs, r, 2) : 0;
            }
    rowset_free(&rs);
    return rc;
}

int llm_budget_read(struct db *db, const char *provider, struct llm_budget_state *out)
{
    memset(out, 0, sizeof *out);
    int rc = llm_budget_engine(db);
    if (rc != STORE_OK)
        return rc;
    struct rowset rs;
    rowset_init(&rs, 0);
    rc = db_query(db, SQL_LLM_READ_PROVIDER, "reading the shared LLM budget", &rs,
                  DB_ARGS(DB_TEXT(provider)));
    if (rc == STORE_OK && rs.nrows == 0)
        rc = db_fail(db, STORE_NOT_FOUND, "no shared LLM budget for provider %s", provider);
    if (rc == STORE_OK) {
        out->window_ms = rowset_int(&rs, 0, 0);
        out->max_concurrency = rowset_int(&rs, 0, 1);
        out->paused_ms = rowset_int(&rs, 0, 2);
        out->leases = rowset_int(&rs, 0, 3);
        out->waiters = rowset_int(&rs, 0, 4);
    }
    rowset_free(&rs);
    return rc == STORE_OK ? llm_budget_read_budgets(db, provider, out) : rc;
}
