/*
 * consumer.c - the Kafka consumer of a worker: one consumer group over the
 * inbound topic and every retry topic (SPEC §6).
 *
 * - Records are taken while fewer than worker_in_flight_limit jobs are in
 *   flight; at the limit every partition is held (paused; what it still
 *   returns is dropped and fetched again on release, see partitions.c) and
 *   the consumer keeps polling, so it stays in its group and rebalances
 *   are served.
 * - A retry-topic record whose mr.not_before lies ahead holds only its own
 *   partition until then: records of one retry topic are due in the order
 *   they were written, and nothing else waits.
 * - Partitions are assigned by range, per topic (see consumer_new). At a
 *   rebalance, a revoked partition stores what is finished and commits;
 *   its unfinished jobs run on but no longer count towards its offsets:
 *   the new owner consumes those records again, and the delivery markers
 *   in Redis stop what was delivered from being delivered twice. (The
 *   cooperative protocol works too, if configured with
 *   kafka.partition.assignment.strategy.)
 * - Offsets are stored by partitions.c and committed by librdkafka's
 *   auto-commit and on close.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include <jansson.h>

#include "mailrobot/clock.h"

#include "worker.h"

#define HOLD_RESUME_PERCENT 75 /* resume below this share of the limit */
#define CLOSE_LIMIT_MS 10000
#define TOPIC_CHECKS 10
#define TOPIC_CHECK_PAUSE_MS 500

static worker *worker_of(rd_kafka_t *rk)
{
    mr_kafka_context *ctx = rd_kafka_opaque(rk);

    return (worker *)((char *)ctx - offsetof(worker, kafka));
}

/* --- rebalances -------------------------------------------------------------------- */

static void assign_partitions(worker *w, rd_kafka_topic_partition_list_t *parts, int cooperative)
{
    for (int i = 0; i < parts->cnt; i++)
        if (partition_find(w, parts->elems[i].topic, parts->elems[i].partition) == NULL)
            partition_add(w, parts->elems[i].topic, parts->elems[i].partition);
    if (cooperative) {
        rd_kafka_error_t *error = rd_kafka_incremental_assign(w->consumer, parts);

        if (error) {
            mr_log(w->log, MR_LOG_ERROR, "assign failed", "detail", rd_kafka_error_string(error),
                   NULL);
            rd_kafka_error_destroy(error);
        }
    } else {
        rd_kafka_assign(w->consumer, parts);
    }
    /* librdkafka keeps a partition paused across a revoke and a new
     * assignment; ours start fresh (not held), so clear it. Without this a
     * partition held at a rebalance would never be consumed again. */
    rd_kafka_resume_partitions(w->consumer, parts);
}

static void revoke_partitions(worker *w, rd_kafka_topic_partition_list_t *parts, int cooperative)
{
    for (int i = 0; i < parts->cnt; i++) {
        partition *p = partition_find(w, parts->elems[i].topic, parts->elems[i].partition);

        if (p != NULL)
            partition_store(w, p);
    }
    rd_kafka_commit(w->consumer, NULL, 0);
    for (int i = 0; i < parts->cnt; i++)
        partition_forget(w, parts->elems[i].topic, parts->elems[i].partition);
    if (cooperative) {
        rd_kafka_error_t *error = rd_kafka_incremental_unassign(w->consumer, parts);

        if (error)
            rd_kafka_error_destroy(error);
    } else {
        rd_kafka_assign(w->consumer, NULL);
    }
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    worker *w = worker_of(rk);
    int cooperative = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    char count[16];

    snprintf(count, sizeof count, "%d", parts->cnt);
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        assign_partitions(w, parts, cooperative);
        mr_log(w->log, MR_LOG_INFO, "partitions assigned", "count", count, NULL);
    } else {
        revoke_partitions(w, parts, cooperative);
        mr_log(w->log, MR_LOG_INFO, "partitions revoked", "count", count, NULL);
    }
    w->all_paused = 0;
}

/* librdkafka's statistics: the consumer lag summed over assigned partitions. */
static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    worker *w = worker_of(rk);
    json_t *root = json_loadb(json, len, 0, NULL);
    json_t *topics, *topic, *parts, *part;
    const char *tname, *pname;
    int64_t lag = 0;

    if (root == NULL)
        return 0;
    topics = json_object_get(root, "topics");
    json_object_foreach(topics, tname, topic) {
        parts = json_object_get(topic, "partitions");
        json_object_foreach(parts, pname, part) {
            json_int_t l = json_integer_value(json_object_get(part, "consumer_lag"));

            if (strcmp(pname, "-1") != 0 && l > 0)
                lag += l;
        }
    }
    json_decref(root);
    metrics_set_lag(w, lag);
    return 0;
}

/* --- taking records ------------------------------------------------------------------ */

static int is_retry_topic(const worker *w, const char *topic)
{
    for (size_t i = 0; i < w->retry_topic_count; i++)
        if (strcmp(w->retry_topics[i].name, topic) == 0)
            return 1;
    return 0;
}

/* mr.not_before of a retry record as Unix ms, or 0. */
static int64_t not_before_ms(const rd_kafka_message_t *msg)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *value;
    size_t len;
    char text[40];
    struct tm tm;
    int ms = 0;

    if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR
        || rd_kafka_header_get_last(hdrs, MR_H_NOT_BEFORE, &value, &len)
               != RD_KAFKA_RESP_ERR_NO_ERROR
        || len >= sizeof text)
        return 0;
    memcpy(text, value, len);
    text[len] = '\0';
    memset(&tm, 0, sizeof tm);
    if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) < 6)
        return 0;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000 + ms;
}

static void take(worker *w, rd_kafka_message_t *msg)
{
    const char *topic = rd_kafka_topic_name(msg->rkt);
    partition *p = partition_find(w, topic, msg->partition);
    int64_t due;

    if (p == NULL) {
        /* Its partition was revoked: another worker consumes it. */
        rd_kafka_message_destroy(msg);
        return;
    }
    if (p->held) {
        partition_drop(p, msg->offset);
        rd_kafka_message_destroy(msg);
        return;
    }
    if (is_retry_topic(w, topic) && (due = not_before_ms(msg)) > mr_wall_ms()) {
        partition_hold(w, p);
        partition_drop(p, msg->offset);
        p->delayed_until_ms = due;
        rd_kafka_message_destroy(msg);
        return;
    }
    job_start(w, msg, p);
}

static void hold_all(worker *w)
{
    for (partition *p = w->partitions; p != NULL; p = p->next)
        if (!p->held)
            partition_hold(w, p);
    w->all_paused = 1;
}

static void release_all(worker *w)
{
    for (partition *p = w->partitions; p != NULL; p = p->next)
        if (p->held && p->delayed_until_ms == 0)
            partition_release(w, p);
    w->all_paused = 0;
}

void consumer_drain(worker *w)
{
    size_t limit = (size_t)w->cfg->worker_in_flight_limit;

    if (w->consumer == NULL)
        return;
    if (w->all_paused && w->in_flight * 100 < limit * HOLD_RESUME_PERCENT && !w->stopping)
        release_all(w);
    for (;;) {
        rd_kafka_message_t *msg;

        if (!w->stopping && !w->all_paused && w->in_flight >= limit)
            hold_all(w);
        msg = rd_kafka_consumer_poll(w->consumer, 0);
        if (msg == NULL)
            return;
        if (msg->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            rd_kafka_message_destroy(msg);
        } else if (msg->err) {
            mr_log(w->log, MR_LOG_WARN, "consumer error", "detail",
                   rd_kafka_message_errstr(msg), NULL);
            rd_kafka_message_destroy(msg);
        } else if (w->stopping || w->all_paused) {
            partition *p = partition_find(w, rd_kafka_topic_name(msg->rkt), msg->partition);

            if (p != NULL)
                partition_drop(p, msg->offset);
            rd_kafka_message_destroy(msg);
        } else {
            take(w, msg);
        }
    }
}

/* Resumes retry partitions whose record is due, and partitions whose
 * release failed before (a seek needs the broker: Kafka may have been
 * away); then takes what is there. */
void consumer_tick(worker *w)
{
    int64_t now = mr_wall_ms();

    for (partition *p = w->partitions; p != NULL; p = p->next) {
        if (p->delayed_until_ms != 0 && now < p->delayed_until_ms)
            continue;
        p->delayed_until_ms = 0;
        if (p->held && !w->all_paused && !w->stopping)
            partition_release(w, p);
    }
    consumer_drain(w);
}

static void on_consumer_readable(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;
    char drain[64];

    while (read(fd, drain, sizeof drain) > 0)
        ;
    consumer_drain(w);
}

/* --- start and stop -------------------------------------------------------------------- */

static rd_kafka_t *consumer_new(worker *w, mr_err *err)
{
    const mr_kafka_property defaults[] = {
        {"group.id", w->cfg->worker_group},
        {"auto.offset.reset", "earliest"},
        /* range: every topic is split evenly on its own, so the inbound
         * topic's partitions (and with them one busy address) spread over
         * all workers. cooperative-sticky balances the sum over all topics
         * and can leave a worker with retry partitions only. */
        {"partition.assignment.strategy", "range"},
        {"session.timeout.ms", "10000"},
        {"heartbeat.interval.ms", "2000"},
        {"auto.commit.interval.ms", "1000"},
        {"statistics.interval.ms", "5000"},
        {"fetch.wait.max.ms", "100"},
        {NULL, NULL},
    };
    static const mr_kafka_property required[] = {
        {"enable.auto.commit", "true"},
        {"enable.auto.offset.store", "false"},
        {NULL, NULL},
    };
    rd_kafka_conf_t *conf = mr_kafka_conf_new(w->cfg, defaults, required, &w->kafka, err);
    char errstr[512];
    rd_kafka_t *rk;

    if (conf == NULL)
        return NULL;
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof errstr);
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf);
        mr_err_set(err, "cannot create Kafka consumer: %s", errstr);
    }
    return rk;
}

/* The first topic in needed that the metadata does not show, or NULL. */
static const char *missing_topic(const rd_kafka_metadata_t *md, const char **needed, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int found = 0;

        for (int t = 0; t < md->topic_cnt && !found; t++)
            found = strcmp(md->topics[t].topic, needed[i]) == 0 && md->topics[t].err == 0;
        if (!found)
            return needed[i];
    }
    return NULL;
}

/* Refuses to start when Kafka answers and a topic the worker needs does
 * not exist (records could not be retried or dead-lettered). A topic just
 * created may take a moment to show: ask a few times. If Kafka does not
 * answer, the worker starts anyway and waits for it. */
static int check_topics(worker *w, mr_err *err)
{
    const char *needed[MR_MAX_RETRY_DELAYS + 4];
    const char *missing = NULL;
    size_t n = 0;

    needed[n++] = w->inbound_topic;
    needed[n++] = w->dead_topic;
    needed[n++] = w->events_topic;
    for (size_t i = 0; i < w->retry_topic_count; i++)
        needed[n++] = w->retry_topics[i].name;
    if (w->sender != NULL)
        needed[n++] = w->outbound_topic;
    for (int attempt = 0; attempt < TOPIC_CHECKS; attempt++) {
        const rd_kafka_metadata_t *md = NULL;

        if (rd_kafka_metadata(w->consumer, 1, NULL, &md, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            mr_log(w->log, MR_LOG_WARN, "Kafka did not answer; starting anyway", "brokers",
                   w->cfg->kafka_brokers, NULL);
            return 0;
        }
        missing = missing_topic(md, needed, n);
        rd_kafka_metadata_destroy(md);
        if (missing == NULL)
            return 0;
        usleep(TOPIC_CHECK_PAUSE_MS * 1000);
    }
    return mr_err_set(err, "topic %s does not exist (create the topics with 'mailrobotctl "
                           "kafka init' and the same retry_delays)", missing);
}

int consumer_start(worker *w, mr_err *err)
{
    rd_kafka_topic_partition_list_t *topics;
    rd_kafka_queue_t *queue;
    rd_kafka_resp_err_t rc;
    int fds[2];

    w->consumer = consumer_new(w, err);
    if (w->consumer == NULL || check_topics(w, err) < 0)
        return -1;
    rd_kafka_poll_set_consumer(w->consumer);
    topics = rd_kafka_topic_partition_list_new(2 + (int)w->retry_topic_count);
    rd_kafka_topic_partition_list_add(topics, w->inbound_topic, RD_KAFKA_PARTITION_UA);
    if (w->sender != NULL)   /* mail robots send (sender.c) */
        rd_kafka_topic_partition_list_add(topics, w->outbound_topic, RD_KAFKA_PARTITION_UA);
    for (size_t i = 0; i < w->retry_topic_count; i++)
        rd_kafka_topic_partition_list_add(topics, w->retry_topics[i].name,
                                          RD_KAFKA_PARTITION_UA);
    rc = rd_kafka_subscribe(w->consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        return mr_err_set(err, "subscribe: %s", rd_kafka_err2str(rc));
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) < 0)
        return mr_err_set(err, "pipe: %m");
    queue = rd_kafka_queue_get_consumer(w->consumer);
    rd_kafka_queue_io_event_enable(queue, fds[1], "1", 1);
    rd_kafka_queue_destroy(queue);
    w->consumer_pipe[0] = fds[0];
    w->consumer_pipe[1] = fds[1];
    w->consumer_event = event_new(w->base, fds[0], EV_READ | EV_PERSIST, on_consumer_readable, w);
    event_add(w->consumer_event, NULL);
    return 0;
}

void consumer_stop(worker *w)
{
    hold_all(w);
}

/* Leaves the group (committing stored offsets), but gives up after
 * CLOSE_LIMIT_MS: with Kafka gone, rd_kafka_consumer_close() could block
 * for a long time, and what was not committed is simply consumed again. */
static void close_bounded(worker *w)
{
    rd_kafka_queue_t *queue = rd_kafka_queue_new(w->consumer);
    rd_kafka_error_t *error = rd_kafka_consumer_close_queue(w->consumer, queue);
    int64_t deadline = mr_monotonic_ms() + CLOSE_LIMIT_MS;

    if (error != NULL)
        rd_kafka_error_destroy(error);
    while (!rd_kafka_consumer_closed(w->consumer) && mr_monotonic_ms() < deadline)
        rd_kafka_queue_poll_callback(queue, 100);
    rd_kafka_queue_destroy(queue);
    if (!rd_kafka_consumer_closed(w->consumer))
        mr_log(w->log, MR_LOG_WARN, "consumer close timed out; offsets not committed are "
                                    "consumed again", NULL);
    rd_kafka_destroy_flags(w->consumer, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
}

void consumer_close(worker *w)
{
    rd_kafka_queue_t *queue;

    if (w->consumer == NULL)
        return;
    for (partition *p = w->partitions; p != NULL; p = p->next)
        partition_store(w, p);
    if (w->consumer_event) {
        event_free(w->consumer_event);
        w->consumer_event = NULL;
    }
    queue = rd_kafka_queue_get_consumer(w->consumer);
    rd_kafka_queue_io_event_enable(queue, -1, NULL, 0);
    rd_kafka_queue_destroy(queue);
    close_bounded(w);
    w->consumer = NULL;
    close(w->consumer_pipe[0]);
    close(w->consumer_pipe[1]);
    partition_remove_all(w);
}
