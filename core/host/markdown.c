/* markdown_to_html: libcmark-gfm with the GFM extensions, safe mode. */
#include "host/markdown.h"
#include <cmark-gfm-core-extensions.h>
#include <cmark-gfm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Safe mode is cmark-gfm's default (CMARK_OPT_UNSAFE turns it off).  Column
 * alignment stays an `align` attribute: the UI's CSP refuses inline styles. */
#define MARKDOWN_OPTIONS (CMARK_OPT_DEFAULT | CMARK_OPT_VALIDATE_UTF8)

static const char *const EXTENSIONS[] = {"table", "autolink", "strikethrough"};

static int attach_extensions(cmark_parser *parser, char *err, size_t err_size)
{
    /* Registers the extensions once per process (idempotent). */
    cmark_gfm_core_extensions_ensure_registered();
    for (size_t i = 0; i < sizeof EXTENSIONS / sizeof EXTENSIONS[0]; i++) {
        cmark_syntax_extension *ext = cmark_find_syntax_extension(EXTENSIONS[i]);
        if (!ext || !cmark_parser_attach_syntax_extension(parser, ext)) {
            snprintf(err, err_size, "libcmark-gfm has no '%s' extension", EXTENSIONS[i]);
            return -1;
        }
    }
    return 0;
}

static void shift_headings(cmark_node *doc, int offset)
{
    cmark_iter *it = cmark_iter_new(doc);
    cmark_event_type ev;
    while ((ev = cmark_iter_next(it)) != CMARK_EVENT_DONE) {
        cmark_node *node = cmark_iter_get_node(it);
        if (ev == CMARK_EVENT_ENTER && cmark_node_get_type(node) == CMARK_NODE_HEADING) {
            int level = cmark_node_get_heading_level(node) + offset;
            cmark_node_set_heading_level(node, level > 6 ? 6 : level < 1 ? 1 : level);
        }
    }
    cmark_iter_free(it);
}

char *markdown_to_html(const char *text, size_t len, int heading_offset, size_t *out_len, char *err,
                       size_t err_size)
{
    if (len > MARKDOWN_MAX_INPUT) {
        snprintf(err, err_size, "the text is %zu bytes; at most %d bytes of Markdown are rendered",
                 len, MARKDOWN_MAX_INPUT);
        return NULL;
    }
    cmark_parser *parser = cmark_parser_new(MARKDOWN_OPTIONS);
    if (!parser) {
        snprintf(err, err_size, "out of memory");
        return NULL;
    }
    char *html = NULL;
    if (attach_extensions(parser, err, err_size) == 0) {
        cmark_parser_feed(parser, text, len);
        cmark_node *doc = cmark_parser_finish(parser);
        if (doc) {
            if (heading_offset)
                shift_headings(doc, heading_offset);
            /* The extensions render their own nodes (tables). */
            html = cmark_render_html(doc, MARKDOWN_OPTIONS,
                                     cmark_parser_get_syntax_extensions(parser));
            cmark_node_free(doc);
        }
        if (!html)
            snprintf(err, err_size, "out of memory");
    }
    cmark_parser_free(parser);
    if (html)
        *out_len = strlen(html);
    return html;
}
