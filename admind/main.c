/*
 * NAME
 *      mailrobot-admind - the admin HTTP JSON API over the hosted-mail
 *      directory
 *
 * SYNOPSIS
 *      mailrobot-admind [-C FILE]
 *
 * DESCRIPTION
 *      Serves the operations of `mailrobotctl domain|account|alias|backup|
 *      restore` over HTTP, as JSON (schemas/admin-api.yaml; use cases and
 *      curl examples: docs/accounts.md): domains and catch-alls, accounts,
 *      passwords and resets, aliases, backup and restore. Each endpoint is
 *      a thin call into the directory library (mailrobot/directory.h);
 *      mailrobotctl and this API see the same directory in Redis.
 *
 *      Every request needs `Authorization: Bearer <token>`, the token in
 *      admind_token_file (401 with WWW-Authenticate otherwise). With
 *      admind_tls_cert and admind_tls_key it serves HTTPS only.
 *
 *      Every change, made or refused, produces an audit event on
 *      <prefix>.audit (schemas/audit-v1.json, actor "api"); a change is
 *      made even when Kafka does not take its event, which is then logged
 *      ("audit event lost"). A password reset mails its token through
 *      <prefix>.outbound, as `mailrobotctl account reset-start` does.
 *
 *      Bounded: admind_connection_limit connections, bodies of at most
 *      admind_body_limit bytes (413), connections idle for
 *      admind_time_limit are closed. One thread serves every request in
 *      turn. SIGTERM or SIGINT: stop listening, flush audit events, exit 0.
 *
 * DIAGNOSTICS
 *      JSON log lines on standard error (or log_file): one per request
 *      (method, path, status, ms; never a header or a body, so never a
 *      password or token). Exit 0 after SIGTERM, 1 if it cannot start
 *      (the reason is logged and printed), 64 on bad usage. Redis being
 *      down is not a start-up error: requests are answered 503 until it
 *      is back.
 *
 * CONFIGURATION PARAMETERS
 *      admind_listen, admind_token_file, admind_tls_cert, admind_tls_key,
 *      admind_body_limit, admind_connection_limit, admind_time_limit,
 *      redis_url, redis_prefix, directory_*, kafka_brokers, topic_prefix,
 *      kafka.*, log_level, log_file (docs/configuration.md).
 *
 * SEE ALSO
 *      docs/accounts.md, schemas/admin-api.yaml, schemas/audit-v1.json,
 *      mailrobotctl(1).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "admind.h"

extern char **environ;

static volatile int stop_requested;

static void on_signal(int sig)
{
    stop_requested = 1;
}

static int start(admind *a, mr_err *err)
{
    mr_dir_status st;

    if (admind_auth_load(&a->auth, a->cfg, a->log, err) < 0)
        return -1;
    if (sodium_init() < 0)
        return mr_err_set(err, "libsodium cannot be initialised");
    a->audit = mr_audit_new(a->cfg, &a->kafka, a->log, "api", err);
    if (a->audit == NULL)
        return -1;
    st = mr_dir_open(&a->dir, a->cfg, err);
    a->dir_open = st == MR_DIR_OK;
    if (!a->dir_open) {
        mr_log(a->log, MR_LOG_WARN, "redis unavailable; answering 503 until it is back",
               "reason", err->msg, NULL);
        mr_dir_close(&a->dir);
    }
    return admind_start(a, err);
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    struct sigaction sa;
    mr_config cfg;
    mr_logger log;
    mr_err err;
    admind a;
    int fd = STDERR_FILENO, rc = 0;

    if (argc == 3 && strcmp(argv[1], "-C") == 0)
        config_path = argv[2];
    else if (argc != 1) {
        fprintf(stderr, "usage: mailrobot-admind [-C FILE]\n");
        return EX_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;          /* no SA_RESTART: the wait returns */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    if (mr_config_load(&cfg, config_path, environ, &err) < 0) {
        fprintf(stderr, "mailrobot-admind: configuration error: %s\n", err.msg);
        return 1;
    }
    if (cfg.log_file[0] != '\0')
        fd = open(cfg.log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    mr_logger_init(&log, "mailrobot-admind", (mr_log_level)cfg.log_level, fd);
    memset(&a, 0, sizeof a);
    a.cfg = &cfg;
    a.log = &log;
    a.kafka.log = &log;
    if (start(&a, &err) < 0) {
        mr_log(&log, MR_LOG_ERROR, "cannot start", "reason", err.msg, NULL);
        fprintf(stderr, "mailrobot-admind: cannot start: %s\n", err.msg);
        rc = 1;
    } else {
        admind_serve(&a, &stop_requested);
        mr_log(&log, MR_LOG_INFO, "stopping", NULL);
    }
    admind_stop(&a);
    mr_audit_free(a.audit);
    if (a.dir_open)
        mr_dir_close(&a.dir);
    sodium_memzero(&a.auth, sizeof a.auth);
    mr_config_free(&cfg);
    return rc;
}
