/*
 * kafka_read.h - reading topics without a consumer group, for the
 * mailrobotctl commands that look at Kafka (kafka read, dlq, replay, tail).
 *
 * The reader assigns partitions itself and commits nothing, so it never
 * disturbs the workers' group. Two ways to read:
 *   - follow: kread_assign_all() at a start offset, then poll (kafka read,
 *     tail);
 *   - bounded: kread_bounded() reads, per partition, from a start offset
 *     up to the high watermark seen when it begins (dlq, replay), so it
 *     ends however busy the topic is.
 */
#ifndef ADMIN_KAFKA_READ_H
#define ADMIN_KAFKA_READ_H

#include <stddef.h>
#include <stdint.h>

#include "ctl.h"

/* A consumer for reading: no group commits, partition EOF events on. */
rd_kafka_t *kread_consumer(ctl_context *ctx, mr_err *err);

/* A --topic argument: a suffix without a dot ("inbound") or the suffix of
 * one of the configured topics ("retry.1m") becomes
 * "<topic_prefix>.<suffix>"; any other name is taken as it is. */
void kread_topic_name(const mr_config *cfg, const char *arg, char *out, size_t outsz);

/* Assigns every partition of topic at start (RD_KAFKA_OFFSET_BEGINNING,
 * _END or _TAIL(n)); *partitions gets their number. */
int kread_assign_all(rd_kafka_t *rk, const char *topic, int64_t start, int timeout_ms,
                     int *partitions, mr_err *err);

/* Where a bounded read starts in each partition. */
typedef enum kread_start {
    KREAD_BEGINNING, /* the oldest record kept */
    KREAD_TAIL,      /* the last `arg` records */
    KREAD_TIME       /* the first record with a timestamp >= arg (Unix ms) */
} kread_start;

/* Called for each record; owns m (rd_kafka_message_destroy() it, now or
 * later, but before the consumer is destroyed). Returns 0 to go on, -1
 * (with err) to stop the read. */
typedef int kread_record_fn(void *opaque, rd_kafka_message_t *m, mr_err *err);

/*
 * Reads the records that are in the topic now: per partition from start
 * (KREAD_TAIL: arg records back; KREAD_TIME: arg is Unix ms) up to the
 * high watermark seen when the read begins, calling fn for each, in no
 * particular order across partitions. Records produced meanwhile are not
 * read. Fails when nothing arrives for timeout_ms.
 */
int kread_bounded(rd_kafka_t *rk, const char *topic, kread_start start, int64_t arg,
                  int64_t timeout_ms, kread_record_fn *fn, void *opaque, mr_err *err);

/* Destroys a reading consumer (nothing to commit, so no group close). */
void kread_destroy(rd_kafka_t *rk);

/* The last value of header name: 0 with *value and *len, or -1 if absent. */
int kread_header(const rd_kafka_message_t *m, const char *name, const void **value,
                 size_t *len);

/* The header as a C string in out (control bytes as \xHH, cut to fit), or
 * missing if absent. Returns out. */
char *kread_header_text(const rd_kafka_message_t *m, const char *name, const char *missing,
                        char *out, size_t outsz);

/* Topic, partition, offset, key, every header and a preview of the value;
 * or, with value_only, the value's bytes as they are. */
void kread_print_record(const rd_kafka_message_t *m, int value_only);

#endif
