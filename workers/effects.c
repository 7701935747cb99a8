/*
 * effects.c - carries out what an exec robot printed (SPEC §7, §8;
 * docs/robots/actions.md):
 *
 *   output "reply"    stdout is a message: one mail on <prefix>.outbound
 *   output "actions"  stdout is JSON (schemas/actions-v1.json), each action
 *                     in order: reply/send/forward -> <prefix>.outbound;
 *                     webhook -> POST; set_state -> Redis
 *                     <p>:state:<robot>:<key>; defer -> retry the message;
 *                     reject -> dead-letter it
 *
 * defer and reject decide the message's fate alone: when either is given,
 * no other action is carried out. Otherwise the attempt succeeds only when
 * every action did; if one fails for a temporary reason the whole attempt
 * is retried, and actions repeat: outbound mails carry an effect id derived
 * from the message, robot and action index (the sender sends each id
 * once), webhooks carry it in Mailrobot-Effect-Id, state writes are
 * idempotent. Output that is not valid is the robot's permanent error: a
 * dead letter naming the problem, never a crash.
 *
 * The autoreply robot uses the same path for its one reply: RFC 3834's
 * refusals first, then a reservation in Redis (<p>:autoreply:<robot>:
 * <sender>, SET NX with the robot's period: once per sender per period,
 * across workers and restarts), then the reply with a null envelope sender
 * onto <prefix>.outbound. If Kafka refuses it, the reservation is dropped
 * so that the retry can answer.
 *
 * The forward robot likewise sends one mail: the original, unchanged but
 * for Delivered-To: <robot address> in front, to the robot's addresses,
 * with the envelope sender kept, fixed or SRS-rewritten (srs.h). A message
 * that was here before (our Delivered-To) or has more Received and
 * Delivered-To fields than hop_limit is a loop: dead letter, kind "loop".
 * Mail to an SRS address at srs_domain is a bounce to a forwarded mail: it
 * goes, with a null sender, to the address the SRS address stands for.
 */
#include <ctype.h>
#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "mailrobot/header_fields.h"
#include "mailrobot/keys.h"
#include "mailrobot/outbound.h"
#include "mailrobot/srs.h"

#include "worker.h"

#define EFFECT_USER_AGENT "mailrobot/" MAILROBOT_VERSION
#define WEBHOOK_ACTION_RESPONSE_LIMIT 4096

struct effects {
    job *j;
    mr_outbound_context ctx;
    mr_actions actions;           /* "reply" mode: one reply action */
    size_t next;                  /* the next action to carry out */
    /* The webhook action in flight. */
    http_transfer transfer;
    CURL *easy;
    struct curl_slist *headers;
    char refused[INET6_ADDRSTRLEN];
    char curl_error[CURL_ERROR_SIZE];
    char redis_key[640];
};

static void effects_next(effects *e);

static void finish(effects *e, attempt_result result)
{
    job *j = e->j;

    j->result = result;
    job_attempt_finished(j);
}

/* "action <index>: <what>: <detail>" (e->next is one past the action). */
static void fail(effects *e, attempt_result result, const char *what, const char *detail)
{
    snprintf(e->j->error, sizeof e->j->error, "action %d: %s: %s",
             (int)(e->next ? e->next - 1 : 0), what, detail);
    finish(e, result);
}

static void context_of(job *j, mr_outbound_context *ctx)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->original = j->msg->payload;
    ctx->original_len = j->msg->len;
    ctx->id = j->id;
    ctx->replay = j->replay;
    ctx->robot = j->robot_name;
    ctx->recipient = j->recipient;
    ctx->sender = j->sender;
    ctx->hostname = j->w->hostname;
    ctx->size_limit = (size_t)j->w->cfg->max_message_bytes;
    ctx->skip_refused_replies = 1;   /* a bounce or list mail gets no reply; no error */
}

static effects *effects_new(job *j)
{
    effects *e;

    effects_free(j);   /* a strict-order robot's earlier attempt */
    e = calloc(1, sizeof *e);

    if (e == NULL) {
        snprintf(j->error, sizeof j->error, "out of memory");
        j->result = ATTEMPT_TEMPORARY;
        job_attempt_finished(j);
        return NULL;
    }
    e->j = j;
    j->effects = e;
    context_of(j, &e->ctx);
    return e;
}

/* --- mail: <prefix>.outbound ------------------------------------------------------- */

static void publish_mail(effects *e, const mr_outbound_mail *mail)
{
    job *j = e->j;
    mr_header h[8 + MR_RCPT_LIMIT];
    size_t n = 0;
    mr_err err;

    h[n++] = (mr_header){MR_H_VERSION, "1", 1};
    h[n++] = (mr_header){MR_H_EFFECT_ID, mail->effect_id, strlen(mail->effect_id)};
    h[n++] = (mr_header){MR_H_KIND, mail->kind, strlen(mail->kind)};
    h[n++] = (mr_header){MR_H_ID, j->id, strlen(j->id)};
    h[n++] = (mr_header){MR_H_ROBOT, j->robot_name, strlen(j->robot_name)};
    h[n++] = (mr_header){MR_H_MAIL_FROM, mail->mail_from, strlen(mail->mail_from)};
    for (size_t i = 0; i < mail->rcpt_count && i < MR_RCPT_LIMIT; i++)
        h[n++] = (mr_header){MR_H_RCPT_TO, mail->rcpt_to[i], strlen(mail->rcpt_to[i])};
    if (outcome_send_effect(j, j->w->outbound_topic, mail->effect_id, mail->message,
                            mail->message_len, h, n, &err) < 0)
        fail(e, ATTEMPT_TEMPORARY, "cannot queue the mail", err.msg);
}

static void ignore_reply(void *arg, redisReply *reply, const char *error)
{
}

/* The producer's callback for an outbound mail. */
void effects_published(job *j, const char *error)
{
    effects *e = j->effects;

    if (e == NULL)
        return;
    if (error != NULL && j->robot->kind == MR_ROBOT_AUTOREPLY) {
        const char *argv[2] = {"DEL", e->redis_key};

        wredis_command(j->w->redis, ignore_reply, NULL, 2, argv, NULL);
    }
    if (error != NULL) {
        fail(e, ATTEMPT_TEMPORARY, "Kafka refused the mail", error);
        return;
    }
    effects_next(e);
}

/* --- webhook ----------------------------------------------------------------------- */

static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    effects *e = arg;

    return webhook_guarded_socket(e->j->w->cfg->webhook_allow_private, e->refused,
                                  sizeof e->refused, addr);
}

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
    return size * n;
}

static void webhook_clear(effects *e)
{
    if (e->easy)
        curl_easy_cleanup(e->easy);
    curl_slist_free_all(e->headers);
    e->easy = NULL;
    e->headers = NULL;
}

static void on_webhook_done(http_transfer *t, int code)
{
    effects *e = (effects *)((char *)t - offsetof(effects, transfer));
    long status = 0;
    char detail[400];

    if (e->refused[0]) {
        snprintf(detail, sizeof detail, "refused: the URL resolves to the non-public address "
                 "%s (webhook_allow_private)", e->refused);
        webhook_clear(e);
        fail(e, ATTEMPT_PERMANENT, "webhook", detail);
        return;
    }
    if (code != CURLE_OK) {
        snprintf(detail, sizeof detail, "%s: %s", curl_easy_strerror((CURLcode)code),
                 e->curl_error[0] ? e->curl_error : "no detail");
        webhook_clear(e);
        fail(e, webhook_classify_curl(code), "webhook", detail);
        return;
    }
    curl_easy_getinfo(e->easy, CURLINFO_RESPONSE_CODE, &status);
    webhook_clear(e);
    if (webhook_classify_status(status) != ATTEMPT_DONE) {
        snprintf(detail, sizeof detail, "HTTP %ld", status);
        fail(e, webhook_classify_status(status), "webhook", detail);
        return;
    }
    effects_next(e);
}

static struct curl_slist *header(struct curl_slist *list, const char *name, const char *value)
{
    char line[256];

    snprintf(line, sizeof line, "%s: %s", name, value);
    return curl_slist_append(list, line);
}

static void start_webhook(effects *e, const mr_action *a, unsigned index)
{
    job *j = e->j;
    char effect_id[MR_EFFECT_ID_SIZE];
    int64_t timeout = j->robot->timeout_ms > 0 ? j->robot->timeout_ms
                                               : j->w->cfg->webhook_timeout;

    mr_effect_id(&e->ctx, index, effect_id);
    if ((e->easy = curl_easy_init()) == NULL) {
        fail(e, ATTEMPT_TEMPORARY, "webhook", "out of memory");
        return;
    }
    e->refused[0] = e->curl_error[0] = '\0';
    e->headers = header(NULL, "Content-Type", "application/json");
    e->headers = header(e->headers, "Mailrobot-Effect-Id", effect_id);
    e->headers = header(e->headers, "Mailrobot-Robot", j->robot_name);
    e->headers = header(e->headers, "Mailrobot-Delivery", j->id);
    e->headers = header(e->headers, "Expect", "");
    curl_easy_setopt(e->easy, CURLOPT_URL, a->url);
    curl_easy_setopt(e->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(e->easy, CURLOPT_POSTFIELDS, a->body);
    curl_easy_setopt(e->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)a->body_len);
    curl_easy_setopt(e->easy, CURLOPT_HTTPHEADER, e->headers);
    curl_easy_setopt(e->easy, CURLOPT_USERAGENT, EFFECT_USER_AGENT);
    curl_easy_setopt(e->easy, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(e->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)j->w->cfg->webhook_connect_timeout);
    curl_easy_setopt(e->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e->easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e->easy, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e->easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e->easy, CURLOPT_OPENSOCKETDATA, e);
    curl_easy_setopt(e->easy, CURLOPT_ERRORBUFFER, e->curl_error);
    e->transfer.easy = e->easy;
    e->transfer.done = on_webhook_done;
    http_start(j->w->http, &e->transfer);
}

/* --- set_state: Redis ---------------------------------------------------------------- */

static void on_state_written(void *arg, redisReply *reply, const char *error)
{
    effects *e = arg;

    if (error != NULL) {
        fail(e, ATTEMPT_TEMPORARY, "set_state: Redis", error);
        return;
    }
    effects_next(e);
}

static void start_set_state(effects *e, const mr_action *a)
{
    job *j = e->j;
    char ttl[32];
    const char *argv[5] = {a->value ? "SET" : "DEL", e->redis_key, a->value, "PX", ttl};
    int argc = a->value == NULL ? 2 : a->ttl_ms > 0 ? 5 : 3;

    snprintf(e->redis_key, sizeof e->redis_key, "%s:%s%s:%s", j->w->redis_prefix,
             MR_KEY_STATE, j->robot_name, a->key);
    snprintf(ttl, sizeof ttl, "%lld", (long long)a->ttl_ms);
    wredis_command(j->w->redis, on_state_written, e, argc, argv, NULL);
}

/* A reply RFC 3834 forbids (the original is a bounce, list or automatic
 * mail): not sent, not an error. */
static void suppressed(effects *e, const char *why)
{
    job *j = e->j;

    mr_log(j->w->log, MR_LOG_INFO, "reply not sent", "id", j->id, "robot", j->robot_name,
           "detail", why, NULL);
}

/* --- the sequence ---------------------------------------------------------------------- */

static void effects_next(effects *e)
{
    const mr_action *a;

    if (e->next >= e->actions.count) {
        finish(e, ATTEMPT_DONE);
        return;
    }
    a = &e->actions.items[e->next++];
    switch (a->type) {
    case MR_ACTION_REPLY:
        if (a->mail.message == NULL) {
            suppressed(e, a->reason);
            effects_next(e);
            return;
        }
        publish_mail(e, &a->mail);
        return;
    case MR_ACTION_SEND:
    case MR_ACTION_FORWARD:
        publish_mail(e, &a->mail);
        return;
    case MR_ACTION_WEBHOOK:
        start_webhook(e, a, (unsigned)(e->next - 1));
        return;
    case MR_ACTION_SET_STATE:
        start_set_state(e, a);
        return;
    case MR_ACTION_DEFER:
    case MR_ACTION_REJECT:
        effects_next(e);   /* handled before anything else */
        return;
    }
}

/* defer or reject: the message's fate, and nothing else happens. */
static int decided(effects *e)
{
    for (size_t i = 0; i < e->actions.count; i++) {
        const mr_action *a = &e->actions.items[i];

        if (a->type != MR_ACTION_DEFER && a->type != MR_ACTION_REJECT)
            continue;
        snprintf(e->j->error, sizeof e->j->error, "robot asked to %s: %s",
                 a->type == MR_ACTION_DEFER ? "defer" : "reject",
                 a->reason ? a->reason : "no reason given");
        finish(e, a->type == MR_ACTION_DEFER ? ATTEMPT_TEMPORARY : ATTEMPT_PERMANENT);
        return 1;
    }
    return 0;
}

/* Output of nothing but blanks: the robot has nothing to ask. */
static int blank(const unsigned char *output, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (output[i] != ' ' && output[i] != '\t' && output[i] != '\n' && output[i] != '\r')
            return 0;
    return 1;
}

void effects_run_actions(job *j, const unsigned char *output, size_t len)
{
    effects *e = effects_new(j);
    mr_err err;

    if (e == NULL)
        return;
    if (blank(output, len)) {
        finish(e, ATTEMPT_DONE);
        return;
    }
    if (mr_actions_parse(&e->ctx, (const char *)output, len, &e->actions, &err) < 0) {
        snprintf(j->error, sizeof j->error, "output: invalid actions: %s", err.msg);
        finish(e, ATTEMPT_PERMANENT);
        return;
    }
    if (!decided(e))
        effects_next(e);
}

void effects_run_reply(job *j, const unsigned char *output, size_t len)
{
    effects *e = effects_new(j);
    mr_err err;

    if (e == NULL)
        return;
    if (blank(output, len)) {
        suppressed(e, "the robot printed no reply");
        finish(e, ATTEMPT_DONE);
        return;
    }
    e->actions.items = calloc(1, sizeof *e->actions.items);
    if (e->actions.items == NULL) {
        snprintf(j->error, sizeof j->error, "out of memory");
        finish(e, ATTEMPT_TEMPORARY);
        return;
    }
    e->actions.count = 1;
    e->actions.items[0].type = MR_ACTION_REPLY;
    if (mr_outbound_from_reply(&e->ctx, output, len, &e->actions.items[0].mail, &err) < 0) {
        mr_err why;

        e->actions.count = 0;
        if (mr_reply_refused(&e->ctx, &why)) {
            suppressed(e, why.msg);
            finish(e, ATTEMPT_DONE);
            return;
        }
        snprintf(j->error, sizeof j->error, "output: not a reply message: %s", err.msg);
        finish(e, ATTEMPT_PERMANENT);
        return;
    }
    effects_next(e);
}

void effects_free(job *j)
{
    effects *e = j->effects;

    if (e == NULL)
        return;
    webhook_clear(e);
    mr_actions_free(&e->actions);
    free(e);
    j->effects = NULL;
}

/* --- the autoreply robot --------------------------------------------------------------- */

/* tmpl with every "{subject}" replaced by subject (malloc'd). */
static char *fill_template(const char *tmpl, const char *subject)
{
    static const char mark[] = "{subject}";
    size_t count = 0, len;
    char *out, *o;

    for (const char *p = strstr(tmpl, mark); p; p = strstr(p + sizeof mark - 1, mark))
        count++;
    len = strlen(tmpl) + count * strlen(subject) + 1;
    if ((out = malloc(len)) == NULL)
        return NULL;
    o = out;
    for (const char *p = tmpl; *p;) {
        if (strncmp(p, mark, sizeof mark - 1) == 0) {
            o = stpcpy(o, subject);
            p += sizeof mark - 1;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
    return out;
}

static void on_autoreply_reserved(void *arg, redisReply *reply, const char *error)
{
    effects *e = arg;

    if (error != NULL) {
        fail(e, ATTEMPT_TEMPORARY, "autoreply: Redis", error);
        return;
    }
    if (reply->type == REDIS_REPLY_NIL) {
        suppressed(e, "this sender was answered within the robot's period");
        finish(e, ATTEMPT_DONE);
        return;
    }
    effects_next(e);
}

/* The reply, built before anything is reserved: a mail that cannot be
 * built is the robot's permanent error. */
static int autoreply_build(effects *e, mr_err *err)
{
    const mr_robot *robot = e->j->robot;
    char *subject = mr_original_subject(&e->ctx);
    mr_mail_content content;
    mr_outbound_mail *mail;
    int rc = -1;

    memset(&content, 0, sizeof content);
    e->actions.items = calloc(1, sizeof *e->actions.items);
    if (subject == NULL || e->actions.items == NULL) {
        free(subject);
        return mr_err_set(err, "out of memory");
    }
    e->actions.count = 1;
    e->actions.items[0].type = MR_ACTION_REPLY;
    mail = &e->actions.items[0].mail;
    content.text = fill_template(robot->autoreply.text, subject);
    content.subject = robot->autoreply.subject ? fill_template(robot->autoreply.subject, subject)
                                               : NULL;
    if (content.text != NULL && (robot->autoreply.subject == NULL || content.subject != NULL)
        && mr_outbound_reply(&e->ctx, 0, &content, mail, err) == 0) {
        free(mail->mail_from);
        mail->mail_from = strdup("");   /* RFC 3834 3.3: a null return path */
        rc = mail->mail_from ? 0 : mr_err_set(err, "out of memory");
    } else if (content.text == NULL) {
        mr_err_set(err, "out of memory");
    }
    free((char *)content.text);
    free((char *)content.subject);
    free(subject);
    return rc;
}

void effects_run_autoreply(job *j)
{
    effects *e = effects_new(j);
    char ttl[32];
    const char *argv[6] = {"SET", NULL, "1", "NX", "PX", ttl};
    mr_err err;
    int n;

    if (e == NULL)
        return;
    if (mr_reply_refused(&e->ctx, &err)) {
        suppressed(e, err.msg);
        finish(e, ATTEMPT_DONE);
        return;
    }
    if (strcasecmp(j->sender, j->recipient) == 0) {
        suppressed(e, "the original comes from the robot's own address");
        finish(e, ATTEMPT_DONE);
        return;
    }
    if (autoreply_build(e, &err) < 0) {
        /* The original leaves nobody to answer (no usable From): no reply. */
        suppressed(e, err.msg);
        finish(e, ATTEMPT_DONE);
        return;
    }
    n = snprintf(e->redis_key, sizeof e->redis_key, "%s:%s%s:", j->w->redis_prefix,
                 MR_KEY_AUTOREPLY, j->robot_name);
    for (size_t i = 0; j->sender[i] && (size_t)n + 1 < sizeof e->redis_key; i++)
        e->redis_key[n++] = (char)tolower((unsigned char)j->sender[i]);
    e->redis_key[n] = '\0';
    snprintf(ttl, sizeof ttl, "%lld", (long long)j->robot->autoreply.period_ms);
    argv[1] = e->redis_key;
    wredis_command(j->w->redis, on_autoreply_reserved, e, 6, argv, NULL);
}

/* --- the forward robot ------------------------------------------------------------------ */

/* A loop: the original already carries Delivered-To: <our address>, or
 * more Received and Delivered-To fields than the robot's hop_limit.
 * Returns 1 with the reason in why. */
static int forward_loop(const job *j, char *why, size_t whysz)
{
    mr_header_scan scan;
    mr_header_field f;
    int64_t hops = 0;

    mr_header_scan_init(&scan, j->msg->payload, j->msg->len);
    while (mr_header_next(&scan, &f)) {
        int delivered_to = mr_header_is(&f, "Delivered-To");
        char *value;

        if (!delivered_to && !mr_header_is(&f, "Received"))
            continue;
        hops++;
        if (delivered_to && (value = mr_header_value(&f)) != NULL) {
            int ours = strcasecmp(value, j->recipient) == 0;

            free(value);
            if (ours) {
                snprintf(why, whysz, "mail loop: the message was delivered to %s before "
                         "(Delivered-To)", j->recipient);
                return 1;
            }
        }
    }
    if (hops > j->robot->forward.hop_limit) {
        snprintf(why, whysz, "mail loop: %lld Received/Delivered-To fields, more than the "
                 "robot's hop_limit %lld", (long long)hops, (long long)j->robot->forward.hop_limit);
        return 1;
    }
    return 0;
}

/* Whether srs_domain is set and the recipient is an SRS address at it: a
 * bounce to a mail we forwarded. */
static int srs_bounce(const job *j)
{
    const char *domain = j->w->cfg->srs_domain;
    const char *at = strrchr(j->recipient, '@');

    return domain[0] != '\0' && at != NULL && strcasecmp(at + 1, domain) == 0
           && (strncasecmp(j->recipient, "SRS0", 4) == 0
               || strncasecmp(j->recipient, "SRS1", 4) == 0);
}

/* The envelope sender of the copy: the null sender stays null (a bounce
 * must not make bounces); otherwise as the robot says. */
static int forward_sender(const job *j, char *out, size_t outsz, mr_err *err)
{
    const mr_config *cfg = j->w->cfg;

    if (j->sender[0] == '\0' || j->robot->forward.envelope_sender == MR_ENVELOPE_SENDER_KEEP) {
        snprintf(out, outsz, "%s", j->sender);
        return 0;
    }
    if (j->robot->forward.envelope_sender == MR_ENVELOPE_SENDER_FIXED) {
        snprintf(out, outsz, "%s", j->robot->forward.sender);
        return 0;
    }
    if (cfg->srs_domain[0] == '\0' || strlen(cfg->srs_secret) < 16)
        return mr_err_set(err, "envelope_sender \"srs\" needs srs_domain and an srs_secret of "
                          "16 characters or more in the configuration");
    return mr_srs_forward(cfg->srs_secret, cfg->srs_domain, j->sender, time(NULL), out, outsz,
                          err);
}

/* The copy: the original with Delivered-To: <robot address> in front (what
 * the next forwarder's loop check finds). */
static int forward_build(effects *e, const char *const *to, size_t count, const char *mail_from,
                         mr_err *err)
{
    const job *j = e->j;
    mr_outbound_mail *mail;
    unsigned char *with;
    int n;

    if ((e->actions.items = calloc(1, sizeof *e->actions.items)) == NULL)
        return mr_err_set(err, "out of memory");
    e->actions.count = 1;
    e->actions.items[0].type = MR_ACTION_FORWARD;
    mail = &e->actions.items[0].mail;
    if (mr_outbound_forward(&e->ctx, 0, to, count, mail, err) < 0)
        return -1;
    n = (int)strlen(j->recipient) + (int)sizeof "Delivered-To: \r\n";
    if ((with = malloc(mail->message_len + (size_t)n)) == NULL
        || (free(mail->mail_from), mail->mail_from = strdup(mail_from)) == NULL) {
        free(with);
        return mr_err_set(err, "out of memory");
    }
    n = snprintf((char *)with, (size_t)n, "Delivered-To: %s\r\n", j->recipient);
    memcpy(with + n, mail->message, mail->message_len);
    free(mail->message);
    mail->message = with;
    mail->message_len += (size_t)n;
    return 0;
}

void effects_run_forward(job *j)
{
    const mr_config *cfg = j->w->cfg;
    effects *e = effects_new(j);
    char mail_from[MR_SRS_ADDRESS_MAX + 1], original[MR_SRS_ADDRESS_MAX + 1];
    const char *bounce_to[1] = {original};
    mr_err err;

    if (e == NULL)
        return;
    if (forward_loop(j, j->error, sizeof j->error)) {
        j->permanent_kind = "loop";
        finish(e, ATTEMPT_PERMANENT);
        return;
    }
    if (srs_bounce(j)) {
        /* Back to the address the SRS address stands for, as a bounce. */
        if (mr_srs_reverse(cfg->srs_secret, j->recipient, time(NULL), 0, original,
                           sizeof original, &err) < 0) {
            snprintf(j->error, sizeof j->error, "SRS address %s: %s", j->recipient, err.msg);
            finish(e, ATTEMPT_PERMANENT);
            return;
        }
        if (forward_build(e, bounce_to, 1, "", &err) < 0) {
            fail(e, ATTEMPT_PERMANENT, "forward", err.msg);
            return;
        }
    } else if (forward_sender(j, mail_from, sizeof mail_from, &err) < 0) {
        snprintf(j->error, sizeof j->error, "forward: %s", err.msg);
        finish(e, ATTEMPT_TEMPORARY);   /* the operator's to fix: defer, never lose */
        return;
    } else if (forward_build(e, (const char *const *)j->robot->forward.to,
                             j->robot->forward.to_count, mail_from, &err) < 0) {
        fail(e, ATTEMPT_PERMANENT, "forward", err.msg);
        return;
    }
    effects_next(e);
}
