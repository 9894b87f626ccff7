#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "host/log.h"

const struct cli_command cli_commands[] = {
    {"serve", "run the HTTP API and web UI; hot-reload scripts/ and kb/",
     "usage: o2c serve [--config F] [--listen HOST:PORT] [--data DIR]\n"
     "\n"
     "Serves the API and web UI on HOST:PORT (default 127.0.0.1:8080), storing data\n"
     "under DIR (default ./var; /var/lib/o2c for an installed o2c) and reloading\n"
     "scripts/ and kb/ when they change.\n"
     "SIGINT/SIGTERM stop it gracefully; SIGHUP reloads scripts and KB.\n",
     cmd_serve},
    {"run", "score one assessment and write its report, headless",
     "usage: o2c run DIR --answers F.json [--target N] [--out F] [--format X]\n"
     "               [--provider P] [--json] [--kb DIR] [--config F]\n"
     "\n"
     "Scores the answers in F.json ({\"client\", \"answers\", \"targets\"?}, like\n"
     "scripts/o2c/examples/*.json) with the assessment type in DIR (e.g. scripts/o2c)\n"
     "and the knowledge base, then writes the report to F (default\n"
     "<client>-o2c-report.X).  No database, no server.  X: md (Markdown, the chart\n"
     "referenced as chart.svg), html (self-contained, print CSS), pdf (weasyprint),\n"
     "docx (Word: pandoc), xlsx (Excel: answers, scores, KPIs, gaps) or zip (the\n"
     "Markdown with chart.svg and chart.png); default: F's extension, else md.\n"
     "--target N sets every area's target level (1-5).  P: offline (the default, the\n"
     "sections' own drafts, no LLM), auto, anthropic or openai (environment as for\n"
     "serve).  --json prints {\"scores\", \"report\": {\"sections\", \"path\"}}; a\n"
     "progress bar per section goes to stderr when it is a terminal.\n"
     "Exit 1 if any section failed or the file could not be made (a helper program\n"
     "not installed: the message names its Debian package), 2 on a usage error.\n",
     cmd_run},
    {"check", "load and validate scripts and the knowledge base",
     "usage: o2c check [DIR] [--kb DIR] [--json] [--config F]\n"
     "\n"
     "Loads every assessment type under DIR (default: scripts/; or one type folder\n"
     "such as scripts/o2c) with the knowledge base, validates them and prints errors\n"
     "as file:line: message.  Exit 1 on any error.\n",
     cmd_check},
    {"test", "run an assessment's specs (DIR/spec/*_spec.lua)",
     "usage: o2c test [DIR] [--kb DIR] [--config F]\n"
     "\n"
     "Runs DIR/spec/*_spec.lua under the scripts' sandbox; when DIR has no spec/,\n"
     "those of each subfolder that has one (default DIR: scripts/).  Prints\n"
     "file:line: message for each failure and ends with 'N passed, N failed'.\n"
     "Exit 1 on any failure, or when no spec passed.\n",
     cmd_test},
    {"user", "manage accounts",
     "usage: o2c user add NAME --role admin|consultant [--password-stdin]\n"
     "       o2c user list [--json]\n"
     "       o2c user passwd NAME [--password-stdin]\n"
     "       o2c user disable NAME\n"
     "       o2c user enable NAME\n"
     "       o2c user remove NAME [--reassign-to OTHER]\n"
     "       (each also takes --config F and --data DIR)\n"
     "\n"
     "remove keeps the account as a tombstone (its name stays on answers and in the\n"
     "audit log; it cannot sign in) and gives its assessments to OTHER, or without\n"
     "--reassign-to keeps them read-only for admins.  The only enabled admin cannot\n"
     "be disabled or removed.\n",
     cmd_user},
    {"db", "storage upkeep",
     "usage: o2c db migrate|check|vacuum [--config F] [--data DIR]\n"
     "       o2c db backup FILE [--force] [--config F] [--data DIR]\n"
     "       o2c db restore FILE [--config F] [--data DIR]\n"
     "       o2c db copy --to URL [--from FILE] [--config F] [--data DIR]\n"
     "\n"
     "backup copies the database while o2c serve runs, checks the copy and refuses\n"
     "to replace FILE unless --force.  restore checks FILE (integrity, schema\n"
     "version), needs o2c serve stopped, and keeps the database it replaces beside\n"
     "it as o2c.db.before-restore-TIME.  copy moves the SQLite database (or FILE)\n"
     "into the empty PostgreSQL database URL (postgresql://...) in one transaction,\n"
     "then compares every table's row count; it refuses a target holding o2c data.\n",
     cmd_db},
    {"audit", "print the audit log as JSON lines",
     "usage: o2c audit [--since T] [--user U] [--config F] [--data DIR]\n"
     "\n"
     "T is an ISO 8601 time (2026-11-28T09:00:00Z) or a date (2026-11-28).\n",
     cmd_audit},
    {"version", "print the version", "usage: o2c version\n", cmd_version},
    {"help", "show help for a command", "usage: o2c help [COMMAND]\n", cmd_help},
    {NULL, NULL, NULL, NULL},
};

const struct cli_command *cli_find(const char *name)
{
    for (const struct cli_command *c = cli_commands; c->name; c++)
        if (strcmp(c->name, name) == 0)
            return c;
    return NULL;
}

int cli_usage_error(const char *command, const char *reason)
{
    const struct cli_command *c = cli_find(command);
    fprintf(stderr, "o2c %s: %s\n", command, reason);
    if (c)
        fputs(c->usage, stderr);
    return CLI_USAGE;
}

int cli_option_error(const char *command, char **argv)
{
    const char *arg = argv[optind - 1];
    int name_len = (int)strcspn(arg, "=");
    char reason[160];
    if (strncmp(arg, "--", 2) != 0) /* every option is long: any -x is unknown */
        snprintf(reason, sizeof reason, "unknown option -%c", optopt > ' ' ? optopt : '?');
    else if (optopt == 0) /* getopt_long's mark of a name it does not know */
        snprintf(reason, sizeof reason, "unknown option %.*s", name_len, arg);
    else if (arg[name_len] == '=')
        snprintf(reason, sizeof reason, "%.*s takes no value", name_len, arg);
    else
        snprintf(reason, sizeof reason, "%s needs a value", arg);
    return cli_usage_error(command, reason);
}

int cli_wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
            return 1;
    return 0;
}

int cli_print_help(const char *command)
{
    const struct cli_command *c = cli_find(command);
    if (!c) {
        fprintf(stderr, "o2c: unknown command '%s' (try: o2c help)\n", command);
        return CLI_USAGE;
    }
    fputs(c->usage, stdout);
    return CLI_OK;
}

int cli_load_config(struct config *cfg, const char *path)
{
    char err[CONFIG_ERROR_MAX];
    config_defaults(cfg);
    if (config_load(cfg, path, err) != 0) {
        fprintf(stderr, "%s\n", err);
        return CLI_USAGE;
    }
    log_set_level((enum log_level)log_level_parse(cfg->log_level));
    config_set_current(cfg);
    return CLI_OK;
}

int cmd_version(int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return cli_usage_error("version", "takes no arguments");
    printf("o2c %s\n", O2C_VERSION);
    return CLI_OK;
}

int cmd_help(int argc, char **argv)
{
    if (argc > 2)
        return cli_usage_error("help", "takes at most one command name");
    if (argc == 2)
        return cli_print_help(argv[1]);
    printf("o2c %s: Order-to-Cash maturity assessments as code\n\n"
           "usage: o2c COMMAND [OPTIONS]\n\ncommands:\n",
           O2C_VERSION);
    for (const struct cli_command *c = cli_commands; c->name; c++)
        printf("  %-8s %s\n", c->name, c->summary);
    printf("\n'o2c help COMMAND' or 'o2c COMMAND --help' shows a command's options.\n"
           "Exit codes: 0 ok, 1 the work failed, 2 usage or configuration error.\n");
    return CLI_OK;
}
