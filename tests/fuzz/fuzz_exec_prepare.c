/*
 * fuzz_exec_prepare.c - libFuzzer target: what an exec robot's command is
 * given (exec_prepare.h) when the envelope and the message are hostile.
 * The input is split at the first two NUL bytes into sender, recipient and
 * message. Checks: the environment holds only censored values (no byte a
 * shell would interpret), stdin is local(8)'s framing followed by the
 * message, and the buffer limit holds.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "exec_prepare.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char censor_ok[] = "1234567890!@%-_=+:,./"
                                "abcdefghijklmnopqrstuvwxyz"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

static void check_environment(const exec_envelope *e)
{
    mr_err err;
    exec_strings env = exec_environment(e, "/var/lib/r", "/bin/sh", "", NULL, &err);

    assert(env != NULL);
    for (size_t i = 0; env[i]; i++) {
        const char *eq = strchr(env[i], '=');

        assert(eq != NULL);
        for (const char *p = eq + 1; *p; p++)
            assert(strchr(censor_ok, *p) != NULL);
    }
    free(env);
}

static void check_input(const exec_envelope *e, const uint8_t *msg, size_t len)
{
    mr_buf out;
    mr_err err;

    mr_buf_init(&out, len + 4096);
    if (exec_input(e, msg, len, &out, &err) == 0) {
        assert(out.len >= 5 && memcmp(out.data, "From ", 5) == 0);
        assert(out.len == 0 || out.data[out.len - 1] == '\n' || len == 0);
        assert(out.len <= out.limit);
    }
    mr_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char fields[2][512];
    size_t pos = 0;
    exec_envelope e;

    for (int f = 0; f < 2; f++) {
        size_t n = 0;

        while (pos < size && data[pos] != '\0' && n + 1 < sizeof fields[f])
            fields[f][n++] = (char)data[pos++];
        fields[f][n] = '\0';
        if (pos < size)
            pos++;
    }
    memset(&e, 0, sizeof e);
    e.sender = fields[0];
    e.recipient = fields[1];
    e.original_recipient = fields[1];
    e.client_helo = fields[0];
    check_environment(&e);
    check_input(&e, data + pos, size - pos);
    return 0;
}
