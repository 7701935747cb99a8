/*
 * exec_prepare.h - what an exec robot's command gets, computed the way
 * Postfix's local(8) does it for a "|command" in /etc/aliases, so that a
 * script written for that runs unchanged (SPEC §7, docs/robots/exec.md):
 *
 *   argv   a command without shell meta characters is split on blanks and
 *          executed directly; anything else runs as /bin/sh -c COMMAND
 *          (Postfix's exec_command heuristic); "shell": true always uses sh
 *   env    only what local(8) exports: LOGNAME, USER, SENDER, RECIPIENT,
 *          LOCAL, DOMAIN, EXTENSION, ORIGINAL_RECIPIENT, CLIENT_HOSTNAME,
 *          CLIENT_ADDRESS, CLIENT_HELO, CLIENT_PROTOCOL, SASL_METHOD,
 *          SASL_SENDER, SASL_USERNAME (the last seven only when not empty),
 *          SPAM=yes only for a robot with "spam": "tag" and mail the filter
 *          called spam (mailrobot's own; local(8) has none), HOME and SHELL (of the robot), PATH=/usr/bin:/bin, and the
 *          exported variables of the worker's own environment; values are
 *          censored like local(8)'s command_expansion_filter (other
 *          characters become '_')
 *   stdin  the message as local(8) copies it: a "From sender  date" line,
 *          Return-Path, X-Original-To, Delivered-To, then the message (a
 *          Return-Path the pipe(8) ingest prepended is replaced), ending in
 *          a newline
 *   status sendmail exit codes as Postfix reads them: 0 done; EX_TEMPFAIL
 *          (75) and EX_OSERR (71) later; any other code a permanent failure
 *
 * Pure functions, no I/O: unit-tested against Postfix's behaviour.
 */
#ifndef WORKERS_EXEC_PREPARE_H
#define WORKERS_EXEC_PREPARE_H

#include <stddef.h>
#include <stdint.h>

#include "mailrobot/buf.h"
#include "mailrobot/err.h"

#define EXEC_PATH "/usr/bin:/bin"
#define EXEC_SHELL "/bin/sh"
#define EXEC_ARGS_LIMIT 256

/* The delivery, as the record's mr.* headers give it. */
typedef struct exec_envelope {
    const char *sender;             /* "" = null sender */
    const char *recipient;
    const char *original_recipient;
    const char *client_hostname;    /* may be NULL or "" */
    const char *client_address;
    const char *client_helo;
    const char *client_protocol;
    const char *sasl_method;
    const char *sasl_sender;
    const char *sasl_username;
    const char *spam;               /* "yes" for a robot with "spam": "tag" and a
                                       message called spam; else NULL (no variable) */
    int64_t arrival_ms;             /* for the From_ line (Unix ms) */
} exec_envelope;

/* A NULL-terminated array of strings in one allocation (free() it). */
typedef char **exec_strings;

/* The argv for command: split on blanks when it has no shell meta
 * characters and shell is 0, else {"/bin/sh", "-c", command}. */
exec_strings exec_argv(const char *command, int shell, mr_err *err);

/* The environment: local(8)'s variables for envelope, HOME=home,
 * SHELL=shell, PATH, and for each name in export (blank-separated) its
 * value in parent_env, if set there. */
exec_strings exec_environment(const exec_envelope *envelope, const char *home,
                              const char *shell, const char *export, char *const *parent_env,
                              mr_err *err);

/* Appends the command's standard input to out: local(8)'s prepended lines
 * and message (the record's value). */
int exec_input(const exec_envelope *envelope, const unsigned char *message, size_t len,
               mr_buf *out, mr_err *err);

typedef enum exec_verdict {
    EXEC_DONE,        /* exit 0 */
    EXEC_LATER,       /* EX_TEMPFAIL, EX_OSERR, killed, timed out, could not start */
    EXEC_PERMANENT    /* any other exit status */
} exec_verdict;

/* What a wait(2) status means; describes it in out ("exit status 65
 * (data format error)", "killed by signal 9"). */
exec_verdict exec_classify(int wait_status, char *out, size_t outsz);

/* Exit statuses the child uses when it cannot even start the command
 * (126: found but not executable, 127: not found), as the shell does. */
#define EXEC_CANNOT_RUN 126
#define EXEC_NOT_FOUND 127

#endif
