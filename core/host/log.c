#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "host/log.h"
#include "host/utf8.h"

#define LOG_LINE_MAX 8192
#define LOG_FIELDS_MAX 32

static enum log_level log_threshold = LOG_INFO;
static const char *const log_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
    log_threshold = level;
}

enum log_level log_get_level(void)
{
    return log_threshold;
}

int log_level_parse(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, log_names[i]) == 0)
            return i;
    return -1;
}

const char *log_level_name(enum log_level level)
{
    return log_names[level];
}

static void append_raw(char *buf, size_t cap, size_t *len, const char *s)
{
    if (*len + 1 >= cap)
        return;
    size_t n = strlen(s), room = cap - *len - 1;
    if (n > room)
        n = room;
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = '\0';
}

void log_json_escape(char *buf, size_t cap, size_t *len, const char *s)
{
    /* Room for the closing quote and NUL is kept back while copying. */
    if (*len + 3 > cap)
        return;
    buf[(*len)++] = '"';
    const unsigned char *p = (const unsigned char *)s;
    size_t left = strlen(s);
    while (left > 0) {
        char esc[8];
        const char *out = esc;
        size_t out_len, used = utf8_char_len(p, left);
        if (used == 0) { /* never write invalid UTF-8: U+FFFD for each bad byte */
            out = UTF8_REPLACEMENT, out_len = 3, used = 1;
        } else if (*p == '"' || *p == '\\') {
            esc[0] = '\\', esc[1] = (char)*p, out_len = 2;
        } else if (*p < 0x20) {
            out_len = (size_t)snprintf(esc, sizeof esc, "\\u%04x", *p);
        } else {
            out = (const char *)p, out_len = used;
        }
        if (*len + out_len + 2 > cap)
            break; /* truncated between characters, never inside one */
        memcpy(buf + *len, out, out_len);
        *len += out_len;
        p += used;
        left -= used;
    }
    buf[(*len)++] = '"';
    buf[*len] = '\0';
}

static void format_timestamp(char *out, size_t cap)
{
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, cap - n, ".%03ldZ", now.tv_nsec / 1000000);
}

void log_fields(enum log_level level, const char *msg, const struct log_field *fields, size_t n)
{
    if (level < log_threshold)
        return;
    char line[LOG_LINE_MAX];
    char ts[40];
    size_t len = 0;
    line[0] = '\0';
    format_timestamp(ts, sizeof ts);
    append_raw(line, sizeof line, &len, "{\"ts\":\"");
    append_raw(line, sizeof line, &len, ts);
    append_raw(line, sizeof line, &len, "\",\"level\":\"");
    append_raw(line, sizeof line, &len, log_names[level]);
    append_raw(line, sizeof line, &len, "\",\"msg\":");
    log_json_escape(line, sizeof line - 2, &len, msg);
    for (size_t i = 0; i < n; i++) {
        append_raw(line, sizeof line - 2, &len, ",");
        log_json_escape(line, sizeof line - 2, &len, fields[i].key);
        append_raw(line, sizeof line - 2, &len, ":");
        if (fields[i].raw)
            append_raw(line, sizeof line - 2, &len, fields[i].value);
        else
            log_json_escape(line, sizeof line - 2, &len, fields[i].value);
    }
    append_raw(line, sizeof line, &len, "}\n");
    ssize_t ignored = write(STDERR_FILENO, line, len);
    (void)ignored; /* nowhere left to report a failed log write */
}

void log_msg(enum log_level level, const char *msg, ...)
{
    if (level < log_threshold)
        return;
    struct log_field fields[LOG_FIELDS_MAX];
    size_t n = 0;
    va_list ap;
    va_start(ap, msg);
    const char *key;
    while (n < LOG_FIELDS_MAX && (key = va_arg(ap, const char *)) != NULL) {
        fields[n].key = key;
        fields[n].value = va_arg(ap, const char *);
        if (!fields[n].value)
            fields[n].value = "";
        fields[n].raw = 0;
        n++;
    }
    va_end(ap);
    log_fields(level, msg, fields, n);
}
