/*
 * fuzz_thread_root.c - libFuzzer target: the ingest's header scan for the
 * conversation root (message_ids.h) on arbitrary bytes. Checks that the
 * result is bounded, NUL-terminated and printable ASCII without blanks.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mailrobot/message_ids.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char out[MR_MSGID_MAX + 1];
    size_t n = mr_thread_root(data, size, out, sizeof out);

    assert(n <= MR_MSGID_MAX);
    assert(strlen(out) == n);
    for (size_t i = 0; i < n; i++)
        assert(out[i] > 0x20 && out[i] < 0x7f);
    return 0;
}
