/*
 * buf.h - a growable byte buffer with a hard size limit.
 *
 * The one buffer type of libmailrobot. Every buffer that holds untrusted
 * input has a limit chosen by configuration; appending past it fails
 * instead of growing, so no input can make a process use unbounded memory.
 * The data is always followed by one NUL byte (not counted in len), so text
 * can be used as a C string, but the contents may hold NUL bytes too.
 *
 * Not thread-safe; a buffer belongs to one owner.
 */
#ifndef MAILROBOT_BUF_H
#define MAILROBOT_BUF_H

#include <stddef.h>

#include "mailrobot/err.h"

typedef struct mr_buf {
    unsigned char *data; /* NULL until the first append */
    size_t len;          /* bytes in use */
    size_t cap;          /* bytes allocated (excluding the NUL) */
    size_t limit;        /* len never exceeds this */
} mr_buf;

/* Result of mr_buf_read_fd(). */
typedef enum mr_read_status {
    MR_READ_OK = 0,      /* read to end of file */
    MR_READ_TOO_BIG = 1, /* more than limit bytes were offered */
    MR_READ_ERROR = -1   /* read(2) or allocation failed; see err */
} mr_read_status;

/* Initialises an empty buffer that will hold at most limit bytes. */
void mr_buf_init(mr_buf *buf, size_t limit);

/* Makes room for at least need bytes in total. Returns 0, or -1 when need
 * exceeds the limit or memory runs out. */
int mr_buf_reserve(mr_buf *buf, size_t need, mr_err *err);

/* Appends n bytes. Returns 0, or -1 (limit reached or out of memory). */
int mr_buf_append(mr_buf *buf, const void *bytes, size_t n, mr_err *err);

/* Appends a NUL-terminated string (without its NUL). */
int mr_buf_append_str(mr_buf *buf, const char *s, mr_err *err);

/* Appends printf-formatted text. */
int mr_buf_printf(mr_buf *buf, mr_err *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reads fd to end of file into the buffer, growing it geometrically up to
 * its limit. Stops reading (MR_READ_TOO_BIG) as soon as one byte more than
 * the limit is available; the buffer then holds limit bytes. Retries on
 * EINTR. */
mr_read_status mr_buf_read_fd(mr_buf *buf, int fd, mr_err *err);

/* Empties the buffer, keeping its memory. */
void mr_buf_reset(mr_buf *buf);

/* Frees the memory; the buffer is empty and reusable afterwards. */
void mr_buf_free(mr_buf *buf);

#endif
