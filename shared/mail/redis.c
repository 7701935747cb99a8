/*
 * redis.c - Redis addresses and synchronous connections (see redis.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailrobot/redis.h"

static int copy_bounded(char *out, size_t outsz, const char *start, size_t n)
{
    if (n >= outsz)
        return -1;
    memcpy(out, start, n);
    out[n] = '\0';
    return 0;
}

static int parse_unix(const char *rest, mr_redis_address *addr, mr_err *err, const char *url)
{
    const char *q = strchr(rest, '?');
    size_t n = q ? (size_t)(q - rest) : strlen(rest);

    if (n == 0 || copy_bounded(addr->path, sizeof addr->path, rest, n) < 0)
        return mr_err_set(err, "bad redis_url '%s': empty or overlong socket path", url);
    if (q != NULL) {
        char *end;

        if (strncmp(q, "?db=", 4) != 0 || (addr->db = (int)strtol(q + 4, &end, 10), *end)
            || addr->db < 0)
            return mr_err_set(err, "bad redis_url '%s': expected ?db=N", url);
    }
    return 0;
}

int mr_redis_address_parse(const char *url, mr_redis_address *addr, mr_err *err)
{
    const char *p, *at, *slash, *colon;
    char *end;

    memset(addr, 0, sizeof *addr);
    addr->port = 6379;
    if (strncmp(url, "unix:", 5) == 0)
        return parse_unix(url + 5, addr, err, url);
    if (strncmp(url, "redis://", 8) != 0)
        return mr_err_set(err, "bad redis_url '%s': expected redis://host[:port][/db] "
                               "or unix:/path", url);
    p = url + 8;
    slash = strchr(p, '/');
    at = memchr(p, '@', slash ? (size_t)(slash - p) : strlen(p));
    if (at != NULL) {
        const char *pw = memchr(p, ':', (size_t)(at - p));

        if (pw == NULL || copy_bounded(addr->password, sizeof addr->password, pw + 1,
                                       (size_t)(at - pw - 1)) < 0)
            return mr_err_set(err, "bad redis_url: expected redis://:password@host");
        p = at + 1;
    }
    colon = memchr(p, ':', slash ? (size_t)(slash - p) : strlen(p));
    if (copy_bounded(addr->host, sizeof addr->host, p,
                     colon ? (size_t)(colon - p) : slash ? (size_t)(slash - p) : strlen(p)) < 0
        || addr->host[0] == '\0')
        return mr_err_set(err, "bad redis_url '%s': no host", url);
    if (colon != NULL) {
        addr->port = (int)strtol(colon + 1, &end, 10);
        if (end == colon + 1 || (*end && *end != '/') || addr->port <= 0 || addr->port > 65535)
            return mr_err_set(err, "bad redis_url '%s': bad port", url);
    }
    if (slash != NULL && slash[1] != '\0') {
        addr->db = (int)strtol(slash + 1, &end, 10);
        if (*end || addr->db < 0)
            return mr_err_set(err, "bad redis_url '%s': bad database number", url);
    }
    return 0;
}

redisReply *mr_redis_command(redisContext *c, mr_err *err, const char *fmt, ...)
{
    redisReply *reply;
    va_list ap;

    va_start(ap, fmt);
    reply = mr_redis_vcommand(c, err, fmt, ap);
    va_end(ap);
    return reply;
}

redisReply *mr_redis_vcommand(redisContext *c, mr_err *err, const char *fmt, va_list ap)
{
    redisReply *reply = redisvCommand(c, fmt, ap);

    if (reply == NULL) {
        mr_err_set(err, "redis: %s", c->errstr[0] ? c->errstr : "no reply");
        return NULL;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        mr_err_set(err, "redis: %s", reply->str);
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

redisContext *mr_redis_connect(const mr_config *cfg, mr_err *err)
{
    struct timeval tv = {cfg->redis_time_limit / 1000, (cfg->redis_time_limit % 1000) * 1000};
    mr_redis_address addr;
    redisContext *c;
    redisReply *reply;

    if (mr_redis_address_parse(cfg->redis_url, &addr, err) < 0)
        return NULL;
    c = addr.path[0] ? redisConnectUnixWithTimeout(addr.path, tv)
                     : redisConnectWithTimeout(addr.host, addr.port, tv);
    if (c == NULL || c->err) {
        mr_err_set(err, "redis at %s: %s", cfg->redis_url, c ? c->errstr : "out of memory");
        if (c)
            redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (addr.password[0] && (reply = mr_redis_command(c, err, "AUTH %s", addr.password)) == NULL)
        goto fail;
    if (addr.password[0])
        freeReplyObject(reply);
    if (addr.db && (reply = mr_redis_command(c, err, "SELECT %d", addr.db)) == NULL)
        goto fail;
    if (addr.db)
        freeReplyObject(reply);
    return c;
fail:
    mr_err_prefix(err, "redis at %s", cfg->redis_url);
    redisFree(c);
    return NULL;
}
