/* db_copy.h: a SQLite database into an empty PostgreSQL one, in one
 * transaction on each side (a read snapshot, an all-or-nothing write). */
#include "store/db_copy.h"
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "store/db_internal.h"
#include "store/db_schema.h"
#include "store/rowset.h"
#ifdef O2C_HAVE_PQ
#include <libpq-fe.h>
#endif

/* Every table, parents before children (foreign-key order), with its
 * columns in the schema's order: the copy checks both databases have
 * exactly these, so a migration that adds a table or column and forgets
 * this list fails loudly here instead of leaving data behind. */
struct copy_table {
    const char *name, *columns;
    const char *select_sql, *insert_sql, *count_sql;
    /* Moves the identity column's sequence past the copied ids; NULL when
     * the table has none. */
    const char *advance_sql;
};

#define COPY_TABLE(NAME, COLS, MARKS, ADVANCE)                                                     \
    {                                                                                              \
        NAME, COLS, "SELECT " COLS " FROM " NAME " ORDER BY rowid",                                \
            "INSERT INTO " NAME " (" COLS ") VALUES (" MARKS ")", "SELECT count(*) FROM " NAME,    \
            ADVANCE                                                                                \
    }
#define COPY_ADVANCE(NAME, COL)                                                                    \
    "SELECT setval(pg_get_serial_sequence('" NAME "', '" COL "'), coalesce(max(" COL "), 0) + 1, " \
    "false) FROM " NAME

static const struct copy_table copy_tables[DB_COPY_TABLES] = {
    COPY_TABLE("users", "id,name,role,password_hash,disabled,created_at,updated_at,removed_at",
               "?,?,?,?,?,?,?,?", NULL),
    COPY_TABLE("sessions", "token_hash,user_id,created_at,last_seen_at,address", "?,?,?,?,?", NULL),
    COPY_TABLE("login_failures", "id,scope,key,at,attempt", "?,?,?,?,?",
               COPY_ADVANCE("login_failures", "id")),
    COPY_TABLE("generations", "hash,sources,created_at", "?,?,?", NULL),
    COPY_TABLE("assessments",
               "id,type,client,owner_id,targets,revision,created_at,updated_at,deleted_at",
               "?,?,?,?,?,?,?,?,?", NULL),
    COPY_TABLE("answers", "assessment_id,question_id,value,note,updated_by,updated_at,revision",
               "?,?,?,?,?,?,?", NULL),
    COPY_TABLE("score_snapshots", "id,assessment_id,revision,generation,scores,created_at",
               "?,?,?,?,?,?", NULL),
    COPY_TABLE("reports",
               "id,assessment_id,revision,generation,requested_by,status,provider,model,"
               "created_at,updated_at,finished_at",
               "?,?,?,?,?,?,?,?,?,?,?", NULL),
    COPY_TABLE("report_sections",
               "report_id,section_id,position,status,attempts,provider,model,tokens_in,"
               "tokens_out,error,text,created_at,updated_at,started_at,finished_at,title,kind,"
               "depends,warning",
               "?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?", NULL),
    COPY_TABLE("jobs", "id,kind,report_id,status,attempts,error,created_at,updated_at,finished_at",
               "?,?,?,?,?,?,?,?,?", NULL),
    COPY_TABLE("attachments",
               "assessment_id,name,content_hash,media_type,size,created_by,created_at",
               "?,?,?,?,?,?,?", NULL),
    COPY_TABLE("audit_log", "seq,at,user_name,action,target,address,details", "?,?,?,?,?,?,?",
               COPY_ADVANCE("audit_log", "seq")),
    /* The shared LLM budget (llm_budget.h): empty on SQLite, copied for
     * completeness so the table lists of both sides match. */
    COPY_TABLE("llm_providers", "provider,window_ms,max_concurrency,paused_until_ms", "?,?,?,?",
               NULL),
    COPY_TABLE("llm_budgets", "provider,budget,configured,learned,capacity,level,updated_ms",
               "?,?,?,?,?,?,?", NULL),
    COPY_TABLE("llm_leases", "provider,instance,slot,expires_ms", "?,?,?,?", NULL),
    COPY_TABLE("llm_waiters", "provider,instance,job_key,since_ms,rank_ms,expires_ms",
               "?,?,?,?,?,?", NULL),
    COPY_TABLE("llm_job_turns", "provider,job_key,served_ms", "?,?,?", NULL),
};
#define COPY_IDENTITY_COLUMNS 2 /* the tables above with an advance_sql */

/* A read transaction: SQLite takes its snapshot at the first read and
 * keeps it to the end, without the write lock a running server needs. */
static const char SQL_READ_BEGIN[] = "BEGIN DEFERRED";
static const char SQL_READ_END[] = "COMMIT";
static const char SQL_SQLITE_TABLES[] =
    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND substr(name, 1, 7) <> 'sqlite_'";
static const char SQL_SQLITE_COLUMNS[] =
    "SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_table_info(?) ORDER BY cid)";

static const char SQL_PG_TABLE_EXISTS[] = "SELECT to_regclass(?) IS NOT NULL";
static const char SQL_PG_TABLES[] =
    "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
    " AND table_type = 'BASE TABLE' AND table_name <> 'o2c_schema'";
static const char SQL_PG_COLUMNS[] =
    "SELECT string_agg(column_name::text, ',' ORDER BY ordinal_position)"
    " FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?";
static const char SQL_PG_BYTEA_COLUMNS[] =
    "SELECT ordinal_position FROM information_schema.columns"
    " WHERE table_schema = current_schema() AND table_name = ? AND data_type = 'bytea'";
static const char SQL_PG_IDENTITY_COLUMNS[] =
    "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema()"
    " AND (is_identity = 'YES' OR column_default LIKE 'nextval(%')";

struct copy {
    struct db *from, *to;
    struct db_copy_result *out;
    int64_t source_rows[DB_COPY_TABLES];
    uint32_t bytea[DB_COPY_TABLES]; /* per table, a bit per bytea column */
    char *err;
    size_t errlen;
};

static int copy_fail(struct copy *c, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int copy_fail(struct copy *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return rc;
}

/* A store call on one side failed: its message, with the side named. */
static int side_failed(struct copy *c, int rc, struct db *side)
{
    return copy_fail(c, rc, "%s: %s", side == c->from ? "the SQLite source" : "PostgreSQL",
                     db_errmsg(side));
}

/* ------------------------------------------------------------ the source */

static int source_version_ok(struct copy *c)
{
    int version = db_schema_version(c->from);
    if (version < 0)
        return side_failed(c, STORE_ERROR, c->from);
    if (version < db_schema_latest)
        return copy_fail(c, STORE_INVALID,
                         "%s has schema version %d, older than this o2c's %d: run `o2c db "
                         "migrate` on it first (o2c serve does so at start)",
                         db_path(c->from), version, db_schema_latest);
    if (version > db_schema_latest)
        return copy_fail(c, STORE_INVALID,
                         "%s has schema version %d, written by a newer o2c than this one (it "
                         "knows %d): upgrade o2c, then copy again",
                         db_path(c->from), version, db_schema_latest);
    if (db_check(c->from) != STORE_OK)
        return copy_fail(c, STORE_INVALID, "%s; repair the source first", db_errmsg(c->from));
    return STORE_OK;
}

/* Inside the read snapshot: the tables are exactly copy_tables, with
 * their columns, and how many rows each holds. */
static int source_shape(struct copy *c)
{
    int64_t ntables = 0;
    int rc = db_query_first(c->from, SQL_SQLITE_TABLES, "listing the tables", &ntables, NULL, 0,
                            NULL, DB_NO_ARGS);
    for (size_t i = 0; rc == STORE_OK && i < DB_COPY_TABLES; i++) {
        const struct copy_table *t = &copy_tables[i];
        char columns[1024] = "";
        rc = db_query_first(c->from, SQL_SQLITE_COLUMNS, "listing columns", NULL, columns,
                            sizeof columns, NULL, DB_ARGS(DB_TEXT(t->name)));
        if (rc == STORE_OK && strcmp(columns, t->columns) != 0)
            return copy_fail(c, STORE_ERROR,
                             "the source's table %s has the columns (%s), o2c db copy knows (%s): "
                             "a bug in this o2c (core/store/db_copy.c)",
                             t->name, columns, t->columns);
        if (rc == STORE_OK)
            rc = db_query_first(c->from, t->count_sql, "counting rows", &c->source_rows[i], NULL, 0,
                                NULL, DB_NO_ARGS);
    }
    if (rc != STORE_OK)
        return side_failed(c, rc, c->from);
    if (ntables != DB_COPY_TABLES)
        return copy_fail(c, STORE_ERROR,
                         "the source has %lld tables, o2c db copy knows %d: a bug in this o2c "
                         "(core/store/db_copy.c)",
                         (long long)ntables, DB_COPY_TABLES);
    return STORE_OK;
}

/* ------------------------------------------------------------ the target */

/* Refuses a target holding any o2c row: a copy never merges. */
static int target_empty(struct copy *c)
{
    char used[512] = "";
    for (size_t i = 0; i < DB_COPY_TABLES; i++) {
        const struct copy_table *t = &copy_tables[i];
        int64_t exists = 0, rows = 0;
        int rc = db_query_first(c->to, SQL_PG_TABLE_EXISTS, "looking for a table", &exists, NULL, 0,
                                NULL, DB_ARGS(DB_TEXT(t->name)));
        if (rc == STORE_OK && exists)
            rc = db_query_first(c->to, t->count_sql, "counting rows", &rows, NULL, 0, NULL,
                                DB_NO_ARGS);
        if (rc != STORE_OK)
            return side_failed(c, rc, c->to);
        size_t len = strlen(used);
        if (rows > 0)
            snprintf(used + len, sizeof used - len, "%s%s: %lld", len ? ", " : "", t->name,
                     (long long)rows);
    }
    if (used[0])
        return copy_fail(c, STORE_EXISTS,
                         "the target database already holds o2c data (rows in %s): o2c db copy "
                         "only fills an empty database and never merges; give --to a new "
                         "database (createdb NAME)",
                         used);
    return STORE_OK;
}

/* After the migration: the target's tables and columns are copy_tables',
 * the identity columns the ones it advances; notes the bytea columns. */
static int target_shape(struct copy *c)
{
    int64_t ntables = 0, identities = 0;
    int rc = db_query_first(c->to, SQL_PG_TABLES, "listing the tables", &ntables, NULL, 0, NULL,
                            DB_NO_ARGS);
    if (rc == STORE_OK)
        rc = db_query_first(c->to, SQL_PG_IDENTITY_COLUMNS, "listing identity columns", &identities,
                            NULL, 0, NULL, DB_NO_ARGS);
    for (size_t i = 0; rc == STORE_OK && i < DB_COPY_TABLES; i++) {
        const struct copy_table *t = &copy_tables[i];
        char columns[1024] = "";
        rc = db_query_first(c->to, SQL_PG_COLUMNS, "listing columns", NULL, columns, sizeof columns,
                            NULL, DB_ARGS(DB_TEXT(t->name)));
        if (rc == STORE_OK && strcmp(columns, t->columns) != 0)
            return copy_fail(c, STORE_ERROR,
                             "the target's table %s has the columns (%s), o2c db copy knows "
                             "(%s): a bug in this o2c (core/store/db_copy.c)",
                             t->name, columns, t->columns);
        struct rowset rs;
        rowset_init(&rs, 0);
        if (rc == STORE_OK)
            rc = db_query(c->to, SQL_PG_BYTEA_COLUMNS, "listing bytea columns", &rs,
                          DB_ARGS(DB_TEXT(t->name)));
        for (size_t r = 0; rc == STORE_OK && r < rs.nrows; r++) {
            int64_t position = rowset_int(&rs, r, 0); /* from 1 */
            if (position >= 1 && position <= 32)
                c->bytea[i] |= UINT32_C(1) << (position - 1);
        }
        rowset_free(&rs);
    }
    if (rc != STORE_OK)
        return side_failed(c, rc, c->to);
    if (ntables != DB_COPY_TABLES || identities != COPY_IDENTITY_COLUMNS)
        return copy_fail(c, STORE_ERROR,
                         "the target has %lld tables and %lld identity columns, o2c db copy knows "
                         "%d and %d: a bug in this o2c (core/store/db_copy.c)",
                         (long long)ntables, (long long)identities, DB_COPY_TABLES,
                         COPY_IDENTITY_COLUMNS);
    return STORE_OK;
}

/* ------------------------------------------------------------ rows */

/* Column COL of the row ST stands on as an argument for the target, as
 * SQLite holds it: integers, text, blobs and NULL as they are (a text for
 * a bytea column as its bytes), a real in its shortest exact text. */
static int row_arg(struct copy *c, size_t table, sqlite3_stmt *st, int col, struct db_arg *arg,
                   char *real_buf, size_t real_cap)
{
    int is_bytea = (c->bytea[table] >> col) & 1;
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_INTEGER:
        *arg = DB_INT(sqlite3_column_int64(st, col));
        return STORE_OK;
    case SQLITE_FLOAT:
        snprintf(real_buf, real_cap, "%.17g", sqlite3_column_double(st, col));
        *arg = DB_TEXT(real_buf);
        return STORE_OK;
    case SQLITE_BLOB: {
        const void *p = sqlite3_column_blob(st, col);
        *arg = DB_BLOB(p ? p : "", (size_t)sqlite3_column_bytes(st, col));
        return STORE_OK;
    }
    case SQLITE_TEXT: {
        const char *text = (const char *)sqlite3_column_text(st, col);
        size_t len = (size_t)sqlite3_column_bytes(st, col);
        if (is_bytea) {
            *arg = DB_BLOB(text ? text : "", len);
            return STORE_OK;
        }
        if (text == NULL || strlen(text) != len)
            return copy_fail(c, STORE_INVALID,
                             "table %s, column %d of row %lld: a text with a NUL byte, which "
                             "PostgreSQL cannot store; nothing was copied",
                             copy_tables[table].name, col + 1,
                             (long long)c->out->tables[table].rows + 1);
        *arg = DB_TEXT(text);
        return STORE_OK;
    }
    default:
        *arg = DB_NULL;
        return STORE_OK;
    }
}

/* Every row of table I, read in the snapshot, inserted into the target. */
static int copy_rows(struct copy *c, size_t i)
{
    const struct copy_table *t = &copy_tables[i];
    sqlite3_stmt *st = db_stmt(c->from, t->select_sql);
    if (st == NULL)
        return side_failed(c, STORE_ERROR, c->from);
    int ncols = sqlite3_column_count(st), step, rc = STORE_OK;
    struct db_arg args[ROWSET_COLUMNS_MAX];
    char reals[ROWSET_COLUMNS_MAX][32];
    if (ncols > ROWSET_COLUMNS_MAX)
        return copy_fail(c, STORE_ERROR, "table %s has too many columns (a bug)", t->name);
    while (rc == STORE_OK && (step = sqlite3_step(st)) == SQLITE_ROW) {
        for (int col = 0; rc == STORE_OK && col < ncols; col++)
            rc = row_arg(c, i, st, col, &args[col], reals[col], sizeof reals[col]);
        if (rc != STORE_OK)
            break;
        char what[64];
        snprintf(what, sizeof what, "copying a row of %s", t->name);
        if ((rc = db_exec(c->to, t->insert_sql, what, args, (size_t)ncols)) != STORE_OK)
            rc = side_failed(c, rc, c->to);
        else
            c->out->tables[i].rows++;
    }
    if (rc == STORE_OK && step != SQLITE_DONE)
        rc = side_failed(c, db_sqlite_fail(c->from, "reading the source"), c->from);
    sqlite3_reset(st);
    return rc;
}

/* The identity column of table I (if any) continues past the copied ids,
 * then the target's row count is the source's. */
static int finish_table(struct copy *c, size_t i)
{
    const struct copy_table *t = &copy_tables[i];
    int64_t rows = -1;
    int rc = STORE_OK;
    if (t->advance_sql)
        rc = db_query_first(c->to, t->advance_sql, "advancing the identity column", NULL, NULL, 0,
                            NULL, DB_NO_ARGS);
    if (rc == STORE_OK)
        rc = db_query_first(c->to, t->count_sql, "counting the copied rows", &rows, NULL, 0, NULL,
                            DB_NO_ARGS);
    if (rc != STORE_OK)
        return side_failed(c, rc, c->to);
    if (rows != c->source_rows[i] || rows != c->out->tables[i].rows)
        return copy_fail(c, STORE_ERROR,
                         "table %s: the source holds %lld rows, %lld were copied and the target "
                         "holds %lld; nothing was copied",
                         t->name, (long long)c->source_rows[i], (long long)c->out->tables[i].rows,
                         (long long)rows);
    return STORE_OK;
}

/* Inside the target's transaction: refuse a used target, migrate, copy. */
static int copy_into_target(struct copy *c)
{
    int rc = target_empty(c);
    if (rc != STORE_OK)
        return rc;
    /* Read only when the version table exists: a failed statement would
     * abort the transaction. */
    int64_t versioned = 0;
    if ((rc = db_query_first(c->to, SQL_PG_TABLE_EXISTS, "looking for the schema version",
                             &versioned, NULL, 0, NULL, DB_ARGS(DB_TEXT("o2c_schema")))) !=
        STORE_OK)
        return side_failed(c, rc, c->to);
    c->out->target_version_before = versioned ? db_schema_version(c->to) : 0;
    if (c->out->target_version_before < 0)
        return side_failed(c, STORE_ERROR, c->to);
    if ((rc = db_migrate(c->to, NULL)) != STORE_OK)
        return side_failed(c, rc, c->to);
    if ((rc = target_shape(c)) != STORE_OK)
        return rc;
    for (size_t i = 0; rc == STORE_OK && i < DB_COPY_TABLES; i++)
        if ((rc = copy_rows(c, i)) == STORE_OK)
            rc = finish_table(c, i);
    return rc;
}

int db_copy(struct db *from, struct db *to, struct db_copy_result *out, char *err, size_t errlen)
{
    struct copy c = {.from = from, .to = to, .out = out, .err = err, .errlen = errlen};
    memset(out, 0, sizeof *out);
    out->ntables = DB_COPY_TABLES;
    for (size_t i = 0; i < DB_COPY_TABLES; i++)
        out->tables[i].name = copy_tables[i].name;
    if (db_is_pg(from) || !db_is_pg(to))
        return copy_fail(&c, STORE_INVALID, "o2c db copy copies a SQLite database into PostgreSQL");
    int rc = source_version_ok(&c);
    if (rc != STORE_OK)
        return rc;
    if ((rc = db_exec(from, SQL_READ_BEGIN, "beginning the read snapshot", DB_NO_ARGS)) != STORE_OK)
        return side_failed(&c, rc, from);
    if ((rc = source_shape(&c)) == STORE_OK) {
        if ((rc = db_tx_begin(to)) != STORE_OK) {
            rc = side_failed(&c, rc, to);
        } else {
            rc = copy_into_target(&c);
            if (rc == STORE_OK && (rc = db_tx_commit(to)) != STORE_OK)
                rc = side_failed(&c, rc, to);
            else if (rc != STORE_OK)
                db_tx_rollback(to);
        }
    }
    db_exec(from, SQL_READ_END, "ending the read snapshot", DB_NO_ARGS);
    return rc;
}

int db_url_is_pg(const char *url)
{
    return url && (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0);
}

int db_url_describe(const char *url, char *out, size_t cap)
{
#ifdef O2C_HAVE_PQ
    char *why = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &why);
    PQfreemem(why); /* may quote the URL: not shown */
    if (opts == NULL)
        return -1;
    const char *host = NULL, *port = NULL, *dbname = NULL;
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (o->val == NULL || o->val[0] == '\0')
            continue;
        if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            dbname = o->val;
    }
    snprintf(out, cap, "database %s on %s%s%s", dbname ? dbname : "(the user's name)",
             host ? host : "the local socket", port ? ":" : "", port ? port : "");
    PQconninfoFree(opts);
    return 0;
#else
    (void)url;
    snprintf(out, cap, "%s", "");
    return -1;
#endif
}
