/* o2c user, o2c db, o2c audit: accounts, storage upkeep and the audit log,
 * straight on the database (safe while `o2c serve` runs: WAL, busy
 * timeout, one transaction per change).
 *
 * Every account change is audited with the operating-system user in its
 * details ("via": "cli"), since no o2c account is signed in here.  The CLI
 * hashes passwords synchronously: there is no loop to keep responsive. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include "cli/cli.h"
#include "host/log.h"
#include "store/audit.h"
#include "store/db.h"
#include "store/password.h"
#include "store/session.h"
#include "store/store_lua.h"
#include "store/user.h"

/* Options shared by the three commands. */
struct store_opts {
    const char *config, *data, *role, *since, *user;
    int password_stdin, json;
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
    OPT_USER = 'u'
};

/* Parses ARGV (argv[0] is the command) accepting the long options named in
 * ALLOWED; positionals may come before or after options. */
static int store_parse(const char *command, int argc, char **argv, const char *allowed,
                       struct store_opts *o)
{
    static const struct option longopts[] = {
        {"config", required_argument, 0, OPT_CONFIG}, {"data", required_argument, 0, OPT_DATA},
        {"role", required_argument, 0, OPT_ROLE},     {"password-stdin", no_argument, 0, OPT_STDIN},
        {"json", no_argument, 0, OPT_JSON},           {"since", required_argument, 0, OPT_SINCE},
        {"user", required_argument, 0, OPT_USER},     {0, 0, 0, 0}};
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
        }
    }
    o->args = argv + optind;
    o->nargs = argc - optind;
    return CLI_OK;
}

/* Loads the configuration and opens its database.  Returns a CLI code;
 * *DB is set on CLI_OK. */
static int store_open(const struct store_opts *o, int no_migrate, int must_exist, struct db **db)
{
    struct config cfg;
    int rc = cli_load_config(&cfg, o->config);
    if (rc != CLI_OK)
        return rc;
    char err[512];
    if (o->data && config_set_string(&cfg, "data_dir", o->data, "--data", err) != 0) {
        fprintf(stderr, "%s\n", err);
        return CLI_USAGE;
    }
    char path[CONFIG_PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/o2c.db", cfg.data_dir);
    struct stat st;
    if (must_exist && stat(path, &st) != 0) {
        fprintf(stderr, "o2c: no database at %s (start o2c serve or run o2c db migrate first)\n",
                path);
        return CLI_FAILED;
    }
    *db = store_open_config(&cfg, no_migrate, err, sizeof err);
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

static int cli_audit(struct db *db, const char *action, const char *target, const char *extra)
{
    char details[512];
    cli_details(details, sizeof details, extra);
    struct audit_event ev = {.action = action, .target = target, .details = details};
    return audit_append(db, &ev, NULL);
}

/* Passwords */

static void chomp(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r'))
        s[--n] = '\0';
}

/* One line from stdin into BUF; -1 at end of input or when too long. */
static int read_line(char *buf, size_t cap)
{
    if (fgets(buf, (int)cap, stdin) == NULL)
        return -1;
    if (strchr(buf, '\n') == NULL && !feof(stdin))
        return -1; /* longer than the buffer: refuse, never truncate */
    chomp(buf);
    return 0;
}

static int prompt_hidden(const char *prompt, char *buf, size_t cap)
{
    struct termios old, quiet;
    fputs(prompt, stderr);
    fflush(stderr);
    int tty = tcgetattr(STDIN_FILENO, &old) == 0;
    if (tty) {
        quiet = old;
        quiet.c_lflag &= (tcflag_t)~ECHO;
        quiet.c_lflag |= ECHONL;
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
    int rc = read_line(buf, cap);
    if (tty)
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    return rc;
}

/* Reads the new password for NAME (stdin line or prompt).  CLI code. */
static int read_password(const char *command, const struct store_opts *o, const char *name,
                         char *buf, size_t cap)
{
    if (o->password_stdin) {
        if (read_line(buf, cap) != 0) {
            fprintf(stderr, "o2c %s: no password on stdin (one line expected, at most %d bytes)\n",
                    command, PASSWORD_MAX_LEN);
            return CLI_FAILED;
        }
        return CLI_OK;
    }
    if (!isatty(STDIN_FILENO))
        return cli_usage_error(command, "stdin is not a terminal: pass --password-stdin and "
                                        "write the password as one line");
    char prompt[128], again[PASSWORD_MAX_LEN + 2];
    snprintf(prompt, sizeof prompt, "Password for %s: ", name);
    if (prompt_hidden(prompt, buf, cap) != 0 ||
        prompt_hidden("Repeat the password: ", again, sizeof again) != 0) {
        fprintf(stderr, "o2c %s: no password given\n", command);
        return CLI_FAILED;
    }
    int same = strcmp(buf, again) == 0;
    memset(again, 0, sizeof again);
    if (!same) {
        fprintf(stderr, "o2c %s: the passwords differ; nothing changed\n", command);
        return CLI_FAILED;
    }
    return CLI_OK;
}

/* Reads and hashes the new password into HASH.  CLI code. */
static int new_password_hash(const char *command, const struct store_opts *o, const char *name,
                             char hash[PASSWORD_HASH_MAX])
{
    char password[PASSWORD_MAX_LEN + 2], why[160];
    int rc = read_password(command, o, name, password, sizeof password);
    if (rc != CLI_OK)
        return rc;
    rc = password_hash(password, hash, why, sizeof why) == 0 ? CLI_OK : CLI_FAILED;
    memset(password, 0, sizeof password);
    if (rc != CLI_OK)
        fprintf(stderr, "o2c %s: %s\n", command, why);
    return rc;
}

/* o2c user ... */

static int user_add_cmd(const struct store_opts *o, struct db *db)
{
    const char *name = o->args[1];
    enum user_role role;
    if (!user_name_valid(name)) {
        fprintf(stderr,
                "o2c user add: invalid user name \"%s\": use 1-%d letters, digits, . _ - @ "
                "(starting with a letter or digit)\n",
                name, USER_NAME_MAX);
        return CLI_FAILED;
    }
    user_role_parse(o->role, &role);
    struct user existing;
    if (user_get_by_name(db, name, &existing) == STORE_OK) {
        fprintf(stderr, "o2c user add: user %s already exists\n", name);
        return CLI_FAILED;
    }
    char hash[PASSWORD_HASH_MAX], extra[64];
    int rc = new_password_hash("user add", o, name, hash);
    if (rc != CLI_OK)
        return rc;
    snprintf(extra, sizeof extra, ",\"role\":\"%s\"", user_role_name(role));
    int src = db_tx_begin(db);
    if (src == STORE_OK) {
        src = user_add(db, name, role, hash, NULL);
        if (src == STORE_OK)
            src = cli_audit(db, "user.added", name, extra);
        src = src == STORE_OK ? db_tx_commit(db) : (db_tx_rollback(db), src);
    }
    if (src != STORE_OK) {
        fprintf(stderr, "o2c user add: %s\n", db_errmsg(db));
        return CLI_FAILED;
    }
    printf("created user %s (%s)\n", name, user_role_name(role));
    return CLI_OK;
}

static int user_print(void *ud, const struct user *u)
{
    const struct store_opts *o = ud;
    char created[32];
    time_t secs = (time_t)(u->created_at / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (o->json)
        printf("{\"id\":\"%s\",\"name\":\"%s\",\"role\":\"%s\",\"disabled\":%s,"
               "\"created_at\":\"%s\"}\n",
               u->id, u->name, user_role_name(u->role), u->disabled ? "true" : "false", created);
    else
        printf("%-24s %-11s %-9s %s\n", u->name, user_role_name(u->role),
               u->disabled ? "disabled" : "active", created);
    return 0;
}

static int user_list_cmd(const struct store_opts *o, struct db *db)
{
    if (!o->json)
        printf("%-24s %-11s %-9s %s\n", "NAME", "ROLE", "STATUS", "CREATED");
    if (user_list(db, user_print, (void *)o) != STORE_OK) {
        fprintf(stderr, "o2c user list: %s\n", db_errmsg(db));
        return CLI_FAILED;
    }
    return CLI_OK;
}

static int user_passwd_cmd(const struct store_opts *o, struct db *db)
{
    const char *name = o->args[1];
    struct user u;
    if (user_get_by_name(db, name, &u) != STORE_OK) {
        fprintf(stderr, "o2c user passwd: %s\n", db_errmsg(db));
        return CLI_FAILED;
    }
    char hash[PASSWORD_HASH_MAX], extra[64];
    int rc = new_password_hash("user passwd", o, name, hash);
    if (rc != CLI_OK)
        return rc;
    int64_t revoked = 0;
    int src = db_tx_begin(db);
    if (src == STORE_OK) {
        src = user_set_password(db, name, hash, &revoked);
        snprintf(extra, sizeof extra, ",\"revoked_sessions\":%lld", (long long)revoked);
        if (src == STORE_OK)
            src = cli_audit(db, "user.password_changed", name, extra);
        src = src == STORE_OK ? db_tx_commit(db) : (db_tx_rollback(db), src);
    }
    if (src != STORE_OK) {
        fprintf(stderr, "o2c user passwd: %s\n", db_errmsg(db));
        return CLI_FAILED;
    }
    printf("changed the password of %s (%lld session%s ended)\n", name, (long long)revoked,
           revoked == 1 ? "" : "s");
    return CLI_OK;
}

static int user_disable_cmd(const struct store_opts *o, struct db *db)
{
    const char *name = o->args[1];
    struct user u;
    int last = 0;
    if (user_get_by_name(db, name, &u) != STORE_OK ||
        store_user_is_last_admin(db, &u, &last) != STORE_OK) {
        fprintf(stderr, "o2c user disable: %s\n", db_errmsg(db));
        return CLI_FAILED;
    }
    if (last) {
        fprintf(stderr,
                "o2c user disable: %s is the only enabled admin; add another admin "
                "first\n",
                name);
        return CLI_FAILED;
    }
    int64_t revoked = 0;
    char extra[64];
    int src = db_tx_begin(db);
    if (src == STORE_OK) {
        src = user_set_disabled(db, name, 1, &revoked);
        snprintf(extra, sizeof extra, ",\"revoked_sessions\":%lld", (long long)revoked);
        if (src == STORE_OK)
            src = cli_audit(db, "user.disabled", name, extra);
        src = src == STORE_OK ? db_tx_commit(db) : (db_tx_rollback(db), src);
    }
    if (src != STORE_OK) {
        fprintf(stderr, "o2c user disable: %s\n", db_errmsg(db));
        return CLI_FAILED;
    }
    printf("disabled %s (%lld session%s ended)\n", name, (long long)revoked,
           revoked == 1 ? "" : "s");
    return CLI_OK;
}

int cmd_user(int argc, char **argv)
{
    struct store_opts o;
    int rc = store_parse("user", argc, argv, "cdrpj", &o);
    if (rc != CLI_OK)
        return rc;
    if (o.nargs < 1)
        return cli_usage_error("user", "expected add, list, passwd or disable");
    const char *sub = o.args[0];
    int (*run)(const struct store_opts *, struct db *) = NULL;
    int want_args = 2;
    if (strcmp(sub, "add") == 0) {
        enum user_role role;
        if (o.role == NULL || user_role_parse(o.role, &role) != 0)
            return cli_usage_error("user", "user add needs --role admin or --role consultant");
        run = user_add_cmd;
    } else if (strcmp(sub, "list") == 0) {
        run = user_list_cmd;
        want_args = 1;
    } else if (strcmp(sub, "passwd") == 0) {
        run = user_passwd_cmd;
    } else if (strcmp(sub, "disable") == 0) {
        run = user_disable_cmd;
    } else {
        char reason[96];
        snprintf(reason, sizeof reason, "unknown subcommand '%.40s'", sub);
        return cli_usage_error("user", reason);
    }
    if (o.nargs != want_args)
        return cli_usage_error("user", want_args == 2 ? "expected one user NAME"
                                                      : "user list takes no NAME");
    if ((o.role && run != user_add_cmd) || (o.json && run != user_list_cmd) ||
        (o.password_stdin && run != user_add_cmd && run != user_passwd_cmd))
        return cli_usage_error("user", "option not valid for this subcommand");
    struct db *db;
    if ((rc = store_open(&o, 0, 0, &db)) != CLI_OK)
        return rc;
    rc = run(&o, db);
    db_close(db);
    return rc;
}

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
    int rc = store_parse("db", argc, argv, "cd", &o);
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
    if ((rc = store_open(&o, 1, !migrate, &db)) != CLI_OK)
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

/* o2c audit */

struct audit_print {
    char *buf;
    size_t cap;
    int64_t last;
    int n, oom;
};

/* MS (Unix ms) as RFC 3339 UTC with milliseconds: 2026-12-03T12:00:00.123Z. */
static void rfc3339_ms(int64_t ms, char out[32])
{
    time_t secs = (time_t)(ms / 1000);
    int milli = (int)(ms % 1000);
    if (milli < 0) {
        milli += 1000;
        secs--;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%s.%03dZ", date, milli);
}

/* Prints the store's JSON of EV with "at" as the API gives it: RFC 3339,
 * and the Unix ms beside it as "at_ms".  The store writes "at" in ms right
 * after "seq"; that head is replaced, the rest printed as it is. */
static void audit_print_line(const struct audit_event *ev, const char *json)
{
    char head[64], iso[32];
    int n = snprintf(head, sizeof head, "{\"seq\":%" PRId64 ",\"at\":%" PRId64, ev->seq, ev->at);
    if (n <= 0 || (size_t)n >= sizeof head || strncmp(json, head, (size_t)n) != 0 ||
        (json[n] != ',' && json[n] != '}')) {
        puts(json); /* a layout this does not know: printed unchanged */
        return;
    }
    const char *rest = json + n;
    rfc3339_ms(ev->at, iso);
    printf("{\"seq\":%" PRId64 ",\"at\":\"%s\",\"at_ms\":%" PRId64 "%s\n", ev->seq, iso, ev->at,
           rest);
}

static int audit_print_event(void *ud, const struct audit_event *ev)
{
    struct audit_print *p = ud;
    size_t need = audit_format_json(ev, p->buf, p->cap);
    if (need >= p->cap) {
        char *bigger = realloc(p->buf, need + 1);
        if (bigger == NULL) {
            p->oom = 1;
            return 1;
        }
        p->buf = bigger;
        p->cap = need + 1;
        audit_format_json(ev, p->buf, p->cap);
    }
    audit_print_line(ev, p->buf);
    p->last = ev->seq;
    p->n++;
    return 0;
}

int cmd_audit(int argc, char **argv)
{
    struct store_opts o;
    int rc = store_parse("audit", argc, argv, "cdsu", &o);
    if (rc != CLI_OK)
        return rc;
    if (o.nargs != 0)
        return cli_usage_error("audit", "takes no positional arguments");
    struct audit_filter f = {.user = o.user, .limit = 1000};
    if (o.since && store_lua_parse_time(o.since, &f.since_ms) != 0)
        return cli_usage_error("audit", "--since must be an ISO 8601 time "
                                        "(2026-11-28T09:00:00Z) or a date (2026-11-28)");
    struct db *db;
    if ((rc = store_open(&o, 0, 1, &db)) != CLI_OK)
        return rc;
    struct audit_print p = {.cap = 4096};
    p.buf = malloc(p.cap);
    rc = p.buf ? CLI_OK : CLI_FAILED;
    while (rc == CLI_OK) {
        p.n = 0;
        if (audit_query(db, &f, audit_print_event, &p) != STORE_OK || p.oom) {
            fprintf(stderr, "o2c audit: %s\n", p.oom ? "out of memory" : db_errmsg(db));
            rc = CLI_FAILED;
        }
        if (p.n < f.limit)
            break;
        f.after_seq = p.last;
    }
    free(p.buf);
    db_close(db);
    return rc;
}
