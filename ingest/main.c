/*
 * NAME
 *      mailrobot-ingest - publish one inbound message to Kafka for Postfix
 *
 * SYNOPSIS
 *      mailrobot-ingest [-C FILE] [-f SENDER] [-q QUEUE_ID] [-c CLIENT_ADDRESS]
 *              [-h HELO] [-s SASL_USERNAME] [-o ORIGINAL_RECIPIENT...]
 *              -- RECIPIENT...
 *      mailrobot-ingest [-C FILE]        (from an alias, envelope in the environment)
 *
 * DESCRIPTION
 *      Reads one message from standard input and publishes it to the Kafka
 *      topic <topic_prefix>.inbound as one record per recipient: the value is
 *      the message exactly as read, the key follows partition_by, the
 *      headers carry the envelope (mr.v, mr.id, mr.sender, mr.recipient,
 *      mr.original_recipient, mr.queue_id, mr.client_address, mr.helo,
 *      mr.sasl_username, mr.received_at). It exits 0 only after Kafka has
 *      acknowledged every record (idempotent producer, acks=all).
 *
 *      Run it from Postfix's pipe(8) (master.cf, see docs/postfix.md) with the
 *      envelope on the command line, or from local(8) as an alias command,
 *      "|/usr/local/bin/mailrobot-ingest", where the envelope comes from the
 *      environment local(8) sets (RECIPIENT, SENDER, ORIGINAL_RECIPIENT,
 *      CLIENT_ADDRESS, CLIENT_HELO, SASL_USERNAME).
 *
 *      mr.id is a hash of the queue id, the recipient and the message, so a
 *      delivery that Postfix retries publishes the same id again and the
 *      workers can drop the duplicate.
 *
 * DIAGNOSTICS
 *      Postfix turns the command's output into the delivery status, and an
 *      enhanced status code at the start of the output overrides the exit
 *      status. So the ingest prints nothing on success and exactly one line on
 *      failure, always starting with the code that fits:
 *
 *      0   every record acknowledged.
 *      75  (EX_TEMPFAIL, Postfix defers and retries) "4.4.1 ..." Kafka
 *          unreachable, slow or failing; "4.3.5 ..." bad configuration or
 *          bad arguments; "4.3.0 ..." the message could not be read. An
 *          operator's mistake never bounces mail.
 *      65  (EX_DATAERR, Postfix bounces) "5.3.4 message too big ...": the
 *          message is larger than max_message_bytes. The only permanent
 *          failure, because it is the message's own fault.
 *
 *      JSON log lines go to log_file if it is set, and nowhere otherwise.
 *
 * CONFIGURATION PARAMETERS
 *      From -C FILE, $MAILROBOT_CONFIG or /etc/mailrobot/mailrobot.conf, each
 *      overridable by MAILROBOT_<KEY>: kafka_brokers, topic_prefix,
 *      max_message_bytes, partition_by, ingest_time_limit, log_level,
 *      log_file, kafka.* (docs/configuration.md).
 *
 * SEE ALSO
 *      pipe(8), local(8), docs/postfix.md, SPEC §3.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>
#include <unistd.h>

#include <sodium.h>

#include "mailrobot/buf.h"
#include "mailrobot/clock.h"
#include "mailrobot/config.h"
#include "mailrobot/envelope.h"
#include "mailrobot/kafka.h"
#include "mailrobot/log.h"

#include "publish.h"

extern char **environ;

/* Prints the one status line Postfix will show and exits. */
__attribute__((noreturn, format(printf, 3, 4)))
static void finish(int status, const char *code, const char *fmt, ...)
{
    char text[MR_ERR_MAX + 128];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s %s\n", code, text);
    fflush(stderr);
    _exit(status);
}

static int open_log(const mr_config *cfg, mr_logger *log)
{
    int fd = -1;

    if (cfg->log_file[0] != '\0')
        fd = open(cfg->log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    mr_logger_init(log, "mailrobot-ingest", (mr_log_level)cfg->log_level, fd);
    return fd;
}

int main(int argc, char **argv)
{
    mr_ingest_args args;
    mr_config cfg;
    mr_logger log;
    mr_buf message;
    mr_err err;
    mr_kafka_context kafka = {0};
    mr_producer *producer;
    int64_t received_at;

    signal(SIGPIPE, SIG_IGN);
    if (mr_ingest_args_parse(&args, argc, argv, environ, &err) < 0)
        finish(EX_TEMPFAIL, "4.3.5", "mailrobot-ingest: bad arguments: %s", err.msg);
    if (mr_config_load(&cfg, args.config_path, environ, &err) < 0)
        finish(EX_TEMPFAIL, "4.3.5", "mailrobot-ingest: configuration error: %s", err.msg);
    if (sodium_init() < 0)
        finish(EX_TEMPFAIL, "4.3.0", "mailrobot-ingest: libsodium failed to initialise");
    open_log(&cfg, &log);

    mr_buf_init(&message, (size_t)cfg.max_message_bytes);
    switch (mr_buf_read_fd(&message, STDIN_FILENO, &err)) {
    case MR_READ_OK:
        break;
    case MR_READ_TOO_BIG:
        mr_log(&log, MR_LOG_WARN, "message too big", "queue_id", args.envelope.queue_id, NULL);
        finish(EX_DATAERR, "5.3.4", "message too big: larger than %llu bytes",
               (unsigned long long)cfg.max_message_bytes);
    case MR_READ_ERROR:
        finish(EX_TEMPFAIL, "4.3.0", "mailrobot-ingest: cannot read the message: %s", err.msg);
    }
    received_at = mr_wall_ms();

    kafka.log = &log;
    producer = mr_producer_new(&cfg, &kafka, cfg.ingest_time_limit, &err);
    if (producer == NULL)
        finish(EX_TEMPFAIL, "4.3.5", "mailrobot-ingest: configuration error: %s", err.msg);
    if (ingest_publish(&cfg, producer, &args.envelope, &message, received_at, &err) < 0) {
        mr_log(&log, MR_LOG_WARN, "deferred", "queue_id", args.envelope.queue_id,
               "reason", err.msg, NULL);
        finish(EX_TEMPFAIL, "4.4.1", "mailrobot-ingest: Kafka did not take the message: %s",
               err.msg);
    }
    mr_log(&log, MR_LOG_INFO, "published", "queue_id", args.envelope.queue_id, NULL);
    /* Every record is acknowledged: nothing is left to lose, and skipping
     * the teardown of librdkafka's threads saves time on every message. */
    _exit(EX_OK);
}
