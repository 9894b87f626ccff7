/* GitHub-flavoured Markdown to HTML through Debian's libcmark-gfm (tables,
 * autolinks, strikethrough), in cmark-gfm's safe mode: raw HTML is left out
 * (an HTML comment says so) and links or images to javascript:, vbscript:,
 * file: and non-image data: URLs lose their target.  The report's HTML, in
 * the download and in the UI, comes from here. */
#ifndef O2C_HOST_MARKDOWN_H
#define O2C_HOST_MARKDOWN_H
#include <stddef.h>

/* The longest text rendered: a report section is far shorter; anything
 * longer is refused rather than parsed. */
#define MARKDOWN_MAX_INPUT (1024 * 1024)

/* TEXT (LEN bytes, any bytes: invalid UTF-8 and NULs become U+FFFD) as HTML,
 * every heading HEADING_OFFSET levels deeper (at most <h6>), for a text shown
 * under headings of its own.  Returns a NUL-terminated string to free() with
 * its length in *OUT_LEN, or NULL with the reason in ERR (ERR_SIZE bytes). */
char *markdown_to_html(const char *text, size_t len, int heading_offset, size_t *out_len, char *err,
                       size_t err_size);

#endif
