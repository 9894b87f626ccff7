/* o2c db migrate|check|backup|restore|vacuum: storage upkeep. */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#include "host/log.h"
#include "store/backup.h"
#include "store/data_lock.h"
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

/* Copies the database on a connection of its own (a running server goes on
 * meanwhile); refuses to replace FILE unless --force. */
static int db_backup_cmd(struct db *db, const char *file, int force)
{
    char err[BACKUP_ERR_MAX];
    struct backup_info info = {0};
    if (strcmp(db_engine(db), "sqlite") != 0) {
        fprintf(stderr, "o2c db backup: copies a SQLite database; for PostgreSQL use its own "
                        "tools (pg_dump, or base backups with WAL archiving)\n");
        return CLI_FAILED;
    }
    int rc = backup_write(db_path(db), file, force ? BACKUP_FORCE : 0, &info, err, sizeof err);
    if (rc != STORE_OK) {
        fprintf(stderr, "o2c db backup: %s\n", err);
        return CLI_FAILED;
    }
    printf("backed up %s to %s (%lld bytes; verified: integrity ok, schema version %d)\n",
           db_path(db), file, (long long)info.bytes, info.schema_version);
    return CLI_OK;
}

/* Records the restore in the restored database's own audit log (migrating
 * it first, as o2c serve would). */
static int db_restore_audit(const struct store_opts *o, const char *file, const char *kept)
{
    struct db *db;
    if (store_cli_open(o, 0, 1, &db) != CLI_OK)
        return -1;
    char extra[4400] = ",\"previous\":";
    size_t len = strlen(extra);
    log_json_escape(extra, sizeof extra, &len, kept);
    if (store_cli_audit(db, "db.restored", file, kept[0] ? extra : "") != STORE_OK)
        fprintf(stderr, "o2c db restore: restored, but not audited: %s\n", db_errmsg(db));
    db_close(db);
    return 0;
}

static void db_restore_report(const char *data_dir, const char *file, const char *kept,
                              const struct backup_info *info, int opened)
{
    printf("restored %s/%s from %s (checked: integrity ok, schema version %d)\n", data_dir,
           BACKUP_DB_FILE, file, info->schema_version);
    if (kept[0])
        printf("the previous database is kept as %s\n", kept);
    else
        printf("there was no database before\n");
    if (opened && info->schema_version < DB_SCHEMA_VERSION)
        printf("migrated from schema version %d to %d\n", info->schema_version, DB_SCHEMA_VERSION);
}

/* Replaces the database with FILE once FILE passes the checks, and only
 * while no server runs on the data folder (it holds o2c.lock). */
static int db_restore_cmd(const struct store_opts *o, const char *file)
{
    struct config cfg;
    int rc = store_cli_config(o, &cfg);
    if (rc != CLI_OK)
        return rc;
    char err[BACKUP_ERR_MAX], kept[4300];
    if (cfg.db.url[0]) {
        fprintf(stderr, "o2c db restore: restores a SQLite database; for PostgreSQL use its own "
                        "tools (pg_restore or psql); nothing was changed\n");
        return CLI_FAILED;
    }
    int lock;
    rc = data_lock_take(cfg.data_dir, DATA_LOCK_EXCLUSIVE, &lock, err, sizeof err);
    if (rc == STORE_BUSY) {
        fprintf(stderr,
                "o2c db restore: o2c serve is running on %s (it holds %s/%s): stop o2c serve "
                "first, then run the restore again; nothing was changed\n",
                cfg.data_dir, cfg.data_dir, DATA_LOCK_FILE);
        return CLI_FAILED;
    }
    if (rc != STORE_OK) {
        fprintf(stderr, "o2c db restore: %s\n", err);
        return CLI_FAILED;
    }
    struct backup_info info = {0};
    rc = backup_restore(cfg.data_dir, file, &info, kept, sizeof kept, err, sizeof err);
    if (rc == STORE_OK) {
        int opened = db_restore_audit(o, file, kept) == 0;
        db_restore_report(cfg.data_dir, file, kept, &info, opened);
    } else {
        fprintf(stderr, "o2c db restore: %s\nnothing was changed: %s/%s is as it was\n", err,
                cfg.data_dir, BACKUP_DB_FILE);
    }
    data_lock_release(lock);
    return rc == STORE_OK ? CLI_OK : CLI_FAILED;
}

static int db_known(const char *sub)
{
    static const char *const subs[] = {"migrate", "check", "backup", "restore", "vacuum"};
    for (size_t i = 0; i < sizeof subs / sizeof *subs; i++)
        if (strcmp(sub, subs[i]) == 0)
            return 1;
    return 0;
}

/* Usage errors of o2c db SUB; CLI_OK when the arguments fit. */
static int db_check_args(const struct store_opts *o)
{
    const char *sub = o->args[0];
    if (!db_known(sub)) {
        char reason[96];
        snprintf(reason, sizeof reason, "unknown subcommand '%.40s'", sub);
        return cli_usage_error("db", reason);
    }
    int takes_file = strcmp(sub, "backup") == 0 || strcmp(sub, "restore") == 0;
    if (o->nargs != (takes_file ? 2 : 1)) {
        char reason[96];
        snprintf(reason, sizeof reason, "db %s %s", sub,
                 takes_file ? "needs one FILE" : "takes no further arguments");
        return cli_usage_error("db", reason);
    }
    if (o->force && strcmp(sub, "backup") != 0)
        return cli_usage_error("db", "--force is an option of db backup only");
    return CLI_OK;
}

int cmd_db(int argc, char **argv)
{
    struct store_opts o;
    int rc = store_cli_parse("db", argc, argv, "cdf", &o);
    if (rc != CLI_OK)
        return rc;
    if (o.nargs < 1)
        return cli_usage_error("db",
                               "expected migrate, check, backup FILE, restore FILE or vacuum");
    if ((rc = db_check_args(&o)) != CLI_OK)
        return rc;
    const char *sub = o.args[0];
    if (strcmp(sub, "restore") == 0)
        return db_restore_cmd(&o, o.args[1]);
    int migrate = strcmp(sub, "migrate") == 0;
    struct db *db;
    /* check and migrate open the file as it is; backup and vacuum need it. */
    if ((rc = store_cli_open(&o, 1, !migrate, &db)) != CLI_OK)
        return rc;
    if (migrate) {
        rc = db_migrate_cmd(db);
    } else if (strcmp(sub, "check") == 0) {
        rc = db_check_cmd(db);
    } else if (strcmp(sub, "backup") == 0) {
        rc = db_backup_cmd(db, o.args[1], o.force);
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
