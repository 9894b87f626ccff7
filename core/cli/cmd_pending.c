/* Commands whose subsystems land in later milestones answer from here with
 * a clear message and exit 1 until then.  None is pending now: `run` lives
 * in cmd_run.c, the storage commands in cmd_store.c.  Keep this file for
 * the next command that lands before its subsystem. */
#include "cli/cli.h"
