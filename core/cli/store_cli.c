/* The options, database opening and auditing that o2c user, db and audit
 * share (store_cli.h). */
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>
#include <unistd.h>
#include "cli/cli.h"
#include "host/log.h"
#include "store/audit.h"
#include "store/db.h"
#include "store/store_lua.h"
#include "cli/store_cli.h"

/* Parses ARGV (argv[0] is the command) accepting the long options named in
 * ALLOWED; positionals may come before or after options. */
int store_cli_parse(const char *command, int argc, char **argv, const char *allowed,
                    struct store_opts *o)
{
    static const struct option longopts[] = {{"config", required_argument, 0, OPT_CONFIG},
                                             {"data", required_argument, 0, OPT_DATA},
                                             {"role", required_argument, 0, OPT_ROLE},
                                             {"password-stdin", no_argument, 0, OPT_STDIN},
                                             {"json", no_argument, 0, OPT_JSON},
                                             {"since", required_argument, 0, OPT_SINCE},
                                             {"user", required_argument, 0, OPT_USER},
                                             {"force", no_argument, 0, OPT_FORCE},
                                             {"reassign-to", required_argument, 0, OPT_REASSIGN},
                                             {"to", required_argument, 0, OPT_TO},
                                             {"from", required_argument, 0, OPT_FROM},
                                             {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    opterr = 0;
    optind = 1;
    int c, index = -1;
    while ((c = getopt_long(argc, argv, "", longopts, &index)) != -1) {
        if (c == '?' || c == ':')
            return cli_option_error(command, argv);
        if (strchr(allowed, c) == NULL) { /* an option of another store command */
            char reason[128];
            snprintf(reason, sizeof reason, "unknown option --%s", longopts[index].name);
            return cli_usage_error(command, reason);
        }
        switch (c) {
        case OPT_CONFIG:
            o->config = optarg;
            break;
        case OPT_DATA:
            o->data = optarg;
            break;
        case OPT_ROLE:
            o->role = optarg;
            break;
        case OPT_STDIN:
            o->password_stdin = 1;
            break;
        case OPT_JSON:
            o->json = 1;
            break;
        case OPT_SINCE:
            o->since = optarg;
            break;
        case OPT_USER:
            o->user = optarg;
            break;
        case OPT_FORCE:
            o->force = 1;
            break;
        case OPT_REASSIGN:
            o->reassign_to = optarg;
            break;
        case OPT_TO:
            o->to = optarg;
            break;
        case OPT_FROM:
            o->from = optarg;
            break;
        }
    }
    o->args = argv + optind;
    o->nargs = argc - optind;
    return CLI_OK;
}

/* Loads the configuration with --data over it.  Returns a CLI code. */
int store_cli_config(const struct store_opts *o, struct config *cfg)
{
    int rc = cli_load_config(cfg, o->config);
    if (rc != CLI_OK)
        return rc;
    char err[CONFIG_ERROR_MAX];
    if (o->data && config_set_string(cfg, "data_dir", o->data, "--data", err) != 0) {
        fprintf(stderr, "%s\n", err);
        return CLI_USAGE;
    }
    return CLI_OK;
}

/* Loads the configuration and opens its database.  Returns a CLI code;
 * *DB is set on CLI_OK. */
int store_cli_open(const struct store_opts *o, int no_migrate, int must_exist, struct db **db)
{
    struct config cfg;
    int rc = store_cli_config(o, &cfg);
    if (rc != CLI_OK)
        return rc;
    char err[512];
    char path[CONFIG_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/o2c.db", cfg.data_dir);
    struct stat st;
    if (must_exist && !cfg.db.url[0] && stat(path, &st) != 0) {
        fprintf(stderr, "o2c: no database at %s (start o2c serve or run o2c db migrate first)\n",
                path);
        return CLI_FAILED;
    }
    *db = store_open_config(&cfg, uv_default_loop(), no_migrate, err, sizeof err);
    if (*db == NULL) {
        fprintf(stderr, "o2c: %s\n", err);
        return CLI_FAILED;
    }
    return CLI_OK;
}

/* {"via":"cli","os_user":"..."} plus EXTRA (",\"k\":v" or ""). */
static void cli_details(char *buf, size_t cap, const char *extra)
{
    size_t len = 0;
    const char *who = getenv("USER");
    struct passwd *pw = who && who[0] ? NULL : getpwuid(getuid());
    if (pw)
        who = pw->pw_name;
    snprintf(buf, cap, "{\"via\":\"cli\",\"os_user\":");
    len = strlen(buf);
    log_json_escape(buf, cap, &len, who ? who : "");
    snprintf(buf + len, cap - len, "%s}", extra);
}

int store_cli_audit(struct db *db, const char *action, const char *target, const char *extra)
{
    char details[512];
    cli_details(details, sizeof details, extra);
    struct audit_event ev = {.action = action, .target = target, .details = details};
    return audit_append(db, &ev, NULL);
}

/* Passwords */
