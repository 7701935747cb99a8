/*
 * job.c - the life of one consumed record (see worker.h):
 *
 *   received -> wait for its key -> route -> delivered before? -> wait for a
 *   robot slot -> deliver -> (done: remember it | temporary: retry topic or,
 *   strict, try again here | permanent: dead letter) -> finished
 *
 * A job finishes only when its outcome is safe: the delivery confirmed and
 * remembered in Redis, or the record taken by Kafka on a retry or dead
 * topic. Only then does its offset count as done (partitions.c), so a
 * worker killed at any moment loses nothing: what it had in flight is
 * consumed again, and the Redis marker stops a confirmed delivery from
 * being repeated.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "mailrobot/clock.h"
#include "mailrobot/keys.h"
#include "mailrobot/outbound.h"
#include "mailrobot/spam.h"
#include "mailrobot/srs.h"

#include "worker.h"

#define REDIS_BACKOFF_MIN_MS 200
#define REDIS_BACKOFF_MAX_MS 5000
#define PUBLISH_RETRY_MS 5000

static void job_dedupe(job *j);
static void job_deliver(job *j);
static void job_mark_done(job *j);
static void job_finish(job *j);

/* --- headers -------------------------------------------------------------------- */

static char *header_copy(rd_kafka_headers_t *hdrs, const char *name)
{
    const void *value;
    size_t len;
    char *s;

    if (hdrs == NULL
        || rd_kafka_header_get_last(hdrs, name, &value, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    s = malloc(len + 1);
    if (s == NULL)
        return NULL;
    memcpy(s, value, len);
    s[len] = '\0';
    /* A header value is untrusted: cut it at an embedded NUL. */
    return s;
}

const char *job_header(const job *j, const char *name)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *value;
    size_t len;

    if (rd_kafka_message_headers(j->msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR
        || rd_kafka_header_get_last(hdrs, name, &value, &len) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    return value;
}

/* Copies header name into out if it is there and fits; returns 1 if so. */
static int header_copy_into(rd_kafka_headers_t *hdrs, const char *name, char *out, size_t outsz)
{
    const void *value;
    size_t len;

    if (hdrs == NULL
        || rd_kafka_header_get_last(hdrs, name, &value, &len) != RD_KAFKA_RESP_ERR_NO_ERROR
        || len == 0 || len >= outsz)
        return 0;
    memcpy(out, value, len);
    out[len] = '\0';
    return 1;
}

/* Whether s (len bytes) can go into MAIL FROM/RCPT TO as <s>: local@domain
 * of printable ASCII without blanks, quotes or angle brackets, at most
 * MR_SRS_ADDRESS_MAX bytes (SRS addresses are longer than RFC 5321's
 * 64-byte local part; relays take them). */
static int envelope_address_ok(const char *s, size_t len)
{
    const char *at = memchr(s, '@', len);

    if (len == 0 || len > MR_SRS_ADDRESS_MAX || at == NULL || at == s || at == s + len - 1)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (s[i] <= ' ' || s[i] >= 0x7f || strchr("<>\"\\(),;:[]", s[i]) != NULL)
            return 0;
    return 1;
}

/* An outbound record (mr.effect_id): its envelope must be usable as is,
 * because it goes into SMTP commands: mr.mail_from "" or an address, and
 * 1..MR_RCPT_LIMIT mr.rcpt_to addresses. j->sender is mr.mail_from. */
static int read_outbound_headers(job *j, rd_kafka_headers_t *hdrs)
{
    const void *value;
    size_t len, count = 0;

    j->outbound = 1;
    free(j->sender);
    j->sender = header_copy(hdrs, MR_H_MAIL_FROM);
    if (j->forced_robot != NULL)
        snprintf(j->robot_name, sizeof j->robot_name, "%s", j->forced_robot);
    if (j->id[0] == '\0')
        snprintf(j->id, sizeof j->id, "%s", j->effect_id);
    if (j->sender == NULL
        || (j->sender[0] != '\0' && !envelope_address_ok(j->sender, strlen(j->sender)))) {
        snprintf(j->error, sizeof j->error, "outbound record with %s %s", MR_H_MAIL_FROM,
                 j->sender == NULL ? "missing" : "not an address");
        return -1;
    }
    for (; rd_kafka_header_get(hdrs, count, MR_H_RCPT_TO, &value, &len)
           == RD_KAFKA_RESP_ERR_NO_ERROR; count++) {
        if (!envelope_address_ok(value, len)) {
            snprintf(j->error, sizeof j->error, "outbound record: %s %zu is not an address",
                     MR_H_RCPT_TO, count);
            return -1;
        }
    }
    if (count == 0 || count > MR_RCPT_LIMIT) {
        snprintf(j->error, sizeof j->error, "outbound record with %zu %s headers (1 to %d)",
                 count, MR_H_RCPT_TO, MR_RCPT_LIMIT);
        return -1;
    }
    return 0;
}

/* Reads the mr.* headers. Returns 0, or -1 when the record is unusable
 * (no mr.id or mr.recipient): it goes to the dead-letter topic. */
static int read_headers(job *j)
{
    rd_kafka_headers_t *hdrs = NULL;
    char *id, *attempt;

    rd_kafka_message_headers(j->msg, &hdrs);
    id = header_copy(hdrs, MR_H_ID);
    j->recipient = header_copy(hdrs, MR_H_RECIPIENT);
    j->sender = header_copy(hdrs, MR_H_SENDER);
    j->original_recipient = header_copy(hdrs, MR_H_ORIGINAL_RECIPIENT);
    j->queue_id = header_copy(hdrs, MR_H_QUEUE_ID);
    j->client_address = header_copy(hdrs, MR_H_CLIENT_ADDRESS);
    j->helo = header_copy(hdrs, MR_H_HELO);
    j->received_at = header_copy(hdrs, MR_H_RECEIVED_AT);
    j->forced_robot = header_copy(hdrs, MR_H_ROBOT);
    j->replay = header_copy(hdrs, MR_H_REPLAY);
    j->client_hostname = header_copy(hdrs, MR_H_CLIENT_HOSTNAME);
    j->client_protocol = header_copy(hdrs, MR_H_CLIENT_PROTOCOL);
    j->sasl_method = header_copy(hdrs, MR_H_SASL_METHOD);
    j->sasl_sender = header_copy(hdrs, MR_H_SASL_SENDER);
    j->sasl_username = header_copy(hdrs, MR_H_SASL_USERNAME);
    attempt = header_copy(hdrs, MR_H_ATTEMPT);
    j->attempt = attempt ? atoi(attempt) : 0;
    if (j->attempt < 0)
        j->attempt = 0;
    free(attempt);
    if (id != NULL && strlen(id) < sizeof j->id)
        strcpy(j->id, id);
    free(id);
    if (j->sender == NULL)
        j->sender = strdup("");
    if (header_copy_into(hdrs, MR_H_EFFECT_ID, j->effect_id, sizeof j->effect_id))
        return read_outbound_headers(j, hdrs);
    if (j->id[0] == '\0' || j->recipient == NULL || j->recipient[0] == '\0') {
        snprintf(j->error, sizeof j->error, "record without %s",
                 j->id[0] == '\0' ? "mr.id" : "mr.recipient");
        return -1;
    }
    return 0;
}

static int make_order_key(job *j)
{
    const char *topic = rd_kafka_topic_name(j->msg->rkt);
    size_t tlen = strlen(topic);

    j->order_key_len = tlen + 1 + j->msg->key_len;
    j->order_key = malloc(j->order_key_len);
    if (j->order_key == NULL)
        return -1;
    memcpy(j->order_key, topic, tlen);
    j->order_key[tlen] = '\0';
    if (j->msg->key_len)
        memcpy(j->order_key + tlen + 1, j->msg->key, j->msg->key_len);
    return 0;
}

/* --- start ---------------------------------------------------------------------- */

void job_start(worker *w, rd_kafka_message_t *msg, partition *p)
{
    job *j = calloc(1, sizeof *j);

    if (j == NULL || partition_track(p, msg->offset) < 0) {
        /* Not tracked, not finished: the offset is not committed and the
         * record comes back after a restart. */
        mr_log(w->log, MR_LOG_ERROR, "out of memory: record left for later", NULL);
        free(j);
        rd_kafka_message_destroy(msg);
        return;
    }
    j->w = w;
    j->msg = msg;
    j->part_generation = p->generation;
    j->started_ms = mr_monotonic_ms();
    snprintf(j->source, sizeof j->source, "%s/%d/%lld", rd_kafka_topic_name(msg->rkt),
             (int)msg->partition, (long long)msg->offset);
    j->next = w->jobs;
    if (w->jobs)
        w->jobs->prev = j;
    w->jobs = j;
    w->in_flight++;
    metrics_set_in_flight(w, w->in_flight);
    metrics_count(w, "received", NULL);

    if (read_headers(j) < 0 || make_order_key(j) < 0) {
        worker_log_job(j, MR_LOG_WARN, "bad record", j->error);
        outcome_dead(j, "bad_record");
        return;
    }
    outcome_event(w, j, "received", NULL, NULL);
    if (ordering_acquire(w, j))
        job_key_acquired(j);
    else
        j->state = JOB_WAITING_KEY;
}

/* ordering.c calls this when a job's turn for its key has come. Mail to
 * send needs no route: it goes to the relay. */
void job_key_acquired(job *j)
{
    if (j->outbound) {
        job_dedupe(j);
        return;
    }
    j->state = JOB_ROUTING;
    router_route(j);
}

/* --- Redis trouble: hold the job and try the step again later ------------------------ */

static void on_backoff_timer(evutil_socket_t fd, short what, void *arg)
{
    job *j = arg;

    if (j->state == JOB_ROUTING)
        router_route(j);
    else if (j->state == JOB_DEDUPE)
        job_dedupe(j);
    else if (j->state == JOB_MARKING)
        job_attempt_finished(j);
    else if (j->state == JOB_STRICT_WAIT)
        job_deliver(j);
    else if (j->state == JOB_PUBLISHING)
        outcome_publish(j);
}

/* Schedules the current step again after delay_ms (or the Redis back-off,
 * growing with each failure, when delay_ms < 0). */
static void job_again_later(job *j, int64_t delay_ms)
{
    struct timeval tv;

    if (delay_ms < 0) {
        delay_ms = REDIS_BACKOFF_MIN_MS << (j->redis_failures < 5 ? j->redis_failures : 5);
        if (delay_ms > REDIS_BACKOFF_MAX_MS)
            delay_ms = REDIS_BACKOFF_MAX_MS;
        j->redis_failures++;
    }
    if (j->timer == NULL)
        j->timer = evtimer_new(j->w->base, on_backoff_timer, j);
    tv.tv_sec = delay_ms / 1000;
    tv.tv_usec = (delay_ms % 1000) * 1000;
    evtimer_add(j->timer, &tv);
}

void job_redis_trouble(job *j, const char *error)
{
    if (j->redis_failures == 0)
        worker_log_job(j, MR_LOG_WARN, "redis unavailable: holding the record", error);
    job_again_later(j, -1);
}

/* --- routed ----------------------------------------------------------------------- */

/* router.c calls this: robot set (and held), or kind says why not. */
void job_routed(job *j, const char *failure_kind)
{
    j->redis_failures = 0;
    if (failure_kind != NULL && strcmp(failure_kind, "no_route") == 0) {
        worker_log_job(j, MR_LOG_WARN, "no route", j->recipient);
        outcome_dead(j, "no_route");
        return;
    }
    if (failure_kind != NULL) {
        /* The route names a robot that is not defined: an operator's
         * mistake, which must not lose or bounce mail. Retry. */
        worker_log_job(j, MR_LOG_WARN, "route to an undefined robot", j->error);
        j->result = ATTEMPT_TEMPORARY;
        outcome_retry_or_dead(j);
        return;
    }
    outcome_event(j->w, j, "routed", "route", j->route);
    if (j->robot->ordered == MR_ORDER_NONE)
        ordering_release(j->w, j);
    job_dedupe(j);
}

/* --- delivered before? -------------------------------------------------------------- */

/* <prefix>:done:<id>[/<replay>]:<robot>, or for mail to send
 * <prefix>:sent:<effect id>. */
static void done_key(const job *j, char *out, size_t outsz)
{
    if (j->outbound) {
        snprintf(out, outsz, "%s:%s%s", j->w->redis_prefix, MR_KEY_SENT, j->effect_id);
        return;
    }
    snprintf(out, outsz, "%s:%s%s%s%s:%s", j->w->redis_prefix, MR_KEY_DONE, j->id,
             j->replay ? "/" : "", j->replay ? j->replay : "", j->robot_name);
}

/* The robot's "spam" policy (robot.h) against the verdict the filter at
 * the door wrote into the message (spam.h). "skip": done without the
 * robot, like a drop, remembered like a delivery so that a replay does
 * not ask again; returns 1 then. "tag": the robot is told (webhook.c,
 * exec_plan.c). The verdict is read here, after routing and dedupe, so
 * that a record already delivered stays "already delivered". */
static int job_spam_policy(job *j)
{
    int spam;

    j->spam_tagged = j->spam_skipped = 0;
    if (j->robot->spam == MR_SPAM_DELIVER)
        return 0;
    spam = mr_spam_verdict(j->msg->payload ? j->msg->payload : (const unsigned char *)"",
                           j->msg->len) == 1;
    if (spam && j->robot->spam == MR_SPAM_TAG)
        j->spam_tagged = 1;
    if (!spam || j->robot->spam != MR_SPAM_SKIP)
        return 0;
    j->spam_skipped = 1;
    j->result = ATTEMPT_DONE;
    j->attempt_started_ms = mr_monotonic_ms();
    j->http_status = 0;
    job_mark_done(j);
    return 1;
}

static void on_dedupe_reply(void *arg, redisReply *reply, const char *error)
{
    job *j = arg;

    if (error != NULL) {
        job_redis_trouble(j, error);
        return;
    }
    j->redis_failures = 0;
    if (reply->type == REDIS_REPLY_STRING) {
        outcome_event(j->w, j, "skipped", "error", j->outbound ? "already sent"
                                                                 : "already delivered");
        metrics_count(j->w, "skipped", j->robot_name);
        job_finish(j);
        return;
    }
    if (j->outbound) {
        j->state = JOB_DELIVERING;
        j->attempt_started_ms = mr_monotonic_ms();
        j->error[0] = '\0';
        sender_deliver(j);
        return;
    }
    if (job_spam_policy(j))
        return;
    switch (robot_slot_acquire(j->w, j)) {
    case 1:
        job_deliver(j);
        return;
    case 0:
        j->state = JOB_WAITING_ROBOT;
        return;
    default:
        outcome_postpone(j);
        return;
    }
}

static void job_dedupe(job *j)
{
    char key[512];
    const char *argv[2] = {"GET", key};

    j->state = JOB_DEDUPE;
    done_key(j, key, sizeof key);
    wredis_command(j->w->redis, on_dedupe_reply, j, 2, argv, NULL);
}

/* --- deliver ----------------------------------------------------------------------- */

void job_slot_acquired(job *j)
{
    job_deliver(j);
}

static void job_deliver(job *j)
{
    j->state = JOB_DELIVERING;
    j->attempt_started_ms = mr_monotonic_ms();
    j->http_status = 0;
    j->error[0] = '\0';
    switch (j->robot->kind) {
    case MR_ROBOT_WEBHOOK:
        webhook_deliver(j);
        return;
    case MR_ROBOT_EXEC:
        exec_deliver(j);
        return;
    case MR_ROBOT_DROP:
        j->result = ATTEMPT_DONE;   /* accepted and discarded: "delivered" */
        job_attempt_finished(j);
        return;
    case MR_ROBOT_AUTOREPLY:
        effects_run_autoreply(j);
        return;
    case MR_ROBOT_FORWARD:
        effects_run_forward(j);
        return;
    }
}

static void on_marked(void *arg, redisReply *reply, const char *error)
{
    job *j = arg;
    char duration[32];

    if (error != NULL) {
        job_redis_trouble(j, error);
        return;
    }
    if (j->spam_skipped) {
        outcome_event(j->w, j, "skipped", "error", "spam (robot policy skip)");
        metrics_count(j->w, "skipped", j->robot_name);
        job_finish(j);
        return;
    }
    snprintf(duration, sizeof duration, "%lld",
             (long long)(mr_monotonic_ms() - j->attempt_started_ms));
    outcome_event(j->w, j, j->outbound ? "sent" : "delivered", "duration_ms", duration);
    metrics_count(j->w, j->outbound ? "sent" : "delivered", j->robot_name);
    metrics_observe_latency(j->w, (double)(mr_monotonic_ms() - j->attempt_started_ms) / 1000);
    job_finish(j);
}

/* Remembers a confirmed delivery so that it is never repeated. */
static void job_mark_done(job *j)
{
    char key[512], ttl[32], value[96], at[40];
    const char *argv[5] = {"SET", key, value, "PX", ttl};

    j->state = JOB_MARKING;
    done_key(j, key, sizeof key);
    snprintf(ttl, sizeof ttl, "%lld", (long long)j->w->cfg->dedupe_ttl);
    snprintf(value, sizeof value, "{\"at\":\"%s\",\"status\":%d}",
             mr_format_rfc3339(mr_wall_ms(), at, sizeof at),
             j->outbound ? j->smtp_status : j->http_status);
    wredis_command(j->w->redis, on_marked, j, 5, argv, NULL);
}

/* Strict order keeps the record (and its key) here between attempts. */
static void strict_retry(job *j)
{
    size_t made = (size_t)j->attempt + 1;

    if (made > j->w->cfg->retry_delays.count) {
        outcome_dead(j, "exhausted");
        return;
    }
    j->attempt++;
    outcome_event(j->w, j, "retried", "error", j->error);
    metrics_count(j->w, "retried", j->robot_name);
    j->state = JOB_STRICT_WAIT;
    job_again_later(j, j->w->cfg->retry_delays.ms[made - 1]);
}

void job_attempt_finished(job *j)
{
    if (j->state == JOB_DELIVERING && !j->outbound)
        robot_slot_release(j->w, j);
    switch (j->result) {
    case ATTEMPT_DONE:
        job_mark_done(j);
        return;
    case ATTEMPT_TEMPORARY:
        if (j->robot != NULL && j->robot->ordered == MR_ORDER_STRICT)
            strict_retry(j);
        else
            outcome_retry_or_dead(j);
        return;
    case ATTEMPT_PERMANENT:
        outcome_dead(j, j->permanent_kind ? j->permanent_kind : "permanent");
        return;
    }
}

void job_published(job *j, const char *error)
{
    if (error != NULL) {
        /* The producer waits for Kafka without a time limit, so this is no
         * outage but a refusal (a topic deleted, a record too large): hold
         * the record, say so loudly, and try again. */
        worker_log_job(j, MR_LOG_ERROR, "Kafka refused a retry or dead letter", error);
        job_again_later(j, PUBLISH_RETRY_MS);
        return;
    }
    job_finish(j);
}

/* --- finish ------------------------------------------------------------------------- */

static void job_finish(job *j)
{
    worker *w = j->w;

    j->state = JOB_FINISHED;
    ordering_release(w, j);
    partition_finish(w, rd_kafka_topic_name(j->msg->rkt), j->msg->partition,
                     j->part_generation, j->msg->offset);
    if (j->prev)
        j->prev->next = j->next;
    else
        w->jobs = j->next;
    if (j->next)
        j->next->prev = j->prev;
    w->in_flight--;
    metrics_set_in_flight(w, w->in_flight);
    job_free(j);
    consumer_drain(w);
}

void job_free(job *j)
{
    /* What is still running for it first: it may need the robot. */
    effects_free(j);
    if (j->robot && j->robot->kind == MR_ROBOT_EXEC)
        exec_abandon(j);
    if (j->outbound)
        sender_abandon(j);
    if (j->timer)
        event_free(j->timer);
    if (j->robot)
        router_robot_release(j->w, j->robot);
    rd_kafka_message_destroy(j->msg);
    free(j->recipient);
    free(j->sender);
    free(j->original_recipient);
    free(j->queue_id);
    free(j->client_address);
    free(j->helo);
    free(j->received_at);
    free(j->forced_robot);
    free(j->replay);
    free(j->client_hostname);
    free(j->client_protocol);
    free(j->sasl_method);
    free(j->sasl_sender);
    free(j->sasl_username);
    free(j->order_key);
    free(j);
}
