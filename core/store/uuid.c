#include <pthread.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>
#include <time.h>
#include "store/uuid.h"

/* rand_a (12 bits) and rand_b (62 bits) read as one 74-bit counter. */
#define UUID_RAND_B_BITS 62
#define UUID_RAND_B_LIMIT (UINT64_C(1) << UUID_RAND_B_BITS)
#define UUID_RAND_A_LIMIT (UINT64_C(1) << 12)

static pthread_mutex_t uuid_lock = PTHREAD_MUTEX_INITIALIZER;
static int64_t uuid_last_ms = -1;
static uint64_t uuid_rand_a, uuid_rand_b;

static void uuid_fresh_random(void)
{
    uint64_t r[2];
    randombytes_buf(r, sizeof r);
    /* The counter's top bit starts clear so that same-millisecond increments
     * practically never overflow into the next millisecond. */
    uuid_rand_a = r[0] & (UUID_RAND_A_LIMIT / 2 - 1);
    uuid_rand_b = r[1] & (UUID_RAND_B_LIMIT - 1);
}

/* Same millisecond (or clock went back): step the counter forward by a random
 * amount (RFC 9562 section 6.2, method 2), so order holds and ids stay hard
 * to guess. */
static void uuid_step_counter(void)
{
    uint64_t inc = (uint64_t)randombytes_uniform(UINT32_C(1) << 24) + 1;
    uuid_rand_b += inc;
    if (uuid_rand_b < UUID_RAND_B_LIMIT)
        return;
    uuid_rand_b -= UUID_RAND_B_LIMIT;
    if (++uuid_rand_a < UUID_RAND_A_LIMIT)
        return;
    uuid_last_ms++;
    uuid_fresh_random();
}

void uuid_v7_at(struct uuid *out, int64_t unix_ms)
{
    if (sodium_init() < 0)
        abort();
    pthread_mutex_lock(&uuid_lock);
    if (unix_ms > uuid_last_ms) {
        uuid_last_ms = unix_ms;
        uuid_fresh_random();
    } else {
        uuid_step_counter();
    }
    uint64_t ms = (uint64_t)uuid_last_ms, a = uuid_rand_a, b = uuid_rand_b;
    pthread_mutex_unlock(&uuid_lock);

    for (int i = 0; i < 6; i++)
        out->b[i] = (uint8_t)(ms >> (40 - 8 * i));
    out->b[6] = (uint8_t)(0x70 | (a >> 8));
    out->b[7] = (uint8_t)a;
    out->b[8] = (uint8_t)(0x80 | (b >> 56));
    for (int i = 9; i < 16; i++)
        out->b[i] = (uint8_t)(b >> (8 * (15 - i)));
}

void uuid_v7_string(char out[UUID_STR_LEN])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct uuid u;
    uuid_v7_at(&u, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    uuid_format(&u, out);
}

void uuid_format(const struct uuid *u, char out[UUID_STR_LEN])
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[u->b[i] >> 4];
        out[o++] = hex[u->b[i] & 15];
    }
    out[o] = '\0';
}

static int uuid_hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int uuid_parse(const char *s, struct uuid *out)
{
    if (s == NULL || strlen(s) != UUID_STR_LEN - 1)
        return -1;
    int byte = 0;
    for (int i = 0; i < UUID_STR_LEN - 1; i += 2) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return -1;
            i++;
        }
        int hi = uuid_hex_value(s[i]), lo = uuid_hex_value(s[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out->b[byte++] = (uint8_t)(hi << 4 | lo);
    }
    return byte == 16 ? 0 : -1;
}

int uuid_version(const struct uuid *u)
{
    return u->b[6] >> 4;
}

int uuid_is_v7(const char *s)
{
    struct uuid u;
    return uuid_parse(s, &u) == 0 && uuid_version(&u) == 7 && (u.b[8] & 0xc0) == 0x80;
}

int64_t uuid_v7_unix_ms(const struct uuid *u)
{
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = ms << 8 | u->b[i];
    return (int64_t)ms;
}
