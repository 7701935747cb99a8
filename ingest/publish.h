/*
 * publish.h - turning one delivery into inbound Kafka records.
 */
#ifndef INGEST_PUBLISH_H
#define INGEST_PUBLISH_H

#include <stdint.h>

#include "mailrobot/buf.h"
#include "mailrobot/config.h"
#include "mailrobot/envelope.h"
#include "mailrobot/kafka.h"

/*
 * Publishes message to <prefix>.inbound, one record per recipient of
 * envelope, and waits up to ingest_time_limit until Kafka has acknowledged
 * them all. received_at: Unix time in ms for mr.received_at. Returns 0 when
 * every record is acknowledged, -1 otherwise (err says why).
 */
int ingest_publish(const mr_config *cfg, mr_producer *producer, const mr_envelope *envelope,
                   const mr_buf *message, int64_t received_at, mr_err *err);

#endif
