/*
 * test_buf.c - the bounded buffer (buf.h), including reading a stream
 * that is larger than the limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mailrobot/buf.h"

static void append_respects_limit(void **state)
{
    mr_buf b;
    mr_err err;

    mr_buf_init(&b, 10);
    assert_int_equal(mr_buf_append(&b, "hello", 5, &err), 0);
    assert_int_equal(mr_buf_append(&b, "world", 5, &err), 0);
    assert_int_equal(b.len, 10);
    assert_memory_equal(b.data, "helloworld", 10);
    assert_int_equal(b.data[10], '\0');
    assert_int_equal(mr_buf_append(&b, "!", 1, &err), -1);
    assert_string_equal(err.msg, "buffer limit of 10 bytes reached");
    assert_int_equal(b.len, 10);
    assert_true(b.cap <= 10);
    mr_buf_free(&b);
}

static void printf_and_nul_bytes(void **state)
{
    mr_buf b;
    mr_err err;

    mr_buf_init(&b, 1 << 20);
    assert_int_equal(mr_buf_append(&b, "a\0b", 3, &err), 0);
    assert_int_equal(mr_buf_printf(&b, &err, "%d-%s", 42, "x"), 0);
    assert_int_equal(b.len, 7);
    assert_memory_equal(b.data, "a\0b42-x", 7);
    mr_buf_reset(&b);
    assert_int_equal(b.len, 0);
    mr_buf_free(&b);
}

/* Writes n bytes of a pattern into a pipe from a child process. */
static int pipe_with(size_t n)
{
    int fds[2];

    assert_int_equal(pipe(fds), 0);
    if (fork() == 0) {
        char chunk[4096];

        close(fds[0]);
        for (size_t i = 0; i < sizeof chunk; i++)
            chunk[i] = (char)(i * 7);
        while (n > 0) {
            size_t k = n < sizeof chunk ? n : sizeof chunk;
            ssize_t w = write(fds[1], chunk, k);

            if (w <= 0)
                _exit(0);
            n -= (size_t)w;
        }
        _exit(0);
    }
    close(fds[1]);
    return fds[0];
}

static void read_fd_exactly_at_limit(void **state)
{
    mr_buf b;
    mr_err err;
    int fd = pipe_with(100000);

    mr_buf_init(&b, 100000);
    assert_int_equal(mr_buf_read_fd(&b, fd, &err), MR_READ_OK);
    assert_int_equal(b.len, 100000);
    assert_int_equal((unsigned char)b.data[4097], (unsigned char)(char)(1 * 7));
    close(fd);
    mr_buf_free(&b);
}

static void read_fd_over_limit_stops(void **state)
{
    mr_buf b;
    mr_err err;
    int fd = pipe_with(300000);

    mr_buf_init(&b, 100000);
    assert_int_equal(mr_buf_read_fd(&b, fd, &err), MR_READ_TOO_BIG);
    assert_int_equal(b.len, 100000);
    assert_true(b.cap <= 100000);
    close(fd);
    mr_buf_free(&b);
}

static void read_fd_empty(void **state)
{
    mr_buf b;
    mr_err err;
    int fd = pipe_with(0);

    mr_buf_init(&b, 100);
    assert_int_equal(mr_buf_read_fd(&b, fd, &err), MR_READ_OK);
    assert_int_equal(b.len, 0);
    close(fd);
    mr_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(append_respects_limit),
        cmocka_unit_test(printf_and_nul_bytes),
        cmocka_unit_test(read_fd_exactly_at_limit),
        cmocka_unit_test(read_fd_over_limit_stops),
        cmocka_unit_test(read_fd_empty),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
