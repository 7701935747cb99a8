/*
 * topics.h - the Kafka topics of a mailrobot installation (SPEC §4) and
 * their creation.
 *
 *   <prefix>.inbound          raw mail from the ingest
 *   <prefix>.retry.<delay>    one per retry_delays entry, e.g. .retry.10m
 *   <prefix>.dead             dead letters
 *   <prefix>.outbound         mail the robots send
 *   <prefix>.events           delivery log (JSON)
 *   <prefix>.audit            one event per directory change (schemas/audit-v1.json)
 */
#ifndef MAILROBOT_TOPICS_H
#define MAILROBOT_TOPICS_H

#include <stddef.h>
#include <stdint.h>

#include "mailrobot/config.h"
#include "mailrobot/kafka.h"

#define MR_TOPIC_NAME_MAX 256
#define MR_MAX_TOPICS (5 + MR_MAX_RETRY_DELAYS)

typedef struct mr_topic {
    char name[MR_TOPIC_NAME_MAX];
    int64_t retention_ms;
} mr_topic;

/* "<prefix>.<suffix>" into out. */
void mr_topic_name(const mr_config *cfg, const char *suffix, char *out, size_t outsz);

/* The retry topic for the delay retry_delays[index]: "<prefix>.retry.10m". */
void mr_topic_retry(const mr_config *cfg, size_t index, mr_topic *out);

/* Fills out (room for MR_MAX_TOPICS) with every topic; returns the count. */
size_t mr_topics(const mr_config *cfg, mr_topic *out);

typedef enum mr_topic_outcome {
    MR_TOPIC_CREATED,
    MR_TOPIC_EXISTS,     /* already there and fit for the configured limits */
    MR_TOPIC_UNFIT,      /* already there, but its max.message.bytes is too small */
    MR_TOPIC_FAILED
} mr_topic_outcome;

typedef struct mr_topic_result {
    mr_topic topic;
    mr_topic_outcome outcome;
    char detail[MR_ERR_MAX];
} mr_topic_result;

/*
 * Creates every topic that does not exist yet with topic_partitions,
 * topic_replication_factor, max.message.bytes = mr_config_record_limit()
 * and retention.ms; checks the max.message.bytes of those that exist.
 * Safe to run any number of times. Fills results (room for MR_MAX_TOPICS)
 * and *count. Returns 0 when every topic is created or fit, -1 otherwise
 * (err says why; per-topic reasons are in results).
 */
int mr_topics_create(const mr_config *cfg, mr_kafka_context *ctx, int64_t timeout_ms,
                     mr_topic_result *results, size_t *count, mr_err *err);

const char *mr_topic_outcome_name(mr_topic_outcome outcome);

#endif
