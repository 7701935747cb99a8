/*
 * sender.c - the outbound sender (SPEC §8): records of <prefix>.outbound
 * (mail that robots send, outbound.h) delivered by SMTP to the configured
 * relay with libcurl. The transactions run on smtp_concurrency threads
 * (smtp_pool.c: curl waits for the 250 after DATA in a blocking loop, which
 * must not stall the worker's loop), each keeping its connection to the
 * relay open between mails; everything else happens here, on the loop.
 *
 * A record reaches here through job.c like any other: consumed, checked
 * against the Redis marker <prefix>:sent:<effect id> (a confirmed send is
 * never repeated), then queued here until a connection slot
 * (smtp_concurrency) and, with smtp_rate_limit, a token of the rate are
 * free. The relay's answer decides the outcome:
 *
 *   250 after DATA                           done: job.c sets the marker
 *   4xx, connection trouble, timeouts, TLS   temporary: the retry topics
 *   5xx (a refused recipient, 535 to AUTH)   permanent: the dead letters
 *
 * The error names the relay's own reply line ("550 5.1.1 <x@y>: Recipient
 * address rejected") and curl's view of the step that failed.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "mailrobot/clock.h"
#include "mailrobot/dkim.h"
#include "mailrobot/outbound.h"
#include "mailrobot/srs.h"

#include "smtp_pool.h"
#include "worker.h"

struct sender {
    worker *w;
    char url[768];               /* the relay, with the EHLO name as path */
    int64_t active;              /* sends in progress */
    job *queue, *queue_tail;     /* waiting for a slot or a token (FIFO) */
    double tokens;               /* smtp_rate_limit's bucket */
    int64_t refilled_ms;
    struct event *timer;         /* the next token */
    mr_dkim *dkim;
    smtp_pool *pool;
};

static void on_sent(smtp_task *t, void *arg);

/* --- set-up ------------------------------------------------------------------------ */

static int relay_url(const mr_config *cfg, const char *hostname, char *out, size_t outsz,
                     mr_err *err)
{
    const char *relay = cfg->smtp_relay;
    const char *helo = cfg->smtp_helo[0] ? cfg->smtp_helo : hostname;
    size_t len = strlen(relay);

    if (strncmp(relay, "smtp://", 7) != 0 && strncmp(relay, "smtps://", 8) != 0)
        return mr_err_set(err, "smtp_relay = %s: not smtp://host[:port] or smtps://host[:port]",
                          relay);
    if (strchr(relay + 8, '/') != NULL && relay[len - 1] != '/')
        return mr_err_set(err, "smtp_relay = %s: a path is not allowed (the EHLO name is "
                          "smtp_helo)", relay);
    while (len > 0 && relay[len - 1] == '/')
        len--;
    for (const char *p = helo; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '[' && *p != ']'
            && *p != ':')
            return mr_err_set(err, "smtp_helo = %s: not a host name", helo);
    if ((size_t)snprintf(out, outsz, "%.*s/%s", (int)len, relay, helo) >= outsz)
        return mr_err_set(err, "smtp_relay is too long");
    return 0;
}

static void log_start(const worker *w, const sender *s)
{
    static const char *const starttls[] = {"required", "optional", "no"};
    const mr_config *cfg = w->cfg;
    char concurrency[24], rate[24], keys[24];

    snprintf(concurrency, sizeof concurrency, "%lld", (long long)cfg->smtp_concurrency);
    snprintf(rate, sizeof rate, "%lld", (long long)cfg->smtp_rate_limit);
    snprintf(keys, sizeof keys, "%zu", mr_dkim_key_count(s->dkim));
    mr_log(w->log, MR_LOG_INFO, "sending the mail robots send", "relay", cfg->smtp_relay,
           "starttls", strncmp(cfg->smtp_relay, "smtps://", 8) == 0 ? "(smtps)"
                                                                   : starttls[cfg->smtp_starttls],
           "auth", cfg->smtp_username[0] ? cfg->smtp_username : "(none)", "concurrency",
           concurrency, "rate_limit", rate, "dkim_keys", keys, NULL);
}

int sender_init(worker *w, mr_err *err)
{
    sender *s;

    if (w->cfg->smtp_relay[0] == '\0') {
        mr_log(w->log, MR_LOG_WARN, "smtp_relay is empty: this worker does not send the mail "
               "robots send (it waits in Kafka)", NULL);
        return 0;
    }
    if ((s = calloc(1, sizeof *s)) == NULL)
        return mr_err_set(err, "out of memory");
    w->sender = s;
    s->w = w;
    s->tokens = 1;
    s->refilled_ms = mr_monotonic_ms();
    if (relay_url(w->cfg, w->hostname, s->url, sizeof s->url, err) < 0
        || mr_dkim_load(w->cfg->dkim_keys, &s->dkim, err) < 0
        || (s->pool = smtp_pool_new(w->cfg, s->url, w->base, on_sent, s, err)) == NULL)
        return -1;
    log_start(w, s);
    return 0;
}

void sender_stop(worker *w)
{
    if (w->sender != NULL)
        smtp_pool_stop(w->sender->pool);
}

void sender_free(worker *w)
{
    sender *s = w->sender;

    if (s == NULL)
        return;
    smtp_pool_free(s->pool);
    if (s->timer)
        event_free(s->timer);
    mr_dkim_free(s->dkim);
    free(s);
    w->sender = NULL;
}

/* --- one mail -------------------------------------------------------------------------- */

attempt_result sender_classify(int curl_code, long smtp_status)
{
    if (curl_code == CURLE_OK)
        return ATTEMPT_DONE;
    if (smtp_status >= 500 && smtp_status < 600)
        return ATTEMPT_PERMANENT;
    if (curl_code == CURLE_LOGIN_DENIED)
        return ATTEMPT_PERMANENT;
    return ATTEMPT_TEMPORARY;
}

static void describe_failure(job *j, const smtp_task *t)
{
    const char *hint = "";
    const char *what = curl_easy_strerror((CURLcode)t->curl_code);
    const char *detail = t->curl_error[0] ? t->curl_error : "no detail";

    if (t->curl_code == CURLE_USE_SSL_FAILED)
        hint = " (the relay does not offer STARTTLS; smtp_starttls = required)";
    else if (t->curl_code == CURLE_LOGIN_DENIED)
        hint = " (smtp_username/smtp_password refused)";
    else if (t->curl_code == CURLE_PEER_FAILED_VERIFICATION
             || t->curl_code == CURLE_SSL_CACERT_BADFILE)
        hint = " (the relay's certificate is not trusted: smtp_ca_file, smtp_tls_verify)";
    if (t->smtp_status >= 400 && t->reply[0])
        snprintf(j->error, sizeof j->error, "relay said: %s (%s: %s)%s", t->reply, what, detail,
                 hint);
    else
        snprintf(j->error, sizeof j->error, "relay %s: %s: %s%s", j->w->cfg->smtp_relay, what,
                 detail, hint);
}

static void pump(sender *s);

/* smtp_pool.c hands a finished task back, on the loop. */
static void on_sent(smtp_task *t, void *arg)
{
    sender *s = arg;
    job *j = t->owner;

    j->smtp_status = (int)t->smtp_status;
    j->result = sender_classify(t->curl_code, t->smtp_status);
    if (j->result != ATTEMPT_DONE)
        describe_failure(j, t);
    j->smtp = NULL;
    smtp_task_free(t);
    s->active--;
    job_attempt_finished(j);
    pump(s);
}

/* The envelope: the record's mr.rcpt_to (checked by job.c when it was
 * read), each as "<address>". */
static struct curl_slist *recipients(const job *j)
{
    rd_kafka_headers_t *hdrs = NULL;
    struct curl_slist *list = NULL;
    const void *value;
    size_t len;
    char addr[MR_SRS_ADDRESS_MAX + 3];   /* <address> (job.c: at most this long) */

    if (rd_kafka_message_headers(j->msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return NULL;
    for (size_t i = 0; rd_kafka_header_get(hdrs, i, MR_H_RCPT_TO, &value, &len)
                       == RD_KAFKA_RESP_ERR_NO_ERROR; i++) {
        struct curl_slist *more;

        snprintf(addr, sizeof addr, "<%.*s>", (int)len, (const char *)value);
        if ((more = curl_slist_append(list, addr)) == NULL) {
            curl_slist_free_all(list);
            return NULL;
        }
        list = more;
    }
    return list;
}

static void fail_now(job *j, const char *why)
{
    j->result = ATTEMPT_TEMPORARY;
    snprintf(j->error, sizeof j->error, "%s", why);
    job_attempt_finished(j);
}

static void start(sender *s, job *j)
{
    smtp_task *t = calloc(1, sizeof *t);
    char why[MR_ERR_MAX + 32];
    mr_err err;

    if (t == NULL || (t->rcpts = recipients(j)) == NULL) {
        smtp_task_free(t);
        fail_now(j, "out of memory");
        return;
    }
    t->owner = j;
    t->message = j->msg->payload;
    t->message_len = j->msg->len;
    t->mail_from = j->sender;
    if (mr_dkim_sign(s->dkim, t->message, t->message_len, &t->signature, &err) < 0) {
        smtp_task_free(t);
        snprintf(why, sizeof why, "DKIM signing failed: %s", err.msg);
        fail_now(j, why);
        return;
    }
    t->signature_len = t->signature ? strlen(t->signature) : 0;
    j->smtp = t;
    s->active++;
    smtp_pool_submit(s->pool, t);
}

/* --- the queue: smtp_concurrency and smtp_rate_limit ---------------------------------- */

static void on_token(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
}

/* Takes a token of the rate; 0 (and the timer set for the next) if none. */
static int take_token(sender *s)
{
    double rate = (double)s->w->cfg->smtp_rate_limit;
    double burst = rate / 10 > 1 ? rate / 10 : 1;
    int64_t now = mr_monotonic_ms();
    struct timeval tv;
    int64_t wait_ms;

    if (rate <= 0)
        return 1;
    s->tokens += (double)(now - s->refilled_ms) * rate / 1000;
    s->refilled_ms = now;
    if (s->tokens > burst)
        s->tokens = burst;
    if (s->tokens >= 1) {
        s->tokens -= 1;
        return 1;
    }
    if (s->timer == NULL && (s->timer = evtimer_new(s->w->base, on_token, s)) == NULL)
        return 1;   /* no timer: do not hold mail for the limit */
    wait_ms = (int64_t)((1 - s->tokens) * 1000 / rate) + 1;
    tv.tv_sec = wait_ms / 1000;
    tv.tv_usec = (wait_ms % 1000) * 1000;
    evtimer_add(s->timer, &tv);
    return 0;
}

static void pump(sender *s)
{
    while (s->queue != NULL && s->active < s->w->cfg->smtp_concurrency && take_token(s)) {
        job *j = s->queue;

        s->queue = j->next_robot_waiter;
        if (s->queue == NULL)
            s->queue_tail = NULL;
        j->next_robot_waiter = NULL;
        start(s, j);
    }
}

void sender_deliver(job *j)
{
    sender *s = j->w->sender;

    if (s == NULL) {
        j->result = ATTEMPT_TEMPORARY;
        snprintf(j->error, sizeof j->error, "this worker does not send mail (smtp_relay is "
                 "empty); give every worker of the group the same configuration");
        job_attempt_finished(j);
        return;
    }
    j->next_robot_waiter = NULL;
    if (s->queue_tail)
        s->queue_tail->next_robot_waiter = j;
    else
        s->queue = j;
    s->queue_tail = j;
    pump(s);
}

/* The worker is stopping with j still queued or sending: forget it (after
 * sender_stop(): the threads are gone; the task is freed with the pool). */
void sender_abandon(job *j)
{
    sender *s = j->w->sender;
    job **link;

    if (s == NULL)
        return;
    if (j->smtp != NULL) {
        j->smtp->owner = NULL;
        j->smtp = NULL;
        s->active--;
        return;
    }
    for (link = &s->queue; *link != NULL; link = &(*link)->next_robot_waiter)
        if (*link == j) {
            *link = j->next_robot_waiter;
            break;
        }
    s->queue_tail = NULL;
    for (job *q = s->queue; q != NULL; q = q->next_robot_waiter)
        s->queue_tail = q;
}
