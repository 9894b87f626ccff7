/* Helpers shared by the storage bindings (the core/store files named ..._lua.c),
 * implemented in store_lua_attach.c, store_lua_check.c, store_lua_time.c,
 * store_lua_json.c, store_lua_actor.c and pool_lua.c; rows reach Lua through
 * rowset_lua.h.
 *
 * A rule every binding follows: nothing that can raise a Lua error (JSON
 * encoding, pushing values, luaL_check*) runs between db_tx_begin and
 * db_tx_commit/db_tx_rollback, so a Lua error can never leave a
 * transaction open.  Inputs are read and encoded first, results pushed
 * after the commit. */
#ifndef O2C_STORE_STORE_LUA_INTERNAL_H
#define O2C_STORE_STORE_LUA_INTERNAL_H
#include <lua.h>
#include <stddef.h>
#include <stdint.h>
#include "store/audit.h"
#include "store/db.h"
#include "store/store_lua.h"
#include "store/user.h"
#include "store/uuid.h"

/* The attachment of a VM (a userdata in its registry). */
struct store_lua {
    struct db *db;
    struct store_lua_config cfg;
};

/* The areas of o2c.store: each ..._lua.c adds its functions to the module
 * table on top of the stack; luaopen_o2c_store (store_lua.c) calls them. */
void store_lua_user_funcs(lua_State *L);
void store_lua_report_funcs(lua_State *L);
void store_lua_attachment_funcs(lua_State *L);
void store_lua_audit_funcs(lua_State *L);
void store_lua_assessment_funcs(lua_State *L);

/* The attachment; raises when no database is attached. */
struct store_lua *store_lua_get(lua_State *L);
/* The attachment or NULL. */
struct store_lua *store_lua_peek(lua_State *L);

/* Pushes nil, db_errmsg(DB), store_rc_code(RC); returns 3. */
int store_lua_fail(lua_State *L, struct db *db, int rc);
/* Pushes nil, the formatted message, store_rc_code(RC); returns 3. */
int store_lua_failf(lua_State *L, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The tail of every read: pushes the rows of RS as SHAPE says (row 0, all
 * rows as a list, or a map by the ":key" column: rowset_lua.h) and returns
 * 1, or pushes nil, message, code when RC is not STORE_OK (returns 3). */
enum store_lua_shape { STORE_LUA_ROW, STORE_LUA_LIST, STORE_LUA_MAP };
struct rowset;
int store_lua_push_rows(lua_State *L, struct db *db, int rc, const struct rowset *rs,
                        enum store_lua_shape shape);
/* The whole of a read called (actor, assessment_id): the rows of SQL (its
 * one argument the id) if ACTOR may see the assessment
 * (store_assessment_query), pushed as SHAPE; when NONE is not NULL no row
 * is "not_found" ("no NONE stored for assessment ..."). */
int store_lua_assessment_read(lua_State *L, const char *sql, const char *what, const char *none,
                              enum store_lua_shape shape);
/* Pushes true (1 value), or nil, message, code when RC is not STORE_OK. */
int store_lua_done(lua_State *L, struct db *db, int rc);

/* Actors (see store_lua.h). */

/* Pushes U as an issued actor table {id, name, role, disabled, created_at}. */
void store_lua_push_actor(lua_State *L, const struct user *u);
/* Creates the registry's table of issued actors (store_lua_attach). */
void store_lua_actors_init(lua_State *L);
/* Pushes the system actor (job runner, retention): acts as an admin. */
void store_lua_push_system_actor(lua_State *L);
/* Reads the actor at IDX into OUT, reloading the account by the id it was
 * issued for.  Raises unless IDX holds an issued actor.  STORE_OK, or the
 * store's code (the account is gone: STORE_NOT_FOUND) with the message in
 * db_errmsg. */
int store_lua_actor(lua_State *L, int idx, struct db *db, struct user *out);
/* The two halves of store_lua_actor, for a binding whose database work
 * runs as an operation (store_lua_call.h): before, on the task, the id
 * the actor at IDX was issued for ("" for the system actor) into ID
 * (raises unless IDX holds an issued actor); then, in RUN, the account
 * reloaded by that id. */
void store_lua_actor_ref(lua_State *L, int idx, char id[UUID_STR_LEN]);
int store_actor_load(struct db *db, const char *id, struct user *out);
/* The actor at 1 (store_lua_actor) and at 2 the id of a KIND of record
 * ("assessment", "report"): STORE_OK, or STORE_NOT_FOUND with the message
 * set for an id that cannot exist. */
int store_lua_actor_and_id(lua_State *L, struct db *db, const char *kind, struct user *actor,
                           const char **id);
/* The actor at IDX when it is not nil (then 1), else 0 (OUT untouched). */
int store_lua_opt_actor(lua_State *L, int idx, struct db *db, struct user *out, int *rc);
/* The audit name of an actor: NULL for the system. */
const char *store_lua_actor_name(const struct user *u);

/* Pushes U as a plain table (not an actor). */
void store_lua_push_user(lua_State *L, const struct user *u);

/* Sets t[NAME] = ISO-8601 UTC with milliseconds ("2026-11-28T09:00:00.123Z")
 * and t[NAME.."_ms"] = ms in the table on top of the stack; nothing when MS
 * is 0 (not yet). */
void store_lua_set_time(lua_State *L, const char *name, int64_t ms);

/* JSON through core/lua/json.lua (lua-cjson underneath). */

/* Pushes the JSON text of the value at IDX; raises with WHAT in the message
 * when it cannot be encoded. */
const char *store_lua_encode(lua_State *L, int idx, const char *what, size_t *len);
/* Pushes the value of TEXT; numbers that are whole become integers.  Raises
 * on invalid JSON (the store holds only what it encoded). */
void store_lua_decode(lua_State *L, const char *text, size_t len);
/* Marks the table at IDX as a JSON list (encodes as [] when empty). */
void store_lua_mark_array(lua_State *L, int idx);

/* Audit: appends one event; DETAILS is JSON text or NULL. */
int store_lua_audit(struct db *db, const struct user *actor, const char *action, const char *target,
                    const char *address, const char *details);
/* Ends the transaction of a change whose result is RC: when STORE_OK, the
 * change's audit event is appended first (store_lua_audit), then
 * db_tx_end.  So each change and its event are one commit. */
int store_lua_audit_end(struct db *db, int rc, const struct user *actor, const char *action,
                        const char *target, const char *address, const char *details);

/* Thread-pool work for a task.
 *
 * store_lua_work() runs WORK(data) on the libuv pool while the calling task
 * waits, then PUSH(co, data) in the task (on the loop: database calls are
 * fine there) pushes its results; RELEASE(data) frees DATA in every case,
 * also when the task dies first (after WORK finished, if it had started).
 * LIMITED work (argon2) runs at most store_lua_hash_slots() at once, with
 * up to STORE_LUA_HASH_QUEUE waiting; beyond that nil, message, "busy" is
 * returned at once.  Use as `return store_lua_work(L, ...)`. */
typedef void (*store_work_fn)(void *data);
typedef int (*store_work_push_fn)(lua_State *co, void *data);
typedef void (*store_work_release_fn)(void *data);
int store_lua_work(lua_State *L, int limited, store_work_fn work, store_work_push_fn push,
                   store_work_release_fn release, void *data);
/* 1 when LIMITED work submitted now would be refused as "busy". */
int store_lua_hash_full(void);
/* Starts making the dummy hash on the pool, once per process, so the first
 * login for an unknown name takes no longer than any other. */
void store_lua_warm_dummy_hash(void);

/* Field readers for option tables (raise on a wrong type, and on a string
 * holding a NUL byte: the C layers below would cut it there silently). */
const char *store_lua_field_string(lua_State *L, int idx, const char *key, int required,
                                   size_t *len);
/* luaL_checkstring / luaL_optstring(.., NULL) that raise on a NUL byte. */
const char *store_lua_check_text(lua_State *L, int idx);
const char *store_lua_opt_text(lua_State *L, int idx);
int64_t store_lua_field_int(lua_State *L, int idx, const char *key, int64_t dflt);

#endif
