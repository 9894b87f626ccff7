/* host/cidr: trusted_proxies ranges (IPv4, IPv6, IPv4-mapped peers), the
 * prefix masking and the refusal of entries that are not ranges. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "host/cidr.h"

static int in(const char *list, const char *address)
{
    struct cidr ranges[CIDR_LIST_MAX];
    size_t n;
    char bad[128];
    assert_int_equal(cidr_list_parse(list, ranges, CIDR_LIST_MAX, &n, bad, sizeof bad), 0);
    return cidr_list_match(ranges, n, address);
}

static void test_ipv4_prefixes(void **state)
{
    (void)state;
    assert_true(in("10.0.0.0/8", "10.255.1.2"));
    assert_false(in("10.0.0.0/8", "11.0.0.1"));
    assert_true(in("192.168.1.77/24", "192.168.1.1")); /* host bits ignored */
    assert_false(in("192.168.1.0/24", "192.168.2.1"));
    assert_true(in("172.16.0.0/12", "172.31.255.255"));
    assert_false(in("172.16.0.0/12", "172.32.0.0"));
    assert_true(in("127.0.0.1", "127.0.0.1"));
    assert_false(in("127.0.0.1", "127.0.0.2"));
    assert_true(in("0.0.0.0/0", "8.8.8.8"));
}

static void test_ipv6_and_mapped(void **state)
{
    (void)state;
    assert_true(in("::1", "::1"));
    assert_true(in("fd00::/8", "fd12:3456::1"));
    assert_false(in("fd00::/8", "fe80::1"));
    assert_true(in("2001:db8::/33", "2001:db8:7fff::1"));
    assert_false(in("2001:db8::/33", "2001:db8:8000::1"));
    assert_true(in("127.0.0.1/32", "::ffff:127.0.0.1")); /* a dual-stack socket's peer */
    assert_false(in("::1", "127.0.0.1"));
}

static void test_lists(void **state)
{
    (void)state;
    assert_true(in(" 10.0.0.0/8 ,\t::1/128, 127.0.0.1/32 ", "::1"));
    assert_true(in("10.0.0.0/8, ::1/128, 127.0.0.1/32", "127.0.0.1"));
    assert_false(in("", "127.0.0.1"));
    assert_false(in("10.0.0.0/8", "not-an-address"));
    assert_false(in("10.0.0.0/8", "10.0.0.1:8080"));
}

static void test_bad_entries_are_named(void **state)
{
    (void)state;
    static const char *bad_lists[] = {"10.0.0.0/33", "::/129",        "10.0.0.0/",  "10.0.0.0/-1",
                                      "10.0.0.0/8x", "proxy.example", "10.0.0.256", "1.2.3.4,,"};
    for (size_t i = 0; i < sizeof bad_lists / sizeof *bad_lists; i++) {
        struct cidr ranges[CIDR_LIST_MAX];
        size_t n;
        char bad[128] = "?";
        assert_int_equal(cidr_list_parse(bad_lists[i], ranges, CIDR_LIST_MAX, &n, bad, sizeof bad),
                         -1);
        assert_true(strlen(bad) < strlen(bad_lists[i]) + 1);
    }
    struct cidr ranges[CIDR_LIST_MAX];
    size_t n;
    char bad[128];
    assert_int_equal(cidr_list_parse("10.0.0.0/8, 10.0.0.0/99", ranges, 32, &n, bad, sizeof bad),
                     -1);
    assert_string_equal(bad, "10.0.0.0/99");
}

static void test_canonical_address(void **state)
{
    (void)state;
    char out[CIDR_ADDRESS_MAX];
    assert_int_equal(cidr_address_canonical("2001:DB8:0:0::1", out), 0);
    assert_string_equal(out, "2001:db8::1");
    assert_int_equal(cidr_address_canonical("::ffff:10.0.0.1", out), 0);
    assert_string_equal(out, "10.0.0.1");
    assert_int_equal(cidr_address_canonical("10.0.0.1:80", out), -1);
    assert_int_equal(cidr_address_canonical("", out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_prefixes),
        cmocka_unit_test(test_ipv6_and_mapped),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_bad_entries_are_named),
        cmocka_unit_test(test_canonical_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
