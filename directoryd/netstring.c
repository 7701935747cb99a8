/*
 * netstring.c - netstrings and socketmap requests and replies (netstring.h).
 */
#include <stdio.h>
#include <string.h>

#include "netstring.h"

#define SOCKMAP_NAME_MAX 64

netstring_status netstring_parse(const char *buf, size_t len, size_t limit,
                                 const char **payload, size_t *payload_len, size_t *consumed)
{
    size_t n = 0, i = 0;

    while (i < len && buf[i] >= '0' && buf[i] <= '9') {
        if (i == NETSTRING_DIGITS_MAX)
            return NETSTRING_TOO_LONG;
        if (i == 1 && buf[0] == '0')
            return NETSTRING_BAD;      /* leading zero */
        n = n * 10 + (size_t)(buf[i] - '0');
        i++;
        if (n > limit)
            return NETSTRING_TOO_LONG;
    }
    if (i == len)
        return NETSTRING_INCOMPLETE;
    if (i == 0 || buf[i] != ':')
        return NETSTRING_BAD;
    i++;
    if (len - i < n + 1)
        return NETSTRING_INCOMPLETE;
    if (buf[i + n] != ',')
        return NETSTRING_BAD;
    *payload = buf + i;
    *payload_len = n;
    *consumed = i + n + 1;
    return NETSTRING_OK;
}

size_t netstring_encode(char *out, size_t outsz, const char *data, size_t len)
{
    char prefix[24];
    int plen = snprintf(prefix, sizeof prefix, "%zu:", len);
    size_t total = (size_t)plen + len + 1;

    if (total >= outsz)
        return total;
    memcpy(out, prefix, (size_t)plen);
    if (len > 0)
        memcpy(out + plen, data, len);
    out[total - 1] = ',';
    out[total] = '\0';
    return total;
}

int sockmap_request_split(const char *payload, size_t len, const char **name,
                          size_t *name_len, const char **key, size_t *key_len)
{
    const char *space = memchr(payload, ' ', len);
    size_t n;

    if (space == NULL)
        return -1;
    n = (size_t)(space - payload);
    if (n == 0 || n > SOCKMAP_NAME_MAX || len - n - 1 == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char c = payload[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return -1;
    }
    if (memchr(space + 1, '\0', len - n - 1) != NULL)
        return -1;
    *name = payload;
    *name_len = n;
    *key = space + 1;
    *key_len = len - n - 1;
    return 0;
}

size_t sockmap_reply_format(char *out, size_t outsz, size_t max_payload, const char *status,
                            const char *data)
{
    size_t slen = strlen(status), dlen = strlen(data), plen, total;
    char prefix[24];
    int n;

    if (slen + 1 > max_payload)
        return (size_t)-1 / 2;         /* cannot fit: "out too small" */
    if (dlen > max_payload - slen - 1)
        dlen = max_payload - slen - 1;
    plen = slen + 1 + dlen;
    n = snprintf(prefix, sizeof prefix, "%zu:", plen);
    total = (size_t)n + plen + 1;
    if (total >= outsz)
        return total;
    memcpy(out, prefix, (size_t)n);
    memcpy(out + n, status, slen);
    out[n + slen] = ' ';
    memcpy(out + n + slen + 1, data, dlen);
    out[total - 1] = ',';
    out[total] = '\0';
    return total;
}
