/*
 * topics.c - the topics of SPEC §4 and `mailrobotctl kafka init`
 * (see topics.h).
 *
 * Creation goes through librdkafka's admin API: one CreateTopics request
 * for all topics, then one DescribeConfigs request for those that already
 * existed, to catch a topic whose max.message.bytes would make the ingest
 * defer every large mail.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailrobot/topics.h"
#include "mailrobot/units.h"

void mr_topic_name(const mr_config *cfg, const char *suffix, char *out, size_t outsz)
{
    snprintf(out, outsz, "%s.%s", cfg->topic_prefix, suffix);
}

static void add_topic(const mr_config *cfg, mr_topic *out, size_t *n, const char *suffix,
                      int64_t retention_ms)
{
    mr_topic_name(cfg, suffix, out[*n].name, sizeof out[*n].name);
    out[*n].retention_ms = retention_ms;
    (*n)++;
}

void mr_topic_retry(const mr_config *cfg, size_t index, mr_topic *out)
{
    int64_t delay = cfg->retry_delays.ms[index];
    char suffix[64], label[32];

    snprintf(suffix, sizeof suffix, "retry.%s", mr_format_duration(delay, label, sizeof label));
    mr_topic_name(cfg, suffix, out->name, sizeof out->name);
    out->retention_ms = cfg->topic_retention > 2 * delay ? cfg->topic_retention : 2 * delay;
}

size_t mr_topics(const mr_config *cfg, mr_topic *out)
{
    size_t n = 0;

    add_topic(cfg, out, &n, "inbound", cfg->topic_retention);
    for (size_t i = 0; i < cfg->retry_delays.count; i++)
        mr_topic_retry(cfg, i, &out[n++]);
    add_topic(cfg, out, &n, "dead", cfg->topic_retention);
    add_topic(cfg, out, &n, "outbound", cfg->topic_retention);
    add_topic(cfg, out, &n, "events", cfg->topic_retention);
    add_topic(cfg, out, &n, "audit", cfg->topic_retention);
    return n;
}

const char *mr_topic_outcome_name(mr_topic_outcome outcome)
{
    switch (outcome) {
    case MR_TOPIC_CREATED:
        return "created";
    case MR_TOPIC_EXISTS:
        return "exists";
    case MR_TOPIC_UNFIT:
        return "unfit";
    case MR_TOPIC_FAILED:
        return "failed";
    }
    return "?";
}

static mr_topic_result *find_result(mr_topic_result *results, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(results[i].topic.name, name) == 0)
            return &results[i];
    return NULL;
}

/* Waits for the one result event of an admin request on q. */
static rd_kafka_event_t *await_event(rd_kafka_queue_t *q, int64_t timeout_ms, const char *what,
                                     const mr_kafka_context *ctx, mr_err *err)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, (int)timeout_ms + 1000);

    if (ev == NULL) {
        mr_err_set(err, "%s: no answer from Kafka within %" PRId64 " ms%s%s", what,
                   timeout_ms, ctx->last_error[0] ? "; last broker error: " : "",
                   ctx->last_error);
        return NULL;
    }
    if (rd_kafka_event_error(ev)) {
        mr_err_set(err, "%s: %s%s%s", what, rd_kafka_event_error_string(ev),
                   ctx->last_error[0] ? "; last broker error: " : "", ctx->last_error);
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

static rd_kafka_AdminOptions_t *admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op,
                                              int64_t timeout_ms)
{
    rd_kafka_AdminOptions_t *options = rd_kafka_AdminOptions_new(rk, op);
    char errstr[256];

    rd_kafka_AdminOptions_set_request_timeout(options, (int)timeout_ms, errstr, sizeof errstr);
    if (op == RD_KAFKA_ADMIN_OP_CREATETOPICS)
        rd_kafka_AdminOptions_set_operation_timeout(options, (int)timeout_ms, errstr,
                                                    sizeof errstr);
    return options;
}

static int create_all(rd_kafka_t *rk, rd_kafka_queue_t *q, const mr_config *cfg,
                      mr_kafka_context *ctx, int64_t timeout_ms, mr_topic_result *results,
                      size_t count, mr_err *err)
{
    rd_kafka_NewTopic_t *topics[MR_MAX_TOPICS];
    char max_bytes[32], retention[32], errstr[512];
    rd_kafka_AdminOptions_t *options;
    const rd_kafka_topic_result_t **created;
    rd_kafka_event_t *ev;
    size_t n = 0;

    snprintf(max_bytes, sizeof max_bytes, "%" PRIu64, mr_config_record_limit(cfg));
    for (size_t i = 0; i < count; i++) {
        topics[i] = rd_kafka_NewTopic_new(results[i].topic.name, (int)cfg->topic_partitions,
                                          (int)cfg->topic_replication_factor, errstr,
                                          sizeof errstr);
        if (topics[i] == NULL) {
            rd_kafka_NewTopic_destroy_array(topics, i);
            return mr_err_set(err, "topic %s: %s", results[i].topic.name, errstr);
        }
        snprintf(retention, sizeof retention, "%" PRId64, results[i].topic.retention_ms);
        rd_kafka_NewTopic_set_config(topics[i], "max.message.bytes", max_bytes);
        rd_kafka_NewTopic_set_config(topics[i], "retention.ms", retention);
    }
    options = admin_options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout_ms);
    rd_kafka_CreateTopics(rk, topics, count, options, q);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_NewTopic_destroy_array(topics, count);

    ev = await_event(q, timeout_ms, "creating topics", ctx, err);
    if (ev == NULL)
        return -1;
    created = rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
    for (size_t i = 0; i < n; i++) {
        mr_topic_result *r = find_result(results, count, rd_kafka_topic_result_name(created[i]));
        rd_kafka_resp_err_t code = rd_kafka_topic_result_error(created[i]);

        if (r == NULL)
            continue;
        if (code == RD_KAFKA_RESP_ERR_NO_ERROR) {
            r->outcome = MR_TOPIC_CREATED;
            snprintf(r->detail, sizeof r->detail, "max.message.bytes=%s", max_bytes);
        } else if (code == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS) {
            r->outcome = MR_TOPIC_EXISTS;
        } else {
            const char *why = rd_kafka_topic_result_error_string(created[i]);

            r->outcome = MR_TOPIC_FAILED;
            snprintf(r->detail, sizeof r->detail, "%s", why ? why : rd_kafka_err2str(code));
        }
    }
    rd_kafka_event_destroy(ev);
    return 0;
}

/* Marks an existing topic unfit when its max.message.bytes is too small. */
static void check_topic_config(const rd_kafka_ConfigResource_t *resource,
                               mr_topic_result *r, uint64_t needed)
{
    const rd_kafka_ConfigEntry_t **entries;
    size_t n = 0;

    if (rd_kafka_ConfigResource_error(resource) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        r->outcome = MR_TOPIC_FAILED;
        snprintf(r->detail, sizeof r->detail, "cannot read its configuration: %s",
                 rd_kafka_ConfigResource_error_string(resource));
        return;
    }
    entries = rd_kafka_ConfigResource_configs(resource, &n);
    for (size_t i = 0; i < n; i++) {
        const char *value = rd_kafka_ConfigEntry_value(entries[i]);

        if (strcmp(rd_kafka_ConfigEntry_name(entries[i]), "max.message.bytes") != 0 || !value)
            continue;
        if (strtoull(value, NULL, 10) < needed) {
            r->outcome = MR_TOPIC_UNFIT;
            snprintf(r->detail, sizeof r->detail,
                     "max.message.bytes=%s is below the %" PRIu64 " bytes that "
                     "max_message_bytes needs: raise it (kafka-configs --alter)", value, needed);
        } else {
            snprintf(r->detail, sizeof r->detail, "max.message.bytes=%s", value);
        }
    }
}

static int check_existing(rd_kafka_t *rk, rd_kafka_queue_t *q, const mr_config *cfg,
                          mr_kafka_context *ctx, int64_t timeout_ms,
                          mr_topic_result *results, size_t count, mr_err *err)
{
    rd_kafka_ConfigResource_t *resources[MR_MAX_TOPICS];
    const rd_kafka_ConfigResource_t **described;
    rd_kafka_AdminOptions_t *options;
    rd_kafka_event_t *ev;
    size_t n = 0, m = 0;

    for (size_t i = 0; i < count; i++)
        if (results[i].outcome == MR_TOPIC_EXISTS)
            resources[n++] = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC,
                                                         results[i].topic.name);
    if (n == 0)
        return 0;
    options = admin_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS, timeout_ms);
    rd_kafka_DescribeConfigs(rk, resources, n, options, q);
    rd_kafka_AdminOptions_destroy(options);
    rd_kafka_ConfigResource_destroy_array(resources, n);

    ev = await_event(q, timeout_ms, "reading topic configurations", ctx, err);
    if (ev == NULL)
        return -1;
    described = rd_kafka_DescribeConfigs_result_resources(
        rd_kafka_event_DescribeConfigs_result(ev), &m);
    for (size_t i = 0; i < m; i++) {
        mr_topic_result *r = find_result(results, count,
                                         rd_kafka_ConfigResource_name(described[i]));

        if (r != NULL)
            check_topic_config(described[i], r, mr_config_record_limit(cfg));
    }
    rd_kafka_event_destroy(ev);
    return 0;
}

int mr_topics_create(const mr_config *cfg, mr_kafka_context *ctx, int64_t timeout_ms,
                     mr_topic_result *results, size_t *count, mr_err *err)
{
    mr_topic topics[MR_MAX_TOPICS];
    rd_kafka_conf_t *conf;
    rd_kafka_t *rk;
    rd_kafka_queue_t *q;
    char errstr[512];
    size_t bad = 0;
    int rc;

    *count = mr_topics(cfg, topics);
    for (size_t i = 0; i < *count; i++) {
        memset(&results[i], 0, sizeof results[i]);
        results[i].topic = topics[i];
        results[i].outcome = MR_TOPIC_FAILED;
        snprintf(results[i].detail, sizeof results[i].detail, "no result from Kafka");
    }
    conf = mr_kafka_conf_new(cfg, NULL, NULL, ctx, err);
    if (conf == NULL)
        return -1;
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        return mr_err_set(err, "cannot create Kafka admin client: %s", errstr);
    }
    q = rd_kafka_queue_new(rk);
    rc = create_all(rk, q, cfg, ctx, timeout_ms, results, *count, err);
    if (rc == 0)
        rc = check_existing(rk, q, cfg, ctx, timeout_ms, results, *count, err);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    if (rc < 0)
        return -1;
    for (size_t i = 0; i < *count; i++)
        bad += results[i].outcome == MR_TOPIC_FAILED || results[i].outcome == MR_TOPIC_UNFIT;
    if (bad > 0)
        return mr_err_set(err, "%zu of %zu topics failed or are unfit", bad, *count);
    return 0;
}
