/* Time for the storage bindings: ISO-8601 UTC out (with milliseconds) and
 * the ISO-8601 forms accepted in (store_lua_parse_time, also used by the
 * CLI). */
#include <lua.h>
#include <stdio.h>
#include <time.h>
#include "store/store_lua_internal.h"

/* Time */

void store_lua_format_time(int64_t ms, char out[32])
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

void store_lua_set_time(lua_State *L, const char *name, int64_t ms)
{
    if (ms == 0)
        return;
    char iso[32], key[64];
    store_lua_format_time(ms, iso);
    lua_pushstring(L, iso);
    lua_setfield(L, -2, name);
    snprintf(key, sizeof key, "%s_ms", name);
    lua_pushinteger(L, (lua_Integer)ms);
    lua_setfield(L, -2, key);
}

/* Reads exactly N digits at *P into *OUT. */
static int parse_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

/* The time part after the date: "Thh:mm[:ss[.fff]]" then "Z" or "+hh:mm". */
static int parse_clock(const char *p, struct tm *tm, int *milli, int *offset_s)
{
    if (parse_digits(&p, 2, &tm->tm_hour) || *p++ != ':' || parse_digits(&p, 2, &tm->tm_min))
        return -1;
    if (*p == ':' && (p++, parse_digits(&p, 2, &tm->tm_sec)))
        return -1;
    if (*p == '.') {
        p++;
        int digits = 0, frac = 0;
        while (*p >= '0' && *p <= '9') {
            if (digits < 3)
                frac = frac * 10 + (*p - '0');
            digits++;
            p++;
        }
        if (digits == 0)
            return -1;
        for (; digits < 3; digits++)
            frac *= 10;
        *milli = frac;
    }
    if (*p == 'Z' || *p == 'z')
        return p[1] == '\0' ? 0 : -1;
    if (*p != '+' && *p != '-')
        return -1;
    int sign = *p++ == '-' ? -1 : 1, hh, mm;
    if (parse_digits(&p, 2, &hh) || *p++ != ':' || parse_digits(&p, 2, &mm) || *p != '\0')
        return -1;
    *offset_s = sign * (hh * 3600 + mm * 60);
    return 0;
}

int store_lua_parse_time(const char *s, int64_t *ms)
{
    struct tm tm = {0};
    int year, month, day, milli = 0, offset_s = 0;
    const char *p = s;
    if (s == NULL || parse_digits(&p, 4, &year) || *p++ != '-' || parse_digits(&p, 2, &month) ||
        *p++ != '-' || parse_digits(&p, 2, &day))
        return -1;
    if (month < 1 || month > 12 || day < 1 || day > 31)
        return -1;
    if (*p == 'T' || *p == 't' || *p == ' ') {
        if (parse_clock(p + 1, &tm, &milli, &offset_s) != 0)
            return -1;
    } else if (*p != '\0') {
        return -1;
    }
    if (tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60)
        return -1;
    tm.tm_year = year - 1900;
    tm.tm_mon = month - 1;
    tm.tm_mday = day;
    time_t secs = timegm(&tm);
    *ms = ((int64_t)secs - offset_s) * 1000 + milli;
    return 0;
}
