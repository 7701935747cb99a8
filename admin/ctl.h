/*
 * ctl.h - what every mailrobotctl command gets: the loaded configuration,
 * a logger and the Kafka client context. One file per command group
 * (cmd_config.c, cmd_kafka.c) implements `mailrobotctl GROUP ...`.
 */
#ifndef ADMIN_CTL_H
#define ADMIN_CTL_H

#include "mailrobot/config.h"
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

/* Prints "mailrobotctl: " and the message to stderr. */
void ctl_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
