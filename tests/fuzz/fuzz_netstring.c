/*
 * fuzz_netstring.c - libFuzzer target: what arrives on
 * mailrobot-directoryd's socket (directoryd/netstring.h). Whatever the
 * bytes, every netstring parsed stays inside the input and re-encodes to
 * the same bytes, a split request's parts are inside the payload, and a
 * reply of any data is itself a netstring no longer than asked.
 */
#include <assert.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "netstring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *payload, *name, *key, *p;
    size_t off = 0, plen, used, nlen, klen, n, plen2, used2;
    static char out[70000];
    char text[256];

    while (off < size) {
        netstring_status st = netstring_parse(in + off, size - off, 1024, &payload, &plen, &used);

        if (st != NETSTRING_OK)
            break;
        assert(used <= size - off && plen <= 1024 && payload + plen < in + off + used);
        n = netstring_encode(out, sizeof out, payload, plen);
        assert(n == used && memcmp(out, in + off, used) == 0);
        if (sockmap_request_split(payload, plen, &name, &nlen, &key, &klen) == 0) {
            assert(name == payload && nlen >= 1 && key == name + nlen + 1);
            assert(key + klen == payload + plen && klen >= 1);
            assert(memchr(key, '\0', klen) == NULL);
        }
        off += used;
    }
    /* Replies: any (NUL-free) data, any cut. */
    n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    n = sockmap_reply_format(out, sizeof out, 5 + (size % 300), "TEMP", text);
    assert(n < sizeof out);
    assert(netstring_parse(out, n, 1 << 20, &p, &plen2, &used2) == NETSTRING_OK);
    assert(used2 == n && plen2 <= 5 + (size % 300) && memcmp(p, "TEMP ", 5) == 0);
    return 0;
}
