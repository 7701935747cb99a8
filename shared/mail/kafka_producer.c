/*
 * kafka_producer.c - publish records and learn when Kafka has them
 * (see kafka.h).
 *
 * Waiting uses delivery-report callbacks served by rd_kafka_poll() rather
 * than rd_kafka_flush(): in librdkafka 2.0 flush() sleeps in ~10 ms steps,
 * a poll() returns as soon as the acknowledgement is in. A daemon gets a
 * file descriptor (librdkafka's queue IO event) to fold the producer into
 * its own poll(2) loop.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailrobot/clock.h"
#include "mailrobot/kafka.h"

struct mr_producer {
    rd_kafka_t *rk;
    mr_kafka_context *ctx;
    mr_delivery_cb *on_delivery;
    size_t outstanding;
    size_t failed;
    char first_failure[MR_ERR_MAX];
    int event_pipe[2];
};

/* A record's own opaque (msg->_private) is a pointer to this; the
 * callback's opaque argument is the shared mr_kafka_context. */
typedef struct record_ticket {
    mr_producer *producer;
    void *opaque;
} record_ticket;

static void delivery_report(rd_kafka_t *rk, const rd_kafka_message_t *msg, void *unused)
{
    record_ticket *ticket = msg->_private;
    mr_producer *producer = ticket->producer;
    char reason[MR_ERR_MAX];

    producer->outstanding--;
    if (msg->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *broker = producer->ctx ? producer->ctx->last_error : "";

        if (msg->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART
            || msg->err == RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC)
            snprintf(reason, sizeof reason, "topic %s does not exist (create the topics with "
                     "'mailrobotctl kafka init')", rd_kafka_topic_name(msg->rkt));
        else
            snprintf(reason, sizeof reason, "%s (%s)%s%s", rd_kafka_err2str(msg->err),
                     rd_kafka_err2name(msg->err), broker[0] ? "; last broker error: " : "",
                     broker);
        if (producer->failed++ == 0)
            snprintf(producer->first_failure, sizeof producer->first_failure, "%s", reason);
    }
    if (producer->on_delivery != NULL)
        producer->on_delivery(ticket->opaque, msg->err ? reason : NULL);
    free(ticket);
}

rd_kafka_conf_t *mr_producer_conf_new(const mr_config *cfg, mr_kafka_context *ctx,
                                      int64_t message_timeout_ms, mr_err *err)
{
    char timeout[32], request_timeout[32], max_bytes[32], propagation[32];
    const mr_kafka_property defaults[] = {
        {"compression.codec", "lz4"},
        {"linger.ms", "0"},
        {"socket.nagle.disable", "true"},
        {"partitioner", "murmur2_random"}, /* same partitions as Java clients */
        {"message.timeout.ms", timeout},
        /* A produce request in flight to a broker that stopped answering
         * must fail within the same limit, not librdkafka's 30 s. */
        {"request.timeout.ms", request_timeout},
        {"topic.metadata.propagation.max.ms", propagation},
        {"message.max.bytes", max_bytes},
        {NULL, NULL},
    };
    static const mr_kafka_property required[] = {
        {"enable.idempotence", "true"},
        {"acks", "all"},
        {NULL, NULL},
    };

    snprintf(timeout, sizeof timeout, "%" PRId64, message_timeout_ms);
    /* 0: no time limit (the worker waits for Kafka as long as it takes). */
    snprintf(request_timeout, sizeof request_timeout, "%" PRId64,
             message_timeout_ms > 0 && message_timeout_ms < 30000 ? message_timeout_ms : 30000);
    /* A missing topic should fail fast, but not before the broker had a
     * chance to answer once. */
    snprintf(propagation, sizeof propagation, "%" PRId64,
             message_timeout_ms > 0 && message_timeout_ms < 5000 ? message_timeout_ms / 2 : 5000);
    snprintf(max_bytes, sizeof max_bytes, "%" PRIu64, mr_config_record_limit(cfg));
    return mr_kafka_conf_new(cfg, defaults, required, ctx, err);
}

mr_producer *mr_producer_new(const mr_config *cfg, mr_kafka_context *ctx,
                             int64_t message_timeout_ms, mr_delivery_cb *on_delivery,
                             mr_err *err)
{
    char errstr[512];
    mr_producer *producer;
    rd_kafka_conf_t *conf;

    producer = calloc(1, sizeof *producer);
    if (producer == NULL) {
        mr_err_set(err, "out of memory");
        return NULL;
    }
    producer->ctx = ctx;
    producer->on_delivery = on_delivery;
    producer->event_pipe[0] = producer->event_pipe[1] = -1;
    conf = mr_producer_conf_new(cfg, ctx, message_timeout_ms, err);
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
                     const mr_header *headers, size_t header_count, void *opaque,
                     mr_err *err)
{
    rd_kafka_headers_t *hdrs;
    record_ticket *ticket = malloc(sizeof *ticket);
    rd_kafka_resp_err_t rc;

    if (ticket == NULL)
        return mr_err_set(err, "out of memory");
    ticket->producer = producer;
    ticket->opaque = opaque;
    hdrs = rd_kafka_headers_new(header_count);
    for (size_t i = 0; i < header_count; i++)
        rd_kafka_header_add(hdrs, headers[i].name, -1, headers[i].value,
                            (ssize_t)headers[i].len);
    rc = rd_kafka_producev(producer->rk, RD_KAFKA_V_TOPIC(topic),
                           RD_KAFKA_V_KEY(key, key_len),
                           RD_KAFKA_V_VALUE((void *)value, value_len),
                           RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(ticket),
                           RD_KAFKA_V_END);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rd_kafka_headers_destroy(hdrs);
        free(ticket);
        return mr_err_set(err, "Kafka refused a record for %s: %s", topic, rd_kafka_err2str(rc));
    }
    producer->outstanding++;
    return 0;
}

void mr_producer_poll(mr_producer *producer, int timeout_ms)
{
    if (producer->event_pipe[0] >= 0) {
        char drain[64];

        while (read(producer->event_pipe[0], drain, sizeof drain) > 0)
            ;
    }
    rd_kafka_poll(producer->rk, timeout_ms);
}

int mr_producer_event_fd(mr_producer *producer, mr_err *err)
{
    rd_kafka_queue_t *main_queue;

    if (producer->event_pipe[0] >= 0)
        return producer->event_pipe[0];
    if (pipe2(producer->event_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
        return mr_err_set(err, "pipe: %m");
    main_queue = rd_kafka_queue_get_main(producer->rk);
    rd_kafka_queue_io_event_enable(main_queue, producer->event_pipe[1], "1", 1);
    rd_kafka_queue_destroy(main_queue);
    return producer->event_pipe[0];
}

int mr_producer_wait(mr_producer *producer, int64_t timeout_ms, mr_err *err)
{
    int64_t deadline = mr_monotonic_ms() + timeout_ms;
    const char *broker = mr_producer_last_broker_error(producer);

    while (producer->outstanding > 0) {
        int64_t left = deadline - mr_monotonic_ms();

        if (left <= 0)
            break;
        mr_producer_poll(producer, (int)(left < 1000 ? left : 1000));
    }
    if (producer->failed > 0)
        return mr_err_set(err, "%s", producer->first_failure);
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

const char *mr_producer_last_broker_error(const mr_producer *producer)
{
    return producer->ctx ? producer->ctx->last_error : "";
}

void mr_producer_destroy(mr_producer *producer)
{
    if (producer == NULL)
        return;
    if (producer->event_pipe[0] >= 0) {
        rd_kafka_queue_t *main_queue = rd_kafka_queue_get_main(producer->rk);

        rd_kafka_queue_io_event_enable(main_queue, -1, NULL, 0);
        rd_kafka_queue_destroy(main_queue);
    }
    rd_kafka_destroy(producer->rk);
    if (producer->event_pipe[0] >= 0) {
        close(producer->event_pipe[0]);
        close(producer->event_pipe[1]);
    }
    free(producer);
}
