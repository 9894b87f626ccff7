/* The JSON escaper of log lines (also used for error bodies and the CLI's
 * audit details): whatever bytes it is given, it writes valid UTF-8 JSON,
 * each invalid byte as U+FFFD, and truncates between characters only. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "host/log.h"
#include "host/utf8.h"

#define FFFD UTF8_REPLACEMENT

static const char *escaped(const char *s, size_t cap)
{
    static char buf[256];
    size_t len = 0;
    assert_true(cap <= sizeof buf);
    log_json_escape(buf, cap, &len, s);
    assert_int_equal(len, strlen(buf));
    assert_true(len < cap);
    return buf;
}

static void test_valid_text_is_kept(void **state)
{
    (void)state;
    assert_string_equal(escaped("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 256),
                        "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
    assert_string_equal(escaped("a\"b\\c\n\x01", 256), "\"a\\\"b\\\\c\\u000a\\u0001\"");
}

static void test_invalid_bytes_become_replacement_characters(void **state)
{
    (void)state;
    assert_string_equal(escaped("a\xff"
                                "b",
                                256),
                        "\"a" FFFD "b\"");
    /* The euro sign cut short, then more text. */
    assert_string_equal(escaped("\xe2\x82z", 256), "\"" FFFD FFFD "z\"");
    /* Overlong '/' (C0 AF) and a UTF-8-encoded surrogate (ED A0 80). */
    assert_string_equal(escaped("\xc0\xaf", 256), "\"" FFFD FFFD "\"");
    assert_string_equal(escaped("\xed\xa0\x80", 256), "\"" FFFD FFFD FFFD "\"");
    /* A stray continuation byte and one past U+10FFFF (F4 90 80 80). */
    assert_string_equal(escaped("\x80\xf4\x90\x80\x80", 256), "\"" FFFD FFFD FFFD FFFD FFFD "\"");
    /* Cut short at the very end. */
    assert_string_equal(escaped("ok\xf0\x9f\x98", 256), "\"ok" FFFD FFFD FFFD "\"");
}

static void test_truncation_never_cuts_a_character(void **state)
{
    (void)state;
    /* cap 7: the quotes and NUL leave room for 4 bytes; "ab" fits, the
     * 3-byte euro sign after it does not and is left out whole. */
    assert_string_equal(escaped("ab\xe2\x82\xac", 7), "\"ab\"");
    assert_string_equal(escaped("ab\xe2\x82\xac", 8), "\"ab\xe2\x82\xac\"");
    assert_string_equal(escaped("a\xff", 6), "\"a\"");
}

static void test_utf8_char_len(void **state)
{
    (void)state;
    assert_int_equal(utf8_char_len((const unsigned char *)"A", 1), 1);
    assert_int_equal(utf8_char_len((const unsigned char *)"\xc3\xa9", 2), 2);
    assert_int_equal(utf8_char_len((const unsigned char *)"\xef\xbf\xbd", 3), 3);
    assert_int_equal(utf8_char_len((const unsigned char *)"\xf4\x8f\xbf\xbf", 4), 4);
    assert_int_equal(utf8_char_len((const unsigned char *)"\xc3\xa9", 1), 0);
    assert_int_equal(utf8_char_len((const unsigned char *)"\xe0\x80\xaf", 3), 0); /* overlong */
    assert_int_equal(utf8_char_len((const unsigned char *)"\xf0\x80\x80\xaf", 4), 0);
    assert_int_equal(utf8_char_len((const unsigned char *)"\xed\xbf\xbf", 3), 0); /* DFFF */
    assert_int_equal(utf8_char_len((const unsigned char *)"\xf5\x80\x80\x80", 4), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_text_is_kept),
        cmocka_unit_test(test_invalid_bytes_become_replacement_characters),
        cmocka_unit_test(test_truncation_never_cuts_a_character),
        cmocka_unit_test(test_utf8_char_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
