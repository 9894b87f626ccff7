/* Structured logs: one JSON object per line on stderr
 * ({"ts":..., "level":..., "msg":..., <fields>}).  Each line is written with a
 * single write(2) so lines never interleave. */
#ifndef O2C_HOST_LOG_H
#define O2C_HOST_LOG_H
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "debug"|"info"|"warn"|"error" -> level; -1 when unknown. */
int log_level_parse(const char *name);
const char *log_level_name(enum log_level level);

/* Logs MSG with string fields given as key, value pairs ended by NULL:
 *   log_msg(LOG_INFO, "listening", "addr", "127.0.0.1:8080", NULL); */
void log_msg(enum log_level level, const char *msg, ...);

/* Same, with N pre-split pairs (used by the Lua binding). Values flagged raw
 * are emitted as JSON literals (numbers, booleans) rather than strings. */
struct log_field {
    const char *key;
    const char *value;
    int raw;
};
void log_fields(enum log_level level, const char *msg, const struct log_field *fields, size_t n);

/* Appends S as a JSON string literal (quotes included) to BUF of size CAP at
 * *LEN; truncates rather than overflows.  Shared with other JSON writers in C. */
void log_json_escape(char *buf, size_t cap, size_t *len, const char *s);

#endif
