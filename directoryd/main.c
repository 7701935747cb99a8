/*
 * NAME
 *      mailrobot-directoryd - answer Postfix's recipient lookups from the
 *      directory in Redis (socketmap)
 *
 * SYNOPSIS
 *      mailrobot-directoryd [-C FILE]
 *
 * DESCRIPTION
 *      A Postfix socketmap server (socketmap_table(5)): it listens on the
 *      Unix socket directoryd_socket (and, if directoryd_listen is set, on
 *      a loopback TCP port) and answers netstring requests
 *      "<map> <key>" for four maps of the hosted-mail directory
 *      (docs/directory-layout.md):
 *
 *        domains    virtual_mailbox_domains   OK if the domain is hosted
 *        mailboxes  virtual_mailbox_maps      an account's Maildir, or an
 *                                             address that routes to a robot
 *        aliases    virtual_alias_maps        an alias's targets; a
 *                                             domain's catch-all
 *        transport  transport_maps            mailrobot: for robot addresses
 *
 *      so that Postfix rejects unknown recipients with 550 at RCPT time,
 *      before it accepts the mail, and learns of every change at once (no
 *      postmap, no reload). Robot routes match as in the worker: the exact
 *      address, then without its +extension, then @domain (the default
 *      route "*" is not a recipient).
 *
 *      Redis unreachable, failing or slower than directoryd_time_limit:
 *      TEMP (or TIMEOUT), which Postfix answers with 451 4.3.0 - mail is
 *      never rejected because the directory is down. Unknown map, or a
 *      request that is not a netstring: PERM.
 *
 *      Bounded: directoryd_connection_limit connections, one request of at
 *      most 1024 bytes and one reply in flight per connection, connections
 *      idle for 300 s are closed. SIGTERM or SIGINT: close and exit 0.
 *
 * DIAGNOSTICS
 *      JSON log lines on standard error (or log_file); every lookup at
 *      log_level debug. Exit 0 after SIGTERM, 1 if it cannot start (the
 *      reason is logged and printed), 64 on bad usage.
 *
 * CONFIGURATION PARAMETERS
 *      directoryd_socket, directoryd_socket_mode, directoryd_listen,
 *      directoryd_connection_limit, directoryd_time_limit, redis_url,
 *      redis_prefix, log_level, log_file (docs/configuration.md).
 *
 * SEE ALSO
 *      docs/postfix.md (the main.cf lines), docs/directory-layout.md,
 *      socketmap_table(5), virtual(8).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "mailrobot/config.h"
#include "mailrobot/log.h"

#include "server.h"

extern char **environ;

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    mr_config cfg;
    mr_logger log;
    mr_err err;
    directoryd *server;
    int fd = STDERR_FILENO;

    if (argc == 3 && strcmp(argv[1], "-C") == 0)
        config_path = argv[2];
    else if (argc != 1) {
        fprintf(stderr, "usage: mailrobot-directoryd [-C FILE]\n");
        return EX_USAGE;
    }
    signal(SIGPIPE, SIG_IGN);
    if (mr_config_load(&cfg, config_path, environ, &err) < 0) {
        fprintf(stderr, "mailrobot-directoryd: configuration error: %s\n", err.msg);
        return 1;
    }
    if (cfg.log_file[0] != '\0')
        fd = open(cfg.log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    mr_logger_init(&log, "mailrobot-directoryd", (mr_log_level)cfg.log_level, fd);
    server = directoryd_new(&cfg, &log, &err);
    if (server == NULL) {
        mr_log(&log, MR_LOG_ERROR, "cannot start", "reason", err.msg, NULL);
        fprintf(stderr, "mailrobot-directoryd: cannot start: %s\n", err.msg);
        mr_config_free(&cfg);
        return 1;
    }
    directoryd_run(server);
    directoryd_free(server);
    mr_config_free(&cfg);
    return 0;
}
