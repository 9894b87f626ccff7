/* o2c user add|list|passwd|disable: accounts, straight on the database.
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

static int user_disable_cmd(const struct store_opts *o, struct db *db)
{
    const char *name = o->args[1];
    struct user u;
    int last = 0;
    if (user_get_by_name(db, name, &u) != STORE_OK ||
        user_is_last_admin(db, &u, &last) != STORE_OK) {
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
            src = store_cli_audit(db, "user.disabled", name, extra);
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
    int rc = store_cli_parse("user", argc, argv, "cdrpj", &o);
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
    if ((rc = store_cli_open(&o, 0, 0, &db)) != CLI_OK)
        return rc;
    rc = run(&o, db);
    db_close(db);
    return rc;
}
