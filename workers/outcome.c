/*
 * outcome.c - what a record becomes when it is not simply delivered, and
 * the events that tell the story (SPEC §4):
 *
 * - temporary failure: the record, unchanged, on the next retry topic
 *   <prefix>.retry.<delay> with mr.attempt, mr.robot, mr.not_before,
 *   mr.error; after the last delay, the dead-letter topic (exhausted);
 * - permanent failure, no route, unusable record: <prefix>.dead with the
 *   error headers (record.h);
 * - every step: a JSON event on <prefix>.events (schemas/event-v1.json).
 *
 * Retry and dead records are what make a job finished, so the job waits
 * for Kafka's acknowledgement (the producer has no time limit: if Kafka is
 * down, the job waits, and its offset stays uncommitted). Events are sent
 * without waiting.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <jansson.h>

#include "mailrobot/clock.h"

#include "worker.h"

#define MAX_HEADERS 64

/* What the producer's delivery callback gets (worker.c). */
typedef enum ticket_kind { TICKET_JOB, TICKET_EVENT, TICKET_EFFECT } ticket_kind;
typedef struct producer_ticket {
    ticket_kind kind;
    job *j;          /* TICKET_JOB, TICKET_EFFECT */
    worker *w;       /* TICKET_EVENT: */
    char *json;      /*   the value, freed when Kafka has it */
    char key[MR_ID_SIZE];
    int attempts;
} producer_ticket;

#define EVENT_SEND_ATTEMPTS 5

/* Headers the workers set; copies of a record drop the old values. */
static const char *const worker_headers[] = {
    MR_H_ROBOT, MR_H_ATTEMPT, MR_H_NOT_BEFORE, MR_H_ERROR, MR_H_ERROR_KIND,
    MR_H_DEAD_AT, MR_H_SOURCE, MR_H_EXIT_STATUS, MR_H_STDERR, NULL,
};

static int is_worker_header(const char *name)
{
    for (int i = 0; worker_headers[i]; i++)
        if (strcmp(name, worker_headers[i]) == 0)
            return 1;
    return 0;
}

static mr_header text_header(const char *name, const char *value)
{
    mr_header h = {name, value, strlen(value)};

    return h;
}

/* The record's own headers (minus the worker's), then extra. */
static size_t copy_headers(const job *j, mr_header *out, const mr_header *extra, size_t extra_n)
{
    rd_kafka_headers_t *hdrs = NULL;
    size_t n = 0;

    if (rd_kafka_message_headers(j->msg, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
        const char *name;
        const void *value;
        size_t len;

        for (size_t i = 0; n + extra_n < MAX_HEADERS
                           && rd_kafka_header_get_all(hdrs, i, &name, &value, &len)
                                  == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
            if (!is_worker_header(name))
                out[n++] = (mr_header){name, value, len};
    }
    for (size_t i = 0; i < extra_n; i++)
        out[n++] = extra[i];
    return n;
}

static void publish(job *j, const char *topic, const mr_header *extra, size_t extra_n)
{
    worker *w = j->w;
    mr_header headers[MAX_HEADERS];
    size_t n = copy_headers(j, headers, extra, extra_n);
    producer_ticket *ticket = calloc(1, sizeof *ticket);
    mr_err err;

    j->state = JOB_PUBLISHING;
    if (ticket == NULL) {
        job_published(j, "out of memory");
        return;
    }
    ticket->kind = TICKET_JOB;
    ticket->j = j;
    if (mr_producer_send(w->producer, topic, j->msg->key, j->msg->key_len,
                         j->msg->payload ? j->msg->payload : "", j->msg->len, headers, n,
                         ticket, &err) < 0) {
        free(ticket);
        job_published(j, err.msg);
    }
}

/* Builds the worker's headers for the job's outcome and publishes the
 * record to its retry or dead-letter topic. Called again (job.c) if Kafka
 * refused it. */
void outcome_publish(job *j)
{
    worker *w = j->w;
    int postponed = strcmp(j->outcome_kind, "postponed") == 0;
    int retry = postponed || strcmp(j->outcome_kind, "retry") == 0;
    size_t made = (size_t)j->attempt + 1;
    size_t topic = postponed ? 0 : made - 1;   /* retry topic index */
    char attempt[16], at[40], exit_status[32];
    mr_header extra[9];
    size_t n = 0;

    if (retry)
        snprintf(attempt, sizeof attempt, "%zu", postponed ? made - 1 : made);
    else
        snprintf(attempt, sizeof attempt, "%d",
                 j->attempt + (strcmp(j->outcome_kind, "permanent") == 0
                               || strcmp(j->outcome_kind, "exhausted") == 0));
    if (j->robot_name[0])
        extra[n++] = text_header(MR_H_ROBOT, j->robot_name);
    extra[n++] = text_header(MR_H_ATTEMPT, attempt);
    if (retry) {
        mr_format_rfc3339(mr_wall_ms() + w->cfg->retry_delays.ms[topic], at, sizeof at);
        extra[n++] = text_header(MR_H_NOT_BEFORE, at);
    }
    extra[n++] = text_header(MR_H_ERROR, j->error[0] ? j->error : j->outcome_kind);
    extra[n++] = text_header(MR_H_ERROR_KIND, postponed ? "postponed"
                                              : retry   ? "temporary"
                                                        : j->outcome_kind);
    if (!retry) {
        mr_format_rfc3339(mr_wall_ms(), at, sizeof at);
        extra[n++] = text_header(MR_H_DEAD_AT, at);
    }
    extra[n++] = text_header(MR_H_SOURCE, j->source);
    if (j->exec_ran) {
        extra[n++] = text_header(MR_H_EXIT_STATUS, exec_status_text(j->exec_wait_status,
                                                                    exit_status,
                                                                    sizeof exit_status));
        if (j->exec_stderr[0])
            extra[n++] = text_header(MR_H_STDERR, j->exec_stderr);
    }
    publish(j, retry ? w->retry_topics[topic].name : w->dead_topic, extra, n);
}

/* The robot is slow (worker_robot_backlog records wait for it, the oldest
 * for worker_robot_wait_limit): the record goes to the first retry topic as
 * it is, attempts unchanged, and comes back after the first retry delay.
 * Not a failure. */
void outcome_postpone(job *j)
{
    worker *w = j->w;

    snprintf(j->error, sizeof j->error, "postponed: robot '%s' is slow: %lld records have "
             "been waiting for it in this worker for %lld ms or more (worker_robot_backlog, "
             "worker_robot_wait_limit)", j->robot_name, (long long)w->cfg->worker_robot_backlog,
             (long long)w->cfg->worker_robot_wait_limit);
    snprintf(j->outcome_kind, sizeof j->outcome_kind, "postponed");
    outcome_event(w, j, "postponed", "retry_topic", w->retry_topics[0].name);
    metrics_count(w, "postponed", j->robot_name);
    outcome_publish(j);
}

void outcome_dead(job *j, const char *kind)
{
    snprintf(j->outcome_kind, sizeof j->outcome_kind, "%s", kind);
    outcome_event(j->w, j, "dead", "error_kind", kind);
    metrics_count(j->w, "dead", j->robot_name[0] ? j->robot_name : NULL);
    worker_log_job(j, MR_LOG_WARN, "dead-lettered", j->error[0] ? j->error : kind);
    outcome_publish(j);
}

void outcome_retry_or_dead(job *j)
{
    worker *w = j->w;
    size_t made = (size_t)j->attempt + 1;

    if (made > w->retry_topic_count) {
        char why[MR_ERR_MAX];

        snprintf(why, sizeof why, "%zu attempts failed; the last: %s", made, j->error);
        snprintf(j->error, sizeof j->error, "%s", why);
        outcome_dead(j, "exhausted");
        return;
    }
    snprintf(j->outcome_kind, sizeof j->outcome_kind, "retry");
    outcome_event(w, j, "retried", "retry_topic", w->retry_topics[made - 1].name);
    metrics_count(w, "retried", j->robot_name);
    outcome_publish(j);
}

int outcome_send_effect(job *j, const char *topic, const char *key, const void *value,
                        size_t len, const mr_header *headers, size_t n, mr_err *err)
{
    producer_ticket *ticket = calloc(1, sizeof *ticket);

    if (ticket == NULL)
        return mr_err_set(err, "out of memory");
    ticket->kind = TICKET_EFFECT;
    ticket->j = j;
    if (mr_producer_send(j->w->producer, topic, key, strlen(key), value, len, headers, n,
                         ticket, err) < 0) {
        free(ticket);
        return -1;
    }
    return 0;
}

/* --- events ------------------------------------------------------------------------- */

/* Sends (or sends again) an event; gives up after EVENT_SEND_ATTEMPTS. */
static void send_event(producer_ticket *ticket)
{
    worker *w = ticket->w;
    mr_err err;

    while (ticket->attempts++ < EVENT_SEND_ATTEMPTS) {
        if (mr_producer_send(w->producer, w->events_topic, ticket->key, strlen(ticket->key),
                             ticket->json, strlen(ticket->json), NULL, 0, ticket, &err) == 0)
            return;
    }
    mr_log(w->log, MR_LOG_WARN, "event lost", "id", ticket->key, "event", ticket->json, NULL);
    free(ticket->json);
    free(ticket);
}

static void set_string(json_t *obj, const char *name, const char *value)
{
    if (value != NULL && value[0] != '\0')
        json_object_set_new(obj, name, json_string(value));
}

const char *exec_status_text(int wait_status, char *out, size_t outsz)
{
    if (WIFSIGNALED(wait_status))
        snprintf(out, outsz, "signal %d", WTERMSIG(wait_status));
    else
        snprintf(out, outsz, "exit %d", WEXITSTATUS(wait_status));
    return out;
}

/* Exec robots: how the command ended and what it said. */
static void add_exec_fields(json_t *ev, const job *j)
{
    if (WIFSIGNALED(j->exec_wait_status))
        json_object_set_new(ev, "signal", json_integer(WTERMSIG(j->exec_wait_status)));
    else
        json_object_set_new(ev, "exit_status", json_integer(WEXITSTATUS(j->exec_wait_status)));
    set_string(ev, "stderr", j->exec_stderr);
    if (j->exec_stdout_dropped)
        json_object_set_new(ev, "stdout_dropped_bytes",
                            json_integer((json_int_t)j->exec_stdout_dropped));
    if (j->exec_stderr_dropped)
        json_object_set_new(ev, "stderr_dropped_bytes",
                            json_integer((json_int_t)j->exec_stderr_dropped));
}

void outcome_event(worker *w, const job *j, const char *type, const char *extra_key,
                   const char *extra_value)
{
    json_t *ev = json_object();
    char at[40], not_before[40];
    producer_ticket *ticket;
        char *text;

    json_object_set_new(ev, "v", json_integer(1));
    json_object_set_new(ev, "type", json_string(type));
    json_object_set_new(ev, "at", json_string(mr_format_rfc3339(mr_wall_ms(), at, sizeof at)));
    json_object_set_new(ev, "id", json_string(j->id));
    json_object_set_new(ev, "worker", json_string(w->name));
    set_string(ev, "recipient", j->recipient);
    set_string(ev, "sender", j->sender);
    set_string(ev, "robot", j->robot_name);
    set_string(ev, "route", j->route);
    set_string(ev, "extension", j->extension);
    set_string(ev, "source", j->source);
    set_string(ev, "replay", j->replay);
    json_object_set_new(ev, "attempt", json_integer(j->attempt + (strcmp(type, "received") != 0
                                                                  && strcmp(type, "routed") != 0
                                                                  && strcmp(type, "skipped") != 0
                                                                  && strcmp(type, "postponed") != 0)));
    if (j->http_status > 0)
        json_object_set_new(ev, "http_status", json_integer(j->http_status));
    if (j->outbound) {
        json_object_set_new(ev, "effect_id", json_string(j->effect_id));
        if (j->smtp_status > 0)
            json_object_set_new(ev, "smtp_status", json_integer(j->smtp_status));
    }
    if (j->exec_ran && strcmp(type, "received") != 0 && strcmp(type, "routed") != 0)
        add_exec_fields(ev, j);
    if (strcmp(type, "retried") == 0 || strcmp(type, "dead") == 0
        || strcmp(type, "postponed") == 0)
        set_string(ev, "error", j->error);
    if (strcmp(type, "retried") == 0) {
        size_t made = (size_t)j->attempt + 1;

        json_object_set_new(ev, "error_kind", json_string("temporary"));
        if (made <= w->retry_topic_count)
            set_string(ev, "not_before",
                       mr_format_rfc3339(mr_wall_ms() + w->cfg->retry_delays.ms[made - 1],
                                         not_before, sizeof not_before));
    }
    if (extra_key != NULL && strcmp(extra_key, "duration_ms") == 0)
        json_object_set_new(ev, extra_key, json_integer(atoll(extra_value)));
    else if (extra_key != NULL)
        set_string(ev, extra_key, extra_value);
    text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    ticket = calloc(1, sizeof *ticket);
    if (text == NULL || ticket == NULL) {
        free(text);
        free(ticket);
        return;
    }
    ticket->kind = TICKET_EVENT;
    ticket->w = w;
    ticket->json = text;
    snprintf(ticket->key, sizeof ticket->key, "%s", j->id);
    send_event(ticket);
}

/* The producer's delivery callback (worker.c registers it). */
void outcome_delivered(void *opaque, const char *error)
{
    producer_ticket *ticket = opaque;

    if (ticket->kind == TICKET_EVENT && error != NULL) {
        /* An error despite no time limit: the idempotent producer gave up
         * on a batch (a broker restarted and lost the sequence). Again. */
        mr_log(ticket->w->log, MR_LOG_WARN, "event failed; sending it again", "id", ticket->key,
               "detail", error, NULL);
        send_event(ticket);
        return;
    }
    if (ticket->kind == TICKET_JOB)
        job_published(ticket->j, error);
    else if (ticket->kind == TICKET_EFFECT)
        effects_published(ticket->j, error);
    free(ticket->json);
    free(ticket);
}
