/* What o2c user, o2c db and o2c audit share: their options, opening the
 * configured database (safe while `o2c serve` runs: WAL, busy timeout, one
 * transaction per change) and auditing a change made from the command line.
 *
 * Every account change is audited with the operating-system user in its
 * details ("via": "cli"), since no o2c account is signed in here. */
#ifndef O2C_CLI_STORE_CLI_H
#define O2C_CLI_STORE_CLI_H

struct db;
struct config;

/* Options shared by the three commands. */
struct store_opts {
    const char *config, *data, *role, *since, *user, *reassign_to;
    const char *to, *from; /* db copy: the target URL, the source file */
    int password_stdin, json, force;
    char **args; /* positionals after the command name */
    int nargs;
};

enum {
    OPT_CONFIG = 'c',
    OPT_DATA = 'd',
    OPT_ROLE = 'r',
    OPT_STDIN = 'p',
    OPT_JSON = 'j',
    OPT_SINCE = 's',
    OPT_USER = 'u',
    OPT_FORCE = 'f',
    OPT_REASSIGN = 't',
    OPT_TO = 'o',
    OPT_FROM = 'm'
};

/* Parses ARGV (argv[0] is the command) accepting the long options named in
 * ALLOWED (a string of OPT_* letters); positionals may come before or after
 * options.  Returns a CLI code. */
int store_cli_parse(const char *command, int argc, char **argv, const char *allowed,
                    struct store_opts *o);

/* Loads the configuration (with --data over it) into CFG.  Returns a CLI
 * code. */
int store_cli_config(const struct store_opts *o, struct config *cfg);

/* Loads the configuration and opens its database.  Returns a CLI code;
 * *DB is set on CLI_OK. */
int store_cli_open(const struct store_opts *o, int no_migrate, int must_exist, struct db **db);

/* Appends ACTION on TARGET to the audit log, details {"via":"cli",
 * "os_user":...} plus EXTRA (",\"k\":v" or ""). */
int store_cli_audit(struct db *db, const char *action, const char *target, const char *extra);

#endif
