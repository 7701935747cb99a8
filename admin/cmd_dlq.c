/*
 * cmd_dlq.c - `mailrobotctl dlq list|show|replay` and `mailrobotctl replay`:
 * looking at dead letters and putting records back on the inbound topic
 * (SPEC §4; the headers are described in record.h).
 *
 * Both read without a consumer group and only up to the end of each
 * partition as it was when the command started (kafka_read.h), so they
 * end on a busy topic and never move the workers' offsets.
 *
 * A republished record keeps its key, its value and the inbound headers
 * (mr.v ... mr.received_at, mr.robot); the headers a worker adds about a
 * failed attempt (mr.attempt, mr.not_before, mr.error, mr.error_kind,
 * mr.dead_at, mr.source) are dropped.
 *   dlq replay  adds mr.replayed=dlq: dedupe still applies, so what was
 *               delivered meanwhile is not delivered twice; it keeps an
 *               mr.replay the dead letter had (a failed replay stays one).
 *   replay      adds mr.replay=<new replay id>: the records are delivered
 *               again even if they were delivered before; --robot R sets
 *               mr.robot, which skips routing.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "mailrobot/clock.h"
#include "mailrobot/record.h"
#include "mailrobot/robot.h"
#include "mailrobot/topics.h"
#include "mailrobot/units.h"

#include "ctl.h"
#include "kafka_read.h"

#define DEFAULT_TIMEOUT_MS 30000
#define TIMEOUT_MAX_MS 86400000
#define DEFAULT_LIMIT 100
#define LIMIT_MAX 10000
#define ERROR_CUT 80          /* dlq list: bytes of mr.error shown */
#define IN_FLIGHT_LIMIT 1000  /* republished records not yet acknowledged */
#define REPLAY_ID_SIZE 32

/* --- command lines ------------------------------------------------------------- */

typedef struct dlq_args {
    const char *id;        /* the one positional argument */
    int all;
    long limit;
    int64_t timeout_ms;
    const char *topic, *from, *to, *robot;
} dlq_args;

static int listed(const char *const *names, const char *name)
{
    for (; *names != NULL; names++)
        if (strcmp(*names, name) == 0)
            return 1;
    return 0;
}

static int set_option(dlq_args *a, const char *name, const char *val)
{
    mr_err err;
    int64_t n;

    if (strcmp(name, "--limit") == 0 && mr_parse_int(val, 1, LIMIT_MAX, &n, &err) == 0)
        a->limit = (long)n;
    else if (strcmp(name, "--timeout") == 0)
        return mr_parse_duration(val, &a->timeout_ms, &err) < 0 || a->timeout_ms < 1
               || a->timeout_ms > TIMEOUT_MAX_MS ? -1 : 0;
    else if (strcmp(name, "--topic") == 0)
        a->topic = val;
    else if (strcmp(name, "--from") == 0)
        a->from = val;
    else if (strcmp(name, "--to") == 0)
        a->to = val;
    else if (strcmp(name, "--robot") == 0 && mr_robot_name_valid(val))
        a->robot = val;
    else
        return -1;
    return 0;
}

/* Parses the options in allowed and at most one positional argument.
 * Returns 0, or -1 (a bad command line). */
static int parse_args(int argc, char **argv, const char *const *allowed, dlq_args *a)
{
    memset(a, 0, sizeof *a);
    a->limit = DEFAULT_LIMIT;
    a->timeout_ms = DEFAULT_TIMEOUT_MS;
    for (int i = 0; i < argc; i++) {
        if (argv[i][0] != '-' && a->id == NULL)
            a->id = argv[i];
        else if (!listed(allowed, argv[i]))
            return -1;
        else if (strcmp(argv[i], "--all") == 0)
            a->all = 1;
        else if (i + 1 >= argc || set_option(a, argv[i], argv[i + 1]) < 0)
            return -1;
        else
            i++;
    }
    return 0;
}

/* --- republishing ----------------------------------------------------------------- */

/* Headers a worker adds about one failed attempt: never carried over. */
static const char *const attempt_headers[] = {
    MR_H_ATTEMPT, MR_H_NOT_BEFORE, MR_H_ERROR, MR_H_ERROR_KIND, MR_H_DEAD_AT, MR_H_SOURCE,
    MR_H_REPLAYED, NULL,
};

typedef struct republisher {
    mr_producer *producer;
    char topic[MR_TOPIC_NAME_MAX];  /* <prefix>.inbound */
    mr_header add[2];               /* headers to add (replacing any of that name) */
    size_t add_count;
    size_t sent, delivered, failed;
    char first_failure[MR_ERR_MAX];
} republisher;

/* A record in flight: the consumer's message holds the value until Kafka
 * has the copy. */
typedef struct ticket {
    republisher *rp;
    rd_kafka_message_t *m;
} ticket;

static void on_delivery(void *opaque, const char *error)
{
    ticket *t = opaque;
    republisher *rp = t->rp;

    if (error == NULL)
        rp->delivered++;
    else if (rp->failed++ == 0)
        snprintf(rp->first_failure, sizeof rp->first_failure, "%s", error);
    rd_kafka_message_destroy(t->m);
    free(t);
}

static int republisher_init(ctl_context *ctx, republisher *rp, int64_t timeout_ms, mr_err *err)
{
    memset(rp, 0, sizeof *rp);
    mr_topic_name(&ctx->cfg, "inbound", rp->topic, sizeof rp->topic);
    rp->producer = mr_producer_new(&ctx->cfg, &ctx->kafka, timeout_ms, on_delivery, err);
    return rp->producer ? 0 : -1;
}

static void republisher_add(republisher *rp, const char *name, const char *value)
{
    rp->add[rp->add_count++] = (mr_header){name, value, strlen(value)};
}

static int dropped(const republisher *rp, const char *name)
{
    for (const char *const *h = attempt_headers; *h; h++)
        if (strcmp(*h, name) == 0)
            return 1;
    for (size_t i = 0; i < rp->add_count; i++)
        if (strcmp(rp->add[i].name, name) == 0)
            return 1;
    return 0;
}

/* The headers of m that are carried over, then the added ones. */
static mr_header *republished_headers(const republisher *rp, const rd_kafka_message_t *m,
                                      size_t *count)
{
    rd_kafka_headers_t *hdrs = NULL;
    size_t total = rp->add_count, n = 0;
    mr_header *out;
    const char *name;
    const void *value;
    size_t len;

    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR)
        total += rd_kafka_header_cnt(hdrs);
    out = calloc(total + 1, sizeof *out);
    for (size_t i = 0; out && hdrs && rd_kafka_header_get_all(hdrs, i, &name, &value, &len)
                                          == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
        if (!dropped(rp, name))
            out[n++] = (mr_header){name, value, len};
    for (size_t i = 0; out && i < rp->add_count; i++)
        out[n++] = rp->add[i];
    *count = n;
    return out;
}

/* Queues m (which rp then owns) for the inbound topic, keeping at most
 * IN_FLIGHT_LIMIT records unacknowledged. */
static int republish(republisher *rp, rd_kafka_message_t *m, mr_err *err)
{
    ticket *t = malloc(sizeof *t);
    size_t count = 0;
    mr_header *headers = t ? republished_headers(rp, m, &count) : NULL;
    int rc = headers ? 0 : mr_err_set(err, "out of memory");

    if (rc == 0) {
        *t = (ticket){rp, m};
        rc = mr_producer_send(rp->producer, rp->topic, m->key, m->key_len, m->payload, m->len,
                              headers, count, t, err);
    }
    free(headers);
    if (rc < 0) {
        free(t);
        rd_kafka_message_destroy(m);
        return -1;
    }
    rp->sent++;
    mr_producer_poll(rp->producer, 0);
    while (mr_producer_outstanding(rp->producer) >= IN_FLIGHT_LIMIT)
        mr_producer_poll(rp->producer, 100);
    return 0;
}

/* Waits for every acknowledgement (then the consumer may go). When the
 * read failed (rc < 0), err keeps its reason and gets the count added. */
static int republisher_finish(republisher *rp, int rc, int64_t timeout_ms, mr_err *err)
{
    mr_err why;

    if (mr_producer_wait(rp->producer, timeout_ms, &why) < 0 && rc == 0)
        rc = mr_err_set(err, "%zu of %zu record(s) not republished to %s: %s",
                        rp->sent - rp->delivered, rp->sent, rp->topic,
                        rp->first_failure[0] ? rp->first_failure : why.msg);
    else if (rc < 0 && rp->delivered > 0)
        mr_err_prefix(err, "%zu record(s) republished to %s, then", rp->delivered, rp->topic);
    mr_producer_destroy(rp->producer);
    rp->producer = NULL;
    return rc;
}

/* --- dlq list ----------------------------------------------------------------------- */

typedef struct dead_line {
    int64_t timestamp;
    int32_t partition;
    int64_t offset;
    char id[MR_ID_SIZE + 8];
    char robot[MR_ROBOT_NAME_MAX + 8];
    char kind[16];
    char dead_at[40];
    char recipient[256];
    char error[ERROR_CUT + 8];
} dead_line;

typedef struct dead_lines {
    dead_line *lines;
    size_t count;
    size_t keep;       /* the newest `keep` are printed */
} dead_lines;

static int newer_last(const void *a, const void *b)
{
    const dead_line *x = a, *y = b;

    if (x->timestamp != y->timestamp)
        return x->timestamp < y->timestamp ? -1 : 1;
    if (x->partition != y->partition)
        return x->partition < y->partition ? -1 : 1;
    return (x->offset > y->offset) - (x->offset < y->offset);
}

static void summarize(const rd_kafka_message_t *m, dead_line *d)
{
    char error[ERROR_CUT * 4 + 8];

    d->timestamp = rd_kafka_message_timestamp(m, NULL);
    d->partition = m->partition;
    d->offset = m->offset;
    kread_header_text(m, MR_H_ID, "-", d->id, sizeof d->id);
    kread_header_text(m, MR_H_ROBOT, "-", d->robot, sizeof d->robot);
    kread_header_text(m, MR_H_ERROR_KIND, "-", d->kind, sizeof d->kind);
    kread_header_text(m, MR_H_DEAD_AT, "-", d->dead_at, sizeof d->dead_at);
    kread_header_text(m, MR_H_RECIPIENT, "-", d->recipient, sizeof d->recipient);
    kread_header_text(m, MR_H_ERROR, "-", error, sizeof error);
    if (strlen(error) > ERROR_CUT)
        snprintf(d->error, sizeof d->error, "%.*s...", ERROR_CUT - 3, error);
    else
        snprintf(d->error, sizeof d->error, "%s", error);
}

/* Keeps the summary of every record, trimming to the newest `keep` when
 * twice that many have piled up (memory stays bounded). */
static int collect_dead(void *opaque, rd_kafka_message_t *m, mr_err *err)
{
    dead_lines *dl = opaque;

    if (dl->count == 2 * dl->keep) {
        qsort(dl->lines, dl->count, sizeof *dl->lines, newer_last);
        memmove(dl->lines, dl->lines + dl->keep, dl->keep * sizeof *dl->lines);
        dl->count = dl->keep;
    }
    summarize(m, &dl->lines[dl->count++]);
    rd_kafka_message_destroy(m);
    return 0;
}

static int dlq_list(rd_kafka_t *rk, const char *topic, const dlq_args *a, mr_err *err)
{
    dead_lines dl = {calloc(2 * (size_t)a->limit, sizeof(dead_line)), 0, (size_t)a->limit};
    size_t first;

    if (dl.lines == NULL)
        return mr_err_set(err, "out of memory");
    if (kread_bounded(rk, topic, KREAD_TAIL, a->limit, a->timeout_ms, collect_dead, &dl,
                      err) < 0) {
        free(dl.lines);
        return -1;
    }
    qsort(dl.lines, dl.count, sizeof *dl.lines, newer_last);
    first = dl.count > dl.keep ? dl.count - dl.keep : 0;
    for (size_t i = first; i < dl.count; i++) {
        const dead_line *d = &dl.lines[i];

        printf("%s  %s  %s  %s  %s  %s\n", d->id, d->robot, d->kind, d->dead_at, d->recipient,
               d->error);
    }
    free(dl.lines);
    return 0;
}

/* --- dlq show, dlq replay -------------------------------------------------------- */

typedef struct dead_search {
    const char *id;              /* NULL: every record (replay --all) */
    rd_kafka_message_t *newest;  /* the newest record with that mr.id */
    republisher *rp;             /* replay --all: republish as read */
} dead_search;

static int has_id(const rd_kafka_message_t *m, const char *id)
{
    const void *value;
    size_t len;

    return kread_header(m, MR_H_ID, &value, &len) == 0 && len == strlen(id)
           && memcmp(value, id, len) == 0;
}

/* Keeps m if it is the newest record with the wanted mr.id so far (of two
 * with the same timestamp, the one read later). */
static void keep_newest(dead_search *s, rd_kafka_message_t *m)
{
    int older = s->newest != NULL && rd_kafka_message_timestamp(m, NULL)
                                         < rd_kafka_message_timestamp(s->newest, NULL);

    if (older || !has_id(m, s->id)) {
        rd_kafka_message_destroy(m);
        return;
    }
    if (s->newest != NULL)
        rd_kafka_message_destroy(s->newest);
    s->newest = m;
}

static int search_dead(void *opaque, rd_kafka_message_t *m, mr_err *err)
{
    dead_search *s = opaque;

    if (s->id == NULL)
        return republish(s->rp, m, err);
    keep_newest(s, m);
    return 0;
}

static int dlq_show(rd_kafka_t *rk, const char *topic, const dlq_args *a, mr_err *err)
{
    dead_search s = {a->id, NULL, NULL};

    if (kread_bounded(rk, topic, KREAD_BEGINNING, 0, a->timeout_ms, search_dead, &s, err) < 0)
        return -1;
    if (s.newest == NULL)
        return mr_err_set(err, "no dead letter with mr.id %s in %s", a->id, topic);
    kread_print_record(s.newest, 0);
    rd_kafka_message_destroy(s.newest);
    return 0;
}

static int dlq_replay(ctl_context *ctx, rd_kafka_t *rk, const char *topic, const dlq_args *a,
                      mr_err *err)
{
    republisher rp;
    dead_search s = {a->all ? NULL : a->id, NULL, &rp};
    int rc;

    if (republisher_init(ctx, &rp, a->timeout_ms, err) < 0)
        return -1;
    republisher_add(&rp, MR_H_REPLAYED, "dlq");
    rc = kread_bounded(rk, topic, KREAD_BEGINNING, 0, a->timeout_ms, search_dead, &s, err);
    if (rc == 0 && s.id != NULL && s.newest == NULL)
        rc = mr_err_set(err, "no dead letter with mr.id %s in %s", s.id, topic);
    if (rc == 0 && s.newest != NULL)
        rc = republish(&rp, s.newest, err);
    else if (s.newest != NULL)
        rd_kafka_message_destroy(s.newest);
    rc = republisher_finish(&rp, rc, a->timeout_ms, err);
    if (rc == 0)
        printf("replayed %zu dead letter(s) from %s to %s\n", rp.delivered, topic, rp.topic);
    return rc;
}

static const char *const list_options[] = {"--limit", "--timeout", NULL};
static const char *const show_options[] = {"--timeout", NULL};
static const char *const replay_options[] = {"--all", "--timeout", NULL};

/* The dlq command line is good for its verb. */
static int dlq_args_fit(const char *verb, const dlq_args *a)
{
    if (strcmp(verb, "list") == 0)
        return a->id == NULL;
    if (strcmp(verb, "show") == 0)
        return a->id != NULL;
    return strcmp(verb, "replay") == 0 && (a->id != NULL) != (a->all != 0);
}

int ctl_dlq(ctl_context *ctx, int argc, char **argv)
{
    const char *verb = argc > 0 ? argv[0] : "";
    const char *const *allowed = strcmp(verb, "list") == 0     ? list_options
                               : strcmp(verb, "replay") == 0 ? replay_options
                                                               : show_options;
    char topic[MR_TOPIC_NAME_MAX];
    rd_kafka_t *rk;
    dlq_args a;
    mr_err err;
    int rc;

    if (argc == 0 || parse_args(argc - 1, argv + 1, allowed, &a) < 0 || !dlq_args_fit(verb, &a)) {
        ctl_error("usage: mailrobotctl dlq list [--limit N] [--timeout D]\n"
                  "       mailrobotctl dlq show ID [--timeout D]\n"
                  "       mailrobotctl dlq replay ID|--all [--timeout D]");
        return CTL_USAGE;
    }
    mr_topic_name(&ctx->cfg, "dead", topic, sizeof topic);
    rk = kread_consumer(ctx, &err);
    if (rk == NULL)
        rc = -1;
    else if (strcmp(verb, "list") == 0)
        rc = dlq_list(rk, topic, &a, &err);
    else if (strcmp(verb, "show") == 0)
        rc = dlq_show(rk, topic, &a, &err);
    else
        rc = dlq_replay(ctx, rk, topic, &a, &err);
    if (rc < 0)
        ctl_error("dlq %s at %s: %s", verb, ctx->cfg.kafka_brokers, err.msg);
    fflush(stdout);
    kread_destroy(rk);
    return rc < 0 ? CTL_FAILED : CTL_OK;
}

/* --- replay a time window ---------------------------------------------------------- */

/* Fixed-width decimal digits at text[0..n). */
static int digits(const char *text, int n, int *value)
{
    *value = 0;
    for (int i = 0; i < n; i++) {
        if (text[i] < '0' || text[i] > '9')
            return -1;
        *value = *value * 10 + (text[i] - '0');
    }
    return 0;
}

/* "+hh:mm", "-hh:mm" or "Z" into seconds east of UTC. */
static int parse_zone(const char *p, int *offset_s)
{
    int h, m;

    if ((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0') {
        *offset_s = 0;
        return 0;
    }
    if ((p[0] != '+' && p[0] != '-') || digits(p + 1, 2, &h) < 0 || p[3] != ':'
        || digits(p + 4, 2, &m) < 0 || p[6] != '\0' || h > 23 || m > 59)
        return -1;
    *offset_s = (p[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
    return 0;
}

/* RFC 3339: 2026-11-29T10:00:00[.fff...](Z|+hh:mm|-hh:mm). */
static int parse_rfc3339(const char *text, int64_t *ms)
{
    struct tm tm = {0}, check;
    const char *p = text + 19;
    int frac = 0, scale = 100, offset_s;
    time_t t;

    if (strlen(text) < 20 || digits(text, 4, &tm.tm_year) < 0 || text[4] != '-'
        || digits(text + 5, 2, &tm.tm_mon) < 0 || text[7] != '-'
        || digits(text + 8, 2, &tm.tm_mday) < 0 || (text[10] != 'T' && text[10] != 't')
        || digits(text + 11, 2, &tm.tm_hour) < 0 || text[13] != ':'
        || digits(text + 14, 2, &tm.tm_min) < 0 || text[16] != ':'
        || digits(text + 17, 2, &tm.tm_sec) < 0)
        return -1;
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
            frac += (*p - '0') * scale;
        if (p == text + 20)
            return -1;
    }
    if (parse_zone(p, &offset_s) < 0)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    check = tm;
    t = timegm(&tm);
    if (tm.tm_mday != check.tm_mday || tm.tm_mon != check.tm_mon || tm.tm_hour != check.tm_hour
        || tm.tm_min != check.tm_min || tm.tm_sec != check.tm_sec)
        return -1; /* 2026-02-30, 25:00, ... */
    *ms = ((int64_t)t - offset_s) * 1000 + frac;
    return 0;
}

/* TIME: RFC 3339, "now", or -DURATION (that long before now). */
static int parse_time(const char *text, int64_t now_ms, int64_t *ms, mr_err *err)
{
    int64_t ago;

    if (strcmp(text, "now") == 0) {
        *ms = now_ms;
        return 0;
    }
    if (text[0] == '-') {
        if (mr_parse_duration(text + 1, &ago, err) < 0)
            return -1;
        *ms = now_ms - ago;
        return 0;
    }
    if (parse_rfc3339(text, ms) < 0)
        return mr_err_set(err, "bad time '%s': expected RFC 3339 (2026-11-29T10:00:00Z), "
                               "-DURATION (-2h) or now", text);
    return 0;
}

/* "r" + UTC time + 6 random hex digits: r20261129T100000Z-3fa94c. */
static int new_replay_id(int64_t now_ms, char *out, size_t outsz, mr_err *err)
{
    time_t t = (time_t)(now_ms / 1000);
    unsigned char random[3];
    struct tm tm;
    char stamp[24];

    if (getrandom(random, sizeof random, 0) != (ssize_t)sizeof random)
        return mr_err_set(err, "getrandom: %m");
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", gmtime_r(&t, &tm));
    snprintf(out, outsz, "r%s-%02x%02x%02x", stamp, random[0], random[1], random[2]);
    return 0;
}

typedef struct window {
    int64_t from_ms, to_ms;
    republisher *rp;
} window;

static int replay_in_window(void *opaque, rd_kafka_message_t *m, mr_err *err)
{
    window *w = opaque;
    int64_t ts = rd_kafka_message_timestamp(m, NULL);

    if (ts >= w->from_ms && ts < w->to_ms)
        return republish(w->rp, m, err);
    rd_kafka_message_destroy(m);
    return 0;
}

/* Only topics that hold mail (inbound, retry, dead) can be replayed. */
static int check_window(ctl_context *ctx, const dlq_args *a, char *topic, window *w,
                        mr_err *err)
{
    char events[MR_TOPIC_NAME_MAX], outbound[MR_TOPIC_NAME_MAX];
    int64_t now = mr_wall_ms();

    kread_topic_name(&ctx->cfg, a->topic ? a->topic : "inbound", topic, MR_TOPIC_NAME_MAX);
    mr_topic_name(&ctx->cfg, "events", events, sizeof events);
    mr_topic_name(&ctx->cfg, "outbound", outbound, sizeof outbound);
    if (strcmp(topic, events) == 0 || strcmp(topic, outbound) == 0)
        return mr_err_set(err, "%s does not hold inbound mail", topic);
    if (parse_time(a->from, now, &w->from_ms, err) < 0
        || parse_time(a->to ? a->to : "now", now, &w->to_ms, err) < 0)
        return -1;
    if (w->from_ms >= w->to_ms)
        return mr_err_set(err, "--from %s is not before --to %s", a->from, a->to ? a->to : "now");
    return 0;
}

static int replay_window(ctl_context *ctx, rd_kafka_t *rk, const dlq_args *a, mr_err *err)
{
    char topic[MR_TOPIC_NAME_MAX], id[REPLAY_ID_SIZE], from[32], to[32];
    republisher rp;
    window w = {0, 0, &rp};
    int rc;

    if (check_window(ctx, a, topic, &w, err) < 0
        || new_replay_id(mr_wall_ms(), id, sizeof id, err) < 0
        || republisher_init(ctx, &rp, a->timeout_ms, err) < 0)
        return -1;
    republisher_add(&rp, MR_H_REPLAY, id);
    if (a->robot != NULL)
        republisher_add(&rp, MR_H_ROBOT, a->robot);
    rc = kread_bounded(rk, topic, KREAD_TIME, w.from_ms, a->timeout_ms, replay_in_window, &w,
                       err);
    rc = republisher_finish(&rp, rc, a->timeout_ms, err);
    if (rc < 0)
        return mr_err_prefix(err, "replay %s", id);
    printf("replay %s: %zu record(s) from %s [%s, %s) republished to %s\n", id, rp.delivered,
           topic, mr_format_rfc3339(w.from_ms, from, sizeof from),
           mr_format_rfc3339(w.to_ms, to, sizeof to), rp.topic);
    return 0;
}

int ctl_replay(ctl_context *ctx, int argc, char **argv)
{
    static const char *const options[] = {"--topic", "--from", "--to", "--robot", "--timeout",
                                          NULL};
    rd_kafka_t *rk;
    dlq_args a;
    mr_err err;
    int rc;

    if (parse_args(argc, argv, options, &a) < 0 || a.id != NULL || a.from == NULL) {
        ctl_error("usage: mailrobotctl replay [--topic T] --from TIME [--to TIME] [--robot R] "
                  "[--timeout D]");
        return CTL_USAGE;
    }
    rk = kread_consumer(ctx, &err);
    rc = rk ? replay_window(ctx, rk, &a, &err) : -1;
    if (rc < 0)
        ctl_error("%s", err.msg);
    fflush(stdout);
    kread_destroy(rk);
    return rc < 0 ? CTL_FAILED : CTL_OK;
}
