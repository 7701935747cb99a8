/*
 * buf.c - growable byte buffer with a hard limit (see buf.h).
 *
 * Growth doubles the capacity, starting at 4 KiB, and is clamped to the
 * limit: reading a 20 MiB message costs about a dozen reallocations and at
 * most the limit plus one byte of memory.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailrobot/buf.h"

#define MR_BUF_MIN_CAP 4096

void mr_buf_init(mr_buf *buf, size_t limit)
{
    buf->data = NULL;
    buf->len = 0;
    buf->cap = 0;
    buf->limit = limit;
}

int mr_buf_reserve(mr_buf *buf, size_t need, mr_err *err)
{
    size_t cap;
    unsigned char *grown;

    if (need <= buf->cap)
        return 0;
    if (need > buf->limit)
        return mr_err_set(err, "buffer limit of %zu bytes reached", buf->limit);
    cap = buf->cap ? buf->cap : MR_BUF_MIN_CAP;
    if (cap > buf->limit)
        cap = buf->limit;
    while (cap < need)
        cap = cap > buf->limit / 2 ? buf->limit : cap * 2;
    grown = realloc(buf->data, cap + 1);
    if (grown == NULL)
        return mr_err_set(err, "out of memory growing a buffer to %zu bytes", cap);
    buf->data = grown;
    buf->cap = cap;
    buf->data[buf->len] = '\0';
    return 0;
}

int mr_buf_append(mr_buf *buf, const void *bytes, size_t n, mr_err *err)
{
    if (n == 0)
        return 0;
    if (n > buf->limit - buf->len)
        return mr_err_set(err, "buffer limit of %zu bytes reached", buf->limit);
    if (mr_buf_reserve(buf, buf->len + n, err) < 0)
        return -1;
    if (n > 0)
        memcpy(buf->data + buf->len, bytes, n);
    buf->len += n;
    buf->data[buf->len] = '\0';
    return 0;
}

int mr_buf_append_str(mr_buf *buf, const char *s, mr_err *err)
{
    return mr_buf_append(buf, s, strlen(s), err);
}

int mr_buf_printf(mr_buf *buf, mr_err *err, const char *fmt, ...)
{
    va_list ap;
    int n;
    size_t room;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return mr_err_set(err, "bad format string");
    if ((size_t)n > buf->limit - buf->len)
        return mr_err_set(err, "buffer limit of %zu bytes reached", buf->limit);
    if (mr_buf_reserve(buf, buf->len + (size_t)n, err) < 0)
        return -1;
    room = buf->cap - buf->len + 1;
    va_start(ap, fmt);
    vsnprintf((char *)buf->data + buf->len, room, fmt, ap);
    va_end(ap);
    buf->len += (size_t)n;
    return 0;
}

mr_read_status mr_buf_read_fd(mr_buf *buf, int fd, mr_err *err)
{
    for (;;) {
        ssize_t got;
        size_t room;

        if (buf->len == buf->cap) {
            if (buf->len == buf->limit) {
                unsigned char probe;

                /* Full: one more byte means the input is over the limit. */
                do
                    got = read(fd, &probe, 1);
                while (got < 0 && errno == EINTR);
                if (got < 0)
                    return mr_err_set(err, "read: %s", strerror(errno)), MR_READ_ERROR;
                return got == 0 ? MR_READ_OK : MR_READ_TOO_BIG;
            }
            if (mr_buf_reserve(buf, buf->len + 1, err) < 0)
                return MR_READ_ERROR;
        }
        room = buf->cap - buf->len;
        got = read(fd, buf->data + buf->len, room);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return mr_err_set(err, "read: %s", strerror(errno)), MR_READ_ERROR;
        }
        if (got == 0)
            return MR_READ_OK;
        buf->len += (size_t)got;
        buf->data[buf->len] = '\0';
    }
}

void mr_buf_reset(mr_buf *buf)
{
    buf->len = 0;
    if (buf->data != NULL)
        buf->data[0] = '\0';
}

void mr_buf_free(mr_buf *buf)
{
    free(buf->data);
    mr_buf_init(buf, buf->limit);
}
