/*
 * fuzz_relay_request.c - libFuzzer target: mailrobot-ingestd's decoder of
 * what arrives on its socket (relay_protocol.h). Whatever the bytes, the
 * parse ends in OK (with a consistent, NUL-free envelope), MORE or BAD
 * with a message; nothing leaks or overreads.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "relay_protocol.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    relay_request req;
    mr_err err;
    relay_parse_status st;

    err.msg[0] = '\0';
    st = relay_request_parse(data, size, 1 << 20, &req, &err);
    if (st == RELAY_PARSE_BAD)
        assert(err.msg[0] != '\0');
    if (st != RELAY_PARSE_OK)
        return 0;
    assert(req.header_len <= size);
    assert(req.message_len <= (1 << 20));
    assert(req.envelope.recipient_count >= 1);
    for (size_t i = 0; i < req.envelope.recipient_count; i++) {
        assert(req.envelope.recipients[i][0] != '\0');
        assert(strlen(req.envelope.original_recipients[i]) <= 2048);
    }
    relay_request_free(&req);
    return 0;
}
