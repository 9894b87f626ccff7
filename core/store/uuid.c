#include <pthread.h>
#include <stdlib.h>
#include <sodium.h>
#include <stdio.h>
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
    char hex[sizeof u->b * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, u->b, sizeof u->b);
    snprintf(out, UUID_STR_LEN, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
             hex + 20);
}

/* The hyphens must stand where the canonical form has them; sodium skips
 * them between bytes only, so one anywhere else leaves bytes missing. */
int uuid_parse(const char *s, struct uuid *out)
{
    size_t len = 0;
    if (s == NULL || strlen(s) != UUID_STR_LEN - 1 || s[8] != '-' || s[13] != '-' || s[18] != '-' ||
        s[23] != '-')
        return -1;
    if (sodium_hex2bin(out->b, sizeof out->b, s, UUID_STR_LEN - 1, "-", &len, NULL) != 0)
        return -1;
    return len == sizeof out->b ? 0 : -1;
}

int uuid_is_v7(const char *s)
{
    struct uuid u;
    return uuid_parse(s, &u) == 0 && (u.b[6] >> 4) == 7 && (u.b[8] & 0xc0) == 0x80;
}
