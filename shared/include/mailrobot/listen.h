/*
 * listen.h - "host:port" values of listening keys (worker_http_listen,
 * admind_listen): an IPv4 address and a port.
 */
#ifndef MAILROBOT_LISTEN_H
#define MAILROBOT_LISTEN_H

#include <netinet/in.h>

#include "mailrobot/err.h"

/* Parses text (the value of config key `key`) into addr. Returns 0, or -1
 * with "<key> '<text>': expected ..." in err. */
int mr_listen_ipv4(const char *key, const char *text, struct sockaddr_in *addr, mr_err *err);

#endif
