#include <ctype.h>
#include <errno.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "host/branding.h"
#include "host/cidr.h"
#include "host/config.h"
#include "host/install_dirs.h"
#include "host/log.h"
#include "host/modules.h"
#include "host/sandbox.h"

#define CONFIG_FILE_MAX (1024 * 1024)
#define DEFAULT_CONFIG_FILE "config/o2c.conf.lua"

enum config_kind {
    CK_STRING,       /* char[size] */
    CK_CHOICE,       /* char[size], one of choices */
    CK_LISTEN,       /* char[size], "host:port" */
    CK_NUMBER_POS,   /* double > 0 */
    CK_NUMBER_NNEG,  /* double >= 0 */
    CK_INT_POS,      /* long long > 0 */
    CK_INT_NNEG,     /* long long >= 0 */
    CK_BOOL,         /* int */
    CK_CIDR_LIST,    /* char[size], "10.0.0.0/8, ::1"; parsed into cfg->proxies */
    CK_DATABASE_URL, /* char[size], "" or "postgresql://..."; never echoed (a password) */
    CK_COLOUR,       /* char[8], "#rrggbb" */
};

struct config_key {
    const char *name; /* dotted path in the config table */
    enum config_kind kind;
    size_t offset;
    size_t size; /* for strings */
    const char *env;
    const char *choices; /* for CK_CHOICE: "a|b|c" */
};

#define STR(field) offsetof(struct config, field), sizeof(((struct config *)0)->field)
#define NUM(field) offsetof(struct config, field), 0

static const struct config_key config_schema[] = {
    {"listen", CK_LISTEN, STR(listen), "O2C_LISTEN", NULL},
    {"data_dir", CK_STRING, STR(data_dir), "O2C_DATA_DIR", NULL},
    {"scripts_dir", CK_STRING, STR(scripts_dir), "O2C_SCRIPTS_DIR", NULL},
    {"kb_dir", CK_STRING, STR(kb_dir), "O2C_KB_DIR", NULL},
    {"trusted_proxies", CK_CIDR_LIST, STR(trusted_proxies), "O2C_TRUSTED_PROXIES", NULL},
    {"log_level", CK_CHOICE, STR(log_level), "O2C_LOG_LEVEL", "debug|info|warn|error"},
    {"llm.provider", CK_CHOICE, STR(llm.provider), "O2C_LLM_PROVIDER",
     "auto|anthropic|openai|offline"},
    {"llm.model", CK_STRING, STR(llm.model), "O2C_LLM_MODEL", NULL},
    {"llm.anthropic_base_url", CK_STRING, STR(llm.anthropic_base_url), "O2C_ANTHROPIC_BASE_URL",
     NULL},
    {"llm.openai_base_url", CK_STRING, STR(llm.openai_base_url), "O2C_OPENAI_BASE_URL", NULL},
    {"llm.proxy", CK_STRING, STR(llm.proxy), NULL, NULL},
    {"llm.rpm", CK_NUMBER_POS, NUM(llm.rpm), "O2C_LLM_RPM", NULL},
    {"llm.itpm", CK_NUMBER_POS, NUM(llm.itpm), "O2C_LLM_ITPM", NULL},
    {"llm.otpm", CK_NUMBER_POS, NUM(llm.otpm), "O2C_LLM_OTPM", NULL},
    {"llm.learn_limits", CK_BOOL, NUM(llm.learn_limits), NULL, NULL},
    {"llm.concurrency", CK_INT_POS, NUM(llm.concurrency), "O2C_LLM_CONCURRENCY", NULL},
    {"llm.max_retries", CK_INT_NNEG, NUM(llm.max_retries), "O2C_LLM_MAX_RETRIES", NULL},
    {"llm.timeout_s", CK_NUMBER_POS, NUM(llm.timeout_s), NULL, NULL},
    {"llm.section_deadline_s", CK_NUMBER_POS, NUM(llm.section_deadline_s), NULL, NULL},
    {"llm.report_jobs", CK_INT_POS, NUM(llm.report_jobs), NULL, NULL},
    {"llm.window_s", CK_NUMBER_POS, NUM(llm.window_s), "O2C_LLM_WINDOW_S", NULL},
    {"limits.header_bytes", CK_INT_POS, NUM(limits.header_bytes), NULL, NULL},
    {"limits.json_body_bytes", CK_INT_POS, NUM(limits.json_body_bytes), NULL, NULL},
    {"limits.upload_bytes", CK_INT_POS, NUM(limits.upload_bytes), NULL, NULL},
    {"limits.attachments_per_assessment", CK_INT_POS, NUM(limits.attachments_per_assessment), NULL,
     NULL},
    {"limits.max_connections", CK_INT_POS, NUM(limits.max_connections), NULL, NULL},
    {"limits.connections_per_address", CK_INT_NNEG, NUM(limits.connections_per_address), NULL,
     NULL},
    {"limits.header_timeout_s", CK_NUMBER_POS, NUM(limits.header_timeout_s), NULL, NULL},
    {"limits.body_timeout_s", CK_NUMBER_POS, NUM(limits.body_timeout_s), NULL, NULL},
    {"limits.keepalive_s", CK_NUMBER_POS, NUM(limits.keepalive_s), NULL, NULL},
    {"limits.shutdown_grace_s", CK_NUMBER_NNEG, NUM(limits.shutdown_grace_s), NULL, NULL},
    {"limits.script_memory_mb", CK_INT_POS, NUM(limits.script_memory_mb), NULL, NULL},
    {"limits.script_instructions", CK_INT_POS, NUM(limits.script_instructions), NULL, NULL},
    {"limits.script_time_s", CK_NUMBER_POS, NUM(limits.script_time_s), NULL, NULL},
    {"limits.lua_memory_mb", CK_INT_POS, NUM(limits.lua_memory_mb), NULL, NULL},
    {"sessions.idle_timeout_s", CK_NUMBER_POS, NUM(sessions.idle_timeout_s), NULL, NULL},
    {"sessions.absolute_timeout_s", CK_NUMBER_POS, NUM(sessions.absolute_timeout_s), NULL, NULL},
    {"sessions.cookie_secure", CK_BOOL, NUM(sessions.cookie_secure), NULL, NULL},
    {"retention.interval_s", CK_NUMBER_POS, NUM(retention.interval_s), NULL, NULL},
    {"retention.jobs_days", CK_NUMBER_POS, NUM(retention.jobs_days), NULL, NULL},
    {"retention.deleted_assessments_days", CK_NUMBER_POS, NUM(retention.deleted_assessments_days),
     NULL, NULL},
    {"db.synchronous", CK_CHOICE, STR(db.synchronous), NULL, "normal|full"},
    {"database.url", CK_DATABASE_URL, STR(db.url), "O2C_DATABASE_URL", NULL},
    {"database.pool_size", CK_INT_POS, NUM(db.pool_size), "O2C_DATABASE_POOL_SIZE", NULL},
    {"branding.firm", CK_STRING, STR(branding.firm), NULL, NULL},
    {"branding.logo", CK_STRING, STR(branding.logo), NULL, NULL},
    {"branding.colour", CK_COLOUR, STR(branding.colour), NULL, NULL},
    {"branding.footer", CK_STRING, STR(branding.footer), NULL, NULL},
    {"branding.disclaimer", CK_STRING, STR(branding.disclaimer), NULL, NULL},
    {"backup.dir", CK_STRING, STR(backup.dir), NULL, NULL},
    {"backup.every", CK_NUMBER_POS, NUM(backup.every), NULL, NULL},
    {"backup.keep", CK_INT_POS, NUM(backup.keep), NULL, NULL},
    {NULL, 0, 0, 0, NULL, NULL},
};

static const struct config *config_global;

void config_defaults(struct config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->listen, sizeof cfg->listen, "127.0.0.1:8080");
    snprintf(cfg->data_dir, sizeof cfg->data_dir, "var");
    snprintf(cfg->scripts_dir, sizeof cfg->scripts_dir, "scripts");
    snprintf(cfg->kb_dir, sizeof cfg->kb_dir, "kb");
    snprintf(cfg->log_level, sizeof cfg->log_level, "info");
    snprintf(cfg->branding.colour, sizeof cfg->branding.colour, "#1d4ed8");
    snprintf(cfg->llm.provider, sizeof cfg->llm.provider, "auto");
    snprintf(cfg->llm.model, sizeof cfg->llm.model, "claude-sonnet-4-5");
    snprintf(cfg->llm.anthropic_base_url, sizeof cfg->llm.anthropic_base_url,
             "https://api.anthropic.com");
    snprintf(cfg->llm.openai_base_url, sizeof cfg->llm.openai_base_url, "http://127.0.0.1:8081");
    cfg->llm.rpm = 50;
    cfg->llm.itpm = 30000;
    cfg->llm.otpm = 8000;
    cfg->llm.concurrency = 4;
    cfg->llm.max_retries = 4;
    cfg->llm.timeout_s = 120;
    cfg->llm.section_deadline_s = 600;
    cfg->llm.report_jobs = 32;
    cfg->llm.window_s = 60;
    cfg->limits.header_bytes = 16 * 1024;
    cfg->limits.json_body_bytes = 1024 * 1024;
    cfg->limits.upload_bytes = 10 * 1024 * 1024;
    cfg->limits.attachments_per_assessment = 50;
    cfg->limits.max_connections = 2048;
    cfg->limits.header_timeout_s = 10;
    cfg->limits.body_timeout_s = 30;
    cfg->limits.keepalive_s = 60;
    cfg->limits.shutdown_grace_s = 10;
    cfg->limits.script_memory_mb = 64;
    cfg->limits.script_instructions = 50000000;
    cfg->limits.script_time_s = 2;
    cfg->limits.lua_memory_mb = 1024;
    cfg->sessions.idle_timeout_s = 8 * 3600;
    cfg->sessions.absolute_timeout_s = 7 * 24 * 3600;
    cfg->retention.interval_s = 3600;
    cfg->retention.jobs_days = 30;
    cfg->retention.deleted_assessments_days = 30;
    snprintf(cfg->db.synchronous, sizeof cfg->db.synchronous, "normal");
    cfg->db.pool_size = 4;
    cfg->backup.every = 24 * 3600;
    cfg->backup.keep = 7;
}

static const struct config_key *config_find(const char *name)
{
    for (const struct config_key *k = config_schema; k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

/* Whether some key lives under PREFIX ("llm" -> "llm.rpm"). */
static int config_is_section(const char *prefix)
{
    size_t n = strlen(prefix);
    for (const struct config_key *k = config_schema; k->name; k++)
        if (strncmp(k->name, prefix, n) == 0 && k->name[n] == '.')
            return 1;
    return 0;
}

static const char *config_expected(const struct config_key *k, char *buf, size_t cap)
{
    switch (k->kind) {
    case CK_STRING:
        return "expected a string";
    case CK_CHOICE:
        snprintf(buf, cap, "expected one of %s", k->choices);
        return buf;
    case CK_LISTEN:
        return "expected \"host:port\" with a port from 1 to 65535";
    case CK_NUMBER_POS:
        return "expected a positive number";
    case CK_NUMBER_NNEG:
        return "expected a number >= 0";
    case CK_INT_POS:
        return "expected a positive whole number";
    case CK_INT_NNEG:
        return "expected a whole number >= 0";
    case CK_BOOL:
        return "expected true or false";
    case CK_CIDR_LIST:
        return "expected IP addresses or ranges like \"127.0.0.1/32, 10.0.0.0/8, ::1/128\"";
    case CK_COLOUR:
        return "expected a colour \"#rrggbb\" such as \"#1d4ed8\"";
    case CK_DATABASE_URL:
        return "expected a PostgreSQL URL \"postgresql://user@host:port/db\" (or \"\" for "
               "SQLite in data_dir)";
    }
    return "expected something else";
}

static int config_fail(char err[CONFIG_ERROR_MAX], const char *origin, const struct config_key *k,
                       const char *got)
{
    char buf[128];
    snprintf(err, CONFIG_ERROR_MAX, "%s: %s: %s, got %s", origin, k->name,
             config_expected(k, buf, sizeof buf), got);
    return -1;
}

static int choice_ok(const char *choices, const char *value)
{
    size_t n = strlen(value);
    for (const char *p = choices; *p;) {
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, value, n) == 0)
            return 1;
        p += len + (bar ? 1 : 0);
    }
    return 0;
}

static int listen_ok(const char *value)
{
    const char *colon = strrchr(value, ':');
    if (!colon || colon == value)
        return 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    return *end == '\0' && colon[1] != '\0' && port >= 1 && port <= 65535;
}

static int colour_ok(const char *value)
{
    if (strlen(value) != 7 || value[0] != '#')
        return 0;
    for (int i = 1; i < 7; i++)
        if (!isxdigit((unsigned char)value[i]))
            return 0;
    return 1;
}

/* "" (SQLite) or a libpq URL; libpq checks the rest when it connects. */
static int database_url_ok(const char *value)
{
    return value[0] == '\0' || strncmp(value, "postgresql://", 13) == 0 ||
           strncmp(value, "postgres://", 11) == 0;
}

/* Parses the trusted_proxies list VALUE into CFG; names the bad entry. */
static int config_store_proxies(struct config *cfg, const struct config_key *k, const char *value,
                                const char *origin, char err[CONFIG_ERROR_MAX])
{
    char bad[128], got[320];
    if (cidr_list_parse(value, cfg->proxies, CIDR_LIST_MAX, &cfg->proxy_count, bad, sizeof bad) ==
        0)
        return 0;
    snprintf(got, sizeof got, "\"%.120s\" in \"%.160s\"", bad, value);
    cfg->proxy_count = 0;
    return config_fail(err, origin, k, got);
}

/* Stores string VALUE for a string-like key after checking it. */
static int config_store_string(struct config *cfg, const struct config_key *k, const char *value,
                               const char *got, const char *origin, char err[CONFIG_ERROR_MAX])
{
    /* "" means none for these */
    int empty_ok = strcmp(k->name, "llm.proxy") == 0 || strcmp(k->name, "backup.dir") == 0 ||
                   k->kind == CK_CIDR_LIST || k->kind == CK_DATABASE_URL ||
                   (strncmp(k->name, "branding.", 9) == 0 && k->kind == CK_STRING);
    if (k->kind == CK_DATABASE_URL)
        got = "a value that is not one (not shown: it may hold a password)";
    if ((value[0] == '\0' && !empty_ok) || strlen(value) >= k->size ||
        (k->kind == CK_DATABASE_URL && !database_url_ok(value)) ||
        (k->kind == CK_CHOICE && !choice_ok(k->choices, value)) ||
        (k->kind == CK_LISTEN && !listen_ok(value)) || (k->kind == CK_COLOUR && !colour_ok(value)))
        return config_fail(err, origin, k, got);
    if (k->kind == CK_CIDR_LIST && config_store_proxies(cfg, k, value, origin, err) != 0)
        return -1;
    memcpy((char *)cfg + k->offset, value, strlen(value) + 1);
    return 0;
}

static int config_store_number(struct config *cfg, const struct config_key *k, double v,
                               const char *got, const char *origin, char err[CONFIG_ERROR_MAX])
{
    int integral = v == floor(v) && fabs(v) < 9e15;
    int bad = !isfinite(v) || ((k->kind == CK_NUMBER_POS || k->kind == CK_INT_POS) && v <= 0) ||
              v < 0 || ((k->kind == CK_INT_POS || k->kind == CK_INT_NNEG) && !integral);
    if (bad)
        return config_fail(err, origin, k, got);
    if (k->kind == CK_INT_POS || k->kind == CK_INT_NNEG)
        *(long long *)((char *)cfg + k->offset) = (long long)v;
    else
        *(double *)((char *)cfg + k->offset) = v;
    return 0;
}

static int is_string_kind(enum config_kind kind)
{
    return kind == CK_STRING || kind == CK_CHOICE || kind == CK_LISTEN || kind == CK_CIDR_LIST ||
           kind == CK_DATABASE_URL || kind == CK_COLOUR;
}

int config_set_string(struct config *cfg, const char *key, const char *value, const char *origin,
                      char err[CONFIG_ERROR_MAX])
{
    const struct config_key *k = config_find(key);
    if (!k) {
        snprintf(err, CONFIG_ERROR_MAX, "%s: unknown configuration key %s", origin, key);
        return -1;
    }
    char got[160];
    snprintf(got, sizeof got, "\"%.140s\"", value);
    if (is_string_kind(k->kind))
        return config_store_string(cfg, k, value, got, origin, err);
    if (k->kind == CK_BOOL) {
        int b = strcmp(value, "true") == 0 || strcmp(value, "1") == 0;
        if (!b && strcmp(value, "false") != 0 && strcmp(value, "0") != 0)
            return config_fail(err, origin, k, got);
        *(int *)((char *)cfg + k->offset) = b;
        return 0;
    }
    char *end;
    errno = 0;
    double v = strtod(value, &end);
    if (value[0] == '\0' || *end != '\0' || errno)
        return config_fail(err, origin, k, got);
    return config_store_number(cfg, k, v, got, origin, err);
}

/* Describes the Lua value at IDX for an error message: "fast" quoted, 3, a table. */
static void describe_value(lua_State *L, int idx, char *buf, size_t cap)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        snprintf(buf, cap, "\"%.140s\"", lua_tostring(L, idx));
        break;
    case LUA_TNUMBER:
        snprintf(buf, cap, "%.14g", lua_tonumber(L, idx));
        break;
    case LUA_TBOOLEAN:
        snprintf(buf, cap, "%s", lua_toboolean(L, idx) ? "true" : "false");
        break;
    default:
        snprintf(buf, cap, "a %s", luaL_typename(L, idx));
    }
}

/* A list key given as a table of strings: joined with commas, then parsed. */
static int config_store_list(struct config *cfg, const struct config_key *k, lua_State *L, int idx,
                             const char *got, const char *origin, char err[CONFIG_ERROR_MAX])
{
    char joined[sizeof cfg->trusted_proxies] = "";
    size_t used = 0;
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        const char *entry = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        int wrote =
            entry ? snprintf(joined + used, sizeof joined - used, "%s%s", i > 1 ? ", " : "", entry)
                  : -1;
        lua_pop(L, 1);
        if (wrote < 0 || (size_t)wrote >= sizeof joined - used)
            return config_fail(err, origin, k, got);
        used += (size_t)wrote;
    }
    return config_store_string(cfg, k, joined, got, origin, err);
}

static int config_set_value(struct config *cfg, const struct config_key *k, lua_State *L, int idx,
                            const char *origin, char err[CONFIG_ERROR_MAX])
{
    char got[160];
    describe_value(L, idx, got, sizeof got);
    int type = lua_type(L, idx);
    if (k->kind == CK_CIDR_LIST && type == LUA_TTABLE)
        return config_store_list(cfg, k, L, idx, got, origin, err);
    if (is_string_kind(k->kind)) {
        if (type != LUA_TSTRING)
            return config_fail(err, origin, k, got);
        return config_store_string(cfg, k, lua_tostring(L, idx), got, origin, err);
    }
    if (k->kind == CK_BOOL) {
        if (type != LUA_TBOOLEAN)
            return config_fail(err, origin, k, got);
        *(int *)((char *)cfg + k->offset) = lua_toboolean(L, idx);
        return 0;
    }
    if (type != LUA_TNUMBER)
        return config_fail(err, origin, k, got);
    return config_store_number(cfg, k, lua_tonumber(L, idx), got, origin, err);
}

/* Walks the table at IDX whose keys are under PREFIX ("" at the top). */
static int config_walk(struct config *cfg, lua_State *L, int idx, const char *prefix,
                       const char *origin, char err[CONFIG_ERROR_MAX])
{
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            snprintf(err, CONFIG_ERROR_MAX, "%s: %s%skeys must be names, not %s", origin, prefix,
                     *prefix ? ": " : "", luaL_typename(L, -2));
            return -1;
        }
        char name[128];
        snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "." : "", lua_tostring(L, -2));
        const struct config_key *k = config_find(name);
        int rc;
        if (k)
            rc = config_set_value(cfg, k, L, lua_gettop(L), origin, err);
        else if (config_is_section(name) && lua_istable(L, -1))
            rc = config_walk(cfg, L, lua_gettop(L), name, origin, err);
        else if (config_is_section(name))
            rc = (snprintf(err, CONFIG_ERROR_MAX, "%s: %s: expected a table of settings, got %s",
                           origin, name, luaL_typename(L, -1)),
                  -1);
        else
            rc = (snprintf(err, CONFIG_ERROR_MAX,
                           "%s: %s: unknown key (check its spelling; API keys belong in the "
                           "environment, not in this file)",
                           origin, name),
                  -1);
        if (rc != 0)
            return -1;
        lua_pop(L, 1);
    }
    return 0;
}

static char *read_file(const char *path, size_t *len, char err[CONFIG_ERROR_MAX])
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, CONFIG_ERROR_MAX, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(CONFIG_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, CONFIG_FILE_MAX + 1, f) : 0;
    fclose(f);
    if (!buf || n > CONFIG_FILE_MAX) {
        snprintf(err, CONFIG_ERROR_MAX, "%s: larger than 1 MiB or out of memory", path);
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int config_read_file(struct config *cfg, const char *path, char err[CONFIG_ERROR_MAX])
{
    size_t len;
    char *text = read_file(path, &len, err);
    if (!text)
        return -1;
    struct sandbox_limits limits = {16u << 20, 1000000, 1000};
    struct sandbox *sb = sandbox_new(&limits);
    int rc = -1;
    if (!sb) {
        snprintf(err, CONFIG_ERROR_MAX, "%s: out of memory", path);
    } else if (sandbox_load(sb, text, len, path) != LUA_OK || sandbox_pcall(sb, 0, 1) != LUA_OK) {
        snprintf(err, CONFIG_ERROR_MAX, "%s", lua_tostring(sandbox_state(sb), -1));
    } else if (!lua_istable(sandbox_state(sb), -1)) {
        snprintf(err, CONFIG_ERROR_MAX, "%s: must return a table of settings, got %s", path,
                 luaL_typename(sandbox_state(sb), -1));
    } else {
        rc = config_walk(cfg, sandbox_state(sb), 1, "", path, err);
    }
    sandbox_free(sb);
    free(text);
    if (rc == 0)
        snprintf(cfg->source, sizeof cfg->source, "%s", path);
    return rc;
}

static int config_read_env(struct config *cfg, char err[CONFIG_ERROR_MAX])
{
    for (const struct config_key *k = config_schema; k->name; k++) {
        const char *v = k->env ? getenv(k->env) : NULL;
        if (v && *v && config_set_string(cfg, k->name, v, k->env, err) != 0)
            return -1;
    }
    cfg->anthropic_api_key = getenv("ANTHROPIC_API_KEY");
    cfg->openai_api_key = getenv("O2C_OPENAI_API_KEY");
    if (cfg->anthropic_api_key && !*cfg->anthropic_api_key)
        cfg->anthropic_api_key = NULL;
    if (cfg->openai_api_key && !*cfg->openai_api_key)
        cfg->openai_api_key = NULL;
    return 0;
}

/* The three folders whose default depends on where o2c runs from.  "" is
 * never a valid value for them, so it marks "not chosen" during a load. */
struct config_dir_default {
    size_t offset;
    const char *build_tree; /* relative to the working directory */
    const char *installed;  /* below install_share_dir(), or NULL: install_data_dir() */
};
static const struct config_dir_default config_dir_defaults[] = {
    {offsetof(struct config, data_dir), "var", NULL},
    {offsetof(struct config, scripts_dir), "scripts", "scripts"},
    {offsetof(struct config, kb_dir), "kb", "kb"},
};
#define CONFIG_DIR_DEFAULTS (sizeof config_dir_defaults / sizeof config_dir_defaults[0])

/* Clears each folder still at its build-tree default; returns which. */
static unsigned config_unset_dirs(struct config *cfg)
{
    unsigned unset = 0;
    for (size_t i = 0; i < CONFIG_DIR_DEFAULTS; i++) {
        char *value = (char *)cfg + config_dir_defaults[i].offset;
        if (strcmp(value, config_dir_defaults[i].build_tree) == 0) {
            value[0] = '\0';
            unset |= 1u << i;
        }
    }
    return unset;
}

/* A folder no file or variable chose: the build-tree default when it
 * exists here or o2c is not installed, else the installed one. */
static void config_fill_dirs(struct config *cfg, unsigned unset)
{
    const char *share = install_share_dir();
    for (size_t i = 0; i < CONFIG_DIR_DEFAULTS; i++) {
        const struct config_dir_default *d = &config_dir_defaults[i];
        char *value = (char *)cfg + d->offset;
        if (!(unset & (1u << i)) || value[0])
            continue;
        if (share && !d->installed)
            snprintf(value, CONFIG_PATH_MAX, "%s", install_data_dir());
        else if (share && access(d->build_tree, F_OK) != 0)
            snprintf(value, CONFIG_PATH_MAX, "%s/%s", share, d->installed);
        else
            snprintf(value, CONFIG_PATH_MAX, "%s", d->build_tree);
    }
}

/* --config F, else $O2C_CONFIG, else ./config/o2c.conf.lua, else the
 * installed one; NULL when there is none (defaults only). */
static const char *config_file_to_read(const char *path)
{
    if (!path || !*path)
        path = getenv("O2C_CONFIG");
    if (path && *path)
        return path;
    if (access(DEFAULT_CONFIG_FILE, R_OK) == 0)
        return DEFAULT_CONFIG_FILE;
    return install_config_file();
}

static int config_read_sources(struct config *cfg, const char *path, char err[CONFIG_ERROR_MAX])
{
    path = config_file_to_read(path);
    if (path && config_read_file(cfg, path, err) != 0)
        return -1;
    return config_read_env(cfg, err);
}

int config_load(struct config *cfg, const char *path, char err[CONFIG_ERROR_MAX])
{
    unsigned unset = config_unset_dirs(cfg);
    int rc = config_read_sources(cfg, path, err);
    config_fill_dirs(cfg, unset);
    if (rc != 0)
        return -1;
    if (cfg->sessions.idle_timeout_s > cfg->sessions.absolute_timeout_s) {
        snprintf(err, CONFIG_ERROR_MAX,
                 "%.400s: sessions.idle_timeout_s: must not exceed sessions.absolute_timeout_s",
                 *cfg->source ? cfg->source : "configuration");
        return -1;
    }
    /* The logo is read now, so a bad file stops start-up, not an export. */
    char why[CONFIG_ERROR_MAX - 420];
    if (branding_logo_load(cfg->branding.logo, why, sizeof why) != 0) {
        snprintf(err, CONFIG_ERROR_MAX, "%.400s: %s", *cfg->source ? cfg->source : "configuration",
                 why);
        return -1;
    }
    return 0;
}

int config_listen_address(const struct config *cfg, char *host, size_t cap, int *port)
{
    const char *colon = strrchr(cfg->listen, ':');
    if (!colon || (size_t)(colon - cfg->listen) >= cap)
        return -1;
    size_t n = (size_t)(colon - cfg->listen);
    const char *start = cfg->listen;
    if (n >= 2 && start[0] == '[' && start[n - 1] == ']') { /* [::1]:8080 */
        start++;
        n -= 2;
    }
    memcpy(host, start, n);
    host[n] = '\0';
    *port = atoi(colon + 1);
    return 0;
}

/* Pushes the key's value; leaves the containing tables to the caller. */
static void config_push_value(lua_State *L, const struct config *cfg, const struct config_key *k)
{
    const char *base = (const char *)cfg + k->offset;
    if (k->kind == CK_DATABASE_URL) /* the URL may hold a password: only the engine */
        lua_pushstring(L, base[0] ? "postgresql" : "");
    else if (is_string_kind(k->kind))
        lua_pushstring(L, base);
    else if (k->kind == CK_BOOL)
        lua_pushboolean(L, *(const int *)base);
    else if (k->kind == CK_INT_POS || k->kind == CK_INT_NNEG)
        lua_pushinteger(L, (lua_Integer) * (const long long *)base);
    else
        lua_pushnumber(L, *(const double *)base);
}

void config_push(lua_State *L, const struct config *cfg)
{
    lua_newtable(L);
    for (const struct config_key *k = config_schema; k->name; k++) {
        const char *dot = strchr(k->name, '.');
        if (!dot) {
            config_push_value(L, cfg, k);
            lua_setfield(L, -2, k->name);
            continue;
        }
        lua_pushlstring(L, k->name, (size_t)(dot - k->name));
        lua_pushvalue(L, -1);
        if (lua_rawget(L, -3) != LUA_TTABLE) {
            lua_pop(L, 1);
            lua_newtable(L);
            lua_pushvalue(L, -2);
            lua_pushvalue(L, -2);
            lua_rawset(L, -5);
        }
        config_push_value(L, cfg, k);
        lua_setfield(L, -2, dot + 1);
        lua_pop(L, 2);
    }
    lua_getfield(L, -1, "llm");
    lua_pushboolean(L, cfg->anthropic_api_key != NULL);
    lua_setfield(L, -2, "anthropic_key_set");
    lua_pushboolean(L, cfg->openai_api_key != NULL);
    lua_setfield(L, -2, "openai_key_set");
    lua_pop(L, 1);
    lua_pushstring(L, cfg->source);
    lua_setfield(L, -2, "source");
}

const struct config *config_current(void)
{
    return config_global;
}

void config_set_current(const struct config *cfg)
{
    config_global = cfg;
}

int luaopen_o2c_config(lua_State *L)
{
    const struct config *cfg = config_current();
    struct config defaults;
    if (!cfg) {
        config_defaults(&defaults);
        cfg = &defaults;
    }
    config_push(L, cfg);
    return 1;
}
