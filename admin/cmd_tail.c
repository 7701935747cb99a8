/*
 * cmd_tail.c - `mailrobotctl tail`: follows the delivery events on
 * <prefix>.events (schemas/event-v1.json) and prints one line per event,
 *
 *   10:00:01.123 delivered tickets 9f2c... bob@x.test 200 35ms
 *
 * (UTC time, type, robot, mr.id, recipient, then what the type has to
 * say), or each event's JSON as it is with --json. Runs until SIGINT or
 * SIGTERM (exit 0) or until --count events were printed. Reads without a
 * consumer group, like `kafka read`.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mailrobot/topics.h"
#include "mailrobot/units.h"

#include "ctl.h"
#include "kafka_read.h"

#define METADATA_TIMEOUT_MS 10000

typedef struct tail_options {
    int64_t start;   /* RD_KAFKA_OFFSET_BEGINNING or _END */
    int json;
    int64_t count;   /* 0: no limit */
} tail_options;

static int parse_options(int argc, char **argv, tail_options *o)
{
    mr_err err;

    o->start = RD_KAFKA_OFFSET_END;
    o->json = 0;
    o->count = 0;
    for (int i = 0; i < argc; i++) {
        const char *val = i + 1 < argc ? argv[i + 1] : "";

        if (strcmp(argv[i], "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strcmp(argv[i], "--from") == 0 && strcmp(val, "beginning") == 0)
            o->start = RD_KAFKA_OFFSET_BEGINNING;
        else if (strcmp(argv[i], "--from") == 0 && strcmp(val, "end") == 0)
            o->start = RD_KAFKA_OFFSET_END;
        else if (strcmp(argv[i], "--count") != 0
                 || mr_parse_int(val, 1, INT64_MAX, &o->count, &err) < 0)
            return -1;
        i++;
    }
    return 0;
}

/* Text from an event, with control bytes escaped: it may quote a hostile
 * endpoint's answer, and this goes to a terminal. */
static void put_text(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            printf("\\x%02x", *p);
        else
            putchar(*p);
    }
}

static const char *field(json_t *ev, const char *name, const char *missing)
{
    const char *s = json_string_value(json_object_get(ev, name));

    return s ? s : missing;
}

/* " <label><number><unit>" if the event has the integer field. */
static void put_number(json_t *ev, const char *name, const char *label, const char *unit)
{
    json_t *v = json_object_get(ev, name);

    if (json_is_integer(v))
        printf(" %s%" JSON_INTEGER_FORMAT "%s", label, json_integer_value(v), unit);
}

/* What each type of event adds after the common fields. */
static void put_details(json_t *ev, const char *type)
{
    if (strcmp(type, "received") == 0) {
        printf(" from ");
        put_text(field(ev, "source", "-"));
    } else if (strcmp(type, "routed") == 0) {
        printf(" via ");
        put_text(field(ev, "route", "-"));
        if (json_object_get(ev, "extension") != NULL) {
            printf(" +");
            put_text(field(ev, "extension", ""));
        }
    } else if (strcmp(type, "delivered") == 0 || strcmp(type, "sent") == 0) {
        put_number(ev, "http_status", "", "");
        put_number(ev, "smtp_status", "", "");
        put_number(ev, "duration_ms", "", "ms");
    } else if (strcmp(type, "retried") == 0 || strcmp(type, "dead") == 0) {
        put_number(ev, "attempt", "attempt ", "");
        put_number(ev, "http_status", "", "");
        put_number(ev, "smtp_status", "", "");
        printf(" %s", strcmp(type, "dead") == 0 ? field(ev, "error_kind", "-") : "->");
        if (strcmp(type, "retried") == 0) {
            putchar(' ');
            put_text(field(ev, "retry_topic", "-"));
        }
        printf(": ");
        put_text(field(ev, "error", ""));
    }
    if (json_object_get(ev, "effect_id") != NULL) {
        printf(" (mail ");
        put_text(field(ev, "effect_id", ""));
        putchar(')');
    }
    if (json_object_get(ev, "replay") != NULL) {
        printf(" (replay ");
        put_text(field(ev, "replay", ""));
        putchar(')');
    }
}

static void print_event(const rd_kafka_message_t *m)
{
    static const char *const common[] = {"type", "robot", "id", "recipient"};
    json_t *ev = json_loadb(m->payload, m->len, 0, NULL);
    const char *at, *type;
    char hms[16];

    if (!json_is_object(ev)) {
        printf("(not an event: %s [%" PRId32 "] @%" PRId64 ")\n", rd_kafka_topic_name(m->rkt),
               m->partition, m->offset);
        json_decref(ev);
        return;
    }
    at = field(ev, "at", "-");
    type = field(ev, "type", "?");
    if (strlen(at) >= 23 && at[10] == 'T') {
        snprintf(hms, sizeof hms, "%.12s", at + 11); /* "10:00:01.123" */
        at = hms;
    }
    put_text(at);
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++) {
        putchar(' ');
        put_text(field(ev, common[i], "-"));
    }
    put_details(ev, type);
    putchar('\n');
    json_decref(ev);
}

/* SIGINT or SIGTERM arrived (they are blocked and taken here). */
static int stop_requested(const sigset_t *signals)
{
    struct timespec now = {0, 0};

    return sigtimedwait(signals, NULL, &now) > 0;
}

static int follow(rd_kafka_t *rk, const tail_options *o, const sigset_t *signals)
{
    int64_t printed = 0;

    while ((o->count == 0 || printed < o->count) && !stop_requested(signals)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);

        if (m == NULL)
            continue;
        if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            ctl_error("%s: %s", rd_kafka_topic_name(m->rkt), rd_kafka_message_errstr(m));
        else if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (o->json)
                printf("%.*s\n", (int)m->len, (const char *)m->payload);
            else
                print_event(m);
            fflush(stdout);
            printed++;
        }
        rd_kafka_message_destroy(m);
    }
    return CTL_OK;
}

int ctl_tail(ctl_context *ctx, int argc, char **argv)
{
    char topic[MR_TOPIC_NAME_MAX];
    sigset_t signals, previous;
    tail_options o;
    rd_kafka_t *rk;
    mr_err err;
    int partitions, status = CTL_FAILED;

    if (parse_options(argc, argv, &o) < 0) {
        ctl_error("usage: mailrobotctl tail [--from beginning|end] [--json] [--count N]");
        return CTL_USAGE;
    }
    mr_topic_name(&ctx->cfg, "events", topic, sizeof topic);
    /* Blocked before librdkafka starts its threads, so that they inherit
     * the mask and the signals wait for stop_requested(). */
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &signals, &previous);
    rk = kread_consumer(ctx, &err);
    if (rk != NULL
        && kread_assign_all(rk, topic, o.start, METADATA_TIMEOUT_MS, &partitions, &err) == 0)
        status = follow(rk, &o, &signals);
    else
        ctl_error("tail %s at %s: %s", topic, ctx->cfg.kafka_brokers, err.msg);
    kread_destroy(rk);
    sigprocmask(SIG_SETMASK, &previous, NULL);
    return status;
}
