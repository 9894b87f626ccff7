/* host/markdown: GitHub-flavoured Markdown through libcmark-gfm as the report
 * shows it: tables (with alignment, as attributes the CSP allows), autolinks,
 * raw HTML and dangerous link targets dropped, the size limit named; and the
 * Lua binding o2c.markdown. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <lauxlib.h>
#include <lualib.h>
#include "host/markdown.h"
#include "host/modules.h"

static char *render(const char *text)
{
    char err[160];
    size_t len = 0;
    char *html = markdown_to_html(text, strlen(text), 0, &len, err, sizeof err);
    if (!html)
        fail_msg("markdown_to_html: %s", err);
    assert_int_equal(len, strlen(html));
    return html;
}

#define assert_contains(html, part)                                                                \
    do {                                                                                           \
        if (!strstr((html), (part)))                                                               \
            fail_msg("expected %s in:\n%s", (part), (html));                                       \
    } while (0)
#define assert_lacks(html, part)                                                                   \
    do {                                                                                           \
        if (strstr((html), (part)))                                                                \
            fail_msg("did not expect %s in:\n%s", (part), (html));                                 \
    } while (0)

static void test_table_with_alignment(void **state)
{
    (void)state;
    char *html =
        render("| Area | Score |\n|---|---:|\n| Billing | 3.31 |\n| **Overall** | 3.09 |\n");
    assert_contains(html, "<table>");
    assert_contains(html, "<th>Area</th>");
    assert_contains(html, "<th align=\"right\">Score</th>");
    assert_contains(html, "<td align=\"right\">3.31</td>");
    assert_contains(html, "<td><strong>Overall</strong></td>");
    assert_lacks(html, "style="); /* the UI's CSP refuses inline styles */
    free(html);
}

static void test_autolinks(void **state)
{
    (void)state;
    char *html = render("See https://www.apqc.org/benchmarks and www.example.com today.\n");
    assert_contains(
        html, "<a href=\"https://www.apqc.org/benchmarks\">https://www.apqc.org/benchmarks</a>");
    assert_contains(html, "<a href=\"http://www.example.com\">www.example.com</a>");
    free(html);
}

static void test_raw_html_dropped(void **state)
{
    (void)state;
    char *html =
        render("<script>alert(1)</script>\n\nText with <img src=x onerror=alert(1)> inline.\n\n"
               "<div onclick=\"x()\">block</div>\n");
    assert_lacks(html, "<script");
    assert_lacks(html, "<img");
    assert_lacks(html, "onerror");
    assert_lacks(html, "<div");
    assert_contains(html, "raw HTML omitted");
    assert_contains(html, "inline.");
    free(html);
}

static void test_dangerous_links_dropped(void **state)
{
    (void)state;
    char *html = render("[click](javascript:alert(1)) [vb](VBScript:x) [file](file:///etc/passwd) "
                        "[ok](https://example.com/a?b=1&c=2) ![i](data:text/html,x)\n");
    assert_lacks(html, "javascript:");
    assert_lacks(html, "VBScript:");
    assert_lacks(html, "file:");
    assert_lacks(html, "data:text/html");
    assert_contains(html, "<a href=\"\">click</a>");
    assert_contains(html, "<a href=\"https://example.com/a?b=1&amp;c=2\">ok</a>");
    free(html);
}

static void test_text_is_escaped_and_utf8_kept(void **state)
{
    (void)state;
    char *html = render("# Gap “0.94” & <b>more</b>\n\nBad byte: \xff end, NUL: x");
    assert_contains(
        html, "<h1>Gap “0.94” &amp; <!-- raw HTML omitted -->more<!-- raw HTML omitted --></h1>");
    assert_contains(html, "Bad byte: \xef\xbf\xbd end"); /* U+FFFD */
    free(html);

    /* A NUL inside the text becomes U+FFFD too; nothing is cut short. */
    char err[160];
    size_t len;
    html = markdown_to_html("a\0b", 3, 0, &len, err, sizeof err);
    assert_non_null(html);
    assert_string_equal(html, "<p>a\xef\xbf\xbd"
                              "b</p>\n");
    free(html);
}

static void test_heading_offset(void **state)
{
    (void)state;
    char err[160];
    size_t len;
    const char *text = "# One\n\n### Three\n\n###### Six\n";
    char *html = markdown_to_html(text, strlen(text), 1, &len, err, sizeof err);
    assert_non_null(html);
    assert_string_equal(html, "<h2>One</h2>\n<h4>Three</h4>\n<h6>Six</h6>\n");
    free(html);
}

static void test_size_limit_named(void **state)
{
    (void)state;
    size_t n = MARKDOWN_MAX_INPUT + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'a', n);
    char err[160];
    size_t len = 0;
    assert_null(markdown_to_html(big, n, 0, &len, err, sizeof err));
    assert_string_equal(
        err, "the text is 1048577 bytes; at most 1048576 bytes of Markdown are rendered");
    char *html =
        markdown_to_html(big, n - 1, 0, &len, err, sizeof err); /* at the limit: rendered */
    assert_non_null(html);
    assert_int_equal(len, MARKDOWN_MAX_INPUT + strlen("<p></p>\n"));
    free(html);
    free(big);
}

static void test_lua_binding(void **state)
{
    (void)state;
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "o2c.markdown", luaopen_o2c_markdown, 0);
    lua_setglobal(L, "markdown");
    const char *chunk =
        "local html = assert(markdown.to_html('| a | b |\\n|---|---|\\n| 1 | <i>2</i> |\\n'))\n"
        "assert(html:find('<td>1</td>', 1, true), html)\n"
        "assert(not html:find('<i>', 1, true), html)\n"
        "local none, why = markdown.to_html(string.rep('x', markdown.max_input + 1))\n"
        "assert(none == nil and why:find('at most 1048576 bytes', 1, true), why)\n"
        "assert(not pcall(markdown.to_html, {}))\n"
        "assert(markdown.to_html('### Sub', {heading_offset = 1}) == '<h4>Sub</h4>\\n')\n"
        "local ok, bad = pcall(markdown.to_html, 'x', {heading_offset = 9})\n"
        "assert(not ok and bad:find('heading_offset', 1, true), bad)\n"
        "return #markdown.to_html('')\n";
    if (luaL_dostring(L, chunk) != LUA_OK)
        fail_msg("%s", lua_tostring(L, -1));
    assert_int_equal(lua_tointeger(L, -1), 0);
    lua_close(L);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table_with_alignment),
        cmocka_unit_test(test_autolinks),
        cmocka_unit_test(test_raw_html_dropped),
        cmocka_unit_test(test_dangerous_links_dropped),
        cmocka_unit_test(test_text_is_escaped_and_utf8_kept),
        cmocka_unit_test(test_heading_offset),
        cmocka_unit_test(test_size_limit_named),
        cmocka_unit_test(test_lua_binding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
