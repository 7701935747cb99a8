/*
 * worker.c - setting up, running and taking down one worker process: the
 * libevent loop and everything on it (see worker.h), the periodic tick,
 * and SIGTERM's drain: stop taking records, let those in flight finish
 * (at most worker_drain_time_limit), store offsets, commit, leave the
 * group, exit 0. Whatever did not finish is not committed and is taken
 * again by another worker.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "mailrobot/clock.h"

#include "worker.h"

#define TICK_MS 100
#define PRODUCER_FLUSH_MS 10000

void worker_log_job(const job *j, mr_log_level level, const char *msg, const char *detail)
{
    mr_log(j->w->log, level, msg, "id", j->id, "recipient", j->recipient, "robot",
           j->robot_name[0] ? j->robot_name : NULL, "source", j->source, "detail", detail, NULL);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;

    consumer_tick(w);
    mr_producer_poll(w->producer, 0);
    metrics_heartbeat(w);
    if (w->stopping && (w->in_flight == 0 || mr_monotonic_ms() >= w->stop_deadline))
        event_base_loopexit(w->base, NULL);
}

static void on_producer_event(evutil_socket_t fd, short what, void *arg)
{
    worker *w = arg;

    mr_producer_poll(w->producer, 0);
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    worker *w = arg;
    char in_flight[32];

    if (w->stopping)
        return;
    w->stopping = 1;
    w->stop_deadline = mr_monotonic_ms() + w->cfg->worker_drain_time_limit;
    snprintf(in_flight, sizeof in_flight, "%zu", w->in_flight);
    mr_log(w->log, MR_LOG_INFO, "stopping: finishing records in flight", "in_flight", in_flight,
           NULL);
    consumer_stop(w);
}

static void name_worker(worker *w)
{
    if (gethostname(w->hostname, sizeof w->hostname - 1) < 0 || w->hostname[0] == '\0')
        snprintf(w->hostname, sizeof w->hostname, "localhost");
    w->hostname[sizeof w->hostname - 1] = '\0';
    snprintf(w->name, sizeof w->name, "%s:%d", w->hostname, (int)getpid());
}

static void name_topics(worker *w)
{
    const mr_config *cfg = w->cfg;

    mr_topic_name(cfg, "inbound", w->inbound_topic, sizeof w->inbound_topic);
    mr_topic_name(cfg, "dead", w->dead_topic, sizeof w->dead_topic);
    mr_topic_name(cfg, "events", w->events_topic, sizeof w->events_topic);
    mr_topic_name(cfg, "outbound", w->outbound_topic, sizeof w->outbound_topic);
    w->retry_topic_count = cfg->retry_delays.count;
    for (size_t i = 0; i < w->retry_topic_count; i++)
        mr_topic_retry(cfg, i, &w->retry_topics[i]);
}

static struct event *persistent(worker *w, evutil_socket_t fd, short what,
                                event_callback_fn fn, const struct timeval *tv)
{
    struct event *ev = event_new(w->base, fd, what | EV_PERSIST, fn, w);

    if (ev != NULL)
        event_add(ev, tv);
    return ev;
}

int worker_init(worker *w, const mr_config *cfg, const mr_logger *log, mr_err *err)
{
    struct timeval tick = {0, TICK_MS * 1000};
    int fd;

    memset(w, 0, sizeof *w);
    w->cfg = cfg;
    w->log = log;
    w->kafka.log = log;
    name_worker(w);
    name_topics(w);
    snprintf(w->redis_prefix, sizeof w->redis_prefix, "%s", cfg->redis_prefix);
    mr_strmap_init(&w->order_keys);
    mr_strmap_init(&w->robot_slots);
    mr_strmap_init(&w->robots);
    w->robots_version = -1;
    w->base = event_base_new();
    if (w->base == NULL)
        return mr_err_set(err, "cannot create the event loop");
    if ((w->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
        return mr_err_set(err, "OpenSSL has no HMAC");
    if (exec_init(w, err) < 0 || (w->metrics = metrics_start(w, err)) == NULL
        || (w->redis = wredis_new(w, err)) == NULL
        || (w->http = http_client_new(w, err)) == NULL || sender_init(w, err) < 0)
        return -1;
    w->producer = mr_producer_new(cfg, &w->kafka, 0, outcome_delivered, err);
    if (w->producer == NULL || (fd = mr_producer_event_fd(w->producer, err)) < 0)
        return -1;
    w->producer_event = persistent(w, fd, EV_READ, on_producer_event, NULL);
    if (consumer_start(w, err) < 0)
        return -1;
    w->tick = persistent(w, -1, 0, on_tick, &tick);
    w->signals[0] = evsignal_new(w->base, SIGTERM, on_stop_signal, w);
    w->signals[1] = evsignal_new(w->base, SIGINT, on_stop_signal, w);
    event_add(w->signals[0], NULL);
    event_add(w->signals[1], NULL);
    return 0;
}

int worker_run(worker *w)
{
    char retries[32];

    snprintf(retries, sizeof retries, "%zu", w->retry_topic_count);
    mr_log(w->log, MR_LOG_INFO, "worker started", "group", w->cfg->worker_group, "topic",
           w->inbound_topic, "retry_topics", retries, "brokers", w->cfg->kafka_brokers,
           "redis", w->cfg->redis_url, NULL);
    event_base_dispatch(w->base);
    consumer_close(w);
    return 0;
}

void worker_free(worker *w)
{
    mr_err err;
    char left[32];

    snprintf(left, sizeof left, "%zu", w->in_flight);
    sender_stop(w);   /* its threads first: they may be using jobs' messages */
    if (w->producer && mr_producer_wait(w->producer, PRODUCER_FLUSH_MS, &err) < 0)
        mr_log(w->log, MR_LOG_WARN, "events not all sent", "detail", err.msg, NULL);
    while (w->jobs != NULL) {
        job *j = w->jobs;

        w->jobs = j->next;
        job_free(j);
    }
    exec_free(w);
    sender_free(w);
    consumer_close(w);
    for (int i = 0; i < 2; i++)
        if (w->signals[i])
            event_free(w->signals[i]);
    if (w->tick)
        event_free(w->tick);
    if (w->producer_event)
        event_free(w->producer_event);
    http_client_free(w->http);
    EVP_MAC_free(w->hmac);
    wredis_free(w->redis);
    router_free(w);
    mr_producer_destroy(w->producer);
    metrics_stop(w->metrics);
    mr_strmap_free(&w->order_keys);
    mr_strmap_free(&w->robot_slots);
    if (w->base)
        event_base_free(w->base);
    mr_log(w->log, MR_LOG_INFO, "worker stopped", "unfinished", left, NULL);
}
