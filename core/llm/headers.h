/* How the engine-neutral LLM modules (ratelimit, retry) read response headers
 * without knowing who stored them (libcurl in the host, an array in tests). */
#ifndef O2C_LLM_HEADERS_H
#define O2C_LLM_HEADERS_H

/* Returns the value of response header NAME (given in lower case; the getter
 * matches case-insensitively), or NULL when absent.  The value must stay valid
 * until the call that received the getter returns. */
typedef const char *(*llm_header_fn)(void *ctx, const char *name);

#endif
