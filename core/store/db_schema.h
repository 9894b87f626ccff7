/* The migration list (core/store only). */
#ifndef O2C_STORE_DB_SCHEMA_H
#define O2C_STORE_DB_SCHEMA_H

/* db_schema_migrations[v] turns version v-1 into v; [0] is unused. */
extern const char *const db_schema_migrations[];
/* The same steps for PostgreSQL (several statements each, the simple
 * protocol). */
extern const char *const db_schema_pg_migrations[];
extern const int db_schema_latest;

#endif
