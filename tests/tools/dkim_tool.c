/*
 * dkim_tool.c - dkim.h from the command line, for the dkimpy oracle
 * (tests/mime/test_dkim.py); not installed.
 *
 *   dkim_tool SPEC FILE
 *
 * SPEC is a dkim_keys value ("domain:selector:/path/key.pem ..."), FILE
 * an RFC 5322 message. Writes the message to standard output, preceded by
 * its DKIM-Signature field when a key matches its From domain. Exit status
 * 0; 1 with the error on standard error; 2 on bad usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailrobot/buf.h"
#include "mailrobot/dkim.h"

#define MESSAGE_LIMIT (64 * 1024 * 1024)

static int read_message(const char *path, mr_buf *buf, mr_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    mr_read_status status;

    if (fd < 0)
        return mr_err_set(err, "%s: %s", path, strerror(errno));
    status = mr_buf_read_fd(buf, fd, err);
    close(fd);
    if (status == MR_READ_TOO_BIG)
        return mr_err_set(err, "%s: larger than %d bytes", path, MESSAGE_LIMIT);
    return status == MR_READ_OK ? 0 : mr_err_prefix(err, "%s", path);
}

static int sign_file(const char *spec, const char *path, mr_err *err)
{
    mr_dkim *dkim = NULL;
    mr_buf message;
    char *header = NULL;
    int rc;

    mr_buf_init(&message, MESSAGE_LIMIT);
    rc = mr_dkim_load(spec, &dkim, err);
    if (rc == 0)
        rc = read_message(path, &message, err);
    if (rc == 0)
        rc = mr_dkim_sign(dkim, message.data, message.len, &header, err);
    if (rc == 0 && ((header != NULL && fputs(header, stdout) == EOF)
                    || fwrite(message.data, 1, message.len, stdout) != message.len
                    || fflush(stdout) != 0))
        rc = mr_err_set(err, "standard output: %s", strerror(errno));
    free(header);
    mr_buf_free(&message);
    mr_dkim_free(dkim);
    return rc;
}

int main(int argc, char **argv)
{
    mr_err err;

    if (argc != 3) {
        fprintf(stderr, "usage: dkim_tool SPEC FILE\n");
        return 2;
    }
    if (sign_file(argv[1], argv[2], &err) < 0) {
        fprintf(stderr, "dkim_tool: %s\n", err.msg);
        return 1;
    }
    return 0;
}
