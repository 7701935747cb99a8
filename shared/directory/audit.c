/*
 * audit.c - audit events of directory changes onto <prefix>.audit
 * (audit.h; schemas/audit-v1.json). Used by mailrobotctl and
 * mailrobot-admind alike, so both write the same events.
 *
 * Each event is built with jansson from the operation, the target and the
 * result only: there is no way for a password to reach it. The JSON text
 * lives in a pending entry until its delivery report, which frees it (and
 * logs it if Kafka refused it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mailrobot/audit.h"
#include "mailrobot/clock.h"
#include "mailrobot/topics.h"

typedef struct audit_event {
    struct audit_event *prev, *next;
    mr_audit *audit;
    char *json;
    char operation[64];
    char target[MR_DIR_ADDRESS_MAX + 64];
} audit_event;

struct mr_audit {
    const mr_config *cfg;
    const mr_logger *log;
    const char *actor;
    mr_producer *producer;
    char topic[MR_TOPIC_NAME_MAX];
    audit_event *pending;       /* queued, no delivery report yet */
    size_t lost;
};

static void event_unlink(audit_event *e)
{
    mr_audit *a = e->audit;

    if (e->prev)
        e->prev->next = e->next;
    else
        a->pending = e->next;
    if (e->next)
        e->next->prev = e->prev;
    free(e->json);
    free(e);
}

static void lost(mr_audit *a, const char *operation, const char *target, const char *why)
{
    a->lost++;
    mr_log(a->log, MR_LOG_ERROR, "audit event lost", "topic", a->topic, "operation", operation,
           "target", target, "reason", why, NULL);
}

static void on_delivery(void *opaque, const char *error)
{
    audit_event *e = opaque;

    if (error != NULL)
        lost(e->audit, e->operation, e->target, error);
    event_unlink(e);
}

mr_audit *mr_audit_new(const mr_config *cfg, mr_kafka_context *kafka, const mr_logger *log,
                       const char *actor, mr_err *err)
{
    mr_audit *a = calloc(1, sizeof *a);

    if (a == NULL) {
        mr_err_set(err, "out of memory");
        return NULL;
    }
    a->cfg = cfg;
    a->log = log;
    a->actor = actor;
    mr_topic_name(cfg, "audit", a->topic, sizeof a->topic);
    a->producer = mr_producer_new(cfg, kafka, cfg->ingest_time_limit, on_delivery, err);
    if (a->producer == NULL) {
        free(a);
        return NULL;
    }
    return a;
}

/* The event as JSON text (malloc'd), or NULL. */
static char *event_json(const char *actor, const char *operation, const char *target,
                        mr_dir_status result)
{
    char at[40];
    json_t *o;
    char *text;

    mr_format_rfc3339(mr_wall_ms(), at, sizeof at);
    o = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s?, s:s}", "v", 1, "type", "audit", "at", at,
                  "actor", actor, "operation", operation, "target", target, "result",
                  mr_dir_status_name(result));
    if (o == NULL)
        return NULL;
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

void mr_audit_record(mr_audit *a, const char *operation, const char *target,
                     mr_dir_status result)
{
    audit_event *e;
    mr_err err;

    if (a == NULL)
        return;
    e = calloc(1, sizeof *e);
    if (e == NULL || (e->json = event_json(a->actor, operation, target, result)) == NULL) {
        free(e);
        lost(a, operation, target ? target : "", "out of memory, or a target that is not UTF-8");
        return;
    }
    e->audit = a;
    snprintf(e->operation, sizeof e->operation, "%s", operation);
    snprintf(e->target, sizeof e->target, "%s", target ? target : "");
    e->next = a->pending;
    if (a->pending)
        a->pending->prev = e;
    a->pending = e;
    if (mr_producer_send(a->producer, a->topic, e->target, strlen(e->target), e->json,
                         strlen(e->json), NULL, 0, e, &err) < 0) {
        lost(a, operation, e->target, err.msg);
        event_unlink(e);
        return;
    }
    mr_producer_poll(a->producer, 0);
}

void mr_audit_poll(mr_audit *a)
{
    if (a != NULL)
        mr_producer_poll(a->producer, 0);
}

size_t mr_audit_flush(mr_audit *a, int64_t timeout_ms)
{
    mr_err err;
    size_t before;

    if (a == NULL)
        return 0;
    before = a->lost;
    if (a->pending != NULL)
        mr_producer_wait(a->producer, timeout_ms, &err);
    for (audit_event *e = a->pending; e != NULL; e = e->next)
        lost(a, e->operation, e->target, "not acknowledged in time");
    return a->lost - before;
}

void mr_audit_free(mr_audit *a)
{
    if (a == NULL)
        return;
    mr_audit_flush(a, a->cfg->ingest_time_limit);
    mr_producer_destroy(a->producer);
    while (a->pending != NULL)
        event_unlink(a->pending);
    free(a);
}
