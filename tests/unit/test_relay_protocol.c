/*
 * test_relay_protocol.c - the protocol between mailrobot-ingest and
 * mailrobot-ingestd (relay_protocol.h): round trips, every truncation,
 * hostile headers, and the answer line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "relay_protocol.h"

static mr_envelope sample_envelope(void)
{
    static const char *recipients[] = {"bot@robots.example", "Other@X.test"};
    static const char *originals[] = {"Bot@Robots.Example", ""};
    mr_envelope env = {
        .sender = "alice@example.org", .queue_id = "4XyZ1", .client_address = "192.0.2.7",
        .helo = "mx.example.org", .sasl_username = "", .client_hostname = "mx.example.org",
        .client_protocol = "ESMTP", .sasl_method = "", .sasl_sender = "", .recipients = recipients,
        .original_recipients = originals, .recipient_count = 2,
    };

    return env;
}

static void round_trip(void **state)
{
    mr_envelope env = sample_envelope();
    relay_request req;
    mr_buf buf;
    mr_err err;

    mr_buf_init(&buf, 1 << 20);
    assert_int_equal(relay_request_encode(&buf, &env, 12345, &err), 0);
    assert_int_equal(relay_request_parse(buf.data, buf.len, 1 << 20, &req, &err), RELAY_PARSE_OK);
    assert_int_equal(req.header_len, buf.len);
    assert_int_equal(req.message_len, 12345);
    assert_string_equal(req.envelope.sender, "alice@example.org");
    assert_string_equal(req.envelope.queue_id, "4XyZ1");
    assert_string_equal(req.envelope.client_address, "192.0.2.7");
    assert_string_equal(req.envelope.helo, "mx.example.org");
    assert_string_equal(req.envelope.sasl_username, "");
    assert_string_equal(req.envelope.client_hostname, "mx.example.org");
    assert_string_equal(req.envelope.client_protocol, "ESMTP");
    assert_int_equal(req.envelope.recipient_count, 2);
    assert_string_equal(req.envelope.recipients[1], "Other@X.test");
    assert_string_equal(req.envelope.original_recipients[0], "Bot@Robots.Example");
    assert_string_equal(req.envelope.original_recipients[1], "");
    relay_request_free(&req);
    mr_buf_free(&buf);
}

static void every_truncation_asks_for_more(void **state)
{
    mr_envelope env = sample_envelope();
    relay_request req;
    mr_buf buf;
    mr_err err;

    mr_buf_init(&buf, 1 << 20);
    assert_int_equal(relay_request_encode(&buf, &env, 7, &err), 0);
    for (size_t n = 0; n < buf.len; n++)
        assert_int_equal(relay_request_parse(buf.data, n, 1 << 20, &req, &err),
                         RELAY_PARSE_MORE);
    mr_buf_free(&buf);
}

static relay_parse_status parse_bytes(const void *bytes, size_t len, mr_err *err)
{
    relay_request req;
    relay_parse_status st = relay_request_parse(bytes, len, 1000, &req, err);

    if (st == RELAY_PARSE_OK)
        relay_request_free(&req);
    return st;
}

static void hostile_headers_are_refused(void **state)
{
    mr_err err;
    unsigned char huge_field[] = "MRI2\x7f\xff\xff\xff";
    unsigned char no_recipients[4 + 9 * 4 + 4] = "MRI2";
    unsigned char nul_in_field[] = "MRI2\0\0\0\2a\0";

    assert_int_equal(parse_bytes("HELO", 4, &err), RELAY_PARSE_BAD);
    assert_string_equal(err.msg, "not a relay request");
    assert_int_equal(parse_bytes("X", 1, &err), RELAY_PARSE_BAD);
    assert_int_equal(parse_bytes(huge_field, 8, &err), RELAY_PARSE_BAD);
    assert_string_equal(err.msg, "envelope field longer than 2048 bytes");
    assert_int_equal(parse_bytes(no_recipients, sizeof no_recipients, &err), RELAY_PARSE_BAD);
    assert_string_equal(err.msg, "bad recipient count 0");
    /* The sender field holds a NUL: refused once the header is complete. */
    {
        mr_buf buf;
        static const char *r[] = {"r@x"}, *o[] = {""};
        mr_envelope env = {.sender = "", .queue_id = "", .client_address = "", .helo = "",
                           .sasl_username = "", .client_hostname = "", .client_protocol = "",
                           .sasl_method = "", .sasl_sender = "", .recipients = r,
                           .original_recipients = o,
                           .recipient_count = 1};

        mr_buf_init(&buf, 4096);
        mr_buf_append(&buf, nul_in_field, sizeof nul_in_field - 1, &err);
        relay_request_encode(&buf, &env, 0, &err);
        /* Splice: the encoded request minus its magic and empty sender. */
        memmove(buf.data + 10, buf.data + 10 + 8, buf.len - 18);
        buf.len -= 8;
        assert_int_equal(parse_bytes(buf.data, buf.len, &err), RELAY_PARSE_BAD);
        assert_string_equal(err.msg, "NUL byte in an envelope field");
        mr_buf_free(&buf);
    }
}

static void message_length_limit(void **state)
{
    mr_envelope env = sample_envelope();
    relay_request req;
    mr_buf buf;
    mr_err err;

    mr_buf_init(&buf, 4096);
    assert_int_equal(relay_request_encode(&buf, &env, 1001, &err), 0);
    assert_int_equal(relay_request_parse(buf.data, buf.len, 1000, &req, &err), RELAY_PARSE_BAD);
    assert_string_equal(err.msg, "message of 1001 bytes is over the limit of 1000");
    mr_buf_free(&buf);
}

static void answer_lines(void **state)
{
    char line[64];
    const char *text;
    int status;

    assert_int_equal(relay_response_format(line, sizeof line, 75, "4.4.1 a\nb"), 13);
    assert_string_equal(line, "75 4.4.1 a b\n");
    assert_int_equal(relay_response_parse(line, &status, &text), 0);
    assert_int_equal(status, 75);
    assert_string_equal(text, "4.4.1 a b");
    relay_response_format(line, 16, 0, "a very long text that is cut");
    assert_int_equal(strlen(line), 15);
    assert_int_equal(line[14], '\n');
    strcpy(line, "x ok\n");
    assert_int_equal(relay_response_parse(line, &status, &text), -1);
    strcpy(line, "999 ok\n");
    assert_int_equal(relay_response_parse(line, &status, &text), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(every_truncation_asks_for_more),
        cmocka_unit_test(hostile_headers_are_refused),
        cmocka_unit_test(message_length_limit),
        cmocka_unit_test(answer_lines),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
