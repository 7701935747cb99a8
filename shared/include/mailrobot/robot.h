/*
 * robot.h - robot definitions (SPEC §6, §7; schemas/robot-v1.json).
 *
 * A robot is a JSON document applied with `mailrobotctl robot apply` and
 * kept in Redis (keys.h). Example:
 *
 *   {
 *     "name": "tickets",
 *     "kind": "webhook",
 *     "ordered": true,            true | false | "strict"
 *     "concurrency": 8,           deliveries in flight per worker process
 *     "timeout": "10s",           one delivery attempt, end to end
 *     "webhook": {
 *       "url": "https://app.example.com/hooks/mail",
 *       "secret": "whsec_3x...",  HMAC-SHA256 key for Mailrobot-Signature
 *       "format": "json",         "json" (schemas/webhook-v1.json) | "raw"
 *       "allow_private": false    may the URL resolve to a private or
 *                                 loopback address?
 *     }
 *   }
 *
 * mr_robot_parse() validates exactly what schemas/robot-v1.json says (a
 * test checks both agree on a set of good and bad documents) and names the
 * offending field as a JSON pointer: "/webhook/url: must be an absolute
 * http:// or https:// URL". Unknown fields are errors (typos must not pass
 * silently). Optional fields get the defaults noted below.
 */
#ifndef MAILROBOT_ROBOT_H
#define MAILROBOT_ROBOT_H

#include <stddef.h>
#include <stdint.h>

#include "mailrobot/err.h"

#define MR_ROBOT_NAME_MAX 64 /* names: [a-z0-9][a-z0-9_.-]{0,63} */

typedef enum mr_robot_kind {
    MR_ROBOT_WEBHOOK = 0
} mr_robot_kind;

typedef enum mr_robot_order {
    MR_ORDER_KEY = 0,    /* "ordered": true (default): one record of a key at a time;
                            a record sent to a retry topic releases its key */
    MR_ORDER_NONE = 1,   /* "ordered": false: records of a key run in parallel */
    MR_ORDER_STRICT = 2  /* "ordered": "strict": the key waits until the record is
                            delivered or dead-lettered, retries included */
} mr_robot_order;

typedef enum mr_webhook_format {
    MR_WEBHOOK_JSON = 0, /* application/json per schemas/webhook-v1.json */
    MR_WEBHOOK_RAW = 1   /* message/rfc822, the message bytes as received */
} mr_webhook_format;

typedef struct mr_robot {
    char name[MR_ROBOT_NAME_MAX + 1];
    mr_robot_kind kind;
    mr_robot_order ordered;   /* default MR_ORDER_KEY */
    int64_t concurrency;      /* default 0: the worker's worker_robot_concurrency */
    int64_t timeout_ms;       /* default 0: the worker's webhook_timeout */
    struct {
        char *url;            /* http:// or https://, absolute, at most 2048 bytes */
        char *secret;         /* at least 16 bytes; required */
        mr_webhook_format format;
        int allow_private;    /* default 0 */
    } webhook;
    char *json;               /* the document as applied (NUL-terminated) */
} mr_robot;

/* Parses and validates a robot document. On failure returns -1 with
 * "<json pointer>: <what is wrong>" in err and robot freed. */
int mr_robot_parse(const char *json, size_t len, mr_robot *robot, mr_err *err);

/* The document with secrets replaced by "(hidden)", for display. malloc'd;
 * NULL on allocation failure. */
char *mr_robot_redacted_json(const mr_robot *robot);

/* "webhook", ... */
const char *mr_robot_kind_name(mr_robot_kind kind);

/* 1 if name is a valid robot name. */
int mr_robot_name_valid(const char *name);

void mr_robot_free(mr_robot *robot);

#endif
