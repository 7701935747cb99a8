/*
 * sender.c - the outbound sender (SPEC §8): records of <prefix>.outbound
 * (mail that robots send, outbound.h) delivered by SMTP to the configured
 * relay with libcurl, on the worker's loop (http.c drives curl's multi
 * interface, whose connection cache keeps connections to the relay open
 * between messages).
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

#include "worker.h"

#define REPLY_MAX 240

typedef struct smtp_send {
    http_transfer transfer;      /* first: the transfer is the send */
    job *j;
    CURL *easy;
    struct curl_slist *rcpts;
    char *signature;             /* DKIM-Signature field, or NULL */
    size_t signature_len;
    size_t offset;               /* bytes of signature + message read by curl */
    char reply[REPLY_MAX];       /* the relay's last 4xx/5xx reply line */
    char curl_error[CURL_ERROR_SIZE];
} smtp_send;

struct sender {
    worker *w;
    char url[768];               /* the relay, with the EHLO name as path */
    int64_t active;              /* sends in progress */
    job *queue, *queue_tail;     /* waiting for a slot or a token (FIFO) */
    double tokens;               /* smtp_rate_limit's bucket */
    int64_t refilled_ms;
    struct event *timer;         /* the next token */
    mr_dkim *dkim;
};

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
        || mr_dkim_load(w->cfg->dkim_keys, &s->dkim, err) < 0)
        return -1;
    log_start(w, s);
    return 0;
}

void sender_free(worker *w)
{
    sender *s = w->sender;

    if (s == NULL)
        return;
    if (s->timer)
        event_free(s->timer);
    mr_dkim_free(s->dkim);
    free(s);
    w->sender = NULL;
}

/* --- the transfer ---------------------------------------------------------------------- */

/* curl reads the message: the DKIM signature (if any), then the record. */
static size_t read_message(char *buf, size_t size, size_t n, void *arg)
{
    smtp_send *send = arg;
    const job *j = send->j;
    size_t room = size * n, total = send->signature_len + j->msg->len, done = 0;

    while (done < room && send->offset < total) {
        const char *from;
        size_t avail;

        if (send->offset < send->signature_len) {
            from = send->signature + send->offset;
            avail = send->signature_len - send->offset;
        } else {
            from = (const char *)j->msg->payload + (send->offset - send->signature_len);
            avail = total - send->offset;
        }
        if (avail > room - done)
            avail = room - done;
        memcpy(buf + done, from, avail);
        done += avail;
        send->offset += avail;
    }
    return done;
}

/* Keeps the relay's last failure reply (4xx, 5xx): verbose mode hands
 * every line here, and only what the relay said is looked at, never what
 * we sent (e.g. AUTH). A later "221 Bye" to curl's QUIT does not count. */
static int watch_replies(CURL *easy, curl_infotype type, char *data, size_t len, void *arg)
{
    smtp_send *send = arg;
    size_t n = 0;

    (void)easy;
    if (type != CURLINFO_HEADER_IN || len == 0 || (data[0] != '4' && data[0] != '5'))
        return 0;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    for (size_t i = 0; i < len && n + 1 < sizeof send->reply; i++)
        send->reply[n++] = (unsigned char)data[i] < 0x20 || data[i] == 0x7f ? '?' : data[i];
    send->reply[n] = '\0';
    return 0;
}

static void send_free(smtp_send *send)
{
    curl_easy_cleanup(send->easy);
    curl_slist_free_all(send->rcpts);
    free(send->signature);
    free(send);
}

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

static void describe_failure(job *j, const smtp_send *send, int code, long status)
{
    const char *hint = "";

    if (code == CURLE_USE_SSL_FAILED)
        hint = " (the relay does not offer STARTTLS; smtp_starttls = required)";
    else if (code == CURLE_LOGIN_DENIED)
        hint = " (smtp_username/smtp_password refused)";
    else if (code == CURLE_PEER_FAILED_VERIFICATION || code == CURLE_SSL_CACERT_BADFILE)
        hint = " (the relay's certificate is not trusted: smtp_ca_file, smtp_tls_verify)";
    if (status >= 400 && send->reply[0])
        snprintf(j->error, sizeof j->error, "relay said: %s (%s: %s)%s", send->reply,
                 curl_easy_strerror((CURLcode)code),
                 send->curl_error[0] ? send->curl_error : "no detail", hint);
    else
        snprintf(j->error, sizeof j->error, "relay %s: %s: %s%s", j->w->cfg->smtp_relay,
                 curl_easy_strerror((CURLcode)code),
                 send->curl_error[0] ? send->curl_error : "no detail", hint);
}

static void pump(sender *s);

static void on_sent(http_transfer *t, int code)
{
    smtp_send *send = (smtp_send *)t;
    job *j = send->j;
    sender *s = j->w->sender;
    long status = 0;

    curl_easy_getinfo(send->easy, CURLINFO_RESPONSE_CODE, &status);
    j->smtp_status = (int)status;
    j->result = sender_classify(code, status);
    if (j->result != ATTEMPT_DONE)
        describe_failure(j, send, code, status);
    j->smtp = NULL;
    send_free(send);
    s->active--;
    job_attempt_finished(j);
    pump(s);
}

/* The envelope: the record's mr.mail_from and mr.rcpt_to (checked by
 * job.c when it was read). */
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

static void set_tls(CURL *easy, const mr_config *cfg)
{
    static const long starttls[] = {CURLUSESSL_ALL, CURLUSESSL_TRY, CURLUSESSL_NONE};

    if (strncmp(cfg->smtp_relay, "smtp://", 7) == 0)
        curl_easy_setopt(easy, CURLOPT_USE_SSL, starttls[cfg->smtp_starttls]);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, cfg->smtp_tls_verify ? 1L : 0L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, cfg->smtp_tls_verify ? 2L : 0L);
    if (cfg->smtp_ca_file[0])
        curl_easy_setopt(easy, CURLOPT_CAINFO, cfg->smtp_ca_file);
}

static void set_auth(CURL *easy, const mr_config *cfg)
{
    static const char *const mechanisms[] = {"AUTH=*", "AUTH=PLAIN", "AUTH=LOGIN"};

    if (cfg->smtp_username[0] == '\0')
        return;
    curl_easy_setopt(easy, CURLOPT_USERNAME, cfg->smtp_username);
    curl_easy_setopt(easy, CURLOPT_PASSWORD, cfg->smtp_password);
    curl_easy_setopt(easy, CURLOPT_LOGIN_OPTIONS, mechanisms[cfg->smtp_auth]);
}

static int sign(sender *s, smtp_send *send, mr_err *err)
{
    const job *j = send->j;

    if (mr_dkim_sign(s->dkim, j->msg->payload, j->msg->len, &send->signature, err) < 0)
        return -1;
    send->signature_len = send->signature ? strlen(send->signature) : 0;
    return 0;
}

static void start(sender *s, job *j)
{
    const mr_config *cfg = s->w->cfg;
    smtp_send *send = calloc(1, sizeof *send);
    CURL *easy;
    mr_err err;

    if (send != NULL) {
        send->j = j;
        send->easy = curl_easy_init();
        send->rcpts = recipients(j);
    }
    if (send == NULL || send->easy == NULL || send->rcpts == NULL) {
        if (send)
            send_free(send);
        j->result = ATTEMPT_TEMPORARY;
        snprintf(j->error, sizeof j->error, "out of memory");
        job_attempt_finished(j);
        return;
    }
    if (sign(s, send, &err) < 0) {
        send_free(send);
        j->result = ATTEMPT_TEMPORARY;
        snprintf(j->error, sizeof j->error, "DKIM signing failed: %s", err.msg);
        job_attempt_finished(j);
        return;
    }
    easy = send->easy;
    send->transfer.easy = easy;
    send->transfer.done = on_sent;
    curl_easy_setopt(easy, CURLOPT_URL, s->url);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(easy, CURLOPT_MAIL_FROM, j->sender);   /* "" -> MAIL FROM:<> */
    curl_easy_setopt(easy, CURLOPT_MAIL_RCPT, send->rcpts);
    curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(easy, CURLOPT_READFUNCTION, read_message);
    curl_easy_setopt(easy, CURLOPT_READDATA, send);
    curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE,
                     (curl_off_t)(send->signature_len + j->msg->len));
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)cfg->smtp_timeout);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->smtp_connect_timeout);
    curl_easy_setopt(easy, CURLOPT_MAXAGE_CONN, (long)(cfg->smtp_idle_time / 1000));
    curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, cfg->smtp_reuse_connections ? 0L : 1L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(easy, CURLOPT_DEBUGFUNCTION, watch_replies);
    curl_easy_setopt(easy, CURLOPT_DEBUGDATA, send);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, send->curl_error);
    set_tls(easy, cfg);
    set_auth(easy, cfg);
    j->smtp = send;
    s->active++;
    http_start(s->w->http, &send->transfer);
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

/* The worker is stopping with j still queued or sending: forget it. */
void sender_abandon(job *j)
{
    sender *s = j->w->sender;
    job **link;

    if (s == NULL)
        return;
    if (j->smtp != NULL) {
        http_cancel(j->w->http, &j->smtp->transfer);
        send_free(j->smtp);
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
