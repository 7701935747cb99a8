/*
 * NAME
 *      mailrobot-ingestd - publish inbound mail to Kafka for mailrobot-ingest
 *
 * SYNOPSIS
 *      mailrobot-ingestd [-C FILE]
 *      mailrobot-ingestd --direct [mailrobot-ingest arguments...]
 *
 * DESCRIPTION
 *      The Kafka side of the ingest. As a daemon (first form) it keeps one
 *      idempotent, acks=all producer connected to Kafka, listens on the Unix
 *      socket ingestd_socket, and for each mailrobot-ingest process that
 *      connects reads the envelope and message, publishes one record per
 *      recipient to <topic_prefix>.inbound (SPEC §3) and answers with the
 *      exit status and status line the ingest must give Postfix - only
 *      after Kafka has acknowledged every record. Many messages are in
 *      flight at once and share the connection, so a message costs a
 *      produce request instead of a process start, a connection and a
 *      producer id.
 *
 *      With --direct it does the same for one message read from standard
 *      input, with mailrobot-ingest's arguments and exit statuses; that is
 *      what mailrobot-ingest runs when no daemon is listening, and it may
 *      be named in master.cf directly.
 *
 *      Bounded: at most ingestd_connection_limit connections and
 *      ingestd_memory_limit bytes of messages at once; each connection must
 *      deliver its message and be answered within ingest_time_limit.
 *      SIGTERM or SIGINT: stop accepting, answer every message in flight,
 *      exit 0.
 *
 * DIAGNOSTICS
 *      Daemon: JSON log lines on standard error (or log_file); exit 0 after
 *      SIGTERM, 1 if it cannot start (the reason is logged and printed).
 *      --direct: as mailrobot-ingest (0, 75 with a 4.X.X line, 65 with
 *      5.3.4).
 *
 * CONFIGURATION PARAMETERS
 *      ingestd_socket, ingestd_socket_mode, ingestd_connection_limit,
 *      ingestd_memory_limit, ingest_time_limit, max_message_bytes,
 *      kafka_brokers, topic_prefix, partition_by, kafka.*, log_level,
 *      log_file (docs/configuration.md).
 *
 * SEE ALSO
 *      mailrobot-ingest(1), docs/postfix.md, docs/architecture.md.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include <sodium.h>

#include "mailrobot/buf.h"
#include "mailrobot/clock.h"
#include "mailrobot/config.h"
#include "mailrobot/envelope.h"
#include "mailrobot/kafka.h"
#include "mailrobot/log.h"

#include "ingestd_server.h"
#include "publish.h"
#include "status.h"

extern char **environ;

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int sig)
{
    stop_requested = sig;
}

static void open_log(const mr_config *cfg, mr_logger *log, int fallback_fd)
{
    int fd = fallback_fd;

    if (cfg->log_file[0] != '\0')
        fd = open(cfg->log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    mr_logger_init(log, "mailrobot-ingestd", (mr_log_level)cfg->log_level, fd);
}

/* --direct: one message from stdin, mailrobot-ingest's contract. */
static int run_direct(int argc, char **argv)
{
    mr_ingest_args args;
    mr_config cfg;
    mr_logger log;
    mr_buf message;
    mr_err err;
    mr_kafka_context kafka = {0};
    mr_producer *producer;
    size_t queued;

    if (mr_ingest_args_parse(&args, argc, argv, environ, &err) < 0)
        ingest_finish(EX_TEMPFAIL, "4.3.5", "mailrobot-ingest: bad arguments: %s", err.msg);
    if (mr_config_load(&cfg, args.config_path, environ, &err) < 0)
        ingest_finish(EX_TEMPFAIL, "4.3.5", "mailrobot-ingest: configuration error: %s",
                      err.msg);
    if (sodium_init() < 0)
        ingest_finish(EX_TEMPFAIL, "4.3.0", "mailrobot-ingest: libsodium failed to initialise");
    /* Standard error is Postfix's delivery status: log only to log_file. */
    open_log(&cfg, &log, -1);

    mr_buf_init(&message, (size_t)cfg.max_message_bytes);
    switch (mr_buf_read_fd(&message, STDIN_FILENO, &err)) {
    case MR_READ_OK:
        break;
    case MR_READ_TOO_BIG:
        mr_log(&log, MR_LOG_WARN, "message too big", "queue_id", args.envelope.queue_id, NULL);
        ingest_finish(EX_DATAERR, "5.3.4", "message too big: larger than %llu bytes",
                      (unsigned long long)cfg.max_message_bytes);
    case MR_READ_ERROR:
        ingest_finish(EX_TEMPFAIL, "4.3.0", "mailrobot-ingest: cannot read the message: %s",
                      err.msg);
    }

    kafka.log = &log;
    producer = mr_producer_new(&cfg, &kafka, cfg.ingest_time_limit, NULL, &err);
    if (producer == NULL)
        ingest_finish(EX_TEMPFAIL, "4.3.5", "mailrobot-ingest: configuration error: %s",
                      err.msg);
    if (ingest_queue_records(&cfg, producer, &args.envelope, message.data, message.len,
                             mr_wall_ms(), NULL, &queued, &err) < 0
        || mr_producer_wait(producer, cfg.ingest_time_limit, &err) < 0) {
        mr_log(&log, MR_LOG_WARN, "deferred", "queue_id", args.envelope.queue_id, "reason",
               err.msg, NULL);
        ingest_finish(EX_TEMPFAIL, "4.4.1", "mailrobot-ingest: Kafka did not take the "
                      "message: %s", err.msg);
    }
    mr_log(&log, MR_LOG_INFO, "published", "queue_id", args.envelope.queue_id, NULL);
    /* Every record is acknowledged: nothing is left to lose, and skipping
     * the teardown of librdkafka's threads saves time on every message. */
    _exit(EX_OK);
}

static int run_daemon(const char *config_path)
{
    struct sigaction sa;
    mr_config cfg;
    mr_logger log;
    mr_err err;
    mr_kafka_context kafka = {0};
    ingestd *server;
    int rc;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (mr_config_load(&cfg, config_path, environ, &err) < 0) {
        fprintf(stderr, "mailrobot-ingestd: configuration error: %s\n", err.msg);
        return 1;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "mailrobot-ingestd: libsodium failed to initialise\n");
        return 1;
    }
    open_log(&cfg, &log, STDERR_FILENO);
    kafka.log = &log;
    server = ingestd_new(&cfg, &log, &kafka, &err);
    if (server == NULL) {
        mr_log(&log, MR_LOG_ERROR, "cannot start", "reason", err.msg, NULL);
        fprintf(stderr, "mailrobot-ingestd: cannot start: %s\n", err.msg);
        mr_config_free(&cfg);
        return 1;
    }
    rc = ingestd_run(server, &stop_requested);
    ingestd_free(server);
    mr_config_free(&cfg);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--direct") == 0) {
        argv[1] = argv[0];
        return run_direct(argc - 1, argv + 1);
    }
    if (argc == 1)
        return run_daemon(NULL);
    if (argc == 3 && strcmp(argv[1], "-C") == 0)
        return run_daemon(argv[2]);
    fprintf(stderr, "usage: mailrobot-ingestd [-C FILE]\n"
                    "       mailrobot-ingestd --direct [mailrobot-ingest arguments...]\n");
    return EX_USAGE;
}
