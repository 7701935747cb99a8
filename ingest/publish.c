/*
 * publish.c - one inbound record per recipient (SPEC §3): the value is the
 * message as read, the key follows partition_by, the headers carry the
 * envelope.
 */
#include <string.h>

#include "mailrobot/buf.h"
#include "mailrobot/clock.h"
#include "mailrobot/message_ids.h"
#include "mailrobot/record.h"
#include "mailrobot/topics.h"

#include "publish.h"

#define RECORD_HEADER_COUNT 14

static mr_header header(const char *name, const char *value)
{
    mr_header h = {name, value, strlen(value)};

    return h;
}

static int queue_one(const mr_config *cfg, mr_producer *producer, const char *topic,
                     const mr_envelope *env, size_t index, const unsigned char *message,
                     size_t len, const char *thread_root, const char *received_at,
                     mr_buf *key, void *opaque, mr_err *err)
{
    const char *recipient = env->recipients[index];
    char id[MR_ID_SIZE];
    mr_header headers[RECORD_HEADER_COUNT];

    mr_record_id(env->queue_id, recipient, message, len, id);
    if (mr_record_key((mr_partition_by)cfg->partition_by, recipient, thread_root, id, key,
                      err) < 0)
        return -1;
    headers[0] = header(MR_H_VERSION, MR_RECORD_VERSION);
    headers[1] = header(MR_H_ID, id);
    headers[2] = header(MR_H_SENDER, env->sender);
    headers[3] = header(MR_H_RECIPIENT, recipient);
    headers[4] = header(MR_H_ORIGINAL_RECIPIENT, env->original_recipients[index]);
    headers[5] = header(MR_H_QUEUE_ID, env->queue_id);
    headers[6] = header(MR_H_CLIENT_ADDRESS, env->client_address);
    headers[7] = header(MR_H_HELO, env->helo);
    headers[8] = header(MR_H_SASL_USERNAME, env->sasl_username);
    headers[9] = header(MR_H_RECEIVED_AT, received_at);
    headers[10] = header(MR_H_CLIENT_HOSTNAME, env->client_hostname);
    headers[11] = header(MR_H_CLIENT_PROTOCOL, env->client_protocol);
    headers[12] = header(MR_H_SASL_METHOD, env->sasl_method);
    headers[13] = header(MR_H_SASL_SENDER, env->sasl_sender);
    return mr_producer_send(producer, topic, key->data, key->len, message, len, headers,
                            RECORD_HEADER_COUNT, opaque, err);
}

int ingest_queue_records(const mr_config *cfg, mr_producer *producer,
                         const mr_envelope *envelope, const unsigned char *message,
                         size_t len, int64_t received_at, void *opaque, size_t *queued,
                         mr_err *err)
{
    char topic[MR_TOPIC_NAME_MAX];
    char thread_root[MR_MSGID_MAX + 1] = "";
    char received[40];
    mr_buf key;
    int rc = 0;

    /* An empty message is an empty value, not a null one. */
    if (message == NULL)
        message = (const unsigned char *)"";
    mr_topic_name(cfg, "inbound", topic, sizeof topic);
    mr_format_rfc3339(received_at, received, sizeof received);
    if (cfg->partition_by == MR_PARTITION_THREAD)
        mr_thread_root(message, len, thread_root, sizeof thread_root);
    mr_buf_init(&key, 4096);
    for (*queued = 0; *queued < envelope->recipient_count && rc == 0; (*queued)++)
        rc = queue_one(cfg, producer, topic, envelope, *queued, message, len, thread_root,
                       received, &key, opaque, err);
    if (rc < 0)
        (*queued)--;
    mr_buf_free(&key);
    return rc;
}
