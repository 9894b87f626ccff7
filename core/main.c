/* o2c: Order-to-Cash maturity assessments as code.  Dispatches to the
 * commands of core/cli. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"

int main(int argc, char **argv)
{
    if (argc < 2) {
        cmd_help(1, argv);
        return CLI_USAGE;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "o2c: libsodium could not initialise (no entropy source?)\n");
        return CLI_FAILED;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        return cmd_help(1, argv);
    if (strcmp(name, "--version") == 0)
        name = "version";
    const struct cli_command *c = cli_find(name);
    if (!c && name[0] == '-') {
        fprintf(stderr, "o2c: unknown option '%s': give a command first (try: o2c help)\n", name);
        return CLI_USAGE;
    }
    if (!c) {
        fprintf(stderr, "o2c: unknown command '%s' (try: o2c help)\n", name);
        return CLI_USAGE;
    }
    if (cli_wants_help(argc - 1, argv + 1))
        return cli_print_help(c->name);
    return c->run(argc - 1, argv + 1);
}
