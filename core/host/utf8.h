/* UTF-8 for C writers of JSON and text: the same strict rule as Lua 5.4's
 * utf8.len (core/lua/generation/text.lua), so nothing o2c writes is invalid UTF-8. */
#ifndef O2C_HOST_UTF8_H
#define O2C_HOST_UTF8_H
#include <stddef.h>

/* The UTF-8 encoding of U+FFFD, written in place of each invalid byte. */
#define UTF8_REPLACEMENT "\xEF\xBF\xBD"

/* The length (1-4) of the valid UTF-8 character at S, of which N bytes are
 * readable; 0 when S does not begin one (a stray continuation byte, an
 * overlong form, a surrogate D800-DFFF, past U+10FFFF, or cut short). */
size_t utf8_char_len(const unsigned char *s, size_t n);

#endif
