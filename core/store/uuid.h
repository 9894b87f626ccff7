/* UUIDv7 ids (RFC 9562): 48-bit Unix milliseconds, version 7, 74 random bits.
 * Ids sort by creation time as strings and as bytes, and never repeat: two
 * ids made in the same millisecond (in any thread) still compare in order.
 * Every id in the database is one of these, as its 36-character string. */
#ifndef O2C_STORE_UUID_H
#define O2C_STORE_UUID_H
#include <stdint.h>

#define UUID_STR_LEN 37 /* "xxxxxxxx-xxxx-7xxx-yxxx-xxxxxxxxxxxx" + NUL */

struct uuid {
    uint8_t b[16];
};

/* A new id for time UNIX_MS.  Strictly greater than every id made before in
 * this process, even when the clock stands still or steps back. */
void uuid_v7_at(struct uuid *out, int64_t unix_ms);

/* A new id for the current wall-clock time, written as a string. */
void uuid_v7_string(char out[UUID_STR_LEN]);

/* Lower-case canonical form, NUL-terminated. */
void uuid_format(const struct uuid *u, char out[UUID_STR_LEN]);

/* Parses the canonical form (either case).  0 on success, -1 when S is not a
 * 36-character hyphenated hex string. */
int uuid_parse(const char *s, struct uuid *out);

/* 1 when S is a canonical UUIDv7 string (version 7, RFC variant), else 0.
 * Lets callers answer "not found" without touching the database. */
int uuid_is_v7(const char *s);

#endif
