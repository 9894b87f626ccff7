#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "store/password.h"

_Static_assert(PASSWORD_HASH_MAX == crypto_pwhash_STRBYTES, "PASSWORD_HASH_MAX");

/* argon2id with 19 MiB and 2 passes (libsodium always uses one lane): OWASP's
 * recommended minimum (Password Storage Cheat Sheet).  libsodium's
 * INTERACTIVE limits take 64 MiB per hash; with a hash in progress on each
 * pool thread that alone would be 128 MiB of a 150 MiB server, and ~70 ms
 * of CPU per sign-in.  Hashes made with other limits still verify and are
 * re-hashed at the next sign-in (password_needs_rehash). */
#define PASSWORD_OPSLIMIT 2ULL
#define PASSWORD_MEMLIMIT ((size_t)19 * 1024 * 1024)

static pthread_once_t password_dummy_once = PTHREAD_ONCE_INIT;
static char password_dummy[PASSWORD_HASH_MAX];

int password_check_policy(const char *password, char *err, size_t errlen)
{
    size_t len = password ? strlen(password) : 0;
    if (len < PASSWORD_MIN_LEN) {
        snprintf(err, errlen, "password too short: %zu characters, at least %d needed", len,
                 PASSWORD_MIN_LEN);
        return -1;
    }
    if (len > PASSWORD_MAX_LEN) {
        snprintf(err, errlen, "password too long: %zu bytes, at most %d", len, PASSWORD_MAX_LEN);
        return -1;
    }
    return 0;
}

int password_hash(const char *password, char out[PASSWORD_HASH_MAX], char *err, size_t errlen)
{
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    if (password_check_policy(password, err, errlen) != 0)
        return -1;
    if (crypto_pwhash_str(out, password, strlen(password), PASSWORD_OPSLIMIT, PASSWORD_MEMLIMIT) !=
        0) {
        snprintf(err, errlen, "password hashing ran out of memory");
        return -1;
    }
    return 0;
}

static void password_make_dummy(void)
{
    char secret[25], err[80];
    password_generate(secret);
    if (password_hash(secret, password_dummy, err, sizeof err) != 0)
        abort(); /* only when memory runs out at start-up */
    sodium_memzero(secret, sizeof secret);
}

const char *password_dummy_hash(void)
{
    pthread_once(&password_dummy_once, password_make_dummy);
    return password_dummy;
}

int password_verify(const char *hash, const char *password)
{
    if (sodium_init() < 0 || password == NULL)
        return 0;
    size_t len = strlen(password);
    if (len > PASSWORD_MAX_LEN)
        len = PASSWORD_MAX_LEN; /* bounded work; such a password never matches a stored one */
    int known = hash != NULL && hash[0] != '\0';
    int ok = crypto_pwhash_str_verify(known ? hash : password_dummy_hash(), password, len) == 0;
    return known && ok && strlen(password) <= PASSWORD_MAX_LEN;
}

int password_needs_rehash(const char *hash)
{
    return crypto_pwhash_str_needs_rehash(hash, PASSWORD_OPSLIMIT, PASSWORD_MEMLIMIT) != 0;
}

void password_generate(char out[25])
{
    unsigned char raw[18];
    if (sodium_init() < 0)
        abort();
    randombytes_buf(raw, sizeof raw);
    sodium_bin2base64(out, 25, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
}
