/* The attachment of a database to the product VM (store_lua.h): the
 * settings the bindings take from the configuration, kept in a userdata in
 * the VM's registry. */
#include <lauxlib.h>
#include <string.h>
#include "store/store_lua_internal.h"

static const char store_lua_key = 's'; /* registry: the struct store_lua userdata */

/* Attachment */

void store_lua_config_from(struct store_lua_config *out, const struct config *cfg)
{
    memset(out, 0, sizeof *out);
    session_config_default(&out->sessions);
    throttle_config_default(&out->throttle);
    retention_config_default(&out->retention);
    out->attachments_per_assessment = 50;
    if (cfg == NULL)
        return;
    out->sessions.idle_timeout_ms = (int64_t)(cfg->sessions.idle_timeout_s * 1000);
    out->sessions.absolute_timeout_ms = (int64_t)(cfg->sessions.absolute_timeout_s * 1000);
    /* A touch interval longer than a (short, test) idle timeout would let
     * an active session expire. */
    if (out->sessions.touch_interval_ms > out->sessions.idle_timeout_ms / 4)
        out->sessions.touch_interval_ms = out->sessions.idle_timeout_ms / 4;
    out->retention.finished_job_ms = (int64_t)(cfg->retention.jobs_days * 86400000.0);
    out->retention.deleted_assessment_ms =
        (int64_t)(cfg->retention.deleted_assessments_days * 86400000.0);
    out->attachments_per_assessment = cfg->limits.attachments_per_assessment;
}

void store_lua_attach(lua_State *L, struct db *db, const struct config *cfg)
{
    if (db == NULL) {
        lua_pushnil(L);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &store_lua_key);
        return;
    }
    struct store_lua *s = lua_newuserdatauv(L, sizeof *s, 0);
    s->db = db;
    store_lua_config_from(&s->cfg, cfg);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &store_lua_key);
    store_lua_actors_init(L);
    store_lua_warm_dummy_hash();
}

void store_lua_set_throttle(lua_State *L, const struct throttle_config *throttle)
{
    struct store_lua *s = store_lua_peek(L);
    if (s)
        s->cfg.throttle = *throttle;
}

struct store_lua *store_lua_peek(lua_State *L)
{
    lua_rawgetp(L, LUA_REGISTRYINDEX, &store_lua_key);
    struct store_lua *s = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return s;
}

struct store_lua *store_lua_get(lua_State *L)
{
    struct store_lua *s = store_lua_peek(L);
    if (s == NULL)
        luaL_error(L, "o2c.store: no database is attached to this VM (store_lua_attach)");
    return s;
}
