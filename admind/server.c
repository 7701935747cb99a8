/*
 * server.c - mailrobot-admind's HTTP side on libmicrohttpd (admind.h):
 * listening (TLS optional), bounded connections and bodies, the bearer
 * token, JSON replies and one log line per request.
 *
 * Limits: admind_connection_limit connections; a connection idle for
 * admind_time_limit is closed; a body larger than admind_body_limit is
 * answered 413 - at once when Content-Length announces it, else when it
 * has passed (without keeping more than the limit). The token is checked
 * before any of the body is read.
 *
 * A request's log line holds the method, the path, the status and the
 * time taken; never a header or the body (passwords, tokens).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "mailrobot/clock.h"

#include "mailrobot/listen.h"

#include "admind.h"

#define WAIT_MS 250     /* the loop wakes up this often: signals, audit reports */

/* One request in progress. */
typedef struct request_state {
    char *body;
    size_t len, cap;
    int too_large;
    int64_t started_ms;
} request_state;

static void free_state(request_state *s)
{
    if (s == NULL)
        return;
    if (s->body != NULL)
        sodium_memzero(s->body, s->cap);    /* bodies carry passwords */
    free(s->body);
    free(s);
}

static void log_request(admind *a, struct MHD_Connection *conn, const char *method,
                        const char *url, unsigned status, const request_state *s)
{
    char code[8], ms[24];

    snprintf(code, sizeof code, "%u", status);
    snprintf(ms, sizeof ms, "%lld", (long long)(s ? mr_monotonic_ms() - s->started_ms : 0));
    mr_log(a->log, status >= 500 ? MR_LOG_WARN : MR_LOG_INFO, "request", "method", method,
           "path", url, "status", code, "ms", ms, NULL);
}

static enum MHD_Result send_reply(admind *a, struct MHD_Connection *conn, const char *method,
                                  const char *url, admind_reply *r, const request_state *s)
{
    char *text = r->raw;
    size_t len = r->raw_len;
    struct MHD_Response *response;
    enum MHD_Result rc;

    if (text == NULL && r->json != NULL) {
        text = json_dumps(r->json, JSON_COMPACT);
        len = text ? strlen(text) : 0;
    }
    response = MHD_create_response_from_buffer(len, text ? text : (void *)"",
                                               text ? MHD_RESPMEM_MUST_FREE
                                                    : MHD_RESPMEM_PERSISTENT);
    if (response == NULL) {
        free(text);
        json_decref(r->json);
        return MHD_NO;
    }
    MHD_add_response_header(response, "Content-Type", "application/json");
    MHD_add_response_header(response, "Cache-Control", "no-store");
    if (r->status == 401)
        MHD_add_response_header(response, "WWW-Authenticate",
                                "Bearer realm=\"mailrobot-admind\"");
    if (r->allow != NULL)
        MHD_add_response_header(response, "Allow", r->allow);
    rc = MHD_queue_response(conn, r->status, response);
    MHD_destroy_response(response);
    json_decref(r->json);
    r->json = NULL;
    r->raw = NULL;
    log_request(a, conn, method, url, r->status, s);
    return rc;
}

static enum MHD_Result answer_error(admind *a, struct MHD_Connection *conn, const char *method,
                                    const char *url, const request_state *s, unsigned status,
                                    const char *field, const char *message)
{
    admind_reply r = {0};

    admind_error(&r, status, field, "%s", message);
    return send_reply(a, conn, method, url, &r, s);
}

/* Appends a chunk of the body, or marks the request too large. */
static int take_chunk(admind *a, request_state *s, const char *data, size_t size)
{
    size_t limit = (size_t)a->cfg->admind_body_limit;

    if (s->too_large || size > limit - s->len) {
        s->too_large = 1;
        return 0;
    }
    if (s->len + size + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        char *grown;

        while (cap < s->len + size + 1)
            cap *= 2;
        if ((grown = malloc(cap)) == NULL)
            return -1;
        if (s->body != NULL) {
            memcpy(grown, s->body, s->len);
            sodium_memzero(s->body, s->cap);
            free(s->body);
        }
        s->body = grown;
        s->cap = cap;
    }
    memcpy(s->body + s->len, data, size);
    s->len += size;
    s->body[s->len] = '\0';
    return 0;
}

static enum MHD_Result on_request(void *arg, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    admind *a = arg;
    request_state *s = *state;

    if (s == NULL) {
        const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                       MHD_HTTP_HEADER_AUTHORIZATION);
        const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_CONTENT_LENGTH);

        if ((s = calloc(1, sizeof *s)) == NULL)
            return MHD_NO;
        s->started_ms = mr_monotonic_ms();
        *state = s;
        if (!admind_auth_check(&a->auth, auth))
            return answer_error(a, conn, method, url, s, 401, NULL,
                                auth ? "wrong bearer token" : "missing bearer token "
                                "(Authorization: Bearer <token>)");
        if (length != NULL && strtoull(length, NULL, 10) > a->cfg->admind_body_limit) {
            char why[128];

            snprintf(why, sizeof why, "larger than admind_body_limit (%llu bytes)",
                     (unsigned long long)a->cfg->admind_body_limit);
            s->too_large = 1;
            return answer_error(a, conn, method, url, s, 413, "body", why);
        }
        return MHD_YES;
    }
    if (*upload_size > 0) {
        if (take_chunk(a, s, upload, *upload_size) < 0)
            return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (s->too_large) {
        char why[128];

        snprintf(why, sizeof why, "larger than admind_body_limit (%llu bytes)",
                 (unsigned long long)a->cfg->admind_body_limit);
        return answer_error(a, conn, method, url, s, 413, "body", why);
    }
    {
        admind_request req = {conn, method, url, s->body ? s->body : "", s->len};
        admind_reply r = {0};

        admind_route(a, &req, &r);
        return send_reply(a, conn, method, url, &r, s);
    }
}

static void on_completed(void *arg, struct MHD_Connection *conn, void **state,
                         enum MHD_RequestTerminationCode code)
{
    free_state(*state);
    *state = NULL;
}

static void on_mhd_log(void *arg, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* libmicrohttpd's own messages (its format strings), into our log. */
static void on_mhd_log(void *arg, const char *fmt, va_list ap)
{
    admind *a = arg;
    char text[512];
    size_t n;

    vsnprintf(text, sizeof text, fmt, ap);
    n = strlen(text);
    while (n > 0 && text[n - 1] == '\n')
        text[--n] = '\0';
    mr_log(a->log, MR_LOG_WARN, "libmicrohttpd", "detail", text, NULL);
}

/* A whole (small) file into a malloc'd string. */
static char *read_file(const char *key, const char *path, mr_err *err)
{
    FILE *f = fopen(path, "r");
    char *data = NULL;
    long size;

    if (f == NULL) {
        mr_err_set(err, "%s %s: %s", key, path, strerror(errno));
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && size < (1 << 20)
        && fseek(f, 0, SEEK_SET) == 0 && (data = malloc((size_t)size + 1)) != NULL) {
        if (fread(data, 1, (size_t)size, f) == (size_t)size)
            data[size] = '\0';
        else {
            free(data);
            data = NULL;
        }
    }
    fclose(f);
    if (data == NULL)
        mr_err_set(err, "%s %s: cannot read it (at most 1 MiB)", key, path);
    return data;
}

int admind_start(admind *a, mr_err *err)
{
    const mr_config *cfg = a->cfg;
    struct sockaddr_in addr;
    const union MHD_DaemonInfo *info;
    int tls = cfg->admind_tls_cert[0] != '\0';
    unsigned flags = MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    char port[16];

    if (mr_listen_ipv4("admind_listen", cfg->admind_listen, &addr, err) < 0)
        return -1;
    if (tls != (cfg->admind_tls_key[0] != '\0'))
        return mr_err_set(err, "admind_tls_cert and admind_tls_key go together: set both "
                          "or neither");
    if (tls) {
        if ((a->tls_cert = read_file("admind_tls_cert", cfg->admind_tls_cert, err)) == NULL
            || (a->tls_key = read_file("admind_tls_key", cfg->admind_tls_key, err)) == NULL)
            return -1;
        if (!MHD_is_feature_supported(MHD_FEATURE_TLS))
            return mr_err_set(err, "this libmicrohttpd has no TLS support");
        flags |= MHD_USE_TLS;
    }
    a->daemon = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, a,
        MHD_OPTION_SOCK_ADDR, &addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->admind_connection_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)((cfg->admind_time_limit + 999) / 1000),
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, a,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, a,
        tls ? MHD_OPTION_HTTPS_MEM_CERT : MHD_OPTION_END, a->tls_cert,
        MHD_OPTION_HTTPS_MEM_KEY, a->tls_key,
        MHD_OPTION_END);
    if (a->daemon == NULL)
        return mr_err_set(err, "admind_listen %s: cannot listen (address in use, or a bad "
                          "TLS certificate or key?)", cfg->admind_listen);
    info = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(port, sizeof port, "%u", info ? (unsigned)info->port : 0u);
    mr_log(a->log, MR_LOG_INFO, "listening", "address", cfg->admind_listen, "port", port,
           "tls", tls ? "yes" : "no", NULL);
    return 0;
}

void admind_serve(admind *a, volatile int *stop)
{
    while (!*stop) {
        MHD_run_wait(a->daemon, WAIT_MS);
        mr_audit_poll(a->audit);
    }
}

void admind_stop(admind *a)
{
    if (a->daemon != NULL)
        MHD_stop_daemon(a->daemon);
    a->daemon = NULL;
    if (a->tls_key != NULL)
        sodium_memzero(a->tls_key, strlen(a->tls_key));
    free(a->tls_cert);
    free(a->tls_key);
    a->tls_cert = a->tls_key = NULL;
}

mr_dir *admind_dir(admind *a, mr_err *err)
{
    if (a->dir_open && (a->dir.redis == NULL || a->dir.redis->err)) {
        mr_dir_close(&a->dir);
        a->dir_open = 0;
    }
    if (!a->dir_open) {
        if (mr_dir_open(&a->dir, a->cfg, err) != MR_DIR_OK) {
            mr_dir_close(&a->dir);
            return NULL;
        }
        a->dir_open = 1;
    }
    return &a->dir;
}
