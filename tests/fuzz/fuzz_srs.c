/*
 * fuzz_srs.c - libFuzzer target: SRS (srs.h) on arbitrary addresses. The
 * first byte is a number of days (the clock of the reverse), the rest the
 * address, cut at a NUL.
 *
 * Checks: mr_srs_reverse never grows its input and yields printable ASCII;
 * whatever mr_srs_forward makes is printable, bounded, at the SRS domain
 * (or the sender itself), and mr_srs_reverse takes it back: to the sender
 * exactly, or for SRS0 senders to the sender with its tag as "SRS0", or for
 * SRS1 senders to an SRS0 address.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mailrobot/srs.h"

#define SECRET "fuzz-secret-0123456789"
#define DOMAIN "srs.example.net"
#define NOW 1700000000LL

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void assert_printable(const char *s)
{
    for (; *s != '\0'; s++)
        assert(*s > 0x20 && *s < 0x7f);
}

static int has_tag(const char *s, char which)
{
    return strlen(s) >= 5 && (s[0] | 0x20) == 's' && (s[1] | 0x20) == 'r' && (s[2] | 0x20) == 's'
           && s[3] == which && strchr("=+-", s[4]) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char input[MR_SRS_ADDRESS_MAX + 64], made[MR_SRS_ADDRESS_MAX + 1];
    char back[MR_SRS_ADDRESS_MAX + 1];
    int64_t later;
    mr_err err;
    size_t n;

    if (size == 0)
        return 0;
    later = NOW + (int64_t)data[0] * 86400;
    n = size - 1 < sizeof input - 1 ? size - 1 : sizeof input - 1;
    memcpy(input, data + 1, n);
    input[n] = '\0';

    if (mr_srs_reverse(SECRET, input, later, 0, back, sizeof back, &err) == 0) {
        assert(strlen(back) < strlen(input));
        assert_printable(back);
    } else {
        assert(back[0] == '\0' && err.msg[0] != '\0');
    }

    if (mr_srs_forward(SECRET, DOMAIN, input, NOW, made, sizeof made, &err) < 0) {
        assert(made[0] == '\0' && err.msg[0] != '\0');
        return 0;
    }
    assert(strlen(made) <= MR_SRS_ADDRESS_MAX);
    assert_printable(made);
    if (strcmp(made, input) == 0)
        return 0;   /* "" or already at the SRS domain */
    assert(strlen(made) > strlen(DOMAIN) + 1
           && strcmp(made + strlen(made) - strlen(DOMAIN) - 1, "@" DOMAIN) == 0);
    if (mr_srs_reverse(SECRET, made, NOW + 21 * 86400, 0, back, sizeof back, &err) != 0)
        assert(!"forward made what reverse refuses");
    if (has_tag(input, '1')) {
        assert(strncmp(back, "SRS0", 4) == 0);
    } else if (has_tag(input, '0')) {
        assert(strncmp(back, "SRS0", 4) == 0 && strcmp(back + 4, input + 4) == 0);
    } else {
        assert(strcmp(back, input) == 0);
    }
    return 0;
}
