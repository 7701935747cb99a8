/*
 * cmd_kafka.c - `mailrobotctl kafka init|topics|read`.
 *
 * `init` creates the topics of SPEC §4 (see topics.h); `read` prints
 * records of one topic without joining a consumer group (kafka_read.h), so
 * it never disturbs workers.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailrobot/clock.h"
#include "mailrobot/topics.h"
#include "mailrobot/units.h"

#include "ctl.h"
#include "kafka_read.h"

static int parse_timeout(const char *text, int64_t *ms)
{
    mr_err err;

    if (mr_parse_duration(text, ms, &err) < 0) {
        ctl_error("--timeout: %s", err.msg);
        return -1;
    }
    return 0;
}

static int kafka_init(ctl_context *ctx, int argc, char **argv)
{
    mr_topic_result results[MR_MAX_TOPICS];
    int64_t timeout_ms = 30000;
    size_t count = 0;
    mr_err err;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc) {
            if (parse_timeout(argv[++i], &timeout_ms) < 0)
                return CTL_USAGE;
        } else {
            ctl_error("usage: mailrobotctl kafka init [--timeout DURATION]");
            return CTL_USAGE;
        }
    }
    rc = mr_topics_create(&ctx->cfg, &ctx->kafka, timeout_ms, results, &count, &err);
    for (size_t i = 0; i < count; i++)
        printf("%-8s %s%s%s\n", mr_topic_outcome_name(results[i].outcome),
               results[i].topic.name, results[i].detail[0] ? "  " : "", results[i].detail);
    if (rc < 0) {
        ctl_error("kafka init at %s: %s", ctx->cfg.kafka_brokers, err.msg);
        return CTL_FAILED;
    }
    return CTL_OK;
}

static int kafka_topics(ctl_context *ctx)
{
    mr_topic topics[MR_MAX_TOPICS];
    size_t n = mr_topics(&ctx->cfg, topics);

    for (size_t i = 0; i < n; i++)
        puts(topics[i].name);
    return CTL_OK;
}

/* --- read -------------------------------------------------------------------- */

typedef struct read_options {
    char topic[MR_TOPIC_NAME_MAX];
    int64_t start;       /* RD_KAFKA_OFFSET_BEGINNING, _END or _TAIL(n) */
    long count;          /* 0: until the end of every partition */
    int64_t timeout_ms;  /* give up after this long without a record */
    int value_only;
    char match_name[256];    /* --header NAME=VALUE: only records with it */
    const char *match_value; /* NULL: no filter */
} read_options;

static int record_matches(const rd_kafka_message_t *m, const read_options *o)
{
    const void *value;
    size_t len;

    if (o->match_value == NULL)
        return 1;
    if (kread_header(m, o->match_name, &value, &len) < 0)
        return 0;
    return len == strlen(o->match_value) && memcmp(value, o->match_value, len) == 0;
}

static int parse_read_options(ctl_context *ctx, int argc, char **argv, read_options *o)
{
    const char *topic = "inbound";

    o->start = RD_KAFKA_OFFSET_BEGINNING;
    o->count = 0;
    o->timeout_ms = 10000;
    o->value_only = 0;
    o->match_value = NULL;
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;

        if (strcmp(arg, "--value") == 0) {
            o->value_only = 1;
            continue;
        }
        if (val == NULL)
            goto usage;
        i++;
        if (strcmp(arg, "--topic") == 0)
            topic = val;
        else if (strcmp(arg, "--count") == 0)
            o->count = strtol(val, NULL, 10);
        else if (strcmp(arg, "--timeout") == 0) {
            if (parse_timeout(val, &o->timeout_ms) < 0)
                return -1;
        } else if (strcmp(arg, "--from") == 0 && strcmp(val, "beginning") == 0)
            o->start = RD_KAFKA_OFFSET_BEGINNING;
        else if (strcmp(arg, "--from") == 0 && strcmp(val, "end") == 0)
            o->start = RD_KAFKA_OFFSET_END;
        else if (strcmp(arg, "--tail") == 0)
            o->start = RD_KAFKA_OFFSET_TAIL(strtol(val, NULL, 10));
        else if (strcmp(arg, "--header") == 0 && strchr(val, '=') != NULL) {
            snprintf(o->match_name, sizeof o->match_name, "%.*s",
                     (int)(strchr(val, '=') - val), val);
            o->match_value = strchr(val, '=') + 1;
        }
        else
            goto usage;
    }
    kread_topic_name(&ctx->cfg, topic, o->topic, sizeof o->topic);
    return 0;
usage:
    ctl_error("usage: mailrobotctl kafka read [--topic T] [--from beginning|end] [--tail N] "
              "[--header NAME=VALUE] [--count N] [--timeout D] [--value]");
    return -1;
}

static int kafka_read(ctl_context *ctx, int argc, char **argv)
{
    read_options o;
    mr_err err;
    rd_kafka_t *rk;
    int partitions = 0, at_end = 0, status = CTL_OK;
    long printed = 0;
    int64_t idle_since;

    if (parse_read_options(ctx, argc, argv, &o) < 0)
        return CTL_USAGE;
    rk = kread_consumer(ctx, &err);
    if (rk == NULL
        || kread_assign_all(rk, o.topic, o.start, (int)o.timeout_ms, &partitions, &err) < 0) {
        ctl_error("kafka read at %s: %s", ctx->cfg.kafka_brokers, err.msg);
        kread_destroy(rk);
        return CTL_FAILED;
    }
    idle_since = mr_monotonic_ms();
    while ((o.count == 0 || printed < o.count) && (o.count > 0 || at_end < partitions)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);

        if (m == NULL) {
            if (mr_monotonic_ms() - idle_since > o.timeout_ms) {
                if (o.count > 0) {
                    ctl_error("%ld of %ld records from %s within %" PRId64 " ms", printed,
                              o.count, o.topic, o.timeout_ms);
                    status = CTL_FAILED;
                }
                break;
            }
            continue;
        }
        idle_since = mr_monotonic_ms();
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
            at_end++;
        else if (m->err)
            ctl_error("%s: %s", o.topic, rd_kafka_message_errstr(m));
        else if (record_matches(m, &o)) {
            kread_print_record(m, o.value_only);
            printed++;
        }
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
    kread_destroy(rk);
    return status;
}

int ctl_kafka(ctl_context *ctx, int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "init") == 0)
        return kafka_init(ctx, argc - 1, argv + 1);
    if (argc == 1 && strcmp(argv[0], "topics") == 0)
        return kafka_topics(ctx);
    if (argc >= 1 && strcmp(argv[0], "read") == 0)
        return kafka_read(ctx, argc - 1, argv + 1);
    ctl_error("usage: mailrobotctl kafka init|topics|read");
    return CTL_USAGE;
}
