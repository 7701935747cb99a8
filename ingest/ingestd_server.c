/*
 * ingestd_server.c - the ingest daemon's event loop (see ingestd_server.h).
 *
 * One thread, one poll(2) loop over the listening socket, the clients and
 * the producer's event fd. A connection goes
 *
 *   READING -> (WAITING for memory) -> READING -> PUBLISHING -> WRITING -> gone
 *
 * Its buffer is the records' value (not copied), so it is freed only when
 * Kafka has answered for every record, even if the client has gone away.
 * Memory: a message is admitted only if its announced size fits
 * ingestd_memory_limit next to the messages already held (one message is
 * always admitted, so nothing starves); a connection waiting for memory is
 * simply not read, which holds its client back.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sysexits.h>
#include <unistd.h>

#include "mailrobot/buf.h"
#include "mailrobot/clock.h"

#include "ingestd_server.h"
#include "publish.h"
#include "relay_protocol.h"

/* The envelope part of a request is small (one recipient, usually); this
 * bounds it even for MR_MAX_RECIPIENTS long addresses. */
#define HEADER_LIMIT (RELAY_FIELD_LIMIT * 2 * (MR_MAX_RECIPIENTS + 3) + 4096)
#define READ_CHUNK 65536
/* After a stop request, how long in-flight work may take at most, beyond
 * the time limit each message already has. */
#define DRAIN_GRACE_MS 2000
/* librdkafka fails a record at message.timeout.ms (= ingest_time_limit),
 * checking about once a second; its answer names the real reason, so it
 * gets this long before the daemon answers for it. Still well inside the
 * client's own grace (RELAY_GRACE_MS in main.c). */
#define KAFKA_ANSWER_GRACE_MS 1500

typedef enum conn_state { READING, WAITING, PUBLISHING, WRITING, CLOSED } conn_state;

typedef struct connection {
    int fd;                  /* -1 once the client is gone */
    conn_state state;
    mr_buf in;               /* request header + message */
    relay_request request;
    int have_header;
    size_t reserved;         /* bytes counted against the memory limit */
    size_t outstanding;      /* records Kafka has not answered yet */
    char failure[MR_ERR_MAX];
    char answer[RELAY_RESPONSE_LIMIT];
    size_t answer_len, answer_sent;
    int64_t deadline;        /* the client must be answered by then */
    int answered;            /* an answer is written or being written */
    struct ingestd *server;
    struct connection *next;
} connection;

struct ingestd {
    const mr_config *cfg;
    const mr_logger *log;
    mr_producer *producer;
    int listen_fd;
    int event_fd;
    size_t connections;
    size_t memory_used;
    connection *head;
    struct pollfd *pollfds;  /* room for connection_limit + 2 */
    connection **polled;     /* the connection of each pollfd */
};

/* --- answers ------------------------------------------------------------------- */

static void answer(connection *c, int status, const char *text)
{
    if (c->answered)
        return;
    c->answered = 1;
    c->answer_len = relay_response_format(c->answer, sizeof c->answer, status, text);
    c->answer_sent = 0;
    c->state = c->fd >= 0 ? WRITING : CLOSED;
}

static void release_memory(connection *c)
{
    c->server->memory_used -= c->reserved;
    c->reserved = 0;
    mr_buf_free(&c->in);
}

/* Producer callback: one record of connection opaque is answered. */
static void on_record_delivered(void *opaque, const char *error)
{
    connection *c = opaque;
    char text[MR_ERR_MAX + 96];

    if (error != NULL && c->failure[0] == '\0')
        snprintf(c->failure, sizeof c->failure, "%s", error);
    if (--c->outstanding > 0)
        return;
    release_memory(c);
    if (c->answered) {
        /* The client was told to retry when its time ran out; Kafka has
         * answered since. A retry publishes the same mr.id again. */
        mr_log(c->server->log, MR_LOG_INFO, "late answer from Kafka", "queue_id",
               c->request.envelope.queue_id, "result", c->failure[0] ? c->failure : "ok",
               NULL);
        return;
    }
    if (c->failure[0] == '\0') {
        mr_log(c->server->log, MR_LOG_DEBUG, "published", "queue_id",
               c->request.envelope.queue_id, NULL);
        answer(c, EX_OK, "ok");
        return;
    }
    mr_log(c->server->log, MR_LOG_WARN, "deferred", "queue_id", c->request.envelope.queue_id,
           "reason", c->failure, NULL);
    snprintf(text, sizeof text, "4.4.1 mailrobot-ingest: Kafka did not take the message: %s",
             c->failure);
    answer(c, EX_TEMPFAIL, text);
}

/* --- reading a request ------------------------------------------------------------ */

static void publish(connection *c)
{
    ingestd *d = c->server;
    const unsigned char *message = c->in.data + c->request.header_len;
    size_t queued = 0;
    mr_err err;

    /* Delivery callbacks run only from mr_producer_poll(), never inside
     * ingest_queue_records(), so counting first is safe. */
    c->state = PUBLISHING;
    c->outstanding = c->request.envelope.recipient_count;
    if (ingest_queue_records(d->cfg, d->producer, &c->request.envelope, message,
                             c->request.message_len, mr_wall_ms(), c, &queued, &err) < 0) {
        /* The records queued before the refusal still call back; the
         * refusal itself counts as one failed answer. */
        c->outstanding = queued + 1;
        on_record_delivered(c, err.msg);
    }
}

/* Decides what a complete header means: admission, or a refusal. */
static void header_received(connection *c)
{
    ingestd *d = c->server;
    size_t total = c->request.header_len + c->request.message_len;
    char text[160];

    if (c->request.message_len > d->cfg->max_message_bytes) {
        snprintf(text, sizeof text, "5.3.4 message too big: larger than %llu bytes",
                 (unsigned long long)d->cfg->max_message_bytes);
        answer(c, EX_DATAERR, text);
        return;
    }
    if (d->memory_used > 0 && d->memory_used + total > d->cfg->ingestd_memory_limit) {
        c->state = WAITING;
        return;
    }
    c->state = READING;
    c->reserved = total;
    d->memory_used += total;
    c->in.limit = total;
}

/* Admits connections that wait for memory, oldest first, while it fits. */
static void admit_waiting(ingestd *d)
{
    for (connection *c = d->head; c != NULL; c = c->next) {
        if (c->state != WAITING)
            continue;
        header_received(c);
        if (c->state == WAITING)
            return;
        if (c->in.len == c->reserved)
            publish(c);
    }
}

static void bad_request(connection *c, const char *why)
{
    char text[MR_ERR_MAX + 64];

    mr_log(c->server->log, MR_LOG_WARN, "bad request", "reason", why, NULL);
    snprintf(text, sizeof text, "4.3.0 mailrobot-ingestd: bad request: %s", why);
    answer(c, EX_TEMPFAIL, text);
}

static void read_request(connection *c)
{
    mr_err err;
    ssize_t n;
    size_t want;

    if (c->in.len >= c->in.limit) {
        bad_request(c, c->have_header ? "more bytes than the request announced"
                                      : "request header too long");
        return;
    }
    /* Before the header is known, grow in chunks; after, the buffer is
     * sized for the announced message at once. */
    want = c->have_header ? c->in.limit : c->in.len + READ_CHUNK;
    if (want > c->in.limit)
        want = c->in.limit;
    if (mr_buf_reserve(&c->in, want, &err) < 0) {
        bad_request(c, err.msg);
        return;
    }
    n = read(c->fd, c->in.data + c->in.len, want - c->in.len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        /* The client gave up before sending everything: nothing to do. */
        close(c->fd);
        c->fd = -1;
        if (c->reserved > 0)
            release_memory(c);
        c->state = CLOSED;
        return;
    }
    c->in.len += (size_t)n;
    if (!c->have_header) {
        relay_parse_status st = relay_request_parse(c->in.data, c->in.len, SIZE_MAX,
                                                    &c->request, &err);

        if (st == RELAY_PARSE_BAD) {
            bad_request(c, err.msg);
            return;
        }
        if (st == RELAY_PARSE_MORE)
            return;
        c->have_header = 1;
        if (c->in.len > c->request.header_len + c->request.message_len) {
            bad_request(c, "more bytes than the request announced");
            return;
        }
        header_received(c);
        if (c->state != READING)
            return;
    }
    if (c->in.len == c->request.header_len + c->request.message_len)
        publish(c);
}

/* --- connections ------------------------------------------------------------------ */

static void accept_clients(ingestd *d)
{
    while (d->connections < (size_t)d->cfg->ingestd_connection_limit) {
        int fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        connection *c;

        if (fd < 0)
            return;
        c = calloc(1, sizeof *c);
        if (c == NULL) {
            close(fd);
            return;
        }
        c->fd = fd;
        c->state = READING;
        c->server = d;
        c->deadline = mr_monotonic_ms() + d->cfg->ingest_time_limit;
        mr_buf_init(&c->in, HEADER_LIMIT);
        c->next = d->head;
        d->head = c;
        d->connections++;
    }
}

static void write_answer(connection *c)
{
    ssize_t n = write(c->fd, c->answer + c->answer_sent, c->answer_len - c->answer_sent);

    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n > 0)
        c->answer_sent += (size_t)n;
    if (n <= 0 || c->answer_sent == c->answer_len)
        c->state = CLOSED;
}

/* Answers connections whose client has waited ingest_time_limit. Records
 * still with Kafka keep their buffer until Kafka answers (the producer's
 * message timeout bounds that); the client is told to retry now. */
static void expire(ingestd *d, int64_t now)
{
    char text[MR_ERR_MAX + 160];

    for (connection *c = d->head; c != NULL; c = c->next) {
        if (now < c->deadline || c->answered)
            continue;
        if (c->state == READING || c->state == WAITING) {
            if (c->reserved > 0)
                release_memory(c);
            answer(c, EX_TEMPFAIL, "4.4.2 mailrobot-ingestd: timed out reading the message");
        } else if (c->state == PUBLISHING && now >= c->deadline + KAFKA_ANSWER_GRACE_MS) {
            const char *broker = mr_producer_last_broker_error(d->producer);

            snprintf(text, sizeof text, "4.4.1 mailrobot-ingest: Kafka did not take the "
                     "message: no acknowledgement within %lld ms%s%s",
                     (long long)d->cfg->ingest_time_limit,
                     broker[0] ? "; last broker error: " : "", broker);
            answer(c, EX_TEMPFAIL, text);
        }
    }
    for (connection *c = d->head; c != NULL; c = c->next)
        if (c->state == WRITING && now >= c->deadline + DRAIN_GRACE_MS)
            c->state = CLOSED;
}

/* Frees closed connections; keeps those Kafka still owes an answer. */
static void reap(ingestd *d)
{
    connection **link = &d->head;

    while (*link != NULL) {
        connection *c = *link;

        if (c->state != CLOSED || c->outstanding > 0) {
            link = &c->next;
            continue;
        }
        *link = c->next;
        if (c->fd >= 0)
            close(c->fd);
        if (c->reserved > 0)
            release_memory(c);
        mr_buf_free(&c->in);
        relay_request_free(&c->request);
        free(c);
        d->connections--;
    }
}

/* --- the loop --------------------------------------------------------------------- */

static size_t build_pollfds(ingestd *d)
{
    size_t n = 0;

    d->pollfds[n] = (struct pollfd){.fd = d->event_fd, .events = POLLIN};
    d->polled[n++] = NULL;
    if (d->listen_fd >= 0 && d->connections < (size_t)d->cfg->ingestd_connection_limit) {
        d->pollfds[n] = (struct pollfd){.fd = d->listen_fd, .events = POLLIN};
        d->polled[n++] = NULL;
    }
    for (connection *c = d->head; c != NULL; c = c->next) {
        if (c->fd < 0 || (c->state != READING && c->state != WRITING))
            continue;
        d->pollfds[n] = (struct pollfd){.fd = c->fd,
                                        .events = c->state == READING ? POLLIN : POLLOUT};
        d->polled[n++] = c;
    }
    return n;
}

static void handle_events(ingestd *d, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        connection *c = d->polled[i];

        if (d->pollfds[i].revents == 0)
            continue;
        if (c == NULL && d->pollfds[i].fd == d->event_fd)
            mr_producer_poll(d->producer, 0);
        else if (c == NULL)
            accept_clients(d);
        else if (c->state == READING)
            read_request(c);
        else if (c->state == WRITING)
            write_answer(c);
    }
}

static void stop_listening(ingestd *d)
{
    if (d->listen_fd < 0)
        return;
    close(d->listen_fd);
    d->listen_fd = -1;
    unlink(d->cfg->ingestd_socket);
}

int ingestd_run(ingestd *d, volatile sig_atomic_t *stop)
{
    int64_t drain_deadline = 0;

    mr_log(d->log, MR_LOG_INFO, "listening", "socket", d->cfg->ingestd_socket, "brokers",
           d->cfg->kafka_brokers, NULL);
    for (;;) {
        size_t n;
        int64_t now = mr_monotonic_ms();

        if (*stop && d->listen_fd >= 0) {
            mr_log(d->log, MR_LOG_INFO, "stopping: answering messages in flight", NULL);
            stop_listening(d);
            drain_deadline = now + d->cfg->ingest_time_limit + DRAIN_GRACE_MS;
        }
        if (d->listen_fd < 0 && (d->head == NULL || now >= drain_deadline))
            break;
        n = build_pollfds(d);
        if (poll(d->pollfds, n, 200) > 0)
            handle_events(d, n);
        /* Delivery callbacks can also be due without an event on the fd. */
        mr_producer_poll(d->producer, 0);
        expire(d, mr_monotonic_ms());
        reap(d);
        admit_waiting(d);
    }
    mr_log(d->log, MR_LOG_INFO, "stopped", NULL);
    return 0;
}

static int listen_on(const mr_config *cfg, mr_err *err)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(cfg->ingestd_socket) >= sizeof addr.sun_path)
        return mr_err_set(err, "ingestd_socket '%s' is too long", cfg->ingestd_socket);
    if (cfg->ingestd_socket[0] == '\0')
        return mr_err_set(err, "ingestd_socket is empty: nothing to listen on");
    strcpy(addr.sun_path, cfg->ingestd_socket);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return mr_err_set(err, "socket: %s", strerror(errno));
    /* A socket file left by a crashed daemon would make bind fail. */
    unlink(cfg->ingestd_socket);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0
        || chmod(cfg->ingestd_socket, (mode_t)cfg->ingestd_socket_mode) < 0
        || listen(fd, 128) < 0) {
        mr_err_set(err, "%s: %s", cfg->ingestd_socket, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

ingestd *ingestd_new(const mr_config *cfg, const mr_logger *log, mr_kafka_context *kafka,
                     mr_err *err)
{
    ingestd *d = calloc(1, sizeof *d);
    size_t slots = (size_t)cfg->ingestd_connection_limit + 2;

    if (d == NULL) {
        mr_err_set(err, "out of memory");
        return NULL;
    }
    d->cfg = cfg;
    d->log = log;
    d->listen_fd = -1;
    d->pollfds = calloc(slots, sizeof *d->pollfds);
    d->polled = calloc(slots, sizeof *d->polled);
    if (d->pollfds == NULL || d->polled == NULL) {
        mr_err_set(err, "out of memory");
        goto fail;
    }
    d->producer = mr_producer_new(cfg, kafka, cfg->ingest_time_limit, on_record_delivered, err);
    if (d->producer == NULL)
        goto fail;
    d->event_fd = mr_producer_event_fd(d->producer, err);
    if (d->event_fd < 0)
        goto fail;
    d->listen_fd = listen_on(cfg, err);
    if (d->listen_fd < 0)
        goto fail;
    return d;
fail:
    ingestd_free(d);
    return NULL;
}

void ingestd_free(ingestd *d)
{
    if (d == NULL)
        return;
    stop_listening(d);
    mr_producer_destroy(d->producer);
    while (d->head != NULL) {
        connection *c = d->head;

        d->head = c->next;
        if (c->fd >= 0)
            close(c->fd);
        mr_buf_free(&c->in);
        relay_request_free(&c->request);
        free(c);
    }
    free(d->pollfds);
    free(d->polled);
    free(d);
}
