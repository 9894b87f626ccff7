/* o2c user add|list|passwd|disable|enable|remove: accounts, straight on the
 * database.
 * The CLI hashes passwords synchronously: there is no loop to keep
 * responsive. */
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>
#include "cli/cli.h"
#include "store/db.h"
#include "store/password.h"
#include "store/store_lua.h"
#include "store/user.h"
#include "cli/store_cli.h"

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
        user_name_taken(db, name);
        fprintf(stderr, "o2c user add: %s\n", db_errmsg(db));
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
            src = store_cli_audit(db, "user.added", name, extra);
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
    /* "name" is the old spelling of "username", kept for one version. */
    if (o->json)
        printf("{\"id\":\"%s\",\"username\":\"%s\",\"name\":\"%s\",\"role\":\"%s\","
               "\"disabled\":%s,\"removed\":%s,\"created_at\":\"%s\"}\n",
               u->id, u->name, u->name, user_role_name(u->role), u->disabled ? "true" : "false",
               u->removed ? "true" : "false", created);
    else
        printf("%-24s %-11s %-9s %s\n", u->name, user_role_name(u->role),
               u->removed    ? "removed"
               : u->disabled ? "disabled"
                             : "active",
               created);
    return 0;
}

static int user_list_cmd(const struct store_opts *o, struct db *db)
{
    if (!o->json)
        printf("%-24s %-11s %-9s %s\n", "USERNAME", "ROLE", "STATUS", "CREATED");
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
            src = store_cli_audit(db, "user.password_changed", name, extra);
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

/* Commits the change begun by the caller with its audit event ACTION on
 * NAME (details EXTRA), or rolls back; prints the store's error for
 * COMMAND.  RC is the change's store code. */
static int user_commit(struct db *db, int rc, const char *command, const char *action,
                       const char *name, const char *extra)
{
    if (rc == STORE_OK)
        rc = store_cli_audit(db, action, name, extra);
    rc = rc == STORE_OK ? db_tx_commit(db) : (db_tx_rollback(db), rc);
    if (rc != STORE_OK) {
        fprintf(stderr, "o2c %s: %s\n", command, db_errmsg(db));
        return CLI_FAILED;
    }
    return CLI_OK;
}

/* Disables (DISABLED) or enables account NAME, auditing it. */
static int user_toggle(struct db *db, const char *name, int disabled)
{
    const char *command = disabled ? "user disable" : "user enable";
    struct user u;
    int last = 0;
    if (user_get_by_name(db, name, &u) != STORE_OK ||
        (disabled && user_is_last_admin(db, &u, &last) != STORE_OK)) {
        fprintf(stderr, "o2c %s: %s\n", command, db_errmsg(db));
        return CLI_FAILED;
    }
    if (last) {
        fprintf(stderr, "o2c %s: %s is the only enabled admin; add another admin first\n", command,
                name);
        return CLI_FAILED;
    }
    if (!u.removed && !disabled && !u.disabled) {
        printf("%s is already enabled; nothing changed\n", name);
        return CLI_OK;
    }
    int64_t revoked = 0;
    char extra[64];
    int rc = db_tx_begin(db);
    if (rc == STORE_OK)
        rc = user_set_disabled(db, name, disabled, &revoked);
    snprintf(extra, sizeof extra, ",\"revoked_sessions\":%lld", (long long)revoked);
    if (user_commit(db, rc, command, disabled ? "user.disabled" : "user.enabled", name, extra) !=
        CLI_OK)
        return CLI_FAILED;
    if (disabled)
        printf("disabled %s (%lld session%s ended)\n", name, (long long)revoked,
               revoked == 1 ? "" : "s");
    else
        printf("enabled %s: it can sign in again\n", name);
    return CLI_OK;
}

static int user_disable_cmd(const struct store_opts *o, struct db *db)
{
    return user_toggle(db, o->args[1], 1);
}

static int user_enable_cmd(const struct store_opts *o, struct db *db)
{
    return user_toggle(db, o->args[1], 0);
}

static void print_removal(const char *name, const struct user_removal *r, const char *heir)
{
    if (!r->was_removed)
        printf("removed %s (%lld session%s ended); it stays listed as removed, so its name "
               "still shows on its answers and in the audit log\n",
               name, (long long)r->revoked, r->revoked == 1 ? "" : "s");
    if (heir)
        printf("%lld assessment%s of %s now belong%s to %s\n", (long long)r->reassigned,
               r->reassigned == 1 ? "" : "s", name, r->reassigned == 1 ? "s" : "", heir);
    else if (r->read_only > 0)
        printf("%lld assessment%s of %s kept read-only (admins still see %s); give %s to "
               "another account with: o2c user remove %s --reassign-to NAME\n",
               (long long)r->read_only, r->read_only == 1 ? "" : "s", name,
               r->read_only == 1 ? "it" : "them", r->read_only == 1 ? "it" : "them", name);
}

static int user_remove_cmd(const struct store_opts *o, struct db *db)
{
    const char *name = o->args[1];
    struct user_removal removal = {0};
    char fields[200], extra[208];
    int rc = db_tx_begin(db);
    if (rc == STORE_OK)
        rc = user_remove(db, name, o->reassign_to, &removal);
    user_removal_details(&removal, o->reassign_to, fields, sizeof fields);
    snprintf(extra, sizeof extra, ",%s", fields);
    /* A second pass over a removed account only moves what it left. */
    const char *action =
        rc == STORE_OK && removal.was_removed ? "user.assessments_reassigned" : "user.removed";
    if (user_commit(db, rc, "user remove", action, name, extra) != CLI_OK)
        return CLI_FAILED;
    print_removal(name, &removal, o->reassign_to);
    return CLI_OK;
}

int cmd_user(int argc, char **argv)
{
    struct store_opts o;
    int rc = store_cli_parse("user", argc, argv, "cdrpjt", &o);
    if (rc != CLI_OK)
        return rc;
    if (o.nargs < 1)
        return cli_usage_error("user", "expected add, list, passwd, disable, enable or remove");
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
    } else if (strcmp(sub, "enable") == 0) {
        run = user_enable_cmd;
    } else if (strcmp(sub, "remove") == 0) {
        run = user_remove_cmd;
    } else {
        char reason[96];
        snprintf(reason, sizeof reason, "unknown subcommand '%.40s'", sub);
        return cli_usage_error("user", reason);
    }
    if (o.nargs != want_args)
        return cli_usage_error("user", want_args == 2 ? "expected one user NAME"
                                                      : "user list takes no NAME");
    if ((o.role && run != user_add_cmd) || (o.json && run != user_list_cmd) ||
        (o.reassign_to && run != user_remove_cmd) ||
        (o.password_stdin && run != user_add_cmd && run != user_passwd_cmd))
        return cli_usage_error("user", "option not valid for this subcommand");
    struct db *db;
    if ((rc = store_cli_open(&o, 0, 0, &db)) != CLI_OK)
        return rc;
    rc = run(&o, db);
    db_close(db);
    return rc;
}
