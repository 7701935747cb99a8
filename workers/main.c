/*
 * NAME
 *      mailrobot-worker - deliver inbound mail to robots
 *
 * SYNOPSIS
 *      mailrobot-worker [-C FILE]
 *
 * DESCRIPTION
 *      Consumes <topic_prefix>.inbound and the retry topics as one member of
 *      the consumer group worker_group (start more processes, on any host,
 *      to scale), routes each record by its recipient to a robot (routes and
 *      robots live in Redis, managed with mailrobotctl, picked up without a
 *      restart), and runs the robot: a webhook robot POSTs the message as
 *      signed JSON to the robot's URL.
 *
 *      Records with the same key (by default: recipient + conversation) are
 *      handled one at a time, in order, unless the robot says "ordered":
 *      false; many keys are in flight at once (worker_in_flight_limit,
 *      robot concurrency). Offsets are committed only up to the last record
 *      whose outcome is safe, so a worker killed at any moment loses
 *      nothing: what it had in flight is processed again, and a delivery
 *      already confirmed (remembered in Redis for dedupe_ttl) is not
 *      repeated.
 *
 *      Temporary failures go to the retry topics (retry_delays), permanent
 *      ones, exhausted retries and mail without a route to
 *      <topic_prefix>.dead, from where `mailrobotctl dlq replay` puts them
 *      back. Every step is an event on <topic_prefix>.events.
 *
 * DIAGNOSTICS
 *      JSON log lines on standard error (or log_file). GET /metrics and
 *      /healthz on worker_http_listen. SIGTERM or SIGINT: stop taking
 *      records, finish those in flight (at most worker_drain_time_limit),
 *      commit, exit 0. Exit 1 if it cannot start (the reason is printed).
 *
 * CONFIGURATION PARAMETERS
 *      kafka_brokers, topic_prefix, retry_delays, redis_url, redis_prefix,
 *      redis_time_limit, worker_group, worker_in_flight_limit,
 *      worker_robot_concurrency, worker_http_listen, worker_drain_time_limit,
 *      dedupe_ttl, webhook_timeout, webhook_connect_timeout,
 *      webhook_allow_private, webhook_response_limit, log_level, log_file,
 *      kafka.* (docs/configuration.md).
 *
 * SEE ALSO
 *      mailrobotctl(1), docs/operations.md, docs/robots/webhook.md, SPEC §6, §7.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "mailrobot/mime_json.h"

#include "worker.h"

extern char **environ;

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    mr_config cfg;
    mr_logger log;
    mr_err err;
    worker w;
    int fd = STDERR_FILENO;

    if (argc == 3 && strcmp(argv[1], "-C") == 0) {
        config_path = argv[2];
    } else if (argc != 1) {
        fprintf(stderr, "usage: mailrobot-worker [-C FILE]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (mr_config_load(&cfg, config_path, environ, &err) < 0) {
        fprintf(stderr, "mailrobot-worker: configuration error: %s\n", err.msg);
        return 1;
    }
    if (cfg.log_file[0] != '\0'
        && (fd = open(cfg.log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) < 0) {
        fprintf(stderr, "mailrobot-worker: cannot open log_file %s\n", cfg.log_file);
        return 1;
    }
    mr_logger_init(&log, "mailrobot-worker", (mr_log_level)cfg.log_level, fd);
    if (sodium_init() < 0) {
        fprintf(stderr, "mailrobot-worker: libsodium failed to initialise\n");
        return 1;
    }
    mr_mime_init();
    if (worker_init(&w, &cfg, &log, &err) < 0) {
        mr_log(&log, MR_LOG_ERROR, "cannot start", "reason", err.msg, NULL);
        fprintf(stderr, "mailrobot-worker: cannot start: %s\n", err.msg);
        worker_free(&w);
        mr_config_free(&cfg);
        return 1;
    }
    worker_run(&w);
    worker_free(&w);
    mr_config_free(&cfg);
    return 0;
}
