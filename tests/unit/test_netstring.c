/*
 * test_netstring.c - netstrings and socketmap requests and replies
 * (directoryd/netstring.h): round trips, every truncation, hostile length
 * prefixes, request splitting, reply formatting and cutting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "netstring.h"

static netstring_status parse(const char *s, size_t limit, const char **p, size_t *plen,
                              size_t *used)
{
    return netstring_parse(s, strlen(s), limit, p, plen, used);
}

static void parses_one_and_leaves_the_rest(void **state)
{
    const char *p;
    size_t plen, used;

    assert_int_equal(parse("12:hello world!,3:abc,", 100, &p, &plen, &used), NETSTRING_OK);
    assert_int_equal(plen, 12);
    assert_memory_equal(p, "hello world!", 12);
    assert_int_equal(used, 16);
    assert_int_equal(parse("0:,", 100, &p, &plen, &used), NETSTRING_OK);
    assert_int_equal(plen, 0);
    assert_int_equal(used, 3);
}

static void every_prefix_is_incomplete(void **state)
{
    const char *full = "20:mailboxes bob@a.test,";
    char buf[64];
    const char *p;
    size_t plen, used;

    for (size_t n = 0; n < strlen(full); n++) {
        memcpy(buf, full, n);
        assert_int_equal(netstring_parse(buf, n, 100, &p, &plen, &used), NETSTRING_INCOMPLETE);
    }
    assert_int_equal(netstring_parse(full, strlen(full), 100, &p, &plen, &used), NETSTRING_OK);
}

static void bad_ones(void **state)
{
    const char *p;
    size_t plen, used;

    assert_int_equal(parse(":abc,", 100, &p, &plen, &used), NETSTRING_BAD);
    assert_int_equal(parse("x3:abc,", 100, &p, &plen, &used), NETSTRING_BAD);
    assert_int_equal(parse("3;abc,", 100, &p, &plen, &used), NETSTRING_BAD);
    assert_int_equal(parse("3:abcd", 100, &p, &plen, &used), NETSTRING_BAD);   /* no comma */
    assert_int_equal(parse("03:abc,", 100, &p, &plen, &used), NETSTRING_BAD);  /* leading 0 */
    assert_int_equal(parse("-1:,", 100, &p, &plen, &used), NETSTRING_BAD);
    assert_int_equal(parse(" 3:abc,", 100, &p, &plen, &used), NETSTRING_BAD);
}

static void too_long_is_known_from_the_digits(void **state)
{
    const char *p;
    size_t plen, used;

    assert_int_equal(parse("101", 100, &p, &plen, &used), NETSTRING_TOO_LONG);
    assert_int_equal(parse("100:", 100, &p, &plen, &used), NETSTRING_INCOMPLETE);
    assert_int_equal(parse("99999999999999999999999:", (size_t)-1, &p, &plen, &used),
                     NETSTRING_TOO_LONG);                /* no overflow */
    assert_int_equal(parse("1000000000", (size_t)-1, &p, &plen, &used), NETSTRING_TOO_LONG);
}

static void encode_round_trip(void **state)
{
    char out[64];
    const char *p;
    size_t plen, used;

    assert_int_equal(netstring_encode(out, sizeof out, "a\0b", 3), 6);
    assert_memory_equal(out, "3:a\0b,", 6);
    assert_int_equal(netstring_parse(out, 6, 10, &p, &plen, &used), NETSTRING_OK);
    assert_int_equal(plen, 3);
    assert_int_equal(netstring_encode(out, sizeof out, "", 0), 3);
    assert_string_equal(out, "0:,");
    /* Too small: says how much is needed. */
    assert_int_equal(netstring_encode(out, 6, "hello", 5), 8);
}

static void request_split(void **state)
{
    const char *name, *key;
    size_t nlen, klen;
    const char *req = "mailboxes Bob Smith@a.test";

    assert_int_equal(sockmap_request_split(req, strlen(req), &name, &nlen, &key, &klen), 0);
    assert_int_equal(nlen, 9);
    assert_memory_equal(name, "mailboxes", 9);
    assert_int_equal(klen, 16);
    assert_memory_equal(key, "Bob Smith@a.test", 16);   /* later spaces belong to the key */

    assert_int_equal(sockmap_request_split("domains", 7, &name, &nlen, &key, &klen), -1);
    assert_int_equal(sockmap_request_split("domains ", 8, &name, &nlen, &key, &klen), -1);
    assert_int_equal(sockmap_request_split(" a.test", 7, &name, &nlen, &key, &klen), -1);
    assert_int_equal(sockmap_request_split("Domains a", 9, &name, &nlen, &key, &klen), -1);
    assert_int_equal(sockmap_request_split("domains a\0b", 11, &name, &nlen, &key, &klen), -1);
}

static void replies(void **state)
{
    char out[128];

    assert_int_equal(sockmap_reply_format(out, sizeof out, 100, "OK", "a.test/bob/"), 18);
    assert_string_equal(out, "14:OK a.test/bob/,");
    sockmap_reply_format(out, sizeof out, 100, "NOTFOUND", "");
    assert_string_equal(out, "9:NOTFOUND ,");
    /* Cut to the payload limit. */
    sockmap_reply_format(out, sizeof out, 8, "TEMP", "redis down");
    assert_string_equal(out, "8:TEMP red,");
    /* Out too small. */
    assert_true(sockmap_reply_format(out, 8, 100, "TEMP", "redis down") >= 8);
    assert_true(sockmap_reply_format(out, sizeof out, 3, "TEMP", "") >= sizeof out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_one_and_leaves_the_rest),
        cmocka_unit_test(every_prefix_is_incomplete),
        cmocka_unit_test(bad_ones),
        cmocka_unit_test(too_long_is_known_from_the_digits),
        cmocka_unit_test(encode_round_trip),
        cmocka_unit_test(request_split),
        cmocka_unit_test(replies),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
