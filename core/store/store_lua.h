/* The storage modules of the product VM: o2c.store, o2c.session, o2c.auth
 * and o2c.audit (never visible to assessment scripts).
 *
 * `o2c serve` opens the database (store_serve_open), attaches it to the VM
 * with store_lua_attach and closes it after the VM.  Every binding reads the
 * attached database from the VM's registry.
 *
 * Conventions (as o2c.http): expected failures return nil, message, code,
 * with code from store_rc_code ("not_found", "conflict", "exists",
 * "invalid", "refused", "busy", "error"); misuse (wrong argument types, a
 * forged actor, no database attached) raises.
 *
 * Actors: the user tables handed out by session.login, session.validate and
 * store.system_actor() are recorded (weakly) by the binding together with
 * the id they were issued for.  A function taking an actor accepts only
 * such a table, reloads that account by its recorded id on every call
 * (one primary-key read) and applies its current role and disabled flag.
 * So a handler cannot act as an admin, or as someone else, by building or
 * editing a table: fields of the table are never trusted.
 *
 * Slow work leaves the loop: argon2id hashing and verifying run on the
 * libuv thread pool, at most max(1, min(cores - 1, pool size - 1)) at once
 * with a queue of STORE_LUA_HASH_QUEUE behind them (beyond: "busy"), and
 * attachment files are written (temp file, fsync, rename) on the pool too.
 * The calling task yields meanwhile (task.h); if it dies first, the work
 * finishes on the pool and its results are dropped. */
#ifndef O2C_STORE_STORE_LUA_H
#define O2C_STORE_STORE_LUA_H
#include <lua.h>
#include <stdint.h>
#include <uv.h>
#include "host/config.h"
#include "store/db.h"
#include "store/retention.h"
#include "store/session.h"
#include "store/throttle.h"
#include "store/user.h"

#define STORE_LUA_HASH_QUEUE 64

/* Lua modules (registered in app/app.c). */
int luaopen_o2c_store(lua_State *L);
int luaopen_o2c_session(lua_State *L);
int luaopen_o2c_auth(lua_State *L);
int luaopen_o2c_audit(lua_State *L);

/* What the bindings take from the configuration. */
struct store_lua_config {
    struct session_config sessions;
    struct throttle_config throttle;
    struct retention_config retention;
    int64_t attachments_per_assessment;
};

/* How many argon2 jobs may run at once (cores - 1, at least 1, and one
 * thread-pool thread left for file work). */
int store_lua_hash_slots(void);
/* Argon2 jobs running / waiting now (for tests and metrics). */
void store_lua_hash_load(int *running, int *queued);
/* Derives the binding's settings from CFG (defaults when CFG is NULL). */
void store_lua_config_from(struct store_lua_config *out, const struct config *cfg);

/* Makes DB the database of the VM L (the main state) with the settings of
 * CFG (NULL: defaults).  DB stays owned by the caller and must outlive the
 * VM; DB NULL detaches. */
void store_lua_attach(lua_State *L, struct db *db, const struct config *cfg);

/* Replaces the login throttling settings of L's attachment (tests). */
void store_lua_set_throttle(lua_State *L, const struct throttle_config *throttle);

/* Runs retention with SETTINGS and records the run and its counts in the
 * audit log (action "retention.run").  Used by store.retention_run() and by
 * the serve timer. */
int store_retention_run_audited(struct db *db, const struct store_lua_config *settings,
                                struct retention_counts *counts);

/* Parses "2026-11-28", "2026-11-28T09:00:00Z", "...T09:00:00.123Z",
 * "...T09:00Z" or with a "+01:00"-style offset into Unix ms; -1 when S is
 * none of these. */
int store_lua_parse_time(const char *s, int64_t *ms);

/* MS (Unix ms) as RFC 3339 UTC with milliseconds: 2026-12-03T12:00:00.123Z. */
void store_lua_format_time(int64_t ms, char out[32]);

/* `o2c serve` and the CLI: opening the database of a configuration. */

/* Opens <cfg->data_dir>/o2c.db with cfg->db.synchronous, migrating unless
 * NO_MIGRATE.  NULL with the reason in ERR on failure. */
struct db *store_open_config(const struct config *cfg, uv_loop_t *loop, int no_migrate, char *err,
                             size_t errlen);

/* For `o2c serve`: the database, first-run admin and upkeep timers. */
struct store_serve;

/* Opens the database, creates the first admin when there is no account
 * (O2C_ADMIN_PASSWORD, or a random password printed once to stdout) and
 * starts the retention and session-cleanup timers on LOOP.  Returns NULL
 * after printing why; *EXIT_CODE gets 2 for a configuration problem (such
 * as a too short O2C_ADMIN_PASSWORD), else 1. */
struct store_serve *store_serve_open(uv_loop_t *loop, const struct config *cfg, int *exit_code);
struct db *store_serve_db(struct store_serve *s);
/* Stops and closes the timers (the loop must run once more to finish the
 * close callbacks). */
void store_serve_stop(struct store_serve *s);
/* Closes the database and frees S: after the VM is closed and the loop has
 * run its close callbacks. */
void store_serve_close(struct store_serve *s);

#endif
