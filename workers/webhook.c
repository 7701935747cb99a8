/*
 * webhook.c - the webhook robot (SPEC §7): POST the message as JSON
 * (schemas/webhook-v1.json) or as message/rfc822, signed, to the robot's
 * URL; the HTTP status decides the outcome.
 *
 *   Mailrobot-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
 *   Mailrobot-Delivery:  <mr.id>[/<replay id>]   (the same on every retry:
 *                                                 receivers dedupe by it)
 *   Mailrobot-Robot, Mailrobot-Attempt
 *   format "raw" only: Mailrobot-Sender, -Recipient, -Original-Recipient,
 *   -Extension, -Received-At (the envelope, which JSON carries inside)
 *   Mailrobot-Spam: yes  only for a robot with "spam": "tag" and mail the
 *                        filter at the door called spam (docs/spam.md)
 *
 * With "actions": true (opt-in), the body of a 2xx response is JSON per
 * schemas/actions-v1.json, carried out by effects.c: replies and mails onto
 * <prefix>.outbound, webhooks, state, defer, reject.
 *
 * 2xx: delivered. 408, 429, 5xx, timeouts and connection errors: try again
 * later. Other statuses (redirects are not followed): dead letter, with the
 * status and the start of the response in the error. A destination that
 * resolves to a private, loopback, link-local or otherwise non-public
 * address is refused at connect time (so DNS cannot be used to sneak past
 * the check) unless the robot says allow_private or the configuration says
 * webhook_allow_private = yes.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <curl/curl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sodium.h>

#include "mailrobot/buf.h"
#include "mailrobot/mime_json.h"

#include "worker.h"

#define USER_AGENT "mailrobot/" MAILROBOT_VERSION
#define ERROR_BODY_CHARS 200

typedef struct webhook_call {
    http_transfer transfer;      /* first: the transfer is the call */
    job *j;
    CURL *easy;
    struct curl_slist *headers;
    char *json;                  /* the JSON body (NULL for raw) */
    mr_buf response;             /* bounded by webhook_response_limit */
    size_t response_dropped;     /* bytes beyond it */
    int allow_private;
    char refused[INET6_ADDRSTRLEN];
    char curl_error[CURL_ERROR_SIZE];
} webhook_call;

/* --- which addresses are not public ----------------------------------------------- */

static int ipv4_private(uint32_t a)
{
    static const struct { uint32_t net; int bits; } nets[] = {
        {0x00000000, 8},  {0x0a000000, 8},  {0x64400000, 10}, {0x7f000000, 8},
        {0xa9fe0000, 16}, {0xac100000, 12}, {0xc0000000, 24}, {0xc0a80000, 16},
        {0xc6120000, 15}, {0xe0000000, 4},  {0xf0000000, 4},
    };

    for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++)
        if ((a & (0xffffffffu << (32 - nets[i].bits))) == nets[i].net)
            return 1;
    return 0;
}

static int address_private(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return ipv4_private(ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr));
    if (sa->sa_family == AF_INET6) {
        const unsigned char *b = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        static const unsigned char zero[15] = {0};

        if (memcmp(b, mapped, 12) == 0)
            return ipv4_private((uint32_t)b[12] << 24 | (uint32_t)b[13] << 16
                                | (uint32_t)b[14] << 8 | b[15]);
        return memcmp(b, zero, 15) == 0              /* :: and ::1 */
               || (b[0] & 0xfe) == 0xfc              /* fc00::/7 unique local */
               || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) /* fe80::/10 link local */
               || b[0] == 0xff;                      /* multicast */
    }
    return 1;
}

int webhook_guarded_socket(int allow_private, char *refused, size_t refused_size,
                           const struct curl_sockaddr *addr)
{
    if (!allow_private && address_private(&addr->addr)) {
        const void *raw = addr->family == AF_INET
                              ? (const void *)&((const struct sockaddr_in *)&addr->addr)->sin_addr
                              : (const void *)&((const struct sockaddr_in6 *)&addr->addr)->sin6_addr;

        inet_ntop(addr->family, raw, refused, (socklen_t)refused_size);
        return CURL_SOCKET_BAD;
    }
    return socket(addr->family, addr->socktype, addr->protocol);
}

static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    webhook_call *call = arg;

    return webhook_guarded_socket(call->allow_private, call->refused, sizeof call->refused, addr);
}

/* --- the request ---------------------------------------------------------------------- */

static size_t keep_response(char *data, size_t size, size_t n, void *arg)
{
    webhook_call *call = arg;
    size_t len = size * n;
    size_t room = call->response.limit - call->response.len;

    mr_buf_append(&call->response, data, len < room ? len : room, NULL);
    call->response_dropped += len < room ? 0 : len - room;
    return len; /* the rest is read and discarded */
}

/* The signature header. HMAC-SHA256 through OpenSSL's EVP_MAC, which uses
 * the CPU's SHA extensions where there are any: on a 20 KB body several
 * times faster than a portable SHA-256 (measured: bench/worker). Returns 0,
 * or -1 if OpenSSL failed. */
static int sign(EVP_MAC *hmac, const char *secret, const char *body, size_t len, char *out,
                size_t outsz)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    char hex[2 * EVP_MAX_MD_SIZE + 1], stamp[32];
    long long t = (long long)time(NULL);
    EVP_MAC_CTX *ctx = hmac ? EVP_MAC_CTX_new(hmac) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", "SHA256", 0),
                           OSSL_PARAM_construct_end()};
    size_t mac_len = 0;
    int ok;

    snprintf(stamp, sizeof stamp, "%lld.", t);
    ok = ctx != NULL
         && EVP_MAC_init(ctx, (const unsigned char *)secret, strlen(secret), params)
         && EVP_MAC_update(ctx, (const unsigned char *)stamp, strlen(stamp))
         && EVP_MAC_update(ctx, (const unsigned char *)body, len)
         && EVP_MAC_final(ctx, mac, &mac_len, sizeof mac);
    EVP_MAC_CTX_free(ctx);
    if (!ok)
        return -1;
    sodium_bin2hex(hex, sizeof hex, mac, mac_len);
    snprintf(out, outsz, "Mailrobot-Signature: t=%lld,v1=%s", t, hex);
    return 0;
}

static struct curl_slist *add_header(struct curl_slist *list, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static struct curl_slist *add_header(struct curl_slist *list, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    return curl_slist_append(list, line);
}

/* Adds "Name: value" with control characters in value replaced (values
 * come from mail: they must not be able to add header lines). */
static struct curl_slist *add_safe_header(struct curl_slist *list, const char *name,
                                          const char *value)
{
    char clean[400];
    size_t n = 0;

    for (const char *p = value ? value : ""; *p && n + 1 < sizeof clean; p++)
        clean[n++] = (unsigned char)*p < 0x20 || *p == 0x7f ? '?' : *p;
    clean[n] = '\0';
    /* curl drops "Name:" with nothing after it; "Name;" sends it empty. */
    if (n == 0)
        return add_header(list, "%s;", name);
    return add_header(list, "%s: %s", name, clean);
}

/* format "raw" posts only the message: the envelope goes in headers. */
static struct curl_slist *add_envelope_headers(struct curl_slist *list, const job *j)
{
    list = add_safe_header(list, "Mailrobot-Sender", j->sender);
    list = add_safe_header(list, "Mailrobot-Recipient", j->recipient);
    list = add_safe_header(list, "Mailrobot-Original-Recipient", j->original_recipient);
    list = add_safe_header(list, "Mailrobot-Extension", j->extension);
    return add_safe_header(list, "Mailrobot-Received-At", j->received_at);
}

/* The body: JSON built from the message, or the message itself. */
static int make_body(webhook_call *call, const char **body, size_t *len, mr_err *err)
{
    job *j = call->j;
    mr_mime_envelope env = {
        .id = j->id, .robot = j->robot_name, .received_at = j->received_at,
        .sender = j->sender, .recipient = j->recipient,
        .original_recipient = j->original_recipient, .extension = j->extension,
        .client_address = j->client_address, .helo = j->helo,
    };

    if (j->robot->webhook.format == MR_WEBHOOK_RAW) {
        *body = j->msg->payload ? j->msg->payload : "";
        *len = j->msg->len;
        return 0;
    }
    if (mr_mime_to_json(j->msg->payload ? j->msg->payload : (const unsigned char *)"",
                        j->msg->len, &env, &call->json, len, err) < 0)
        return -1;
    *body = call->json;
    return 0;
}

static void call_free(webhook_call *call)
{
    curl_easy_cleanup(call->easy);
    curl_slist_free_all(call->headers);
    free(call->json);
    mr_buf_free(&call->response);
    free(call);
}

/* --- the outcome ------------------------------------------------------------------------ */

attempt_result webhook_classify_curl(int code)
{
    switch (code) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return ATTEMPT_PERMANENT;
    default:
        return ATTEMPT_TEMPORARY;
    }
}

attempt_result webhook_classify_status(long status)
{
    if (status >= 200 && status < 300)
        return ATTEMPT_DONE;
    if (status == 408 || status == 429 || status >= 500)
        return ATTEMPT_TEMPORARY;
    return ATTEMPT_PERMANENT;
}

/* "actions": true: the 2xx response's body is what the application asks
 * for (schemas/actions-v1.json), carried out by effects.c like an exec
 * robot's output; an empty body asks for nothing. */
static void answer_with_actions(webhook_call *call)
{
    job *j = call->j;
    mr_buf body = call->response;
    size_t dropped = call->response_dropped;

    mr_buf_init(&call->response, 0);   /* the body is ours now */
    call_free(call);
    if (dropped > 0) {
        snprintf(j->error, sizeof j->error, "response: actions larger than "
                 "webhook_response_limit (%zu bytes)", body.limit);
        j->result = ATTEMPT_PERMANENT;
        mr_buf_free(&body);
        job_attempt_finished(j);
        return;
    }
    effects_run_actions(j, body.data ? body.data : (const unsigned char *)"", body.len);
    mr_buf_free(&body);
}

static void on_done(http_transfer *t, int code)
{
    webhook_call *call = (webhook_call *)t;
    job *j = call->j;
    long status = 0;

    if (call->refused[0]) {
        j->result = ATTEMPT_PERMANENT;
        snprintf(j->error, sizeof j->error, "refused: %s resolves to the non-public address %s "
                 "(set \"allow_private\": true in the robot to allow it)",
                 j->robot->webhook.url, call->refused);
    } else if (code != CURLE_OK) {
        j->result = webhook_classify_curl(code);
        snprintf(j->error, sizeof j->error, "%s: %s", curl_easy_strerror((CURLcode)code),
                 call->curl_error[0] ? call->curl_error : "no detail");
    } else {
        curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
        j->http_status = (int)status;
        j->result = webhook_classify_status(status);
        if (j->result != ATTEMPT_DONE)
            snprintf(j->error, sizeof j->error, "HTTP %ld%s%.*s", status,
                     call->response.len ? ": " : "",
                     (int)(call->response.len < ERROR_BODY_CHARS ? call->response.len
                                                                 : ERROR_BODY_CHARS),
                     call->response.data ? (const char *)call->response.data : "");
    }
    if (j->result == ATTEMPT_DONE && j->robot->webhook.actions) {
        answer_with_actions(call);
        return;
    }
    call_free(call);
    job_attempt_finished(j);
}

/* --- deliver ------------------------------------------------------------------------------ */

void webhook_deliver(job *j)
{
    worker *w = j->w;
    const mr_robot *robot = j->robot;
    webhook_call *call = calloc(1, sizeof *call);
    int64_t timeout = robot->timeout_ms > 0 ? robot->timeout_ms : w->cfg->webhook_timeout;
    const char *body = NULL;
    size_t len = 0;
    char signature[200];
    mr_err err;

    if (call == NULL || (call->easy = curl_easy_init()) == NULL) {
        free(call);
        j->result = ATTEMPT_TEMPORARY;
        snprintf(j->error, sizeof j->error, "out of memory");
        job_attempt_finished(j);
        return;
    }
    call->transfer.easy = call->easy;
    call->transfer.done = on_done;
    call->j = j;
    call->allow_private = robot->webhook.allow_private || w->cfg->webhook_allow_private;
    mr_buf_init(&call->response, (size_t)w->cfg->webhook_response_limit);
    if (make_body(call, &body, &len, &err) < 0) {
        j->result = ATTEMPT_PERMANENT;
        snprintf(j->error, sizeof j->error, "cannot build the JSON: %s", err.msg);
        call_free(call);
        job_attempt_finished(j);
        return;
    }
    if (sign(w->hmac, robot->webhook.secret, body, len, signature, sizeof signature) < 0) {
        j->result = ATTEMPT_TEMPORARY;
        snprintf(j->error, sizeof j->error, "cannot compute the signature (OpenSSL)");
        call_free(call);
        job_attempt_finished(j);
        return;
    }
    call->headers = add_header(NULL, "Content-Type: %s",
                               robot->webhook.format == MR_WEBHOOK_RAW ? "message/rfc822"
                                                                       : "application/json");
    call->headers = add_header(call->headers, "%s", signature);
    call->headers = add_header(call->headers, "Mailrobot-Delivery: %s%s%s", j->id,
                               j->replay ? "/" : "", j->replay ? j->replay : "");
    call->headers = add_header(call->headers, "Mailrobot-Robot: %s", j->robot_name);
    call->headers = add_header(call->headers, "Mailrobot-Attempt: %d", j->attempt + 1);
    if (j->spam_tagged)
        call->headers = add_header(call->headers, "Mailrobot-Spam: yes");
    call->headers = add_header(call->headers, "Expect:");
    if (robot->webhook.format == MR_WEBHOOK_RAW)
        call->headers = add_envelope_headers(call->headers, j);

    curl_easy_setopt(call->easy, CURLOPT_URL, robot->webhook.url);
    curl_easy_setopt(call->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(call->easy, CURLOPT_POST, 1L);
    curl_easy_setopt(call->easy, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(call->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(call->easy, CURLOPT_HTTPHEADER, call->headers);
    curl_easy_setopt(call->easy, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(call->easy, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(call->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)w->cfg->webhook_connect_timeout);
    curl_easy_setopt(call->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(call->easy, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(call->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(call->easy, CURLOPT_WRITEFUNCTION, keep_response);
    curl_easy_setopt(call->easy, CURLOPT_WRITEDATA, call);
    curl_easy_setopt(call->easy, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(call->easy, CURLOPT_OPENSOCKETDATA, call);
    curl_easy_setopt(call->easy, CURLOPT_ERRORBUFFER, call->curl_error);
    http_start(w->http, &call->transfer);
}
