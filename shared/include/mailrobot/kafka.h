/*
 * kafka.h - the Kafka clients of mailrobot, on librdkafka.
 *
 * mr_kafka_conf_new() is the one place a librdkafka configuration is made:
 * the caller's defaults for its role, then the operator's `kafka.*`
 * pass-through settings (which may tune anything but the guarantees), then
 * the settings mailrobot's guarantees depend on, which pass-through may
 * not change. librdkafka's own log lines go to the mailrobot logger (never
 * straight to stderr: the ingest's stderr is Postfix's delivery status).
 *
 * mr_producer is a producer that publishes and then waits for every record
 * to be acknowledged (the ingest's contract). Idempotent, acks=all.
 * A producer is used by one thread.
 */
#ifndef MAILROBOT_KAFKA_H
#define MAILROBOT_KAFKA_H

#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "mailrobot/config.h"
#include "mailrobot/err.h"
#include "mailrobot/log.h"

/* A librdkafka property and the value mailrobot gives it. */
typedef struct mr_kafka_property {
    const char *name;
    const char *value;
} mr_kafka_property;

/* What every client of a process shares: where its log goes and the last
 * error a broker connection reported (for messages like "kafka unreachable:
 * Connect to ipv4#127.0.0.1:9092 failed: Connection refused"). */
typedef struct mr_kafka_context {
    const mr_logger *log;
    char last_error[MR_ERR_MAX];
} mr_kafka_context;

/*
 * Creates a librdkafka configuration: bootstrap.servers from cfg, then
 * defaults (role defaults, may be NULL-terminated array or NULL), then
 * cfg's kafka.* settings, then required (NULL-terminated, or NULL), which
 * a kafka.* setting may not contradict. Sets the log and error callbacks
 * with ctx as opaque (ctx must outlive the client). Returns NULL with an
 * error naming the offending setting and where it was set.
 */
rd_kafka_conf_t *mr_kafka_conf_new(const mr_config *cfg, const mr_kafka_property *defaults,
                                   const mr_kafka_property *required, mr_kafka_context *ctx,
                                   mr_err *err);

/* One record header: a name and a byte string. */
typedef struct mr_header {
    const char *name;
    const void *value;
    size_t len;
} mr_header;

typedef struct mr_producer mr_producer;

/* Called once per record from mr_producer_poll() or mr_producer_wait()
 * with the opaque given to mr_producer_send(); error is NULL when Kafka
 * acknowledged the record, else why it failed. */
typedef void mr_delivery_cb(void *opaque, const char *error);

/* The configuration mr_producer_new() uses, without creating a client:
 * lets `mailrobotctl config check` find every error a producer would. */
rd_kafka_conf_t *mr_producer_conf_new(const mr_config *cfg, mr_kafka_context *ctx,
                                      int64_t message_timeout_ms, mr_err *err);

/*
 * Creates an idempotent, acks=all producer whose records fail if not
 * acknowledged within message_timeout_ms (0: no limit, wait for Kafka). Compression defaults to lz4 and
 * linger to 0 (records are sent at once), both tunable with kafka.*.
 * The message size limit follows mr_config_record_limit(cfg). on_delivery
 * may be NULL.
 */
mr_producer *mr_producer_new(const mr_config *cfg, mr_kafka_context *ctx,
                             int64_t message_timeout_ms, mr_delivery_cb *on_delivery,
                             mr_err *err);

/*
 * Queues one record. key and headers are copied; value is NOT copied and
 * must stay valid until its delivery callback has run. Returns 0, or -1 if
 * librdkafka refused the record at once (err says why; no callback runs).
 */
int mr_producer_send(mr_producer *producer, const char *topic, const void *key,
                     size_t key_len, const void *value, size_t value_len,
                     const mr_header *headers, size_t header_count, void *opaque,
                     mr_err *err);

/* Runs pending delivery callbacks, waiting up to timeout_ms for one. */
void mr_producer_poll(mr_producer *producer, int timeout_ms);

/* A file descriptor that becomes readable when delivery callbacks are
 * pending, for a poll(2) loop: on POLLIN, call mr_producer_poll(p, 0),
 * which also drains it. Returns the fd or -1 (err). Owned by the producer. */
int mr_producer_event_fd(mr_producer *producer, mr_err *err);

/*
 * Waits until every queued record is acknowledged or has failed, at most
 * timeout_ms. Returns 0 if all were acknowledged; -1 if any failed or the
 * time ran out, with the first reason (and the last broker error) in err.
 */
int mr_producer_wait(mr_producer *producer, int64_t timeout_ms, mr_err *err);

/* Records queued and not yet acknowledged or failed. */
size_t mr_producer_outstanding(const mr_producer *producer);

/* The last error a broker connection reported, or "". */
const char *mr_producer_last_broker_error(const mr_producer *producer);

/* Destroys the producer; records still outstanding are abandoned without
 * callbacks. */
void mr_producer_destroy(mr_producer *producer);

#endif
