/* o2c db migrate|check|backup|restore|vacuum|copy: storage upkeep. */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>
#include "cli/cli.h"
#include "host/log.h"
#include "store/backup.h"
#include "store/data_lock.h"
#include "store/db.h"
#include "store/db_copy.h"
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
        fprintf(stderr, "o2c db check: %s: %s\n",
                strcmp(db_engine(db), "postgresql") == 0 ? "the PostgreSQL database" : db_path(db),
                db_errmsg(db));
        return CLI_FAILED;
    }
    if (strcmp(db_engine(db), "postgresql") == 0)
        printf("ok: the PostgreSQL database is at schema version %d and every constraint is "
               "validated (the server enforces foreign keys as it writes)\n",
               db_schema_version(db));
    else
        printf("ok: %s passes the integrity and foreign-key checks, schema version %d\n",
               db_path(db), db_schema_version(db));
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

/* The source of db copy: --from FILE, else the data folder's o2c.db, as it
 * is (never created, never migrated).  A CLI code; *DB set on CLI_OK. */
static int db_copy_open_source(const struct store_opts *o, struct db **db)
{
    struct config cfg;
    int rc = store_cli_config(o, &cfg);
    if (rc != CLI_OK)
        return rc;
    char path[CONFIG_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s%s", o->from ? o->from : cfg.data_dir, o->from ? "" : "/o2c.db");
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr,
                "o2c db copy: no SQLite database at %s (give the server's --data DIR or "
                "--config F, or --from FILE); nothing was copied\n",
                path);
        return CLI_FAILED;
    }
    char dir[sizeof path] = ".";
    const char *name = path, *slash = strrchr(path, '/');
    if (slash) {
        name = slash + 1;
        snprintf(dir, sizeof dir, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    }
    struct db_config dc = {.data_dir = dir, .file_name = name, .no_migrate = 1};
    char err[512];
    if ((*db = db_open(&dc, err, sizeof err)) == NULL) {
        fprintf(stderr, "o2c db copy: %s; nothing was copied\n", err);
        return CLI_FAILED;
    }
    return CLI_OK;
}

static void db_copy_report(const char *source, const char *target, const struct db_copy_result *r)
{
    int64_t total = 0;
    printf("copied %s into PostgreSQL (%s), schema version %d%s\n", source, target,
           DB_SCHEMA_VERSION,
           r->target_version_before == 0 ? " (created)" : " (the empty target was migrated)");
    printf("  %-16s %10s\n", "TABLE", "ROWS");
    for (size_t i = 0; i < r->ntables; i++) {
        printf("  %-16s %10lld\n", r->tables[i].name, (long long)r->tables[i].rows);
        total += r->tables[i].rows;
    }
    printf("verified: every table holds the same number of rows in both databases (%lld rows "
           "in all)\n",
           (long long)total);
}

/* Copies the SQLite database into the empty PostgreSQL database --to
 * names.  The URL may hold a password: it is never printed, only the
 * database and host it names. */
static int db_copy_cmd(const struct store_opts *o)
{
    char target[256];
    if (!db_url_is_pg(o->to) || db_url_describe(o->to, target, sizeof target) != 0) {
        fprintf(stderr, "o2c db copy: --to must be a PostgreSQL URL such as "
                        "postgresql://o2c@/o2c?host=/run/postgresql (the URL given is not one, "
                        "and is not shown: it may hold a password); nothing was copied\n");
        return CLI_USAGE;
    }
    struct db *from, *to;
    int rc = db_copy_open_source(o, &from);
    if (rc != CLI_OK)
        return rc;
    char err[1024];
    struct db_config dc = {
        .url = o->to, .loop = uv_default_loop(), .pool_size = 1, .no_migrate = 1};
    if ((to = db_open(&dc, err, sizeof err)) == NULL) {
        fprintf(stderr, "o2c db copy: %s (%s); nothing was copied\n", err, target);
        db_close(from);
        return CLI_FAILED;
    }
    struct db_copy_result result;
    rc = db_copy(from, to, &result, err, sizeof err) == STORE_OK ? CLI_OK : CLI_FAILED;
    if (rc == CLI_OK)
        db_copy_report(db_path(from), target, &result);
    else
        fprintf(stderr, "o2c db copy: %s\nnothing was copied: %s is as it was\n", err, target);
    db_close(to);
    db_close(from);
    return rc;
}

static int db_known(const char *sub)
{
    static const char *const subs[] = {"migrate", "check", "backup", "restore", "vacuum", "copy"};
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
    int copy = strcmp(sub, "copy") == 0;
    if (!copy && (o->to || o->from))
        return cli_usage_error("db", "--to and --from are options of db copy only");
    if (copy && o->to == NULL)
        return cli_usage_error("db", "db copy needs --to postgresql://...");
    return CLI_OK;
}

int cmd_db(int argc, char **argv)
{
    struct store_opts o;
    int rc = store_cli_parse("db", argc, argv, "cdfom", &o);
    if (rc != CLI_OK)
        return rc;
    if (o.nargs < 1)
        return cli_usage_error(
            "db", "expected migrate, check, backup FILE, restore FILE, vacuum or copy --to URL");
    if ((rc = db_check_args(&o)) != CLI_OK)
        return rc;
    const char *sub = o.args[0];
    if (strcmp(sub, "restore") == 0)
        return db_restore_cmd(&o, o.args[1]);
    if (strcmp(sub, "copy") == 0)
        return db_copy_cmd(&o);
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
