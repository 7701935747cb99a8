/*
 * metrics.c - the worker's /metrics (Prometheus text format) and /healthz,
 * served by libmicrohttpd on its own thread. The loop thread only bumps
 * atomics (and, for per-robot counters, takes a mutex for a moment); the
 * HTTP thread only reads them.
 *
 *   mailrobot_records_received_total            records consumed
 *   mailrobot_deliveries_total{robot,outcome}   delivered | sent | skipped | retried |
 *                                               postponed | dead ("sent": mail the
 *                                               robot sent, confirmed by the relay)
 *   mailrobot_in_flight                          records held now
 *   mailrobot_consumer_lag                       records behind the end of the log
 *   mailrobot_delivery_duration_seconds          histogram of successful attempts
 *
 * /healthz answers 200 "ok" while the loop is running (a heartbeat at most
 * 10 s old) and Redis is connected, else 503 with the reason.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "mailrobot/buf.h"
#include "mailrobot/clock.h"
#include "mailrobot/listen.h"

#include "worker.h"

#define OUTCOMES 6
#define HEARTBEAT_STALE_MS 10000

static const char *const outcome_names[OUTCOMES] = {"delivered", "sent", "skipped", "retried",
                                                    "postponed", "dead"};
static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};
#define BUCKETS (sizeof buckets / sizeof buckets[0])

typedef struct robot_counts {
    atomic_ullong outcome[OUTCOMES];
} robot_counts;

struct metrics {
    struct MHD_Daemon *daemon;
    atomic_ullong received;
    atomic_ullong in_flight;
    atomic_llong lag;
    atomic_llong heartbeat_ms;
    atomic_int redis_up;
    atomic_ullong bucket_counts[BUCKETS + 1];
    atomic_ullong latency_count;
    atomic_ullong latency_micros;
    pthread_mutex_t lock;       /* guards robots (the map, not the counts) */
    mr_strmap robots;           /* robot name ("" for none) -> robot_counts */
};

static int outcome_index(const char *what)
{
    for (int i = 0; i < OUTCOMES; i++)
        if (strcmp(what, outcome_names[i]) == 0)
            return i;
    return -1;
}

void metrics_count(worker *w, const char *what, const char *robot)
{
    metrics *m = w->metrics;
    robot_counts *c;
    int i;

    if (m == NULL)
        return;
    if (strcmp(what, "received") == 0) {
        atomic_fetch_add(&m->received, 1);
        return;
    }
    if ((i = outcome_index(what)) < 0)
        return;
    if (robot == NULL)
        robot = "";
    pthread_mutex_lock(&m->lock);
    c = mr_strmap_get(&m->robots, robot, strlen(robot));
    if (c == NULL && (c = calloc(1, sizeof *c)) != NULL
        && mr_strmap_put(&m->robots, robot, strlen(robot), c, NULL) < 0) {
        free(c);
        c = NULL;
    }
    pthread_mutex_unlock(&m->lock);
    if (c != NULL)
        atomic_fetch_add(&c->outcome[i], 1);
}

void metrics_observe_latency(worker *w, double seconds)
{
    metrics *m = w->metrics;
    size_t b = 0;

    if (m == NULL)
        return;
    while (b < BUCKETS && seconds > buckets[b])
        b++;
    atomic_fetch_add(&m->bucket_counts[b], 1);
    atomic_fetch_add(&m->latency_count, 1);
    atomic_fetch_add(&m->latency_micros, (unsigned long long)(seconds * 1e6));
}

void metrics_set_in_flight(worker *w, size_t n)
{
    if (w->metrics)
        atomic_store(&w->metrics->in_flight, n);
}

void metrics_set_lag(worker *w, int64_t lag)
{
    if (w->metrics)
        atomic_store(&w->metrics->lag, lag);
}

void metrics_heartbeat(worker *w)
{
    if (w->metrics) {
        atomic_store(&w->metrics->heartbeat_ms, mr_monotonic_ms());
        atomic_store(&w->metrics->redis_up, wredis_connected(w->redis));
    }
}

/* --- rendering --------------------------------------------------------------------- */

typedef struct render {
    mr_buf *out;
} render;

static void render_robot(mr_strmap *map, const char *key, size_t len, void *value, void *arg)
{
    robot_counts *c = value;
    render *r = arg;

    for (int i = 0; i < OUTCOMES; i++)
        mr_buf_printf(r->out, NULL,
                      "mailrobot_deliveries_total{robot=\"%s\",outcome=\"%s\"} %llu\n", key,
                      outcome_names[i], (unsigned long long)atomic_load(&c->outcome[i]));
}

static void render_metrics(metrics *m, mr_buf *out)
{
    unsigned long long cumulative = 0;
    render r = {out};

    mr_buf_printf(out, NULL, "# HELP mailrobot_records_received_total Records consumed.\n"
                             "# TYPE mailrobot_records_received_total counter\n"
                             "mailrobot_records_received_total %llu\n",
                  (unsigned long long)atomic_load(&m->received));
    mr_buf_printf(out, NULL, "# HELP mailrobot_deliveries_total Outcomes per robot.\n"
                             "# TYPE mailrobot_deliveries_total counter\n");
    pthread_mutex_lock(&m->lock);
    mr_strmap_each(&m->robots, render_robot, &r);
    pthread_mutex_unlock(&m->lock);
    mr_buf_printf(out, NULL, "# HELP mailrobot_in_flight Records held by this worker.\n"
                             "# TYPE mailrobot_in_flight gauge\nmailrobot_in_flight %llu\n",
                  (unsigned long long)atomic_load(&m->in_flight));
    mr_buf_printf(out, NULL, "# HELP mailrobot_consumer_lag Records behind the log's end.\n"
                             "# TYPE mailrobot_consumer_lag gauge\nmailrobot_consumer_lag %lld\n",
                  (long long)atomic_load(&m->lag));
    mr_buf_printf(out, NULL, "# HELP mailrobot_delivery_duration_seconds Successful attempts.\n"
                             "# TYPE mailrobot_delivery_duration_seconds histogram\n");
    for (size_t b = 0; b <= BUCKETS; b++) {
        cumulative += atomic_load(&m->bucket_counts[b]);
        if (b < BUCKETS)
            mr_buf_printf(out, NULL, "mailrobot_delivery_duration_seconds_bucket{le=\"%g\"} %llu\n",
                          buckets[b], cumulative);
        else
            mr_buf_printf(out, NULL,
                          "mailrobot_delivery_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                          cumulative);
    }
    mr_buf_printf(out, NULL, "mailrobot_delivery_duration_seconds_sum %.6f\n"
                             "mailrobot_delivery_duration_seconds_count %llu\n",
                  (double)atomic_load(&m->latency_micros) / 1e6,
                  (unsigned long long)atomic_load(&m->latency_count));
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *type,
                             const void *body, size_t len)
{
    struct MHD_Response *response =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc;

    MHD_add_response_header(response, "Content-Type", type);
    rc = MHD_queue_response(conn, status, response);
    MHD_destroy_response(response);
    return rc;
}

static enum MHD_Result on_request(void *arg, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **state)
{
    metrics *m = arg;

    if (strcmp(method, "GET") != 0)
        return reply(conn, 405, "text/plain", "GET only\n", 9);
    if (strcmp(url, "/metrics") == 0) {
        mr_buf out;
        enum MHD_Result rc;

        mr_buf_init(&out, 4 << 20);
        render_metrics(m, &out);
        rc = reply(conn, 200, "text/plain; version=0.0.4", out.data ? (char *)out.data : "",
                   out.len);
        mr_buf_free(&out);
        return rc;
    }
    if (strcmp(url, "/healthz") == 0) {
        if (mr_monotonic_ms() - atomic_load(&m->heartbeat_ms) > HEARTBEAT_STALE_MS)
            return reply(conn, 503, "text/plain", "event loop stalled\n", 19);
        if (!atomic_load(&m->redis_up))
            return reply(conn, 503, "text/plain", "redis not connected\n", 20);
        return reply(conn, 200, "text/plain", "ok\n", 3);
    }
    return reply(conn, 404, "text/plain", "not found: try /metrics or /healthz\n", 36);
}

metrics *metrics_start(worker *w, mr_err *err)
{
    metrics *m = calloc(1, sizeof *m);
    struct sockaddr_in addr;
    const union MHD_DaemonInfo *info;
    char port[16];

    if (m == NULL) {
        mr_err_set(err, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&m->lock, NULL);
    mr_strmap_init(&m->robots);
    atomic_store(&m->heartbeat_ms, mr_monotonic_ms());
    if (w->cfg->worker_http_listen[0] == '\0')
        return m;
    if (mr_listen_ipv4("worker_http_listen", w->cfg->worker_http_listen, &addr, err) < 0) {
        metrics_stop(m);
        return NULL;
    }
    m->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL,
                                 NULL, on_request, m, MHD_OPTION_SOCK_ADDR, &addr,
                                 MHD_OPTION_CONNECTION_LIMIT, 64u,
                                 MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (m->daemon == NULL) {
        mr_err_set(err, "worker_http_listen %s: cannot listen (address in use?)",
                   w->cfg->worker_http_listen);
        metrics_stop(m);
        return NULL;
    }
    info = MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(port, sizeof port, "%u", info ? (unsigned)info->port : 0u);
    mr_log(w->log, MR_LOG_INFO, "http listening", "port", port, "paths", "/metrics /healthz",
           NULL);
    return m;
}

static void free_counts(mr_strmap *map, const char *key, size_t len, void *value, void *arg)
{
    free(value);
}

void metrics_stop(metrics *m)
{
    if (m == NULL)
        return;
    if (m->daemon)
        MHD_stop_daemon(m->daemon);
    mr_strmap_each(&m->robots, free_counts, NULL);
    mr_strmap_free(&m->robots);
    pthread_mutex_destroy(&m->lock);
    free(m);
}
