/* Configuration: embedded defaults, then the config file (a Lua file run in a
 * sandbox that returns a table), then environment variables, then command
 * line flags.  Every key is declared once in config.c's schema, which
 * drives validation, environment overrides and the copy handed to Lua.
 * Secrets (API keys) come only from the environment and are never logged. */
#ifndef O2C_HOST_CONFIG_H
#define O2C_HOST_CONFIG_H
#include <limits.h>
#include <lua.h>
#include <stddef.h>
#include "host/cidr.h"

#define CONFIG_PATH_MAX 1024
#define CONFIG_ERROR_MAX 512

struct config {
    char listen[128]; /* "host:port" */
    char data_dir[CONFIG_PATH_MAX];
    char scripts_dir[CONFIG_PATH_MAX];
    char kb_dir[CONFIG_PATH_MAX];
    char log_level[8];
    /* Reverse proxies whose X-Forwarded-For/-Proto are believed: "" none. */
    char trusted_proxies[1024];
    struct cidr proxies[CIDR_LIST_MAX]; /* trusted_proxies, parsed */
    size_t proxy_count;
    struct {
        char provider[16]; /* auto | anthropic | openai | offline */
        char model[128];
        char anthropic_base_url[512];
        char openai_base_url[512];
        char proxy[512];
        double rpm, itpm, otpm;
        int learn_limits; /* ignore rpm/itpm/otpm; learn them from response headers */
        long long concurrency;
        long long max_retries;
        double timeout_s;
        double section_deadline_s;
        long long report_jobs; /* reports being written at once; others wait their turn */
        /* The period the rpm/itpm/otpm budgets are per: 60 (the providers'
         * minute); tests against the mock provider shorten both sides. */
        double window_s;
    } llm;
    struct {
        long long header_bytes;
        long long json_body_bytes;
        long long upload_bytes;
        long long attachments_per_assessment;
        long long max_connections;
        long long connections_per_address; /* 0: a quarter of max_connections */
        double header_timeout_s, body_timeout_s, keepalive_s;
        double shutdown_grace_s;
        long long script_memory_mb;
        long long script_instructions;
        double script_time_s;
        long long lua_memory_mb;
    } limits;
    struct {
        double idle_timeout_s, absolute_timeout_s;
        int cookie_secure;
    } sessions;
    struct {
        double interval_s;
        double jobs_days, deleted_assessments_days;
    } retention;
    struct {
        char synchronous[8]; /* normal | full */
        /* "postgresql://...": PostgreSQL (libpq's URL); "": SQLite in data_dir.
         * May hold a password: never logged. */
        char url[CONFIG_PATH_MAX];
        long long pool_size; /* PostgreSQL connections per instance */
    } db;
    /* The firm's look on client deliverables (HTML, PDF, Word); "" = none. */
    struct {
        char firm[128];
        char logo[CONFIG_PATH_MAX]; /* a PNG or SVG file, read at start-up (branding.h) */
        char colour[8];             /* "#rrggbb": headings' rule, links, the cover */
        char footer[256];
        char disclaimer[2048];
    } branding;
    struct {
        char dir[CONFIG_PATH_MAX]; /* "": no scheduled backups */
        double every;              /* seconds between two backups */
        long long keep;            /* backups kept in dir; older ones are removed */
    } backup;

    /* From the environment only; never logged, never sent to Lua as data. */
    const char *anthropic_api_key;
    const char *openai_api_key;
    /* The file that was read, or "" when only defaults were used. */
    char source[CONFIG_PATH_MAX];
};

void config_defaults(struct config *cfg);

/* Reads PATH (if non-NULL) over the defaults, then the environment.  When
 * PATH is NULL, $O2C_CONFIG, else config/o2c.conf.lua if it exists, else an
 * installed o2c's etc/o2c/o2c.conf.lua.  data_dir, scripts_dir and kb_dir
 * that nothing set take an installed o2c's defaults (host/install_dirs.h).
 * Returns 0, or -1 with ERR holding "file: key: what was expected, got X". */
int config_load(struct config *cfg, const char *path, char err[CONFIG_ERROR_MAX]);

/* Sets one key by its dotted name from a string, as an environment variable
 * or flag would ("listen", "127.0.0.1:9000").  ORIGIN prefixes errors. */
int config_set_string(struct config *cfg, const char *key, const char *value, const char *origin,
                      char err[CONFIG_ERROR_MAX]);

/* Splits cfg->listen into HOST (of size CAP) and PORT. */
int config_listen_address(const struct config *cfg, char *host, size_t cap, int *port);

/* Pushes the configuration as a nested Lua table (no secrets; instead
 * llm.anthropic_key_set / llm.openai_key_set booleans). */
void config_push(lua_State *L, const struct config *cfg);

/* The one configuration of this process (set by main, read by modules). */
const struct config *config_current(void);
void config_set_current(const struct config *cfg);

#endif
