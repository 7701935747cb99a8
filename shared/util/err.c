/*
 * err.c - formatting of mr_err messages (see err.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "mailrobot/err.h"

int mr_err_set(mr_err *err, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL)
        return -1;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return -1;
}

int mr_err_prefix(mr_err *err, const char *fmt, ...)
{
    char old[MR_ERR_MAX];
    va_list ap;
    int n;

    if (err == NULL)
        return -1;
    memcpy(old, err->msg, sizeof old);
    va_start(ap, fmt);
    n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof err->msg)
        snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", old);
    return -1;
}
