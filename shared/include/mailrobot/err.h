/*
 * err.h - the one error type of libmailrobot.
 *
 * Functions that can fail take an `mr_err *` as their last argument, return
 * -1 (or NULL) on failure and leave a one-line, human readable message in it
 * that says what failed and where ("mailrobot.conf:12: unknown key 'foo'").
 * They never print; only a program's main() decides what to show and how to
 * exit. An `mr_err` lives on the caller's stack; it owns no memory.
 */
#ifndef MAILROBOT_ERR_H
#define MAILROBOT_ERR_H

#include <stddef.h>

#define MR_ERR_MAX 512

typedef struct mr_err {
    char msg[MR_ERR_MAX];
} mr_err;

/* Formats a message into err (if err is not NULL) and returns -1, so that
 * failing paths read `return mr_err_set(err, "...", ...);`. */
int mr_err_set(mr_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prefixes the message already in err with "prefix: ". Returns -1. */
int mr_err_prefix(mr_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
