/* o2c db migrate|check|backup|vacuum: storage upkeep. */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "store/db.h"
#include "cli/store_cli.h"

/* o2c db ... */

static int db_migrate_cmd(struct db *db)
{
    int before = db_schema_version(db), applied = 0;
    if (db_migrate(db, &applied) != STORE_OK) {
        fprintf(stderr, "o2c db migrate: %s\n", db_errmsg(db));
        return CLI_FAILED;
    }
    if (applied == 0)
        printf("schema version %d: up to date\n", before);
    else
        printf("schema version %d -> %d (%d migration%s applied)\n", before, db_schema_version(db),
               applied, applied == 1 ? "" : "s");
    return CLI_OK;
}

static int db_check_cmd(struct db *db)
{
    if (db_check(db) != STORE_OK) {
        fprintf(stderr, "o2c db check: %s: %s\n", db_path(db), db_errmsg(db));
        return CLI_FAILED;
    }
    printf("ok: %s passes the integrity and foreign-key checks, schema version %d\n", db_path(db),
           db_schema_version(db));
    return CLI_OK;
}

int cmd_db(int argc, char **argv)
{
    struct store_opts o;
    int rc = store_cli_parse("db", argc, argv, "cd", &o);
    if (rc != CLI_OK)
        return rc;
    if (o.nargs < 1)
        return cli_usage_error("db", "expected migrate, check, backup FILE or vacuum");
    const char *sub = o.args[0];
    int is_backup = strcmp(sub, "backup") == 0;
    if (!is_backup && strcmp(sub, "migrate") != 0 && strcmp(sub, "check") != 0 &&
        strcmp(sub, "vacuum") != 0) {
        char reason[96];
        snprintf(reason, sizeof reason, "unknown subcommand '%.40s'", sub);
        return cli_usage_error("db", reason);
    }
    if (o.nargs != (is_backup ? 2 : 1))
        return cli_usage_error("db", is_backup ? "db backup needs one FILE"
                                               : "takes no further arguments");
    int migrate = strcmp(sub, "migrate") == 0;
    struct db *db;
    /* check and migrate open the file as it is; backup and vacuum need it. */
    if ((rc = store_cli_open(&o, 1, !migrate, &db)) != CLI_OK)
        return rc;
    if (migrate) {
        rc = db_migrate_cmd(db);
    } else if (strcmp(sub, "check") == 0) {
        rc = db_check_cmd(db);
    } else if (is_backup) {
        rc = db_backup(db, o.args[1]) == STORE_OK ? CLI_OK : CLI_FAILED;
        if (rc == CLI_OK)
            printf("backed up %s to %s\n", db_path(db), o.args[1]);
        else
            fprintf(stderr, "o2c db backup: %s\n", db_errmsg(db));
    } else {
        rc = db_vacuum(db) == STORE_OK ? CLI_OK : CLI_FAILED;
        if (rc == CLI_OK)
            printf("vacuumed %s\n", db_path(db));
        else
            fprintf(stderr, "o2c db vacuum: %s\n", db_errmsg(db));
    }
    db_close(db);
    return rc;
}
