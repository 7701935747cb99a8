/*
 * audit.h - audit events: one JSON object (schemas/audit-v1.json) on
 * <prefix>.audit for every change of the directory, whoever made it
 * (mailrobotctl: actor "cli"; mailrobot-admind: actor "api").
 *
 *   {"v":1,"type":"audit","at":"2026-11-29T10:00:00.123Z","actor":"api",
 *    "operation":"account.create","target":"bob@example.org","result":"ok"}
 *
 * result is "ok" or the mr_dir_status name of the refusal ("invalid",
 * "conflict", ...). An event never holds a password, a reset token or a
 * request body: only the operation and its target.
 *
 * Events are produced asynchronously and keyed by target. The change is
 * made whether or not Kafka takes its event: the audit trail must not
 * become a way to stop administration. An event Kafka refuses (or that is
 * not acknowledged within ingest_time_limit) is logged at level error
 * ("audit event lost", with operation, target and the reason).
 *
 * One mr_audit per thread (like mr_producer).
 */
#ifndef MAILROBOT_AUDIT_H
#define MAILROBOT_AUDIT_H

#include <stdint.h>

#include "mailrobot/config.h"
#include "mailrobot/directory.h"
#include "mailrobot/kafka.h"
#include "mailrobot/log.h"

typedef struct mr_audit mr_audit;

/* actor: "cli" or "api" (borrowed; a literal). cfg, kafka and log are
 * borrowed and must outlive the writer. NULL with err if no producer could
 * be made (a bad kafka.* setting). */
mr_audit *mr_audit_new(const mr_config *cfg, mr_kafka_context *kafka, const mr_logger *log,
                       const char *actor, mr_err *err);

/* Queues the event of one change attempt. target may be NULL (e.g. a
 * restore). Never fails visibly: a problem is logged. a may be NULL (then
 * the event is only logged). */
void mr_audit_record(mr_audit *a, const char *operation, const char *target,
                     mr_dir_status result);

/* Runs pending delivery reports without waiting (logs lost events). */
void mr_audit_poll(mr_audit *a);

/* Waits up to timeout_ms for every queued event; logs the ones lost.
 * Returns the number of events still unconfirmed or lost. */
size_t mr_audit_flush(mr_audit *a, int64_t timeout_ms);

/* Flushes for at most ingest_time_limit, then frees. a may be NULL. */
void mr_audit_free(mr_audit *a);

#endif
