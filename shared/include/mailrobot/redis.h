/*
 * redis.h - where Redis is and how to reach it synchronously (for
 * mailrobotctl; the worker uses hiredis' async API on the same address).
 *
 * redis_url forms: redis://[:password@]host[:port][/db] (port 6379, db 0
 * by default) and unix:/path/to/socket[?db=N].
 */
#ifndef MAILROBOT_REDIS_H
#define MAILROBOT_REDIS_H

#include <stdarg.h>

#include <hiredis/hiredis.h>

#include "mailrobot/config.h"
#include "mailrobot/err.h"

typedef struct mr_redis_address {
    char host[256];       /* "" for a Unix socket */
    int port;
    char path[256];       /* Unix socket path, or "" */
    char password[256];   /* "" for none */
    int db;
} mr_redis_address;

/* Parses a redis_url. Returns 0, or -1 with the reason in err. */
int mr_redis_address_parse(const char *url, mr_redis_address *addr, mr_err *err);

/* Connects (bounded by redis_time_limit, which also becomes the command
 * timeout), authenticates and selects the database. Returns the context
 * or NULL with "redis at URL: reason" in err. */
redisContext *mr_redis_connect(const mr_config *cfg, mr_err *err);

/* Runs a command (printf-like, hiredis format) and returns its reply, or
 * NULL with the reason in err; a reply of type error is turned into NULL
 * and err too. Free with freeReplyObject(). */
redisReply *mr_redis_command(redisContext *c, mr_err *err, const char *fmt, ...);
redisReply *mr_redis_vcommand(redisContext *c, mr_err *err, const char *fmt, va_list ap);

#endif
