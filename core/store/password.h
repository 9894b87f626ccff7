/* Passwords: argon2id via libsodium (crypto_pwhash_str; 19 MiB, 2 passes:
 * see password.c).
 *
 * Hashing and verifying cost ~20 ms of CPU each, so the host runs them on
 * the libuv thread pool.  These functions touch no database and no shared
 * state (beyond a dummy hash made once), so a uv_queue_work callback may call
 * them: fetch the stored hash on the loop (user_password_hash), verify in the
 * pool, record the outcome on the loop. */
#ifndef O2C_STORE_PASSWORD_H
#define O2C_STORE_PASSWORD_H
#include <stddef.h>

#define PASSWORD_MIN_LEN 12
#define PASSWORD_MAX_LEN 1024 /* bytes; longer input is refused, not truncated */
#define PASSWORD_HASH_MAX 128 /* crypto_pwhash_STRBYTES: encoded hash + NUL */

/* 0 when PASSWORD meets the policy; else -1 with the reason in ERR. */
int password_check_policy(const char *password, char *err, size_t errlen);

/* Hashes PASSWORD into OUT (an encoded "$argon2id$..." string).  0 on
 * success; -1 when the policy refuses it or memory runs out (reason in ERR). */
int password_hash(const char *password, char out[PASSWORD_HASH_MAX], char *err, size_t errlen);

/* 1 when PASSWORD matches HASH, else 0.  HASH may be NULL (unknown user):
 * then the dummy hash is verified instead, so the answer takes as long as
 * for a real account, and 0 is returned. */
int password_verify(const char *hash, const char *password);

/* 1 when HASH was made with other limits than today's (re-hashed at sign-in). */
int password_needs_rehash(const char *hash);

/* A valid hash of a random secret, made once per process (thread-safe). */
const char *password_dummy_hash(void);

/* A random password of 24 URL-safe characters (for the first-run admin). */
void password_generate(char out[25]);

#endif
