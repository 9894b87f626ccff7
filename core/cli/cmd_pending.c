/* Commands whose subsystems land in later milestones (the report runner).
 * They answer with a clear message and exit 1 until then. */
#include <stdio.h>
#include "cli/cli.h"

static int pending(const char *name, const char *what)
{
    fprintf(stderr, "o2c %s: %s is not part of this build yet\n", name, what);
    return CLI_FAILED;
}

int cmd_run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    return pending("run", "the report runner");
}
