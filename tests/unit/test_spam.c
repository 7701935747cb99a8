/*
 * test_spam.c - the spam verdict in a message's header fields (spam.h):
 * SpamAssassin's and rspamd's fields, their order of precedence, the
 * first field of a name winning, folding, line ends, case, fields in the
 * body, values that say nothing, garbage. The webhook JSON's spam.flag is
 * the same function (tests/data/mime/spam-*.json).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mailrobot/spam.h"

static int verdict(const char *msg)
{
    return mr_spam_verdict((const unsigned char *)msg, strlen(msg));
}

static void each_filter(void **state)
{
    (void)state;
    assert_int_equal(verdict("X-Spam-Flag: YES\n\nbody\n"), 1);
    assert_int_equal(verdict("X-Spam-Flag: NO\n\nbody\n"), 0);
    assert_int_equal(verdict("X-Spam-Status: Yes, score=7.2 required=5.0\n\nb\n"), 1);
    assert_int_equal(verdict("X-Spam-Status: No, score=0.1 required=5.0\n\nb\n"), 0);
    assert_int_equal(verdict("X-Spam: Yes\r\n\r\nb\r\n"), 1);
    assert_int_equal(verdict("X-Spam: no\r\n\r\nb\r\n"), 0);
    assert_int_equal(verdict("x-spam-flag:true\n\n"), 1);
    assert_int_equal(verdict("X-SPAM-FLAG : False\n\n"), 0);
}

static void no_verdict(void **state)
{
    (void)state;
    assert_int_equal(verdict(""), -1);
    assert_int_equal(verdict("Subject: Yes\n\nX-Spam: Yes\n"), -1);   /* in the body */
    assert_int_equal(verdict("X-Spam-Score: 15.0\nX-Rspamd-Score: 15\n\n"), -1);
    assert_int_equal(verdict("X-Spam-Flag: maybe\nX-Spam: \n\n"), -1);
    assert_int_equal(verdict("X-Spammy: Yes\nX-Spam-Flagged: YES\n\n"), -1);
    assert_int_equal(verdict("not a header line\nX-Spam: Yes\n\n"), -1);
}

/* X-Spam-Flag before X-Spam-Status before X-Spam, whatever the order of
 * the fields; a value that says nothing passes to the next name. */
static void precedence(void **state)
{
    (void)state;
    assert_int_equal(verdict("X-Spam: Yes\nX-Spam-Flag: NO\n\n"), 0);
    assert_int_equal(verdict("X-Spam-Status: No, score=1\nX-Spam-Flag: YES\n\n"), 1);
    assert_int_equal(verdict("X-Spam: No\nX-Spam-Status: Yes, score=9\n\n"), 1);
    assert_int_equal(verdict("X-Spam-Flag: ?\nX-Spam: Yes\n\n"), 1);
}

/* Only the first field of a name counts (a filter adds its field on top). */
static void first_of_a_name(void **state)
{
    (void)state;
    assert_int_equal(verdict("X-Spam: Yes\nX-Spam: No\n\n"), 1);
    assert_int_equal(verdict("X-Spam-Flag: NO\nX-Spam-Flag: YES\n\n"), 0);
    assert_int_equal(verdict("X-Spam-Flag: junk\nX-Spam-Flag: YES\n\n"), -1);
}

static void folding_and_mbox(void **state)
{
    (void)state;
    assert_int_equal(verdict("X-Spam-Status:\n Yes, score=8\n\tx=1\n\n"), 1);
    assert_int_equal(verdict("From a@b Thu Jan  1 00:00:00 2026\nX-Spam: yes\n\n"), 1);
    assert_int_equal(verdict("Received: from x\n by y\nX-Spam: Yes"), 1);  /* no body */
}

static void nul_bytes(void **state)
{
    static const unsigned char msg[] = "X-Spam: Y\0es\nX-Spam-Flag: \0YES\n\n";

    (void)state;
    assert_int_equal(mr_spam_verdict(msg, sizeof msg - 1), -1);
    assert_int_equal(mr_spam_verdict((const unsigned char *)"X-Spam: Yes", 9), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(each_filter),
        cmocka_unit_test(no_verdict),
        cmocka_unit_test(precedence),
        cmocka_unit_test(first_of_a_name),
        cmocka_unit_test(folding_and_mbox),
        cmocka_unit_test(nul_bytes),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
