/*
 * NAME
 *      mailrobot-ingest - hand one inbound message to Kafka for Postfix
 *
 * SYNOPSIS
 *      mailrobot-ingest [-C FILE] [-f SENDER] [-q QUEUE_ID] [-c CLIENT_ADDRESS]
 *              [-h HELO] [-s SASL_USERNAME] [-n CLIENT_HOSTNAME]
 *              [-p CLIENT_PROTOCOL] [-m SASL_METHOD] [-a SASL_SENDER]
 *              [-o ORIGINAL_RECIPIENT...] -- RECIPIENT...
 *      mailrobot-ingest [-C FILE]        (from an alias, envelope in the environment)
 *
 * DESCRIPTION
 *      Reads one message from standard input and has it published to the
 *      Kafka topic <topic_prefix>.inbound, one record per recipient (SPEC §3):
 *      the value is the message exactly as read, the key follows
 *      partition_by, the headers carry the envelope. It exits 0 only after
 *      Kafka has acknowledged every record (idempotent producer, acks=all).
 *
 *      Run it from Postfix's pipe(8) (master.cf, see docs/postfix.md) with
 *      the envelope on the command line, or from local(8) as an alias command,
 *      "|/usr/local/bin/mailrobot-ingest", where the envelope comes from the
 *      environment local(8) sets (RECIPIENT, SENDER, ORIGINAL_RECIPIENT,
 *      CLIENT_ADDRESS, CLIENT_HELO, CLIENT_HOSTNAME, CLIENT_PROTOCOL,
 *      SASL_USERNAME, SASL_METHOD, SASL_SENDER).
 *
 *      This program is deliberately small: it links no Kafka client. It
 *      passes the envelope and message to mailrobot-ingestd over the Unix
 *      socket ingestd_socket, waits for the daemon's answer (which comes
 *      once Kafka has acknowledged) and exits with it. Creating a Kafka
 *      producer, connecting and fetching metadata once per message would
 *      cost more CPU than Postfix itself spends on the message; the daemon
 *      pays that once. If no daemon listens (or ingestd_socket is empty),
 *      it runs "mailrobot-ingestd --direct" from its own directory with the
 *      same arguments and standard input, which publishes the message by
 *      itself. Either way the contract below holds.
 *
 * DIAGNOSTICS
 *      Postfix turns the command's output into the delivery status, and an
 *      enhanced status code at the start of the output overrides the exit
 *      status. So the ingest prints nothing on success and exactly one line on
 *      failure, always starting with the code that fits:
 *
 *      0   every record acknowledged.
 *      75  (EX_TEMPFAIL, Postfix defers and retries) "4.4.1 ..." Kafka
 *          unreachable, slow or failing, or the daemon went away; "4.3.5 ..."
 *          bad configuration or bad arguments; "4.3.0 ..." the message could
 *          not be read. An operator's mistake never bounces mail.
 *      65  (EX_DATAERR, Postfix bounces) "5.3.4 message too big ...": the
 *          message is larger than max_message_bytes. The only permanent
 *          failure, because it is the message's own fault.
 *
 *      JSON log lines go to log_file if it is set, and nowhere otherwise.
 *
 * CONFIGURATION PARAMETERS
 *      From -C FILE, $MAILROBOT_CONFIG or /etc/mailrobot/mailrobot.conf, each
 *      overridable by MAILROBOT_<KEY>: ingestd_socket, max_message_bytes,
 *      ingest_time_limit, log_level, log_file; and for the publishing side
 *      kafka_brokers, topic_prefix, partition_by, kafka.*
 *      (docs/configuration.md).
 *
 * SEE ALSO
 *      mailrobot-ingestd(8), pipe(8), local(8), docs/postfix.md, SPEC §3.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#include "mailrobot/buf.h"
#include "mailrobot/clock.h"
#include "mailrobot/config.h"
#include "mailrobot/envelope.h"
#include "mailrobot/log.h"

#include "relay_protocol.h"
#include "status.h"

#define DIRECT_PROGRAM "mailrobot-ingestd"
/* Beyond ingest_time_limit (which bounds the daemon's wait for Kafka),
 * time for the daemon to read the message and answer. */
#define RELAY_GRACE_MS 5000

extern char **environ;

/* Connects to the daemon's socket. Returns the fd, or -1 with errno set. */
static int relay_connect(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(path) >= sizeof addr.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    strcpy(addr.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        int saved = errno;

        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* Replaces this process with "mailrobot-ingestd --direct ARGS...", which
 * publishes the message itself. stdin has not been touched. */
__attribute__((noreturn))
static void run_direct(int argc, char **argv, const char *why)
{
    char self[PATH_MAX], program[PATH_MAX + 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    char **args = calloc((size_t)argc + 2, sizeof *args);
    char *slash;

    if (n < 0 || args == NULL)
        ingest_finish(EX_TEMPFAIL, "4.3.5", "mailrobot-ingest: cannot locate %s (%s)",
                      DIRECT_PROGRAM, why);
    self[n] = '\0';
    slash = strrchr(self, '/');
    *slash = '\0';
    snprintf(program, sizeof program, "%s/%s", self, DIRECT_PROGRAM);
    args[0] = DIRECT_PROGRAM;
    args[1] = "--direct";
    for (int i = 1; i < argc; i++)
        args[i + 1] = argv[i];
    execv(program, args);
    ingest_finish(EX_TEMPFAIL, "4.3.5", "mailrobot-ingest: %s; cannot run %s either: %s", why,
                  program, strerror(errno));
}

/* Waits until fd is ready for events or the deadline passes. */
static int wait_ready(int fd, short events, int64_t deadline, mr_err *err)
{
    for (;;) {
        struct pollfd pfd = {.fd = fd, .events = events};
        int64_t left = deadline - mr_monotonic_ms();
        int n;

        if (left <= 0)
            return mr_err_set(err, "mailrobot-ingestd did not answer within the time limit");
        n = poll(&pfd, 1, (int)(left > INT_MAX ? INT_MAX : left));
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return mr_err_set(err, "poll: %s", strerror(errno));
    }
}

/* Writes both parts of the request, bounded by deadline (the socket is
 * non-blocking: a daemon that stops reading cannot hold us forever). */
static int write_request(int fd, const mr_buf *header, const mr_buf *message, int64_t deadline,
                         mr_err *err)
{
    struct iovec iov[2] = {{header->data, header->len}, {message->data, message->len}};
    int first = 0, count = message->len ? 2 : 1;

    while (first < count) {
        ssize_t n = writev(fd, iov + first, count - first);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            if (wait_ready(fd, POLLOUT, deadline, err) < 0)
                return -1;
            continue;
        }
        if (n < 0)
            return mr_err_set(err, "write: %s", strerror(errno));
        while (first < count && (size_t)n >= iov[first].iov_len)
            n -= (ssize_t)iov[first++].iov_len;
        if (first < count) {
            iov[first].iov_base = (char *)iov[first].iov_base + n;
            iov[first].iov_len -= (size_t)n;
        }
    }
    return 0;
}

/* Reads the daemon's one-line answer, waiting at most until deadline. */
static int read_answer(int fd, int64_t deadline, char *line, size_t size, mr_err *err)
{
    size_t len = 0;

    while (len + 1 < size) {
        ssize_t n;

        if (wait_ready(fd, POLLIN, deadline, err) < 0)
            return -1;
        n = read(fd, line + len, size - 1 - len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0)
            return mr_err_set(err, "read: %s", strerror(errno));
        if (n == 0)
            return mr_err_set(err, "mailrobot-ingestd closed the connection without an answer");
        len += (size_t)n;
        line[len] = '\0';
        if (memchr(line, '\n', len) != NULL)
            return 0;
    }
    return mr_err_set(err, "answer from mailrobot-ingestd too long");
}

int main(int argc, char **argv)
{
    mr_ingest_args args;
    mr_config cfg;
    mr_buf message, header;
    mr_err err;
    char answer[RELAY_RESPONSE_LIMIT];
    const char *text;
    int fd, status;
    int64_t deadline;

    signal(SIGPIPE, SIG_IGN);
    if (mr_ingest_args_parse(&args, argc, argv, environ, &err) < 0)
        ingest_finish(EX_TEMPFAIL, "4.3.5", "mailrobot-ingest: bad arguments: %s", err.msg);
    if (mr_config_load(&cfg, args.config_path, environ, &err) < 0)
        ingest_finish(EX_TEMPFAIL, "4.3.5", "mailrobot-ingest: configuration error: %s",
                      err.msg);
    if (cfg.ingestd_socket[0] == '\0')
        run_direct(argc, argv, "no ingestd_socket configured");
    fd = relay_connect(cfg.ingestd_socket);
    if (fd < 0) {
        char why[MR_ERR_MAX];

        snprintf(why, sizeof why, "mailrobot-ingestd not reachable at %s: %s",
                 cfg.ingestd_socket, strerror(errno));
        run_direct(argc, argv, why);
    }

    mr_buf_init(&message, (size_t)cfg.max_message_bytes);
    switch (mr_buf_read_fd(&message, STDIN_FILENO, &err)) {
    case MR_READ_OK:
        break;
    case MR_READ_TOO_BIG:
        ingest_finish(EX_DATAERR, "5.3.4", "message too big: larger than %llu bytes",
                      (unsigned long long)cfg.max_message_bytes);
    case MR_READ_ERROR:
        ingest_finish(EX_TEMPFAIL, "4.3.0", "mailrobot-ingest: cannot read the message: %s",
                      err.msg);
    }

    mr_buf_init(&header, 1 << 22);
    if (relay_request_encode(&header, &args.envelope, message.len, &err) < 0)
        ingest_finish(EX_TEMPFAIL, "4.3.5", "mailrobot-ingest: bad envelope: %s", err.msg);
    deadline = mr_monotonic_ms() + cfg.ingest_time_limit + RELAY_GRACE_MS;
    if (write_request(fd, &header, &message, deadline, &err) < 0
        || read_answer(fd, deadline, answer, sizeof answer, &err) < 0)
        ingest_finish(EX_TEMPFAIL, "4.4.1", "mailrobot-ingest: handing the message to "
                      "mailrobot-ingestd failed: %s", err.msg);
    if (relay_response_parse(answer, &status, &text) < 0)
        ingest_finish(EX_TEMPFAIL, "4.4.1", "mailrobot-ingest: malformed answer from "
                      "mailrobot-ingestd");
    if (status != EX_OK)
        ingest_finish(status, NULL, "%s", text);
    close(fd);
    mr_buf_free(&header);
    mr_buf_free(&message);
    mr_ingest_args_free(&args);
    mr_config_free(&cfg);
    return EX_OK;
}
