/*
 * listen.c - "host:port" values of listening keys (listen.h).
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mailrobot/listen.h"

int mr_listen_ipv4(const char *key, const char *text, struct sockaddr_in *addr, mr_err *err)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    long port;
    char *end;

    if (colon == NULL || (size_t)(colon - text) >= sizeof host)
        return mr_err_set(err, "%s '%s': expected host:port", key, text);
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    port = strtol(colon + 1, &end, 10);
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_port = htons((uint16_t)port);
    if (*end || colon[1] == '\0' || port < 0 || port > 65535
        || inet_pton(AF_INET, host, &addr->sin_addr) != 1)
        return mr_err_set(err, "%s '%s': expected an IPv4 address and port", key, text);
    return 0;
}
