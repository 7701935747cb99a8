/*
 * publish.h - turning one delivery into inbound Kafka records (SPEC §3),
 * shared by mailrobot-ingestd's daemon and its --direct mode.
 */
#ifndef INGEST_PUBLISH_H
#define INGEST_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "mailrobot/config.h"
#include "mailrobot/envelope.h"
#include "mailrobot/kafka.h"

/*
 * Queues one record per recipient of envelope on <prefix>.inbound: value =
 * the message bytes as given (not copied: they must live until every
 * record's delivery callback ran), key per partition_by, headers mr.*.
 * received_at: Unix time in ms for mr.received_at. opaque goes to the
 * producer's delivery callback of each record. Returns 0 when every record
 * is queued, or -1 with err set if Kafka refused one at once. *queued is
 * the number queued either way; those records get their callbacks.
 */
int ingest_queue_records(const mr_config *cfg, mr_producer *producer,
                         const mr_envelope *envelope, const unsigned char *message,
                         size_t len, int64_t received_at, void *opaque, size_t *queued,
                         mr_err *err);

#endif
