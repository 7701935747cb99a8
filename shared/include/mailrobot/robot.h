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
 *     "spam": "deliver",          "deliver" | "tag" | "skip" (docs/spam.md)
 *     "webhook": {
 *       "url": "https://app.example.com/hooks/mail",
 *       "secret": "whsec_3x...",  HMAC-SHA256 key for Mailrobot-Signature
 *       "format": "json",         "json" (schemas/webhook-v1.json) | "raw"
 *       "allow_private": false    may the URL resolve to a private or
 *                                 loopback address?
 *     }
 *   }
 *
 * or, for the /etc/aliases pipe run by the worker (docs/robots/exec.md):
 *
 *   {
 *     "name": "tickets", "kind": "exec", "timeout": "60s",
 *     "exec": {
 *       "command": "/usr/local/bin/ticket.py --queue support",
 *       "shell": false, "user": "mailrobot-exec", "group": "mailrobot-exec",
 *       "directory": "/var/lib/mailrobot/robots/tickets",
 *       "output": "ignore",       "ignore" | "reply" | "actions"
 *       "sandbox": "none",        "none" | "bwrap"
 *       "network": false,
 *       "limits": {"cpu_seconds": 60, "memory_mb": 512, "files": 256,
 *                  "processes": 64, "file_size_mb": 64, "output_kb": 64}
 *     }
 *   }
 *
 * or, to pass mail on to other addresses (docs/robots/builtin.md):
 *
 *   {
 *     "name": "alias", "kind": "forward",
 *     "forward": {
 *       "to": ["bob@example.org"],   1 to 50 addresses
 *       "envelope_sender": "srs",    "srs" | "keep" | "fixed"
 *       "sender": "bounces@x.test",  only and required with "fixed"
 *       "hop_limit": 25              Received + Delivered-To fields allowed
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
#define MR_FORWARD_TO_LIMIT 50        /* addresses in forward.to (= MR_RCPT_LIMIT) */
#define MR_FORWARD_HOP_LIMIT 25       /* default forward.hop_limit */
#define MR_FORWARD_HOP_LIMIT_MAX 100

typedef enum mr_robot_kind {
    MR_ROBOT_WEBHOOK = 0,
    MR_ROBOT_EXEC = 1,
    MR_ROBOT_DROP = 2,       /* accept and discard */
    MR_ROBOT_AUTOREPLY = 3,  /* RFC 3834 automatic reply, once per sender per period */
    MR_ROBOT_FORWARD = 4     /* the message, unchanged, to other addresses */
} mr_robot_kind;

/* The envelope sender (MAIL FROM) of a forwarded copy. */
typedef enum mr_envelope_sender {
    MR_ENVELOPE_SENDER_SRS = 0,   /* "srs" (default): the original's, SRS-rewritten at
                                     srs_domain (srs.h), so that SPF passes and bounces
                                     come back to us and on to the original sender */
    MR_ENVELOPE_SENDER_KEEP = 1,  /* "keep": the original's as it is */
    MR_ENVELOPE_SENDER_FIXED = 2  /* "fixed": forward.sender */
} mr_envelope_sender;

typedef enum mr_exec_output {
    MR_EXEC_OUTPUT_IGNORE = 0,  /* stdout is only kept for diagnostics */
    MR_EXEC_OUTPUT_REPLY = 1,   /* stdout is an RFC 5322 message to send as a reply */
    MR_EXEC_OUTPUT_ACTIONS = 2  /* stdout is JSON per schemas/actions-v1.json */
} mr_exec_output;

typedef enum mr_exec_sandbox {
    MR_EXEC_SANDBOX_NONE = 0,   /* user, rlimits, process group, clean environment */
    MR_EXEC_SANDBOX_BWRAP = 1   /* and bubblewrap: read-only system, private /tmp,
                                   no network unless allowed */
} mr_exec_sandbox;

typedef enum mr_robot_order {
    MR_ORDER_KEY = 0,    /* "ordered": true (default): one record of a key at a time;
                            a record sent to a retry topic releases its key */
    MR_ORDER_NONE = 1,   /* "ordered": false: records of a key run in parallel */
    MR_ORDER_STRICT = 2  /* "ordered": "strict": the key waits until the record is
                            delivered or dead-lettered, retries included */
} mr_robot_order;

/* What a robot does with mail the filter at the door called spam
 * (mr_spam_verdict(), spam.h). */
typedef enum mr_spam_policy {
    MR_SPAM_DELIVER = 0,  /* "deliver" (default): like any mail (the webhook JSON's
                             spam field still carries the verdict) */
    MR_SPAM_TAG = 1,      /* "tag": delivered with the verdict made explicit: the
                             request header Mailrobot-Spam: yes, the variable SPAM=yes */
    MR_SPAM_SKIP = 2      /* "skip": not delivered; done, like a drop, event "skipped" */
} mr_spam_policy;

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
    mr_spam_policy spam;      /* default MR_SPAM_DELIVER */
    struct {
        char *url;            /* http:// or https://, absolute, at most 2048 bytes */
        char *secret;         /* at least 16 bytes; required */
        mr_webhook_format format;
        int allow_private;    /* default 0 */
        int actions;          /* 1: a 2xx response's JSON body is actions (actions-v1) */
    } webhook;
    struct {
        char *command;        /* as in /etc/aliases after the '|' (at most 4096 bytes) */
        int shell;            /* 1: always via /bin/sh -c (default: only if needed) */
        char *user;           /* NULL: the worker's exec_user */
        char *group;          /* NULL: the user's primary group */
        char *directory;      /* NULL: exec_directory/<name> */
        mr_exec_output output;
        mr_exec_sandbox sandbox;
        int network;          /* bwrap: keep the network (default 0) */
        /* Limits; 0: the worker's exec_* default. */
        int64_t cpu_seconds, memory_mb, files, processes, file_size_mb, output_kb;
    } exec;
    struct {
        char *subject;        /* template ({subject}); NULL: "Re: " + the original's */
        char *text;           /* template ({subject}) */
        int64_t period_ms;    /* default 7 days */
    } autoreply;
    struct {
        char **to;            /* 1..MR_FORWARD_TO_LIMIT addresses (mr_address_valid()) */
        size_t to_count;
        mr_envelope_sender envelope_sender;
        char *sender;         /* MR_ENVELOPE_SENDER_FIXED: the address; else NULL */
        int64_t hop_limit;    /* default MR_FORWARD_HOP_LIMIT: more Received and
                                 Delivered-To fields than this is a loop */
    } forward;
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
