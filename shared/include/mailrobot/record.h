/*
 * record.h - what an inbound Kafka record is (SPEC §3, §4): the names of
 * its headers, its id and its key.
 *
 *   key:     per partition_by (see mr_record_key)
 *   value:   the message bytes exactly as Postfix gave them
 *   headers: mr.v, mr.id, mr.sender, mr.recipient, mr.original_recipient,
 *            mr.queue_id, mr.client_address, mr.helo, mr.sasl_username,
 *            mr.received_at; and, when Postfix gives them, mr.client_hostname,
 *            mr.client_protocol, mr.sasl_method, mr.sasl_sender (what
 *            local(8) passes to an alias command, so exec robots can too)
 */
#ifndef MAILROBOT_RECORD_H
#define MAILROBOT_RECORD_H

#include <stddef.h>

#include "mailrobot/buf.h"
#include "mailrobot/config.h"

#define MR_RECORD_VERSION "1"

#define MR_H_VERSION "mr.v"
#define MR_H_ID "mr.id"
#define MR_H_SENDER "mr.sender"
#define MR_H_RECIPIENT "mr.recipient"
#define MR_H_ORIGINAL_RECIPIENT "mr.original_recipient"
#define MR_H_QUEUE_ID "mr.queue_id"
#define MR_H_CLIENT_ADDRESS "mr.client_address"
#define MR_H_HELO "mr.helo"
#define MR_H_SASL_USERNAME "mr.sasl_username"
#define MR_H_RECEIVED_AT "mr.received_at"
#define MR_H_CLIENT_HOSTNAME "mr.client_hostname"
#define MR_H_CLIENT_PROTOCOL "mr.client_protocol"
#define MR_H_SASL_METHOD "mr.sasl_method"
#define MR_H_SASL_SENDER "mr.sasl_sender"

/*
 * Added by the workers (SPEC §4) to records they re-publish. Retry topics
 * and the dead-letter topic carry the inbound headers above unchanged plus:
 *
 *   mr.robot       the robot the record is for (also on inbound records
 *                  republished by `mailrobotctl replay --robot`: it skips
 *                  routing)
 *   mr.attempt     delivery attempts made so far, decimal ("1" after the
 *                  first failure)
 *   mr.not_before  earliest time of the next attempt, RFC 3339 UTC (retry
 *                  topics only)
 *   mr.error       why the last attempt failed, one line
 *   mr.error_kind  temporary | postponed | permanent | no_route | exhausted |
 *                  bad_record
 *   mr.dead_at     when it was dead-lettered, RFC 3339 UTC (dead topic only)
 *   mr.source      where the record was consumed from: "topic/partition/offset"
 *   mr.exit_status exec robots: how the command ended: "exit 65" or "signal 9"
 *   mr.stderr      exec robots: the first lines of the command's stderr
 *                  (newlines as '|', at most 300 characters)
 *   mr.replay      a replay id (`mailrobotctl replay`): the record is
 *                  delivered again even if (mr.id, robot) was delivered
 *                  before; the dedupe key becomes mr.id + "/" + mr.replay
 *   mr.replayed    "dlq" on records `mailrobotctl dlq replay` put back on
 *                  the inbound topic (informational; dedupe still applies)
 */
#define MR_H_ROBOT "mr.robot"
#define MR_H_ATTEMPT "mr.attempt"
#define MR_H_NOT_BEFORE "mr.not_before"
#define MR_H_ERROR "mr.error"
#define MR_H_ERROR_KIND "mr.error_kind"
#define MR_H_DEAD_AT "mr.dead_at"
#define MR_H_SOURCE "mr.source"
#define MR_H_EXIT_STATUS "mr.exit_status"
#define MR_H_STDERR "mr.stderr"
#define MR_H_REPLAY "mr.replay"
#define MR_H_REPLAYED "mr.replayed"

/* mr.id: 32 lower-case hex digits and a NUL. */
#define MR_ID_SIZE 33

/*
 * The record id, stable across Postfix's retries of the same delivery: a
 * BLAKE2b-128 hash of the queue id, the recipient and the message bytes
 * (each length-prefixed, so no two inputs collide by concatenation).
 * Needs libsodium initialised (sodium_init()).
 */
void mr_record_id(const char *queue_id, const char *recipient,
                  const unsigned char *msg, size_t len, char out[MR_ID_SIZE]);

/*
 * The record key for one recipient:
 *   thread:    "<lower-cased recipient> <thread root>" (the root from
 *              mr_thread_root(); if the message names none, its mr.id)
 *   recipient: "<lower-cased recipient>"
 *   none:      "<mr.id>"
 * Replaces the contents of key. Returns 0, or -1 (buffer limit).
 */
int mr_record_key(mr_partition_by mode, const char *recipient, const char *thread_root,
                  const char *record_id, mr_buf *key, mr_err *err);

#endif
