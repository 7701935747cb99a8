/*
 * kafka_read.c - reading topics without a consumer group (see
 * kafka_read.h): the consumer, partition assignment, bounded reads by
 * offset span, and printing records.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mailrobot/clock.h"
#include "mailrobot/topics.h"

#include "kafka_read.h"

#define PREVIEW_LINES 12
#define PREVIEW_LINE_LIMIT 200
#define SETTLE_PAUSE_MS 100

rd_kafka_t *kread_consumer(ctl_context *ctx, mr_err *err)
{
    static const mr_kafka_property defaults[] = {
        {"group.id", "mailrobotctl-read"},
        {"enable.auto.commit", "false"},
        {"enable.auto.offset.store", "false"},
        {"enable.partition.eof", "true"},
        {NULL, NULL},
    };
    rd_kafka_conf_t *conf = mr_kafka_conf_new(&ctx->cfg, defaults, NULL, &ctx->kafka, err);
    char errstr[512];
    rd_kafka_t *rk;

    if (conf == NULL)
        return NULL;
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        mr_err_set(err, "cannot create Kafka consumer: %s", errstr);
    }
    return rk;
}

void kread_topic_name(const mr_config *cfg, const char *arg, char *out, size_t outsz)
{
    mr_topic topics[MR_MAX_TOPICS];
    size_t n = mr_topics(cfg, topics);

    mr_topic_name(cfg, arg, out, outsz);
    if (strchr(arg, '.') == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        if (strcmp(topics[i].name, out) == 0)
            return;
    snprintf(out, outsz, "%s", arg);
}

/* Answers a broker gives for a moment after a topic was created. */
static int settling(rd_kafka_resp_err_t rc)
{
    return rc == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART || rc == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC
           || rc == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE
           || rc == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION
           || rc == RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION;
}

/* After a settling answer, pauses and says to ask again, while there is
 * time left before deadline (monotonic ms). */
static int ask_again(rd_kafka_resp_err_t rc, int64_t deadline)
{
    struct timespec pause = {0, SETTLE_PAUSE_MS * 1000000L};

    if (!settling(rc) || mr_monotonic_ms() + SETTLE_PAUSE_MS >= deadline)
        return 0;
    nanosleep(&pause, NULL);
    return 1;
}

static int time_left(int64_t deadline)
{
    int64_t left = deadline - mr_monotonic_ms();

    return left < 1 ? 1 : (int)left;
}

/* The topic's metadata, once every partition has a leader. */
static rd_kafka_resp_err_t topic_metadata(rd_kafka_t *rk, const char *topic, int timeout_ms,
                                          const rd_kafka_metadata_t **md)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_resp_err_t rc = rd_kafka_metadata(rk, 0, rkt, md, timeout_ms);

    rd_kafka_topic_destroy(rkt);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        return rc;
    rc = (*md)->topic_cnt != 1 ? RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC : (*md)->topics[0].err;
    for (int i = 0; rc == RD_KAFKA_RESP_ERR_NO_ERROR && i < (*md)->topics[0].partition_cnt; i++)
        if ((*md)->topics[0].partitions[i].leader < 0)
            rc = RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE;
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        rd_kafka_metadata_destroy(*md);
    return rc;
}

/* The topic's partition ids (malloc'd). */
static int topic_partitions(rd_kafka_t *rk, const char *topic, int timeout_ms, int32_t **ids,
                            int *count, mr_err *err)
{
    int64_t deadline = mr_monotonic_ms() + timeout_ms;
    const rd_kafka_metadata_t *md;
    rd_kafka_resp_err_t rc;

    do
        rc = topic_metadata(rk, topic, time_left(deadline), &md);
    while (ask_again(rc, deadline));
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        return mr_err_set(err, "topic %s: %s", topic, rd_kafka_err2str(rc));
    *count = md->topics[0].partition_cnt;
    *ids = calloc((size_t)*count + 1, sizeof **ids);
    for (int i = 0; *ids != NULL && i < *count; i++)
        (*ids)[i] = md->topics[0].partitions[i].id;
    rd_kafka_metadata_destroy(md);
    return *ids ? 0 : mr_err_set(err, "out of memory");
}

/* Assigns the partitions of list (which it destroys) at their offsets. */
static int assign_list(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *list, mr_err *err)
{
    rd_kafka_resp_err_t rc = rd_kafka_assign(rk, list);

    rd_kafka_topic_partition_list_destroy(list);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        return mr_err_set(err, "assign: %s", rd_kafka_err2str(rc));
    return 0;
}

int kread_assign_all(rd_kafka_t *rk, const char *topic, int64_t start, int timeout_ms,
                     int *partitions, mr_err *err)
{
    rd_kafka_topic_partition_list_t *list;
    int32_t *ids;

    if (topic_partitions(rk, topic, timeout_ms, &ids, partitions, err) < 0)
        return -1;
    list = rd_kafka_topic_partition_list_new(*partitions);
    for (int i = 0; i < *partitions; i++)
        rd_kafka_topic_partition_list_add(list, topic, ids[i])->offset = start;
    free(ids);
    return assign_list(rk, list, err);
}

/* --- bounded reads ----------------------------------------------------------- */

/* One span per partition: the offsets [from, to) a bounded read covers. */
typedef struct kread_span {
    int32_t partition;
    int64_t from; /* first offset to read */
    int64_t to;   /* high watermark when the span was made: read below it */
} kread_span;

/* Moves each span's start to the first offset whose timestamp is at or
 * after the time in its `from` (Unix ms), or to its end when none is. */
static rd_kafka_resp_err_t offsets_at_time(rd_kafka_t *rk, const char *topic, kread_span *spans,
                                           int count, int timeout_ms)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(count);
    rd_kafka_resp_err_t rc;

    for (int i = 0; i < count; i++)
        rd_kafka_topic_partition_list_add(list, topic, spans[i].partition)->offset =
            spans[i].from;
    rc = rd_kafka_offsets_for_times(rk, list, timeout_ms);
    for (int i = 0; rc == RD_KAFKA_RESP_ERR_NO_ERROR && i < count; i++)
        rc = list->elems[i].err;
    for (int i = 0; rc == RD_KAFKA_RESP_ERR_NO_ERROR && i < count; i++)
        spans[i].from = list->elems[i].offset < 0 ? spans[i].to : list->elems[i].offset;
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

static int spans_at_time(rd_kafka_t *rk, const char *topic, kread_span *spans, int count,
                         int timeout_ms, mr_err *err)
{
    int64_t deadline = mr_monotonic_ms() + timeout_ms;
    rd_kafka_resp_err_t rc;

    do
        rc = offsets_at_time(rk, topic, spans, count, time_left(deadline));
    while (ask_again(rc, deadline));
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        return mr_err_set(err, "topic %s: offsets for times: %s", topic, rd_kafka_err2str(rc));
    return 0;
}

static int span_limits(rd_kafka_t *rk, const char *topic, int32_t partition, kread_start start,
                       int64_t arg, int timeout_ms, kread_span *span, mr_err *err)
{
    int64_t low, high, deadline = mr_monotonic_ms() + timeout_ms;
    rd_kafka_resp_err_t rc;

    do
        rc = rd_kafka_query_watermark_offsets(rk, topic, partition, &low, &high,
                                              time_left(deadline));
    while (ask_again(rc, deadline));

    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        return mr_err_set(err, "topic %s [%" PRId32 "]: watermarks: %s", topic, partition,
                          rd_kafka_err2str(rc));
    span->partition = partition;
    span->to = high;
    span->from = start == KREAD_TIME ? arg : start == KREAD_TAIL && high - arg > low ? high - arg
               : low;
    return 0;
}

static int make_spans(rd_kafka_t *rk, const char *topic, kread_start start, int64_t arg,
                      int timeout_ms, kread_span **spans, int *count, mr_err *err)
{
    int32_t *ids;
    int rc = 0;

    if (topic_partitions(rk, topic, timeout_ms, &ids, count, err) < 0)
        return -1;
    *spans = calloc((size_t)*count + 1, sizeof **spans);
    if (*spans == NULL)
        rc = mr_err_set(err, "out of memory");
    for (int i = 0; rc == 0 && i < *count; i++)
        rc = span_limits(rk, topic, ids[i], start, arg, timeout_ms, &(*spans)[i], err);
    free(ids);
    if (rc == 0 && start == KREAD_TIME)
        rc = spans_at_time(rk, topic, *spans, *count, timeout_ms, err);
    if (rc < 0) {
        free(*spans);
        *spans = NULL;
    }
    return rc;
}

/* A bounded read in progress: which spans are read to their end. */
typedef struct span_reader {
    const kread_span *spans;
    int count;
    char *done;
    int open;                 /* spans not done */
    char last_error[MR_ERR_MAX];
} span_reader;

static int span_of(const span_reader *r, int32_t partition)
{
    for (int i = 0; i < r->count; i++)
        if (r->spans[i].partition == partition)
            return i;
    return -1;
}

static void span_done(span_reader *r, int s)
{
    if (!r->done[s]) {
        r->done[s] = 1;
        r->open--;
    }
}

/* Assigns the spans that are not empty and marks the others done. */
static int assign_spans(rd_kafka_t *rk, const char *topic, span_reader *r, mr_err *err)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(r->count);

    r->open = r->count;
    for (int i = 0; i < r->count; i++) {
        if (r->spans[i].from < r->spans[i].to)
            rd_kafka_topic_partition_list_add(list, topic, r->spans[i].partition)->offset =
                r->spans[i].from;
        else
            span_done(r, i);
    }
    return assign_list(rk, list, err);
}

/* Hands a record of an open span to fn; notes errors and span ends. A
 * partition's end (EOF) closes its span too: the last offsets below the
 * watermark may be markers that are never delivered. */
static int span_take(span_reader *r, rd_kafka_message_t *m, kread_record_fn *fn, void *opaque,
                     mr_err *err)
{
    int s = span_of(r, m->partition);
    int last;

    if (m->err && m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
        snprintf(r->last_error, sizeof r->last_error, "%s", rd_kafka_message_errstr(m));
    if (s < 0 || r->done[s] || m->err || m->offset >= r->spans[s].to) {
        if (s >= 0 && (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF
                       || (!m->err && m->offset >= r->spans[s].to)))
            span_done(r, s);
        rd_kafka_message_destroy(m);
        return 0;
    }
    last = m->offset + 1 >= r->spans[s].to;
    if (fn(opaque, m, err) < 0)
        return -1;
    if (last)
        span_done(r, s);
    return 0;
}

static int spans_run(rd_kafka_t *rk, const char *topic, const kread_span *spans, int count,
                     int64_t idle_timeout_ms, kread_record_fn *fn, void *opaque, mr_err *err)
{
    span_reader r = {spans, count, calloc((size_t)count + 1, 1), 0, ""};
    int64_t idle_since = mr_monotonic_ms();
    int rc = r.done ? assign_spans(rk, topic, &r, err) : mr_err_set(err, "out of memory");

    while (rc == 0 && r.open > 0) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);

        if (m != NULL) {
            idle_since = mr_monotonic_ms();
            rc = span_take(&r, m, fn, opaque, err);
        } else if (mr_monotonic_ms() - idle_since > idle_timeout_ms)
            rc = mr_err_set(err, "topic %s: nothing read for %" PRId64 " ms, %d partition(s) "
                            "not read to the end%s%s", topic, idle_timeout_ms, r.open,
                            r.last_error[0] ? "; last error: " : "", r.last_error);
    }
    free(r.done);
    return rc;
}

int kread_bounded(rd_kafka_t *rk, const char *topic, kread_start start, int64_t arg,
                  int64_t timeout_ms, kread_record_fn *fn, void *opaque, mr_err *err)
{
    kread_span *spans;
    int count, rc;

    if (make_spans(rk, topic, start, arg, (int)timeout_ms, &spans, &count, err) < 0)
        return -1;
    rc = spans_run(rk, topic, spans, count, timeout_ms, fn, opaque, err);
    free(spans);
    return rc;
}

void kread_destroy(rd_kafka_t *rk)
{
    if (rk != NULL)
        rd_kafka_destroy_flags(rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

/* --- headers and printing ---------------------------------------------------- */

int kread_header(const rd_kafka_message_t *m, const char *name, const void **value,
                 size_t *len)
{
    rd_kafka_headers_t *hdrs = NULL;

    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR
        || rd_kafka_header_get_last(hdrs, name, value, len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    return 0;
}

char *kread_header_text(const rd_kafka_message_t *m, const char *name, const char *missing,
                        char *out, size_t outsz)
{
    const unsigned char *v;
    const void *value;
    size_t len, n = 0;

    if (kread_header(m, name, &value, &len) < 0) {
        snprintf(out, outsz, "%s", missing);
        return out;
    }
    v = value;
    for (size_t i = 0; i < len && n + 5 < outsz; i++) {
        if (v[i] < 0x20 || v[i] == 0x7f)
            n += (size_t)snprintf(out + n, outsz - n, "\\x%02x", v[i]);
        else
            out[n++] = (char)v[i];
    }
    out[n] = '\0';
    return out;
}

/* Bytes to stdout with backslash and non-printable bytes escaped (\xHH). */
static void print_escaped(const void *bytes, size_t len)
{
    const unsigned char *p = bytes;

    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\\')
            fputs("\\\\", stdout);
        else if (isprint(p[i]))
            putchar(p[i]);
        else
            printf("\\x%02x", p[i]);
    }
}

static void print_headers(const rd_kafka_message_t *m)
{
    rd_kafka_headers_t *hdrs = NULL;
    const char *name;
    const void *hv;
    size_t hlen;

    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &hv, &hlen)
                       == RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
        printf("  %s: ", name);
        print_escaped(hv, hlen);
        putchar('\n');
    }
}

void kread_print_record(const rd_kafka_message_t *m, int value_only)
{
    const unsigned char *value = m->payload;
    size_t pos = 0;

    if (value_only) {
        fwrite(m->payload, 1, m->len, stdout);
        return;
    }
    printf("%s [%" PRId32 "] @%" PRId64 "  key: ", rd_kafka_topic_name(m->rkt), m->partition,
           m->offset);
    print_escaped(m->key, m->key_len);
    putchar('\n');
    print_headers(m);
    printf("  value: %zu bytes\n", m->len);
    for (int line = 0; line < PREVIEW_LINES && pos < m->len; line++) {
        const unsigned char *nl = memchr(value + pos, '\n', m->len - pos);
        size_t n = nl ? (size_t)(nl - (value + pos)) : m->len - pos;

        fputs("  | ", stdout);
        print_escaped(value + pos, n > PREVIEW_LINE_LIMIT ? PREVIEW_LINE_LIMIT : n);
        putchar('\n');
        pos += n + 1;
    }
}
