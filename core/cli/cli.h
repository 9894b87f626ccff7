/* The command line: one file per command (cmd_*.c), dispatched by main.c.
 * Exit codes: 0 ok, 1 the work failed, 2 usage or configuration error. */
#ifndef O2C_CLI_CLI_H
#define O2C_CLI_CLI_H
#include "host/config.h"

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2 };

struct cli_command {
    const char *name;
    const char *summary;
    const char *usage;                 /* the text `o2c help NAME` prints */
    int (*run)(int argc, char **argv); /* argv[0] is the command name */
};

extern const struct cli_command cli_commands[];
const struct cli_command *cli_find(const char *name);

/* Prints the command's usage to stderr with a one-line reason; returns 2. */
int cli_usage_error(const char *command, const char *reason);
/* After getopt_long returned '?': prints which option was refused (unknown,
 * without its value, or given a value it does not take) and the usage;
 * returns 2. */
int cli_option_error(const char *command, char **argv);
/* Whether ARGV holds --help or -h. */
int cli_wants_help(int argc, char **argv);
int cli_print_help(const char *command);

/* Loads the configuration (file, environment) into CFG and sets the log
 * level; prints the error and returns 2 on failure. */
int cli_load_config(struct config *cfg, const char *path);

int cmd_serve(int argc, char **argv);
int cmd_run(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_user(int argc, char **argv);
int cmd_db(int argc, char **argv);
int cmd_audit(int argc, char **argv);
int cmd_version(int argc, char **argv);
int cmd_help(int argc, char **argv);

#endif
