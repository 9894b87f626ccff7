/* One LLM budget across instances: the scheduler's side of
 * store/llm_budget.h (scheduler.h explains the design).  Every database
 * call is a store operation (db_run) whose answer comes back on the loop;
 * nothing here blocks.  A take holds its provider until answered; the
 * other operations (finish, headers, pause, renew) need only the names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "host/log.h"
#include "llm/scheduler.h"
#include "llm/scheduler_internal.h"
#include "store/llm_budget.h"

#define SHARE_LEASE_MS 30000
#define SHARE_GRACE_MS 2000
#define SHARE_POLL_MS 100
#define SHARE_RETRY_MS 1000 /* after the database failed to answer */

struct scheduler_share {
    struct db *db;
    char instance[LLM_BUDGET_INSTANCE_MAX];
    int64_t lease_ms, grace_ms, poll_ms;
    struct scheduler *s; /* NULL once the registry is gone */
    uv_timer_t renew;
    bool renew_closed;
    int pending; /* operations not answered yet */
};

enum share_kind { SHARE_CONFIGURE, SHARE_TAKE, SHARE_FINISH, SHARE_RENEW };

struct scheduler_share_op {
    struct scheduler_share *share;
    enum share_kind kind;
    struct scheduler_provider *p;  /* CONFIGURE and TAKE: held until answered */
    struct scheduler_acquire *acq; /* TAKE: NULL once the call left */
    char provider[SCHEDULER_NAME_MAX];
    struct llm_budget_limits limits;
    struct llm_budget_take take;
    struct llm_budget_answer answer;
    int64_t credit[LLM_BUDGETS];
    struct ratelimit_header_values headers;
    bool has_headers;
    int64_t delay_ms;
    int rc;
    char err[256];
    char job[]; /* TAKE: the job key */
};

static void share_maybe_free(struct scheduler_share *sh)
{
    if (!sh->s && sh->pending == 0 && sh->renew_closed)
        free(sh);
}

/* ---- running operations ---------------------------------------------------- */

static int share_finish_op(struct db *db, struct scheduler_share_op *op)
{
    int rc = llm_budget_finish(db, op->provider, op->share->instance, op->take.slot, op->credit);
    if (rc == STORE_OK && op->has_headers)
        rc = llm_budget_observe(db, op->provider, op->headers.limit, op->headers.remaining);
    if (rc == STORE_OK && op->delay_ms > 0)
        rc = llm_budget_pause(db, op->provider, op->delay_ms);
    return rc;
}

/* On the operation's fiber: the store calls only, nothing that raises. */
static void share_run(struct db *db, void *arg)
{
    struct scheduler_share_op *op = arg;
    switch (op->kind) {
    case SHARE_CONFIGURE:
        op->rc = llm_budget_configure(db, op->provider, &op->limits);
        break;
    case SHARE_TAKE:
        op->rc = llm_budget_take(db, &op->take, &op->answer);
        break;
    case SHARE_FINISH:
        op->rc = share_finish_op(db, op);
        break;
    case SHARE_RENEW:
        op->rc = llm_budget_renew(db, op->provider, op->share->instance, op->share->lease_ms);
        break;
    }
    if (op->rc != STORE_OK)
        snprintf(op->err, sizeof op->err, "%s", db_errmsg(db));
}

static void share_configured(struct scheduler_share_op *op);
static void share_answered(struct scheduler_share_op *op);

static void share_done(void *ud, const char *not_started)
{
    struct scheduler_share_op *op = ud;
    struct scheduler_share *sh = op->share;
    sh->pending--;
    if (not_started) {
        op->rc = STORE_UNAVAILABLE;
        snprintf(op->err, sizeof op->err, "%s", not_started);
    }
    if (op->rc != STORE_OK)
        log_msg(LOG_WARN, "shared LLM budget: the database did not answer", "provider",
                op->provider, "error", op->err, NULL);
    if (op->kind == SHARE_CONFIGURE)
        share_configured(op);
    else if (op->kind == SHARE_TAKE)
        share_answered(op);
    free(op);
    share_maybe_free(sh);
}

static struct scheduler_share_op *share_op_new(struct scheduler_share *sh, enum share_kind kind,
                                               const char *provider, const char *job)
{
    size_t job_len = job ? strlen(job) + 1 : 1;
    struct scheduler_share_op *op = calloc(1, sizeof *op + job_len);
    if (!op) {
        log_msg(LOG_ERROR, "shared LLM budget: out of memory", "provider", provider, NULL);
        return NULL;
    }
    op->share = sh;
    op->kind = kind;
    snprintf(op->provider, sizeof op->provider, "%s", provider);
    if (job)
        memcpy(op->job, job, job_len);
    return op;
}

/* Runs OP; when it cannot even start, its answer is "not started" at once. */
static void share_start(struct scheduler_share_op *op)
{
    struct scheduler_share *sh = op->share;
    sh->pending++;
    if (db_run(sh->db, share_run, op, share_done, op) < 0)
        share_done(op, db_errmsg(sh->db));
}

/* ---- configuring ------------------------------------------------------------ */

void scheduler_share_installed(struct scheduler_provider *p)
{
    p->share_ready = false;
    if (!p->share || p->share_configuring)
        return; /* the answer in flight sees share_ready false and configures again */
    struct scheduler_share_op *op = share_op_new(p->share, SHARE_CONFIGURE, p->name, NULL);
    if (!op)
        return;
    op->p = p;
    p->refs++;
    p->share_configuring = true;
    op->limits = (struct llm_budget_limits){
        .window_ms = p->window_ms,
        .max_concurrency = p->rc.max_concurrency,
        .per_window = {p->rc.requests_per_minute, p->rc.input_tokens_per_minute,
                       p->rc.output_tokens_per_minute, p->rc.tokens_per_minute}};
    share_start(op);
}

static void share_configured(struct scheduler_share_op *op)
{
    struct scheduler_provider *p = op->p;
    p->share_configuring = false;
    bool same = op->limits.window_ms == p->window_ms &&
                op->limits.max_concurrency == p->rc.max_concurrency &&
                op->limits.per_window[0] == p->rc.requests_per_minute &&
                op->limits.per_window[1] == p->rc.input_tokens_per_minute &&
                op->limits.per_window[2] == p->rc.output_tokens_per_minute &&
                op->limits.per_window[3] == p->rc.tokens_per_minute;
    if (op->rc == STORE_OK && same)
        p->share_ready = true;
    else if (op->rc != STORE_OK)
        p->hold_until = scheduler_now(p) + SHARE_RETRY_MS;
    scheduler_kick(p);
    scheduler_unref(p);
}

/* ---- taking ------------------------------------------------------------------ */

bool scheduler_share_may_take(struct scheduler_provider *p)
{
    int64_t now = scheduler_now(p);
    if (p->hold_until > now) {
        scheduler_arm(p, p->hold_until - now);
        return false;
    }
    if (!p->share_ready) {
        scheduler_share_installed(p); /* again after a failure (no-op while in flight) */
        return false;
    }
    return p->take == NULL;
}

void scheduler_share_take(struct scheduler_provider *p, struct scheduler_acquire *op)
{
    const char *job = ratelimit_ticket_job(op->ticket);
    struct scheduler_share_op *t = share_op_new(p->share, SHARE_TAKE, p->name, job);
    if (!t) { /* wait and ask again, as if refused */
        ratelimit_unstart(p->rl, op->ticket, scheduler_time(p, scheduler_now(p)));
        p->hold_until = scheduler_now(p) + SHARE_RETRY_MS;
        scheduler_arm(p, SHARE_RETRY_MS);
        return;
    }
    struct scheduler_share *sh = p->share;
    int64_t in = ratelimit_ticket_est_input(op->ticket);
    int64_t out = ratelimit_ticket_max_output(op->ticket);
    t->take = (struct llm_budget_take){.provider = t->provider,
                                       .instance = sh->instance,
                                       .job_key = t->job,
                                       .slot = (int64_t)ratelimit_ticket_id(op->ticket),
                                       .debit = {1, in, out, in + out},
                                       .lease_ms = sh->lease_ms,
                                       .grace_ms = sh->grace_ms,
                                       .poll_ms = sh->poll_ms};
    t->p = p;
    t->acq = op;
    p->refs++;
    p->take = t;
    op->take = t;
    share_start(t);
}

/* A permit granted for a call that will not be made: all of it back. */
static void share_give_back(struct scheduler_share *sh, const char *provider, int64_t slot,
                            const int64_t debit[LLM_BUDGETS])
{
    struct scheduler_share_op *op = share_op_new(sh, SHARE_FINISH, provider, NULL);
    if (!op)
        return;
    op->take.slot = slot;
    memcpy(op->credit, debit, sizeof op->credit);
    share_start(op);
}

static void share_refused(struct scheduler_provider *p, struct scheduler_share_op *t)
{
    int64_t now = scheduler_now(p);
    struct scheduler_acquire *op = t->acq;
    if (op && ratelimit_unstart(p->rl, op->ticket, scheduler_time(p, now)) != 0) {
        scheduler_queue_remove(op); /* cannot queue it again: the call fails */
        scheduler_acquire_cancel(op);
        op->wake(op->ud);
    }
    int64_t wait = t->rc == STORE_OK ? t->answer.wait_ms : SHARE_RETRY_MS;
    p->hold_until = now + (wait > 0 ? wait : 1);
    if (t->rc == STORE_OK)
        p->metrics.shared_refusals++;
}

static void share_answered(struct scheduler_share_op *t)
{
    struct scheduler_provider *p = t->p;
    struct scheduler_acquire *op = t->acq;
    bool granted = t->rc == STORE_OK && t->answer.granted;
    p->take = NULL;
    if (op)
        op->take = NULL;
    if (granted && (!op || p->detached)) {
        share_give_back(t->share, t->provider, t->take.slot, t->take.debit);
    } else if (granted) {
        op->granted = true;
        op->shared = true;
        op->granted_at_ms = t->answer.now_ms;
        p->leases++;
        scheduler_queue_remove(op);
        op->wake(op->ud); /* may free OP */
    } else if (!p->detached) {
        share_refused(p, t);
    }
    scheduler_kick(p);
    scheduler_unref(p);
}

void scheduler_share_forget(struct scheduler_acquire *op)
{
    if (op->take) {
        op->take->acq = NULL; /* the answer gives a grant back */
        op->take = NULL;
    } else if (op->shared) {
        int64_t in = ratelimit_ticket_est_input(op->ticket);
        int64_t out = ratelimit_ticket_max_output(op->ticket);
        int64_t debit[LLM_BUDGETS] = {1, in, out, in + out};
        share_give_back(op->p->share, op->p->name, (int64_t)ratelimit_ticket_id(op->ticket), debit);
        op->shared = false;
        op->p->leases--;
    }
}

/* ---- finishing ------------------------------------------------------------------ */

void scheduler_share_finish(struct scheduler_provider *p, struct scheduler_slot *slot, int64_t in,
                            int64_t out, llm_header_fn get, void *ctx, int64_t delay_ms)
{
    slot->shared = false;
    p->leases--;
    struct scheduler_share_op *op = share_op_new(p->share, SHARE_FINISH, p->name, NULL);
    if (!op)
        return;
    int64_t est = ratelimit_ticket_est_input(slot->ticket);
    int64_t max = ratelimit_ticket_max_output(slot->ticket);
    int64_t used_in = in >= 0 ? in : est, used_out = out >= 0 ? out : max;
    op->take.slot = (int64_t)ratelimit_ticket_id(slot->ticket);
    op->credit[LLM_BUDGET_INPUT_TOKENS] = est - used_in;
    op->credit[LLM_BUDGET_OUTPUT_TOKENS] = max - used_out;
    op->credit[LLM_BUDGET_TOKENS] = est + max - used_in - used_out;
    op->has_headers = get && ratelimit_read_headers(get, ctx, &op->headers) > 0;
    op->delay_ms = delay_ms;
    share_start(op);
}

void scheduler_share_pause(struct scheduler_provider *p, int64_t delay_ms)
{
    struct scheduler_share_op *op = share_op_new(p->share, SHARE_FINISH, p->name, NULL);
    if (!op)
        return;
    op->take.slot = -1; /* no lease: only the pause */
    op->delay_ms = delay_ms;
    share_start(op);
}

/* ---- the share ------------------------------------------------------------------- */

static void share_renew_tick(uv_timer_t *timer)
{
    struct scheduler_share *sh = timer->data;
    for (size_t i = 0; sh->s && i < scheduler_count(sh->s); i++) {
        struct scheduler_provider *p = scheduler_provider_at(sh->s, i);
        struct scheduler_share_op *op;
        if (p->leases > 0 && (op = share_op_new(sh, SHARE_RENEW, p->name, NULL)))
            share_start(op);
    }
}

static void share_renew_closed(uv_handle_t *h)
{
    struct scheduler_share *sh = h->data;
    sh->renew_closed = true;
    share_maybe_free(sh);
}

int scheduler_share(struct scheduler *s, const struct scheduler_share_config *cfg, char *err,
                    size_t err_cap)
{
    if (s->share) {
        snprintf(err, err_cap, "the LLM budget is shared already");
        return -1;
    }
    if (!cfg->db || strcmp(db_engine(cfg->db), "postgresql") != 0) {
        snprintf(err, err_cap, "a shared LLM budget needs PostgreSQL (SQLite is one process)");
        return -1;
    }
    if (!cfg->instance || !cfg->instance[0] || strlen(cfg->instance) >= LLM_BUDGET_INSTANCE_MAX) {
        snprintf(err, err_cap, "the instance id must be 1-%d bytes", LLM_BUDGET_INSTANCE_MAX - 1);
        return -1;
    }
    struct scheduler_share *sh = calloc(1, sizeof *sh);
    if (!sh) {
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    sh->db = cfg->db;
    snprintf(sh->instance, sizeof sh->instance, "%s", cfg->instance);
    sh->lease_ms = cfg->lease_ms > 0 ? cfg->lease_ms : SHARE_LEASE_MS;
    sh->grace_ms = cfg->grace_ms > 0 ? cfg->grace_ms : SHARE_GRACE_MS;
    sh->poll_ms = cfg->poll_ms > 0 ? cfg->poll_ms : SHARE_POLL_MS;
    sh->s = s;
    uv_timer_init(s->loop, &sh->renew);
    sh->renew.data = sh;
    uint64_t every = (uint64_t)(sh->lease_ms / 3 > 0 ? sh->lease_ms / 3 : 1);
    uv_timer_start(&sh->renew, share_renew_tick, every, every);
    uv_unref((uv_handle_t *)&sh->renew); /* renewing alone keeps no loop running */
    s->share = sh;
    for (size_t i = 0; i < s->n; i++) {
        struct scheduler_provider *p = s->providers[i];
        p->share = sh;
        p->metrics.shared = true;
        scheduler_share_installed(p);
    }
    return 0;
}

int scheduler_share_pending(const struct scheduler *s)
{
    return s->share ? s->share->pending : 0;
}

void scheduler_share_detach(struct scheduler *s)
{
    struct scheduler_share *sh = s->share;
    if (!sh)
        return;
    s->share = NULL;
    sh->s = NULL;
    uv_timer_stop(&sh->renew);
    uv_close((uv_handle_t *)&sh->renew, share_renew_closed);
}
