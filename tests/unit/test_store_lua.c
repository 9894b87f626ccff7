/* The storage modules from Lua (o2c.store, o2c.session, o2c.auth,
 * o2c.audit): a real VM on a fresh uv loop and a real SQLite file, with Lua
 * running in tasks that wait for argon2 on the thread pool.  Covers users,
 * login success/failure/throttling, validate/logout/expiry, revision
 * conflicts, forged actors, the report lifecycle, attachments, audit and
 * retention; at loop close no handle is left open.  Prints two figures:
 * session.validate per call and the loop's lag while 20 logins hash. */
#include <ftw.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <lauxlib.h>
#ifdef O2C_HAVE_PQ
#include <libpq-fe.h>
#endif
#include <sodium.h>
#include <sys/stat.h>
#include <uv.h>
#include "app/app.h"
#include "host/config.h"
#include "host/lua_host.h"
#include "host/task.h"
#include "store/db.h"
#include "store/password.h"
#include "store/store.h"
#include "store/store_lua.h"
#include "store/store_lua_internal.h"
#include "store/user.h"

#define PASSWORD "correct horse battery"

struct fixture {
    uv_loop_t loop;
    lua_State *L;
    struct db *db;
    char dir[64];
    int64_t now; /* 0: wall clock */
};

static char shared_hash[PASSWORD_HASH_MAX];

/* PostgreSQL under test (ctest's unit/test_store_lua-pg), else NULL: there
 * the store answers through operations on fibers (db_serve_operations), the
 * way o2c serve uses it.  Only the bindings that run their work as one
 * operation (store_lua_call.h) are tested there so far. */
static const char *pg_url;

static void pg_reset(void)
{
#ifdef O2C_HAVE_PQ
    PGconn *pq = PQconnectdb(pg_url);
    PGresult *r = PQexec(pq, "SET client_min_messages = warning;"
                             "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fail_msg("resetting %s: %s", pg_url, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(pq);
#endif
}

static int64_t test_clock(void *ud)
{
    struct fixture *f = ud;
    if (f->now)
        return f->now;
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    return tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* Lua helpers every chunk can use (globals of the product VM). */
static const char prelude[] =
    "store, session, auth, audit = require 'o2c.store', require 'o2c.session',\n"
    "  require 'o2c.auth', require 'o2c.audit'\n"
    "timer, task = require 'o2c.timer', require 'o2c.task'\n"
    "PASSWORD = 'correct horse battery'\n"
    "function ok(v, msg, code, ...)\n"
    "  if v == nil then error('unexpected failure: ' .. tostring(msg) .. ' (' .. "
    "tostring(code) .. ')', 2) end\n"
    "  return v, msg, code, ...\n"
    "end\n"
    "function fails(want, v, msg, code, ...)\n"
    "  if v ~= nil then error('expected ' .. want .. ', got a value', 2) end\n"
    "  if code ~= want then error('expected ' .. want .. ', got ' .. tostring(code) .. ': ' "
    ".. tostring(msg), 2) end\n"
    "  return msg, ...\n"
    "end\n"
    "function login(name) return ok(session.login(name, PASSWORD, '10.0.0.1')) end\n"
    "function has_event(action, target) -- the latest such event\n"
    "  local found\n"
    "  for _, e in ipairs(store.audit_query{limit = 1000}.items) do\n"
    "    if e.action == action and (target == nil or e.target == target) then found = e end\n"
    "  end\n"
    "  return found\n"
    "end\n";

static void run_lua(lua_State *L, const char *code)
{
    if (luaL_loadstring(L, code) != LUA_OK || host_pcall(L, 0, 0) != LUA_OK)
        fail_msg("lua: %s", lua_tostring(L, -1));
}

static int setup_with(void **state, const struct config *cfg)
{
    struct fixture *f = calloc(1, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    snprintf(f->dir, sizeof f->dir, "/tmp/o2c-test-store-lua-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char err[512];
    if (pg_url)
        pg_reset();
    struct db_config dc = {.url = pg_url, .loop = &f->loop, .data_dir = f->dir};
    f->db = db_open(&dc, err, sizeof err);
    if (f->db == NULL)
        fail_msg("db_open: %s", err);
    db_set_clock(f->db, test_clock, f);
    if (shared_hash[0] == '\0')
        assert_int_equal(password_hash(PASSWORD, shared_hash, err, sizeof err), 0);
    assert_int_equal(user_add(f->db, "admin", USER_ROLE_ADMIN, shared_hash, NULL), STORE_OK);
    assert_int_equal(user_add(f->db, "alice", USER_ROLE_CONSULTANT, shared_hash, NULL), STORE_OK);
    assert_int_equal(user_add(f->db, "bob", USER_ROLE_CONSULTANT, shared_hash, NULL), STORE_OK);
    db_serve_operations(f->db); /* PostgreSQL: from here on, operations only */
    f->L = app_vm_open(&f->loop, 64u << 20);
    assert_non_null(f->L);
    store_lua_attach(f->L, f->db, cfg);
    struct throttle_config throttle = {.max_failures = 3, .window_ms = 60000};
    store_lua_set_throttle(f->L, &throttle);
    run_lua(f->L, prelude);
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_with(state, NULL);
}

static int setup_small_limits(void **state)
{
    struct config cfg;
    config_defaults(&cfg);
    cfg.limits.attachments_per_assessment = 2;
    cfg.sessions.idle_timeout_s = 600;
    cfg.sessions.absolute_timeout_s = 3600;
    return setup_with(state, &cfg);
}

static void count_open(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        (*(int *)arg)++;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    task_cancel_all();
    host_close(f->L);
    if (pg_url) {
        db_close(f->db); /* runs the loop until its connections are closed */
        f->db = NULL;
    }
    uv_run(&f->loop, UV_RUN_DEFAULT); /* pool work of cancelled tasks ends here */
    int open = 0;
    uv_walk(&f->loop, count_open, &open);
    assert_int_equal(open, 0);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    db_close(f->db);
    nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Runs CODE in a task to its end (the loop runs meanwhile); fails the test
 * with the task's error and traceback. */
static int task_status;
static char task_error[4096];

static void on_exit_record(struct task *t, lua_State *co, int status, int nres, const char *error,
                           void *ud)
{
    (void)t, (void)co, (void)nres, (void)ud;
    task_status = status;
    snprintf(task_error, sizeof task_error, "%s", error ? error : "");
}

static void run_task(struct fixture *f, const char *code)
{
    if (luaL_loadstring(f->L, code) != LUA_OK)
        fail_msg("lua: %s", lua_tostring(f->L, -1));
    task_status = -1;
    task_spawn(f->L, 0, on_exit_record, NULL);
    if (pg_url) /* the pool's connections keep the loop alive: run until the task ends */
        while (task_status == -1)
            uv_run(&f->loop, UV_RUN_ONCE);
    else
        uv_run(&f->loop, UV_RUN_DEFAULT);
    if (task_status != LUA_OK)
        fail_msg("task failed (%d): %s", task_status, task_error);
}

static void test_users(void **state)
{
    struct fixture *f = *state;
    run_task(f,
             "local u = ok(store.user_add{name = 'carol', role = 'consultant', password = "
             "PASSWORD})\n"
             "assert(u.name == 'carol' and u.role == 'consultant' and u.disabled == false)\n"
             "assert(u.id:match('^%x+%-%x+%-7') and u.created_at:match('Z$'))\n"
             "assert(math.type(u.created_at_ms) == 'integer')\n"
             "fails('exists', store.user_add{name = 'carol', role = 'admin', password = "
             "PASSWORD})\n"
             "local msg = fails('refused', store.user_add{name = 'dave', role = 'admin', "
             "password = 'short'})\n"
             "assert(msg:find('at least 12'), msg)\n"
             "fails('invalid', store.user_add{name = 'eve', role = 'root', password = "
             "PASSWORD})\n"
             "fails('invalid', store.user_add{name = '../x', role = 'admin', password = "
             "PASSWORD})\n"
             "assert(#ok(store.user_list()) == 4)\n"
             "assert(ok(store.user_get('carol')).id == u.id)\n"
             "fails('not_found', store.user_get('nobody'))\n"
             "-- a new password works and ends the old sessions\n"
             "local s = login('carol')\n"
             "local _, revoked = ok(store.user_set_password('carol', 'a brand new passphrase'))\n"
             "assert(revoked == 1 and session.validate(s.token) == nil)\n"
             "fails('invalid', session.login('carol', PASSWORD))\n"
             "ok(session.login('carol', 'a brand new passphrase'))\n"
             "ok(store.user_set_role('carol', 'admin'))\n"
             "assert(store.user_get('carol').role == 'admin')\n"
             "-- only admins manage accounts; the last admin stays\n"
             "local alice = login('alice')\n"
             "fails('not_found', store.user_set_disabled('bob', true, alice.user))\n"
             "local admin = login('admin')\n"
             "ok(store.user_set_disabled('carol', true, admin.user, '10.0.0.9'))\n"
             "fails('refused', store.user_set_disabled('admin', true))\n"
             "fails('refused', store.user_set_role('admin', 'consultant'))\n"
             "assert(has_event('user.added', 'carol') and has_event('user.disabled', "
             "'carol').user == 'admin')\n"
             "assert(has_event('user.disabled', 'carol').address == '10.0.0.9')\n");
}

static void test_login_and_throttle(void **state)
{
    struct fixture *f = *state;
    run_task(f, "local s = login('alice')\n"
                "assert(#s.token == 43 and s.user.name == 'alice' and s.user.role == "
                "'consultant')\n"
                "assert(s.expires_at:match('^%d%d%d%d%-') and s.idle_expires_at_ms > 0)\n"
                "-- unknown user and wrong password: same answer\n"
                "local m1 = fails('invalid', session.login('nobody', PASSWORD, '10.0.0.2'))\n"
                "local m2 = fails('invalid', session.login('alice', 'wrong password!', "
                "'10.0.0.3'))\n"
                "assert(m1 == m2, m1 .. ' / ' .. m2)\n"
                "-- 3 failures (the test's limit) for bob: then refused, even the right one\n"
                "for i = 1, 3 do fails('invalid', session.login('bob', 'nope nope nope', '10.1.0.' "
                ".. i)) end\n"
                "local msg, retry = fails('refused', session.login('bob', PASSWORD, '10.2.0.1'))\n"
                "assert(math.type(retry) == 'integer' and retry >= 1 and retry <= 60, retry)\n"
                "-- from one address across accounts\n"
                "fails('invalid', session.login('x1', 'whatever whatever', '10.9.9.9'))\n"
                "fails('invalid', session.login('x2', 'whatever whatever', '10.9.9.9'))\n"
                "fails('invalid', session.login('x3', 'whatever whatever', '10.9.9.9'))\n"
                "fails('refused', session.login('alice', PASSWORD, '10.9.9.9'))\n"
                "ok(session.login('alice', PASSWORD, '10.9.9.10'))\n"
                "local e = has_event('login.failed', 'alice')\n"
                "assert(e and e.address == '10.0.0.3' and e.user == nil)\n"
                "assert(has_event('login', 'alice').user == 'alice')\n"
                "-- refusals cost nothing to send: one audit event per account+address a minute\n"
                "for i = 1, 5 do fails('refused', session.login('bob', PASSWORD, '10.2.0.1')) end\n"
                "local refused = 0\n"
                "for _, e in ipairs(store.audit_query{limit = 1000}.items) do\n"
                "  if e.action == 'login.refused' and e.target == 'bob' then refused = refused + 1 "
                "end\n"
                "end\n"
                "assert(refused == 1, refused)\n");
}

/* An account hashed with other limits (libsodium's INTERACTIVE, the limits
 * before 19 MiB) signs in, and its stored hash is replaced by one with
 * today's limits; the old one stays valid only until then. */
static void test_login_rehashes_old_limits(void **state)
{
    struct fixture *f = *state;
    char old_hash[PASSWORD_HASH_MAX], stored[PASSWORD_HASH_MAX];
    assert_int_equal(crypto_pwhash_str(old_hash, PASSWORD, strlen(PASSWORD),
                                       crypto_pwhash_OPSLIMIT_INTERACTIVE,
                                       crypto_pwhash_MEMLIMIT_INTERACTIVE),
                     0);
    assert_true(password_needs_rehash(old_hash));
    assert_int_equal(user_add(f->db, "olga", USER_ROLE_CONSULTANT, old_hash, NULL), STORE_OK);
    run_task(f, "local s = login('olga')\n"
                "assert(session.validate(s.token).name == 'olga')\n");
    assert_int_equal(user_password_hash(f->db, "olga", NULL, stored), STORE_OK);
    assert_string_not_equal(stored, old_hash);
    assert_false(password_needs_rehash(stored));
    assert_true(password_verify(stored, PASSWORD));
    /* The next sign-in verifies the new hash and leaves it alone. */
    run_task(f, "local s = login('olga')\n"
                "fails('invalid', session.login('olga', 'not the password at all'))\n");
    char again[PASSWORD_HASH_MAX];
    assert_int_equal(user_password_hash(f->db, "olga", NULL, again), STORE_OK);
    assert_string_equal(again, stored);
}

static void test_validate_logout_expiry(void **state)
{
    struct fixture *f = *state;
    f->now = 1800000000000LL;
    run_task(f, "local s = login('alice')\n"
                "local u, info = session.validate(s.token)\n"
                "assert(u.name == 'alice' and u.role == 'consultant')\n"
                "assert(info.idle_expires_at_ms == 1800000000000 + 600000, "
                "info.idle_expires_at_ms)\n"
                "assert(info.expires_at == '2027-01-15T09:00:00.000Z', info.expires_at)\n"
                "assert(session.count() == 1)\n"
                "assert(session.validate('not a token') == nil and session.validate(nil) == nil)\n"
                "ok(session.logout(s.token, '10.0.0.1'))\n"
                "assert(session.validate(s.token) == nil)\n"
                "fails('not_found', session.logout(s.token))\n"
                "assert(has_event('logout', 'alice'))\n"
                "tok = login('bob').token\n");
    f->now += 601000; /* past the 10-minute idle timeout */
    run_task(f, "assert(session.validate(tok) == nil)\n"
                "tok = login('bob').token\n");
    for (int i = 0; i < 6; i++) { /* active every 9 minutes: the absolute hour still ends it */
        f->now += 540000;
        run_task(f, "assert(session.validate(tok))");
    }
    f->now += 540000;
    run_task(f, "assert(session.validate(tok) == nil)\n"
                "local s = login('bob')\n"
                "ok(store.user_set_disabled('bob', true))\n"
                "assert(session.validate(s.token) == nil)\n"
                "fails('invalid', session.login('bob', PASSWORD))\n");
}

/* Generations, the bindings that run as operations: stored once, found,
 * read back byte for byte; on PostgreSQL each call waits on its fiber. */
static void test_generations(void **state)
{
    struct fixture *f = *state;
    run_task(f,
             "ok(store.generation_put('gen-1', {{path = 'scripts/o2c/scoring.lua', text = "
             "'return 1'}}))\n"
             "local _, created = ok(store.generation_put('gen-1', {}))\n"
             "assert(created == false and store.generation_exists('gen-1'))\n"
             "assert(not store.generation_exists('gen-2'))\n"
             "assert(store.generation_get('gen-1')[1].text == 'return 1')\n"
             "fails('not_found', store.generation_get('gen-2'))\n"
             "-- many at once: each task waits for its own operation\n"
             "local done = 0\n"
             "for i = 1, 20 do\n"
             "  task.spawn(function()\n"
             "    ok(store.generation_put('gen-many-' .. i, {{path = 'p.lua', text = 'x' .. i}}))\n"
             "    assert(store.generation_get('gen-many-' .. i)[1].text == 'x' .. i)\n"
             "    done = done + 1\n"
             "  end)\n"
             "end\n"
             "while done < 20 do timer.sleep(5) end\n");
}

static void test_answers_and_conflicts(void **state)
{
    struct fixture *f = *state;
    run_task(f,
             "local alice = login('alice').user\n"
             "local a = ok(store.assessment_create(alice, {type = 'o2c', client = 'ACME', "
             "targets = {billing = 4}}))\n"
             "assert(a.revision == 0 and a.owner == alice.id and a.owner_name == 'alice')\n"
             "assert(a.targets.billing == 4 and math.type(a.targets.billing) == 'integer')\n"
             "local rev = ok(store.answers_save(alice, a.id, 0, {q2 = {value = 3, note = 'ok'}, "
             "q1 = {value = {'a', 'b'}}, q3 = {value = require('json').array()}}))\n"
             "assert(rev == 1)\n"
             "local msg, current = fails('conflict', store.answers_save(alice, a.id, 0, {q1 = "
             "{value = 1}}))\n"
             "assert(current == 1, tostring(current))\n"
             "assert(ok(store.answers_save(alice, a.id, 1, {q2 = false, q4 = {value = 2.5}})) "
             "== 2)\n"
             "local ans = ok(store.answers_get(alice, a.id))\n"
             "assert(ans.q2 == nil and ans.q1.value[2] == 'b' and ans.q4.value == 2.5)\n"
             "assert(ans.q1.by == 'alice' and ans.q1.at:match('Z$') and ans.q1.revision == 1)\n"
             "assert(require('json').encode(ans.q3.value) == '[]')\n"
             "assert(ok(store.assessment_get(alice, a.id)).revision == 2)\n"
             "local e = has_event('answers.saved', a.id)\n"
             "assert(e.user == 'alice' and e.details.questions[1] == 'q2' and "
             "e.details.questions[2] == 'q4' and e.details.revision == 2)\n"
             "-- scores and generations\n"
             "ok(store.generation_put('gen-1', {{path = 'scripts/o2c/scoring.lua', text = "
             "'return 1'}}))\n"
             "local _, created = ok(store.generation_put('gen-1', {}))\n"
             "assert(created == false and store.generation_exists('gen-1'))\n"
             "assert(not store.generation_exists('gen-2'))\n"
             "assert(store.generation_get('gen-1')[1].text == 'return 1')\n"
             "fails('not_found', store.score_latest(alice, a.id))\n"
             "ok(store.score_put(alice, a.id, 'gen-1', {overall = 3.5, areas = {billing = 2}}))\n"
             "local sc = ok(store.score_latest(alice, a.id))\n"
             "assert(sc.generation == 'gen-1' and sc.revision == 2 and sc.scores.overall == 3.5)\n"
             "fails('invalid', store.score_put(alice, a.id, 'gen-unknown', {}))\n"
             "-- listing pages, newest first; deletion\n"
             "for i = 1, 4 do ok(store.assessment_create(alice, {type = 'o2c', client = 'C' .. "
             "i})) end\n"
             "local p1 = ok(store.assessment_list(alice, {limit = 3}))\n"
             "assert(#p1.items == 3 and p1.items[1].client == 'C4' and p1.next)\n"
             "local p2 = ok(store.assessment_list(alice, {limit = 3, after = p1.next}))\n"
             "assert(#p2.items == 2 and p2.next == nil and p2.items[2].id == a.id)\n"
             "ok(store.assessment_delete(alice, a.id))\n"
             "fails('not_found', store.assessment_get(alice, a.id))\n"
             "assert(has_event('assessment.deleted', a.id))\n"
             "fails('invalid', store.assessment_create(alice, {type = '', client = 'x'}))\n");
}

/* Text holding a NUL byte is refused by the store, never cut at the NUL
 * (the C layers below end strings there); nothing is stored on refusal. */
static void test_text_with_nul_is_refused_not_cut(void **state)
{
    struct fixture *f = *state;
    run_task(f, "local function refused(fn, ...)\n"
                "  local done, err = pcall(fn, ...)\n"
                "  assert(not done, 'stored text holding a NUL')\n"
                "  assert(tostring(err):find('NUL', 1, true), tostring(err))\n"
                "end\n"
                "local alice = login('alice').user\n"
                "local a = ok(store.assessment_create(alice, {type = 'o2c', client = 'ACME'}))\n"
                "refused(store.assessment_create, alice, {type = 'o2c', client = 'AC\\0ME'})\n"
                "refused(store.answers_save, alice, a.id, 0, {q1 = {value = 1, note = 'a\\0b'}})\n"
                "refused(store.answers_save, alice, a.id, 0, {['q1\\0x'] = {value = 1}})\n"
                "assert(ok(store.assessment_get(alice, a.id)).revision == 0)\n"
                "assert(next(ok(store.answers_get(alice, a.id))) == nil)\n"
                "assert(#ok(store.assessment_list(alice, {limit = 10})).items == 1)\n"
                "local admin = login('admin').user\n"
                "refused(store.user_set_password, 'bob', 'correct horse\\0battery', admin)\n"
                "-- a password holding a NUL never signs in, not even as what precedes it\n"
                "fails('invalid', session.login('alice', PASSWORD .. '\\0junk', '10.0.0.2'))\n"
                "-- a generation's sources are kept whole, whatever bytes they hold\n"
                "ok(store.generation_put('gen-nul', {{path = 'p.lua', text = 'a\\0b\\255'}}))\n"
                "assert(store.generation_get('gen-nul')[1].text == 'a\\0b\\255')\n");
}

static void test_actors_cannot_be_forged(void **state)
{
    struct fixture *f = *state;
    run_task(f, "local alice, bob = login('alice').user, login('bob').user\n"
                "local a = ok(store.assessment_create(alice, {type = 'o2c', client = 'ACME'}))\n"
                "fails('not_found', store.assessment_get(bob, a.id))\n"
                "assert(auth.can_access(alice, a) and not auth.can_access(bob, a))\n"
                "-- a table built by a handler is refused outright\n"
                "local forged = {id = alice.id, name = 'alice', role = 'admin'}\n"
                "local okcall, err = pcall(store.assessment_get, forged, a.id)\n"
                "assert(not okcall and tostring(err):find('not issued'), tostring(err))\n"
                "assert(not pcall(auth.is_admin, forged))\n"
                "-- editing an issued table changes nothing: the id it was issued for counts\n"
                "bob.role, bob.id = 'admin', alice.id\n"
                "fails('not_found', store.assessment_get(bob, a.id))\n"
                "assert(not auth.is_admin(bob))\n"
                "local admin = login('admin').user\n"
                "assert(auth.is_admin(admin) and ok(store.assessment_get(admin, a.id)))\n"
                "assert(ok(store.assessment_get(store.system_actor(), a.id)))\n"
                "-- a disabled account loses access at once\n"
                "ok(store.user_set_disabled('alice', true))\n"
                "fails('not_found', store.assessment_get(alice, a.id))\n");
}

static void test_report_lifecycle(void **state)
{
    struct fixture *f = *state;
    run_task(
        f,
        "local alice = login('alice').user\n"
        "local a = ok(store.assessment_create(alice, {type = 'o2c', client = 'ACME'}))\n"
        "ok(store.generation_put('gen-r', {}))\n"
        "local r = ok(store.report_create(alice, a.id, {generation = 'gen-r', provider = "
        "'offline', model = 'drafter', sections = {\n"
        "  {id = 'findings', title = 'Findings', kind = 'llm'},\n"
        "  {id = 'roadmap', title = 'Roadmap', kind = 'llm', depends = {'findings'}},\n"
        "  {id = 'summary', title = 'Summary', kind = 'llm', depends = {'findings', "
        "'roadmap'}}}}))\n"
        "assert(r.status == 'queued' and #r.sections == 3 and r.sections[3].depends[2] == "
        "'roadmap')\n"
        "assert(require('json').encode(r.sections[1].depends) == '[]')\n"
        "local jobs = store.jobs_unfinished()\n"
        "assert(#jobs == 1 and jobs[1] == r.id)\n"
        "ok(store.report_start(r.id))\n"
        "local sys = store.system_actor()\n"
        "assert(ok(store.report_get(sys, r.id)).status == 'running')\n"
        "ok(store.section_start(r.id, 'findings', 'anthropic', 'claude'))\n"
        "ok(store.section_retrying(r.id, 'findings', '429 rate limited', 2000))\n"
        "ok(store.section_start(r.id, 'findings'))\n"
        "ok(store.section_done(r.id, 'findings', {text = '# Findings', tokens_in = 100, "
        "tokens_out = 50, warning = 'cut at max_tokens'}))\n"
        "ok(store.section_start(r.id, 'roadmap', 'anthropic', 'claude'))\n"
        "ok(store.section_fail(r.id, 'roadmap', 'overloaded after 3 retries'))\n"
        "fails('conflict', store.report_finish(r.id))\n"
        "ok(store.section_start(r.id, 'summary'))\n"
        "ok(store.section_done(r.id, 'summary', {text = 'ok', tokens_in = 1, tokens_out = 2}))\n"
        "assert(ok(store.report_finish(r.id)) == 'partial')\n"
        "local got = ok(store.report_get(alice, r.id))\n"
        "local s1, s2 = got.sections[1], got.sections[2]\n"
        "assert(got.status == 'partial' and got.finished_at and got.generation == 'gen-r')\n"
        "assert(s1.status == 'done' and s1.attempts == 2 and s1.tokens_in == 100 and s1.provider "
        "== 'anthropic')\n"
        "assert(s1.warning == 'cut at max_tokens' and s1.text == '# Findings' and s1.title == "
        "'Findings')\n"
        "assert(s2.status == 'failed' and s2.error == 'overloaded after 3 retries' and s2.kind == "
        "'llm')\n"
        "local bob = login('bob').user\n"
        "fails('not_found', store.report_get(bob, r.id))\n"
        "fails('not_found', store.section_retry(bob, r.id, 'roadmap'))\n"
        "fails('conflict', store.section_retry(alice, r.id, 'findings'))\n"
        "ok(store.section_retry(alice, r.id, 'roadmap'))\n"
        "assert(store.jobs_unfinished()[1] == r.id)\n"
        "ok(store.section_start(r.id, 'roadmap'))\n"
        "ok(store.section_done(r.id, 'roadmap', {text = 'plan'}))\n"
        "assert(ok(store.report_finish(r.id)) == 'done' and #store.jobs_unfinished() == 0)\n"
        "local list = ok(store.report_list(alice, a.id))\n"
        "assert(#list == 1 and list[1].sections_done == 3 and list[1].status == 'done')\n"
        "assert(has_event('report.requested', r.id).user == 'alice')\n"
        "assert(has_event('report.finished', r.id).details.status == 'done')\n"
        "assert(has_event('report.section_retried', r.id).details.section == 'roadmap')\n");
}

/* An assessment of alice's, made in C (an operation of its own), and
 * alice as an issued actor: the Lua globals ALICE and ASSESSMENT_ID. */
struct seed {
    struct user alice;
    char assessment_id[UUID_STR_LEN];
    int rc;
};

static void seed_run(struct db *db, void *arg)
{
    struct seed *s = arg;
    s->rc = user_get_by_name(db, "alice", &s->alice);
    if (s->rc == STORE_OK)
        s->rc = store_assessment_create(db, &s->alice, "o2c", "ACME", NULL, s->assessment_id);
}

static void seed_assessment(struct fixture *f)
{
    struct seed s;
    assert_int_equal(db_run_wait(f->db, seed_run, &s), STORE_OK);
    assert_int_equal(s.rc, STORE_OK);
    store_lua_push_actor(f->L, &s.alice);
    lua_setglobal(f->L, "ALICE");
    lua_pushstring(f->L, s.assessment_id);
    lua_setglobal(f->L, "ASSESSMENT_ID");
}

/* The job runner's store calls (report/runner.lua through
 * report/storage_db.lua), with its sections written by tasks of their own
 * at once: only the report and generation bindings, so it runs on
 * PostgreSQL too (test_report_lifecycle also needs o2c.session and the
 * assessment and audit bindings). */
static void test_report_jobs(void **state)
{
    struct fixture *f = *state;
    seed_assessment(f);
    run_task(f,
             "local sys, n = store.system_actor(), 12\n"
             "ok(store.generation_put('gen-j', {}))\n"
             "local plan = {}\n"
             "for i = 1, n do plan[i] = {id = 's' .. i, title = 'S' .. i, kind = 'llm'} end\n"
             "plan[n].depends = {'s1'}\n"
             "local r = ok(store.report_create(ALICE, ASSESSMENT_ID, {generation = 'gen-j', "
             "provider = 'offline', sections = plan}))\n"
             "assert(r.status == 'queued' and #r.sections == n and r.requested_by == 'alice')\n"
             "assert(r.sections[n].depends[1] == 's1')\n"
             "fails('not_found', store.report_create(ALICE, 'not-an-id', {generation = 'gen-j', "
             "sections = plan}))\n"
             "fails('invalid', store.report_create(ALICE, ASSESSMENT_ID, {generation = 'none', "
             "sections = plan}))\n"
             "local jobs = ok(store.jobs_unfinished())\n"
             "assert(#jobs == 1 and jobs[1] == r.id)\n"
             "ok(store.report_start(r.id))\n"
             "assert(ok(store.report_get(sys, r.id)).status == 'running')\n"
             "-- every section in a task of its own, all at once, as the runner does\n"
             "local ended = 0\n"
             "for i = 1, n do\n"
             "  task.spawn(function()\n"
             "    local id = 's' .. i\n"
             "    ok(store.section_start(r.id, id, 'anthropic', 'claude'))\n"
             "    ok(store.section_retrying(r.id, id, '429 rate limited', 10))\n"
             "    if i == 2 then ok(store.section_fail(r.id, id, 'overloaded', {tokens_in = 3}))\n"
             "    else ok(store.section_done(r.id, id, {text = 'text ' .. i, tokens_in = i, "
             "tokens_out = 2 * i})) end\n"
             "    ended = ended + 1\n"
             "  end)\n"
             "end\n"
             "while ended < n do timer.sleep(5) end\n"
             "fails('not_found', store.section_start(r.id, 'nope'))\n"
             "assert(ok(store.report_finish(r.id)) == 'partial')\n"
             "fails('not_found', store.report_finish('not-an-id'))\n"
             "local got = ok(store.report_get(ALICE, r.id))\n"
             "assert(got.status == 'partial' and got.finished_at and got.generation == 'gen-j')\n"
             "assert(got.sections[2].status == 'failed' and got.sections[2].error == "
             "'overloaded')\n"
             "assert(got.sections[5].text == 'text 5' and got.sections[5].tokens_out == 10)\n"
             "assert(got.sections[5].provider == 'anthropic' and got.sections[5].model == "
             "'claude')\n"
             "fails('conflict', store.section_retry(ALICE, r.id, 's1'))\n"
             "fails('not_found', store.section_retry(ALICE, 'not-an-id', 's2'))\n"
             "ok(store.section_retry(ALICE, r.id, 's2'))\n"
             "assert(ok(store.jobs_unfinished())[1] == r.id)\n"
             "ok(store.report_start(r.id))\n"
             "ok(store.section_start(r.id, 's2'))\n"
             "ok(store.section_done(r.id, 's2', {text = 'again'}))\n"
             "assert(ok(store.report_finish(r.id)) == 'done' and #ok(store.jobs_unfinished()) "
             "== 0)\n"
             "local list = ok(store.report_list(ALICE, ASSESSMENT_ID))\n"
             "assert(#list == 1 and list[1].sections_done == n and list[1].status == 'done')\n"
             "assert(#ok(store.report_list(sys, ASSESSMENT_ID)) == 1)\n"
             "fails('not_found', store.report_list(ALICE, 'not-an-id'))\n");
}

/* o2c serve's start-up (server.start: no task) resumes the jobs a restart
 * cut short; their store calls wait on PostgreSQL, so they run in a task.
 * With no scripts loaded the resumed job fails its sections and ends. */
static void test_jobs_resumed_at_start_up(void **state)
{
    struct fixture *f = *state;
    seed_assessment(f);
    run_task(f, "ok(store.generation_put('gen-j', {}))\n"
                "REPORT = ok(store.report_create(ALICE, ASSESSMENT_ID, {generation = 'gen-j', "
                "sections = {{id = 'findings'}}}))\n");
    run_lua(f->L, "require('api.reports').resume()");
    run_task(f, "local sys = store.system_actor()\n"
                "for _ = 1, 2000 do\n"
                "  if #ok(store.jobs_unfinished()) == 0 then break end\n"
                "  timer.sleep(5)\n"
                "end\n"
                "local r = ok(store.report_get(sys, REPORT.id))\n"
                "assert(r.status == 'failed', r.status)\n"
                "assert(r.sections[1].error:find('no assessment scripts are loaded'), "
                "r.sections[1].error)\n");
}

static void test_attachments(void **state)
{
    struct fixture *f = *state;
    run_task(f, "local alice = login('alice').user\n"
                "local a = ok(store.assessment_create(alice, {type = 'o2c', client = 'ACME'}))\n"
                "local png = '\\137PNG\\r\\n\\26\\n' .. string.rep('x', 5000)\n"
                "local m = ok(store.attachment_put(alice, a.id, 'chart.png', 'image/png', png))\n"
                "assert(m.size == #png and #m.sha == 64 and m.created_by == 'alice')\n"
                "local meta, bytes = ok(store.attachment_get(alice, a.id, 'chart.png'))\n"
                "assert(bytes == png and meta.media_type == 'image/png')\n"
                "ok(store.attachment_put(alice, a.id, 'b.gif', 'image/gif', 'GIF89a'))\n"
                "-- the limit (2 here) refuses a third name but not a replacement\n"
                "local msg = fails('refused', store.attachment_put(alice, a.id, 'c.gif', "
                "'image/gif', 'GIF89a!'))\n"
                "assert(msg:find('limit'), msg)\n"
                "ok(store.attachment_put(alice, a.id, 'b.gif', 'image/gif', 'GIF89a again'))\n"
                "local list = ok(store.attachment_list(alice, a.id))\n"
                "assert(#list == 2 and list[1].name == 'b.gif' and list[1].size == 12)\n"
                "local bob = login('bob').user\n"
                "fails('not_found', store.attachment_get(bob, a.id, 'chart.png'))\n"
                "fails('not_found', store.attachment_put(bob, a.id, 'x.png', 'image/png', 'x'))\n"
                "ok(store.attachment_delete(alice, a.id, 'chart.png'))\n"
                "fails('not_found', store.attachment_get(alice, a.id, 'chart.png'))\n"
                "assert(has_event('attachment.added', a.id) and has_event('attachment.deleted', "
                "a.id))\n");
}

static void test_audit_retention_check(void **state)
{
    struct fixture *f = *state;
    run_task(f,
             "assert(store.check() == true)\n"
             "local alice = login('alice').user\n"
             "assert(ok(store.audit(alice, 'report.downloaded', {format = 'md'}, '10.0.0.5', "
             "'r-1')) > 0)\n"
             "ok(audit.record(nil, 'generation.changed', {from = 'a', to = 'b'}))\n"
             "local page = ok(store.audit_query{user = 'alice', limit = 1})\n"
             "assert(#page.items == 1 and page.items[1].action == 'login' and page.next)\n"
             "local rest = ok(store.audit_query{user = 'alice', after = page.next})\n"
             "assert(rest.items[1].action == 'report.downloaded' and rest.items[1].details.format "
             "== 'md')\n"
             "assert(rest.next == nil)\n"
             "assert(#ok(audit.query{since = '2999-01-01'}).items == 0)\n"
             "assert(#ok(audit.query{since = '2000-01-01T00:00:00Z'}).items >= 3)\n"
             "local counts = ok(store.retention_run())\n"
             "assert(counts.sessions == 0 and counts.orphan_files == 0)\n"
             "assert(has_event('retention.run').details.jobs == 0)\n");
}

/* For tests about hashing, not throttling: many sign-ins for one account
 * at once would otherwise be told to wait for the first three. */
static void unthrottle(struct fixture *f)
{
    struct throttle_config throttle = {.max_failures = 1000, .window_ms = 60000};
    store_lua_set_throttle(f->L, &throttle);
}

/* Ten wrong guesses at bob at once: only the test's limit (3) are verified,
 * the others are told to wait before anything about them is checked; once
 * those three have failed, the account is refused, the right password too. */
static void test_concurrent_logins_reserve(void **state)
{
    struct fixture *f = *state;
    run_task(f,
             "local codes, done = {}, 0\n"
             "for i = 1, 10 do task.spawn(function()\n"
             "  local v, msg, code = session.login('bob', 'wrong guess ' .. i, '10.7.0.' .. i)\n"
             "  codes[code] = (codes[code] or 0) + 1; done = done + 1\n"
             "end) end\n"
             "while done < 10 do timer.sleep(5) end\n"
             "assert(codes.invalid == 3 and codes.wait == 7, (codes.invalid or 0) .. ' verified, '"
             " .. (codes.wait or 0) .. ' waiting')\n"
             "fails('refused', session.login('bob', PASSWORD, '10.7.1.1'))\n"
             "local failed = 0\n"
             "for _, e in ipairs(store.audit_query{limit = 1000}.items) do\n"
             "  if e.action == 'login.failed' and e.target == 'bob' then failed = failed + 1 end\n"
             "end\n"
             "assert(failed == 3, failed)\n"
             "-- a success among attempts in flight: answered truthfully\n"
             "local got = {}\n"
             "for i = 1, 3 do task.spawn(function()\n"
             "  got[i] = {session.login('alice', i == 3 and PASSWORD or 'wrong guess', '10.8.0.' "
             ".. i)}\n"
             "end) end\n"
             "while not (got[1] and got[2] and got[3]) do timer.sleep(5) end\n"
             "assert(got[1][3] == 'invalid' and got[2][3] == 'invalid' and got[3][1].token)\n");
}

static void test_cancelled_login_frees_its_work(void **state)
{
    struct fixture *f = *state;
    unthrottle(f);
    /* Tasks die while their hash waits or runs on the pool: nothing resumes
     * them, nothing leaks (the ASan variant checks), the loop ends. */
    run_lua(f->L, "victims = {}\n"
                  "for i = 1, 4 do victims[i] = task.spawn(function() session.login('alice', "
                  "PASSWORD); resumed = true end) end\n"
                  "for i = 1, 4 do assert(victims[i]:cancel()) end\n"
                  "spawned_after = task.spawn(function() finished = login('bob').user.name end)");
    uv_run(&f->loop, UV_RUN_DEFAULT);
    lua_getglobal(f->L, "finished");
    assert_string_equal(lua_tostring(f->L, -1), "bob");
    lua_getglobal(f->L, "resumed");
    assert_true(lua_isnil(f->L, -1));
    lua_pop(f->L, 2);
    int running, queued;
    store_lua_hash_load(&running, &queued);
    assert_int_equal(running + queued, 0);
}

static void test_no_database_attached(void **state)
{
    struct fixture *f = *state;
    store_lua_attach(f->L, NULL, NULL);
    run_lua(f->L, "local v, msg = store.check(); assert(v == nil and msg:find('no database'))\n"
                  "assert(not pcall(store.user_list))");
    store_lua_attach(f->L, f->db, NULL);
}

/* Figures: session.validate per call, and how late a 1 ms timer fires
 * while 20 logins hash at once (the loop must stay responsive). */
static void test_figures(void **state)
{
    struct fixture *f = *state;
    run_task(f,
             "local tok = login('alice').token\n"
             "local n, t0 = 20000, os.clock()\n"
             "for i = 1, n do assert(session.validate(tok)) end\n"
             "validate_us = (os.clock() - t0) / n * 1e6\n"
             "local alice = session.validate(tok)\n"
             "local a = ok(store.assessment_create(alice, {type = 'o2c', client = 'bench'}))\n"
             "local saves, rev, times = 2000, 0, {}\n"
             "for i = 1, saves do\n"
             "  local t = os.clock()\n"
             "  rev = ok(store.answers_save(alice, a.id, rev, {['q' .. (i % 40)] = {value = i}}))\n"
             "  times[i] = (os.clock() - t) * 1e6\n"
             "end\n"
             "table.sort(times)\n"
             "save_p50, save_p99 = times[saves // 2], times[saves * 99 // 100]\n");
    unthrottle(f);
    uv_update_time(&f->loop); /* the timer task reads the loop's clock */
    run_lua(f->L, "lags, logged = {}, 0\n"
                  "for i = 1, 20 do task.spawn(function() login('alice'); logged = logged + 1 end) "
                  "end\n"
                  "task.spawn(function()\n"
                  "  while logged < 20 do\n"
                  "    local t = timer.now(); timer.sleep(1)\n"
                  "    lags[#lags + 1] = timer.now() - t - 1\n"
                  "  end\n"
                  "end)");
    uint64_t t0 = uv_hrtime();
    uv_run(&f->loop, UV_RUN_DEFAULT);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    run_lua(f->L, "table.sort(lags); lag_p99 = lags[math.max(1, #lags * 99 // 100)]; "
                  "lag_max = lags[#lags]; assert(logged == 20)");
    lua_getglobal(f->L, "validate_us");
    lua_getglobal(f->L, "save_p50");
    lua_getglobal(f->L, "save_p99");
    lua_getglobal(f->L, "lag_p99");
    lua_getglobal(f->L, "lag_max");
    printf("[ FIGURES  ] session.validate %.2f us/call; answers_save p50 %.0f us, p99 %.0f us; "
           "20 logins in %.2f s on %d hashing slot(s): 1 ms timer lag p99 %lld ms, max %lld ms\n",
           lua_tonumber(f->L, -5), lua_tonumber(f->L, -4), lua_tonumber(f->L, -3), secs,
           store_lua_hash_slots(), (long long)lua_tointeger(f->L, -2),
           (long long)lua_tointeger(f->L, -1));
    assert_true(lua_tointeger(f->L, -2) < 100); /* generous: shared CI machines */
    lua_pop(f->L, 5);
}

int main(void)
{
    pg_url = getenv("O2C_TEST_PG_URL");
    if (pg_url && pg_url[0]) {
        const struct CMUnitTest on_operations[] = {
            cmocka_unit_test_setup_teardown(test_generations, setup, teardown),
            cmocka_unit_test_setup_teardown(test_report_jobs, setup, teardown),
            cmocka_unit_test_setup_teardown(test_jobs_resumed_at_start_up, setup, teardown),
        };
        return cmocka_run_group_tests(on_operations, NULL, NULL);
    }
    pg_url = NULL;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_generations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_and_throttle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_logins_reserve, setup, teardown),
        cmocka_unit_test_setup_teardown(test_validate_logout_expiry, setup_small_limits, teardown),
        cmocka_unit_test_setup_teardown(test_answers_and_conflicts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_text_with_nul_is_refused_not_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_actors_cannot_be_forged, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_lifecycle, setup, teardown),
        cmocka_unit_test_setup_teardown(test_report_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_jobs_resumed_at_start_up, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attachments, setup_small_limits, teardown),
        cmocka_unit_test_setup_teardown(test_audit_retention_check, setup, teardown),
        cmocka_unit_test_setup_teardown(test_login_rehashes_old_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_login_frees_its_work, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_database_attached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_figures, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
