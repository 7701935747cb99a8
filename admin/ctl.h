/*
 * ctl.h - what every mailrobotctl command gets: the loaded configuration,
 * a logger and the Kafka client context. One file per command group
 * (cmd_config.c, cmd_kafka.c) implements `mailrobotctl GROUP ...`.
 */
#ifndef ADMIN_CTL_H
#define ADMIN_CTL_H

#include "mailrobot/audit.h"
#include "mailrobot/config.h"
#include "mailrobot/directory.h"
#include "mailrobot/kafka.h"
#include "mailrobot/log.h"

/* Exit statuses of mailrobotctl. */
#define CTL_OK 0
#define CTL_FAILED 1 /* the operation failed; the reason is on stderr */
#define CTL_USAGE 2  /* bad command line */

typedef struct ctl_context {
    mr_config cfg;
    mr_logger log;
    mr_kafka_context kafka;
    mr_audit *audit;            /* made by the first change (ctl_audit) */
    int audit_failed;
} ctl_context;

/* Each returns a CTL_* exit status; argv[0] is the group's verb. */
int ctl_config(ctl_context *ctx, int argc, char **argv);   /* cmd_config.c */
int ctl_kafka(ctl_context *ctx, int argc, char **argv);    /* cmd_kafka.c */
int ctl_robot(ctl_context *ctx, int argc, char **argv);    /* cmd_robot.c */
int ctl_route(ctl_context *ctx, int argc, char **argv);    /* cmd_route.c */
int ctl_dlq(ctl_context *ctx, int argc, char **argv);      /* cmd_dlq.c */
int ctl_replay(ctl_context *ctx, int argc, char **argv);   /* cmd_dlq.c */
int ctl_tail(ctl_context *ctx, int argc, char **argv);     /* cmd_tail.c */
int ctl_mime(ctl_context *ctx, int argc, char **argv);     /* cmd_mime.c */
int ctl_domain(ctl_context *ctx, int argc, char **argv);   /* cmd_domain.c */
int ctl_account(ctl_context *ctx, int argc, char **argv);  /* cmd_account.c */
int ctl_alias(ctl_context *ctx, int argc, char **argv);    /* cmd_alias.c */
int ctl_backup(ctl_context *ctx, int argc, char **argv);   /* cmd_backup.c */
int ctl_restore(ctl_context *ctx, int argc, char **argv);  /* cmd_backup.c */

/* The directory commands' common steps (dir_ctl.c): open the directory
 * (0, or -1 with the reason on stderr), and turn a library status into an
 * exit status, printing "WHAT: STATUS: message" for a failure. */
int ctl_dir_open(ctl_context *ctx, mr_dir *d, const char *what);
int ctl_dir_result(mr_dir_status st, const char *what, const mr_err *err);

/* Records the audit event of one change (mailrobot/audit.h, actor "cli");
 * main flushes them before it exits. */
void ctl_audit(ctl_context *ctx, const char *operation, const char *target, mr_dir_status st);

/* Prints "mailrobotctl: " and the message to stderr. */
void ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
