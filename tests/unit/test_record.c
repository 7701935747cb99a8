/*
 * test_record.c - record ids, keys and the conversation root read from
 * raw headers (record.h, message_ids.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "mailrobot/message_ids.h"
#include "mailrobot/record.h"

static const char *root_of(const char *msg, char *out, size_t outsz)
{
    mr_thread_root((const unsigned char *)msg, strlen(msg), out, outsz);
    return out;
}

static void thread_root_precedence(void **state)
{
    char out[MR_MSGID_MAX + 1];

    assert_string_equal(root_of("Message-ID: <own@x>\n\nbody", out, sizeof out), "own@x");
    assert_string_equal(root_of("Message-ID: <own@x>\nIn-Reply-To: <parent@x>\n\n", out,
                                sizeof out), "parent@x");
    assert_string_equal(root_of("In-Reply-To: <parent@x>\nReferences: <root@x> <parent@x>\n"
                                "Message-ID: <own@x>\n\n", out, sizeof out), "root@x");
    assert_string_equal(root_of("Subject: none\n\nMessage-ID: <in-body@x>\n", out, sizeof out),
                        "");
}

static void thread_root_folding_case_and_crlf(void **state)
{
    char out[MR_MSGID_MAX + 1];

    assert_string_equal(root_of("REFERENCES:\r\n\t<folded@\r\n x>\r\n <b@x>\r\n\r\n", out,
                                sizeof out), "folded@x");
    assert_string_equal(root_of("message-id :  <sp@x>\r\n\r\n", out, sizeof out), "sp@x");
    assert_string_equal(root_of("From sender@x Mon Nov 29 10:00:00 2026\nMessage-ID: <mbox@x>\n",
                                out, sizeof out), "mbox@x");
    assert_string_equal(root_of("Message-ID: bare-id@x\n\n", out, sizeof out), "bare-id@x");
    /* An empty References falls through to the next field. */
    assert_string_equal(root_of("References: <>\nMessage-ID: <m@x>\n\n", out, sizeof out), "m@x");
}

static void thread_root_hostile_input(void **state)
{
    char out[MR_MSGID_MAX + 1];
    char small[8];
    unsigned char nul_and_8bit[] = "Message-ID: <a\0\xff\x01" "b@x>\n\n";
    static char huge[MR_MSGID_MAX * 4];

    mr_thread_root(nul_and_8bit, sizeof nul_and_8bit - 1, out, sizeof out);
    assert_string_equal(out, "ab@x");
    assert_string_equal(root_of("Message-ID: <abcdefghijkl@x>\n", small, sizeof small), "abcdefg");
    memcpy(huge, "Message-ID: <", 13);
    memset(huge + 13, 'z', sizeof huge - 14);
    huge[sizeof huge - 1] = '\0';
    assert_int_equal(strlen(root_of(huge, out, sizeof out)), MR_MSGID_MAX);
    assert_string_equal(root_of("", out, sizeof out), "");
    assert_string_equal(root_of(" continuation first\n", out, sizeof out), "");
    assert_string_equal(root_of("Message-ID: <unterminated", out, sizeof out), "unterminated");
}

static void record_id_is_stable_and_distinct(void **state)
{
    char a[MR_ID_SIZE], b[MR_ID_SIZE], c[MR_ID_SIZE], d[MR_ID_SIZE];
    const unsigned char msg[] = "Subject: x\n\nbody\n";

    assert_true(sodium_init() >= 0);
    mr_record_id("Q1", "r@x", msg, sizeof msg - 1, a);
    mr_record_id("Q1", "r@x", msg, sizeof msg - 1, b);
    assert_string_equal(a, b);
    assert_int_equal(strlen(a), 32);
    mr_record_id("Q1", "s@x", msg, sizeof msg - 1, c);
    assert_string_not_equal(a, c);
    mr_record_id("Q2", "r@x", msg, sizeof msg - 1, d);
    assert_string_not_equal(a, d);
    /* Length prefixes: moving a byte between fields changes the id. */
    mr_record_id("Q1r", "@x", msg, sizeof msg - 1, d);
    assert_string_not_equal(a, d);
    mr_record_id("Q1", "r@x", msg, sizeof msg - 2, d);
    assert_string_not_equal(a, d);
}

static void record_keys(void **state)
{
    mr_buf key;
    mr_err err;

    mr_buf_init(&key, 1024);
    assert_int_equal(mr_record_key(MR_PARTITION_THREAD, "Bot@Robots.Example", "root@x", "ID",
                                   &key, &err), 0);
    assert_string_equal((char *)key.data, "bot@robots.example root@x");
    assert_int_equal(mr_record_key(MR_PARTITION_THREAD, "bot@x", "", "ID", &key, &err), 0);
    assert_string_equal((char *)key.data, "bot@x ID");
    assert_int_equal(mr_record_key(MR_PARTITION_RECIPIENT, "Bot@X", "root@x", "ID", &key, &err), 0);
    assert_string_equal((char *)key.data, "bot@x");
    assert_int_equal(mr_record_key(MR_PARTITION_NONE, "bot@x", "root@x", "ID", &key, &err), 0);
    assert_string_equal((char *)key.data, "ID");
    mr_buf_free(&key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(thread_root_precedence),
        cmocka_unit_test(thread_root_folding_case_and_crlf),
        cmocka_unit_test(thread_root_hostile_input),
        cmocka_unit_test(record_id_is_stable_and_distinct),
        cmocka_unit_test(record_keys),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
