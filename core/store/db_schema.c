/* Schema migrations, one entry per PRAGMA user_version step.  Applied in order
 * inside one transaction by db_migrate().  Never edit a released entry: add
 * the next one.  Types are chosen to map onto PostgreSQL (TEXT, BIGINT,
 * BLOB -> BYTEA); ids are UUIDv7 strings, times Unix milliseconds. */
#include <stddef.h>
#include "store/db.h"
#include "store/db_schema.h"
#include "store/llm_budget_sql.h"

/* Version 1, for both engines: the types that differ are parameters
 * (ROWID_PK: an integer key the database assigns; BYTES: a byte string). */
#define DB_SCHEMA_V1(ROWID_PK, BYTES)                                                              \
    /* Accounts.  Never deleted (disabled instead), so foreign keys to them hold. */               \
    "CREATE TABLE users ("                                                                         \
    "  id TEXT PRIMARY KEY,"                                                                       \
    "  name TEXT NOT NULL UNIQUE,"                                                                 \
    "  role TEXT NOT NULL CHECK (role IN ('admin', 'consultant')),"                                \
    "  password_hash TEXT NOT NULL,"                                                               \
    "  disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),"                            \
    "  created_at BIGINT NOT NULL,"                                                                \
    "  updated_at BIGINT NOT NULL"                                                                 \
    ");" /* Sessions: only the BLAKE2b hash of the token is kept.  Expiry is computed              \
          * from created_at / last_seen_at and the configured timeouts. */                         \
    "CREATE TABLE sessions ("                                                                      \
    "  token_hash TEXT PRIMARY KEY,"                                                               \
    "  user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,"                              \
    "  created_at BIGINT NOT NULL,"                                                                \
    "  last_seen_at BIGINT NOT NULL,"                                                              \
    "  address TEXT"                                                                               \
    ");"                                                                                           \
    "CREATE INDEX sessions_user ON sessions(user_id);" /* Failed logins for throttling, by account \
                                                          name and by client address. */           \
    "CREATE TABLE login_failures ("                                                                \
    "  id " ROWID_PK ","                                                                           \
    "  scope TEXT NOT NULL CHECK (scope IN ('user', 'address')),"                                  \
    "  key TEXT NOT NULL,"                                                                         \
    "  at BIGINT NOT NULL"                                                                         \
    ");"                                                                                           \
    "CREATE INDEX login_failures_key ON login_failures(scope, key, at);" /* Generations: sources   \
                                                                            of the scripts + KB    \
                                                                            that produced a stored \
                                                                            result. */             \
    "CREATE TABLE generations ("                                                                   \
    "  hash TEXT PRIMARY KEY,"                                                                     \
    "  sources " BYTES " NOT NULL,"                                                                \
    "  created_at BIGINT NOT NULL"                                                                 \
    ");"                                                                                           \
    "CREATE TABLE assessments ("                                                                   \
    "  id TEXT PRIMARY KEY,"                                                                       \
    "  type TEXT NOT NULL,"                                                                        \
    "  client TEXT NOT NULL,"                                                                      \
    "  owner_id TEXT NOT NULL REFERENCES users(id),"                                               \
    "  targets TEXT NOT NULL DEFAULT '{}'," /* JSON: per-area target levels */                     \
    "  revision BIGINT NOT NULL DEFAULT 0,"                                                        \
    "  created_at BIGINT NOT NULL,"                                                                \
    "  updated_at BIGINT NOT NULL,"                                                                \
    "  deleted_at BIGINT"                                                                          \
    ");"                                                                                           \
    "CREATE INDEX assessments_owner ON assessments(owner_id, id);"                                 \
    "CREATE INDEX assessments_deleted ON assessments(deleted_at);" /* Current answers; `revision`  \
                                                                      is the assessment revision   \
                                                                      that wrote it. */            \
    "CREATE TABLE answers ("                                                                       \
    "  assessment_id TEXT NOT NULL REFERENCES assessments(id) ON DELETE CASCADE,"                  \
    "  question_id TEXT NOT NULL,"                                                                 \
    "  value TEXT NOT NULL," /* JSON */                                                            \
    "  note TEXT,"                                                                                 \
    "  updated_by TEXT NOT NULL REFERENCES users(id),"                                             \
    "  updated_at BIGINT NOT NULL,"                                                                \
    "  revision BIGINT NOT NULL,"                                                                  \
    "  PRIMARY KEY (assessment_id, question_id)"                                                   \
    ");"                                                                                           \
    "CREATE TABLE score_snapshots ("                                                               \
    "  id TEXT PRIMARY KEY,"                                                                       \
    "  assessment_id TEXT NOT NULL REFERENCES assessments(id) ON DELETE CASCADE,"                  \
    "  revision BIGINT NOT NULL,"                                                                  \
    "  generation TEXT NOT NULL REFERENCES generations(hash),"                                     \
    "  scores TEXT NOT NULL," /* JSON */                                                           \
    "  created_at BIGINT NOT NULL"                                                                 \
    ");"                                                                                           \
    "CREATE INDEX score_snapshots_assessment ON score_snapshots(assessment_id, id);"               \
    "CREATE TABLE reports ("                                                                       \
    "  id TEXT PRIMARY KEY,"                                                                       \
    "  assessment_id TEXT NOT NULL REFERENCES assessments(id) ON DELETE CASCADE,"                  \
    "  revision BIGINT NOT NULL,"                                                                  \
    "  generation TEXT NOT NULL REFERENCES generations(hash),"                                     \
    "  requested_by TEXT NOT NULL REFERENCES users(id),"                                           \
    "  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),"            \
    "  provider TEXT,"                                                                             \
    "  model TEXT,"                                                                                \
    "  created_at BIGINT NOT NULL,"                                                                \
    "  updated_at BIGINT NOT NULL,"                                                                \
    "  finished_at BIGINT"                                                                         \
    ");"                                                                                           \
    "CREATE INDEX reports_assessment ON reports(assessment_id, id);"                               \
    "CREATE TABLE report_sections ("                                                               \
    "  report_id TEXT NOT NULL REFERENCES reports(id) ON DELETE CASCADE,"                          \
    "  section_id TEXT NOT NULL,"                                                                  \
    "  position INTEGER NOT NULL,"                                                                 \
    "  status TEXT NOT NULL"                                                                       \
    "    CHECK (status IN ('queued', 'running', 'retrying', 'done', 'failed')),"                   \
    "  attempts INTEGER NOT NULL DEFAULT 0,"                                                       \
    "  provider TEXT,"                                                                             \
    "  model TEXT,"                                                                                \
    "  tokens_in BIGINT NOT NULL DEFAULT 0,"                                                       \
    "  tokens_out BIGINT NOT NULL DEFAULT 0,"                                                      \
    "  error TEXT,"                                                                                \
    "  text TEXT,"                                                                                 \
    "  created_at BIGINT NOT NULL,"                                                                \
    "  updated_at BIGINT NOT NULL,"                                                                \
    "  started_at BIGINT,"                                                                         \
    "  finished_at BIGINT,"                                                                        \
    "  PRIMARY KEY (report_id, section_id)"                                                        \
    ");" /* Background work that must survive a restart (report generation). */                    \
    "CREATE TABLE jobs ("                                                                          \
    "  id TEXT PRIMARY KEY,"                                                                       \
    "  kind TEXT NOT NULL,"                                                                        \
    "  report_id TEXT REFERENCES reports(id) ON DELETE CASCADE,"                                   \
    "  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),"            \
    "  attempts INTEGER NOT NULL DEFAULT 0,"                                                       \
    "  error TEXT,"                                                                                \
    "  created_at BIGINT NOT NULL,"                                                                \
    "  updated_at BIGINT NOT NULL,"                                                                \
    "  finished_at BIGINT"                                                                         \
    ");"                                                                                           \
    "CREATE INDEX jobs_status ON jobs(status, id);" /* Attachment metadata; the bytes live in      \
                                                       <data>/attachments/<content_hash>. */       \
    "CREATE TABLE attachments ("                                                                   \
    "  assessment_id TEXT NOT NULL REFERENCES assessments(id) ON DELETE CASCADE,"                  \
    "  name TEXT NOT NULL,"                                                                        \
    "  content_hash TEXT NOT NULL,"                                                                \
    "  media_type TEXT NOT NULL,"                                                                  \
    "  size BIGINT NOT NULL,"                                                                      \
    "  created_by TEXT NOT NULL REFERENCES users(id),"                                             \
    "  created_at BIGINT NOT NULL,"                                                                \
    "  PRIMARY KEY (assessment_id, name)"                                                          \
    ");"                                                                                           \
    "CREATE INDEX attachments_hash ON attachments(content_hash);" /* Audit log: append-only,       \
                                                                   * enforced by the triggers      \
                                                                   * below (no retention purge:    \
                                                                   * the log is small and its      \
                                                                   * value is in being complete).  \
                                                                   */                              \
    "CREATE TABLE audit_log ("                                                                     \
    "  seq " ROWID_PK ","                                                                          \
    "  at BIGINT NOT NULL,"                                                                        \
    "  user_name TEXT,"                                                                            \
    "  action TEXT NOT NULL,"                                                                      \
    "  target TEXT,"                                                                               \
    "  address TEXT,"                                                                              \
    "  details TEXT" /* JSON */                                                                    \
    ");"                                                                                           \
    "CREATE INDEX audit_log_at ON audit_log(at);"                                                  \
    "CREATE INDEX audit_log_user ON audit_log(user_name, seq);"

/* The audit log is append-only: SQLite's triggers, PostgreSQL's in PL/pgSQL. */
static const char db_schema_v1[] = DB_SCHEMA_V1(
    "INTEGER PRIMARY KEY", "BLOB") "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log"
                                   "  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;"
                                   "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log"
                                   "  BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;";

static const char db_schema_pg_v1[] = DB_SCHEMA_V1(
    "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    "BYTEA") "CREATE FUNCTION o2c_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS"
             "  $$BEGIN RAISE EXCEPTION 'audit_log is append-only'; END$$;"
             "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log"
             "  FOR EACH ROW EXECUTE FUNCTION o2c_audit_log_append_only();";

/* Version 2: what the report runner shows for each section besides its id
 * (title, kind, the ids it depends on as a JSON list) and a warning kept
 * with a done section (e.g. text cut at the token limit). */
static const char db_schema_v2[] = "ALTER TABLE report_sections ADD COLUMN title TEXT;"
                                   "ALTER TABLE report_sections ADD COLUMN kind TEXT;"
                                   "ALTER TABLE report_sections ADD COLUMN depends TEXT;"
                                   "ALTER TABLE report_sections ADD COLUMN warning TEXT;";

/* Version 3: login attempts in flight (store/throttle.h).  A row with an
 * `attempt` id is a sign-in being verified, counted against the limit from
 * its start; settling it clears the id (a failure) or deletes the row.  The
 * rows of one attempt (by account, by address) share the id. */
static const char db_schema_v3[] =
    "ALTER TABLE login_failures ADD COLUMN attempt TEXT;"
    "CREATE INDEX login_failures_attempt ON login_failures(attempt) WHERE attempt IS NOT NULL;";

/* Version 4: removed accounts (store/user.h).  A removed account stays as a
 * tombstone (disabled, with the time it was removed) so that its name still
 * shows on answers, reports and the audit log and the foreign keys hold. */
static const char db_schema_v4[] = "ALTER TABLE users ADD COLUMN removed_at BIGINT;";

/* Version 5: one LLM budget shared by every instance on one database
 * (store/llm_budget.h).  A provider's row holds its window, its concurrency
 * cap and the 429 pause; one row per provider and budget is a token bucket
 * refilled continuously (level in units of token x window_ms, like the
 * local rate limiter); leases are the calls in flight (concurrency), waiters
 * the head-of-line calls refused, in the order they get the next capacity;
 * job turns the last time each report job was served.  Times are the
 * database's clock.  Used on PostgreSQL only; on SQLite (one process) the
 * tables exist and stay empty. */
#define DB_SCHEMA_V5                                                                               \
    "CREATE TABLE llm_providers ("                                                                 \
    "  provider TEXT PRIMARY KEY,"                                                                 \
    "  window_ms BIGINT NOT NULL CHECK (window_ms > 0),"                                           \
    "  max_concurrency BIGINT NOT NULL DEFAULT 0,"                                                 \
    "  paused_until_ms BIGINT NOT NULL DEFAULT 0"                                                  \
    ");"                                                                                           \
    "CREATE TABLE llm_budgets ("                                                                   \
    "  provider TEXT NOT NULL REFERENCES llm_providers(provider) ON DELETE CASCADE,"               \
    "  budget TEXT NOT NULL,"                                                                      \
    "  configured BIGINT NOT NULL DEFAULT 0,"                                                      \
    "  learned BIGINT NOT NULL DEFAULT 0,"                                                         \
    "  capacity BIGINT NOT NULL DEFAULT 0,"                                                        \
    "  level BIGINT NOT NULL DEFAULT 0,"                                                           \
    "  updated_ms BIGINT NOT NULL DEFAULT 0,"                                                      \
    "  PRIMARY KEY (provider, budget)"                                                             \
    ");"                                                                                           \
    "CREATE TABLE llm_leases ("                                                                    \
    "  provider TEXT NOT NULL,"                                                                    \
    "  instance TEXT NOT NULL,"                                                                    \
    "  slot BIGINT NOT NULL,"                                                                      \
    "  expires_ms BIGINT NOT NULL,"                                                                \
    "  PRIMARY KEY (provider, instance, slot)"                                                     \
    ");"                                                                                           \
    "CREATE TABLE llm_waiters ("                                                                   \
    "  provider TEXT NOT NULL,"                                                                    \
    "  instance TEXT NOT NULL,"                                                                    \
    "  job_key TEXT NOT NULL,"                                                                     \
    "  since_ms BIGINT NOT NULL,"                                                                  \
    "  rank_ms BIGINT NOT NULL,"                                                                   \
    "  expires_ms BIGINT NOT NULL,"                                                                \
    "  PRIMARY KEY (provider, instance)"                                                           \
    ");"                                                                                           \
    "CREATE TABLE llm_job_turns ("                                                                 \
    "  provider TEXT NOT NULL,"                                                                    \
    "  job_key TEXT NOT NULL,"                                                                     \
    "  served_ms BIGINT NOT NULL,"                                                                 \
    "  PRIMARY KEY (provider, job_key)"                                                            \
    ");"                                                                                           \
    "CREATE INDEX llm_job_turns_served ON llm_job_turns(served_ms);"

static const char db_schema_v5[] = DB_SCHEMA_V5;

/* PostgreSQL's take and finish as functions: each one statement, atomic,
 * serialised per provider by the provider row's lock (not by the store's
 * writer lock), on the database's clock. */
static const char db_schema_pg_v5[] = DB_SCHEMA_V5 DB_SCHEMA_PG_V5_FUNCTIONS;

const char *const db_schema_migrations[] = {
    NULL, /* version 0: empty database */
    db_schema_v1, db_schema_v2, db_schema_v3, db_schema_v4, db_schema_v5,
};

/* The same steps on PostgreSQL: from version 2 on, the SQL is common. */
const char *const db_schema_pg_migrations[] = {
    NULL, db_schema_pg_v1, db_schema_v2, db_schema_v3, db_schema_v4, db_schema_pg_v5,
};

_Static_assert(sizeof db_schema_migrations / sizeof *db_schema_migrations == DB_SCHEMA_VERSION + 1,
               "DB_SCHEMA_VERSION in db.h must name the last migration");
_Static_assert(sizeof db_schema_pg_migrations / sizeof *db_schema_pg_migrations ==
                   DB_SCHEMA_VERSION + 1,
               "each SQLite migration needs its PostgreSQL twin");

const int db_schema_latest = DB_SCHEMA_VERSION;
