/*
 * kafka_producer.c - publish records and wait until Kafka has them all
 * (see kafka.h).
 *
 * Waiting uses delivery-report callbacks served by rd_kafka_poll() rather
 * than rd_kafka_flush(): in librdkafka 2.0 flush() sleeps in ~10 ms steps,
 * a poll() returns as soon as the acknowledgement is in, which is most of
 * a short-lived ingest process's wall time.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailrobot/clock.h"
#include "mailrobot/kafka.h"

struct mr_producer {
    rd_kafka_t *rk;
    mr_kafka_context *ctx;
    size_t outstanding;
    size_t failed;
    char first_failure[MR_ERR_MAX];
};

/* Each record's opaque (msg->_private) is its producer; the callback's own
 * opaque is the shared mr_kafka_context. */
static void delivery_report(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *opaque)
{
    mr_producer *producer = msg->_private;

    producer->outstanding--;
    if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR)
        return;
    if (producer->failed++ == 0)
        snprintf(producer->first_failure, sizeof producer->first_failure, "%s (%s)",
                 rd_kafka_err2str(msg->err), rd_kafka_err2name(msg->err));
}

mr_producer *mr_producer_new(const mr_config *cfg, mr_kafka_context *ctx,
                             int64_t message_timeout_ms, mr_err *err)
{
    char timeout[32], max_bytes[32], propagation[32], errstr[512];
    const mr_kafka_property defaults[] = {
        {"compression.codec", "lz4"},
        {"linger.ms", "0"},
        {"socket.nagle.disable", "true"},
        {"partitioner", "murmur2_random"}, /* same partitions as Java clients */
        {"message.timeout.ms", timeout},
        {"topic.metadata.propagation.max.ms", propagation},
        {"message.max.bytes", max_bytes},
        {NULL, NULL},
    };
    static const mr_kafka_property required[] = {
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {NULL, NULL},
    };
    mr_producer *producer;
    rd_kafka_conf_t *conf;

    snprintf(timeout, sizeof timeout, "%" PRId64, message_timeout_ms);
    /* A missing topic should fail fast, but not before the broker had a
     * chance to answer once. */
    snprintf(propagation, sizeof propagation, "%" PRId64,
             message_timeout_ms < 5000 ? message_timeout_ms / 2 : 5000);
    snprintf(max_bytes, sizeof max_bytes, "%" PRIu64, mr_config_record_limit(cfg));
    producer = calloc(1, sizeof *producer);
    if (producer == NULL) {
        mr_err_set(err, "out of memory");
        return NULL;
    }
    producer->ctx = ctx;
    conf = mr_kafka_conf_new(cfg, defaults, required, ctx, err);
    if (conf == NULL) {
        free(producer);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, delivery_report);
    producer->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof errstr);
    if (producer->rk == NULL) {
        rd_kafka_conf_destroy(conf);
        free(producer);
        mr_err_set(err, "cannot create Kafka producer: %s", errstr);
        return NULL;
    }
    return producer;
}

int mr_producer_send(mr_producer *producer, const char *topic, const void *key,
                     size_t key_len, const void *value, size_t value_len,
                     const mr_header *headers, size_t header_count, mr_err *err)
{
    rd_kafka_headers_t *hdrs = rd_kafka_headers_new(header_count);
    rd_kafka_resp_err_t rc;

    for (size_t i = 0; i < header_count; i++)
        rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
                            (ssize_t)headers[i].len);
    rc = rd_kafka_producev(producer->rk, RD_KAFKA_V_TOPIC(topic),
                           RD_KAFKA_V_KEY(key, key_len),
                           RD_KAFKA_V_VALUE((void *)value, value_len),
                           RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(producer),
                           RD_KAFKA_V_END);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(hdrs);
        return mr_err_set(err, "Kafka refused a record for %s: %s", topic, rd_kafka_err2str(rc));
    }
    producer->outstanding++;
    return 0;
}

int mr_producer_wait(mr_producer *producer, int64_t timeout_ms, mr_err *err)
{
    int64_t deadline = mr_monotonic_ms() + timeout_ms;
    const char *broker = producer->ctx ? producer->ctx->last_error : "";

    while (producer->outstanding > 0) {
        int64_t left = deadline - mr_monotonic_ms();

        if (left <= 0)
            break;
        rd_kafka_poll(producer->rk, (int)(left < 1000 ? left : 1000));
    }
    if (producer->failed > 0)
        return mr_err_set(err, "%s%s%s", producer->first_failure,
                          broker[0] ? "; last broker error: " : "", broker);
    if (producer->outstanding > 0)
        return mr_err_set(err, "%zu record(s) not acknowledged within %" PRId64 " ms%s%s",
                          producer->outstanding, timeout_ms,
                          broker[0] ? "; last broker error: " : "", broker);
    return 0;
}

size_t mr_producer_outstanding(const mr_producer *producer)
{
    return producer->outstanding;
}

void mr_producer_destroy(mr_producer *producer)
{
    if (producer == NULL)
        return;
    rd_kafka_destroy(producer->rk);
    free(producer);
}
