/*
 * relay_protocol.c - encoding and decoding of the ingest relay protocol
 * (see relay_protocol.h). The decoder reads untrusted bytes (anything that
 * can open the socket): every length is checked before it is used.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay_protocol.h"

#define ENVELOPE_FIELDS 9

static int put_u32(mr_buf *out, uint32_t v, mr_err *err)
{
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 8), (unsigned char)v};

    return mr_buf_append(out, b, 4, err);
}

static int put_field(mr_buf *out, const char *s, mr_err *err)
{
    size_t n = strlen(s);

    if (n > RELAY_FIELD_LIMIT)
        return mr_err_set(err, "envelope field longer than %d bytes", RELAY_FIELD_LIMIT);
    if (put_u32(out, (uint32_t)n, err) < 0)
        return -1;
    return mr_buf_append(out, s, n, err);
}

int relay_request_encode(mr_buf *out, const mr_envelope *env, size_t message_len, mr_err *err)
{
    const char *fields[ENVELOPE_FIELDS] = {env->sender, env->queue_id, env->client_address,
                                           env->helo, env->sasl_username, env->client_hostname,
                                           env->client_protocol, env->sasl_method,
                                           env->sasl_sender};

    if (message_len > UINT32_MAX)
        return mr_err_set(err, "message too large for the relay protocol");
    if (mr_buf_append(out, RELAY_MAGIC, 4, err) < 0)
        return -1;
    for (int i = 0; i < ENVELOPE_FIELDS; i++)
        if (put_field(out, fields[i], err) < 0)
            return -1;
    if (put_u32(out, (uint32_t)env->recipient_count, err) < 0)
        return -1;
    for (size_t r = 0; r < env->recipient_count; r++)
        if (put_field(out, env->recipients[r], err) < 0
            || put_field(out, env->original_recipients[r], err) < 0)
            return -1;
    return put_u32(out, (uint32_t)message_len, err);
}

/* --- decoding ----------------------------------------------------------------- */

typedef struct reader {
    const unsigned char *p;
    size_t left;
} reader;

/* 1: got it; 0: need more bytes. */
static int get_u32(reader *r, uint32_t *v)
{
    if (r->left < 4)
        return 0;
    *v = (uint32_t)r->p[0] << 24 | (uint32_t)r->p[1] << 16 | (uint32_t)r->p[2] << 8 | r->p[3];
    r->p += 4;
    r->left -= 4;
    return 1;
}

/* Reads a field's bounds: 1 got it, 0 need more, -1 too long. */
static int get_field(reader *r, const unsigned char **start, uint32_t *len)
{
    if (!get_u32(r, len))
        return 0;
    if (*len > RELAY_FIELD_LIMIT)
        return -1;
    if (r->left < *len)
        return 0;
    *start = r->p;
    r->p += *len;
    r->left -= *len;
    return 1;
}

/* Copies a field into storage as a C string; NUL bytes are refused. */
static const char *store(char **cursor, const unsigned char *start, uint32_t len)
{
    char *s = *cursor;

    if (memchr(start, '\0', len) != NULL)
        return NULL;
    memcpy(s, start, len);
    s[len] = '\0';
    *cursor += len + 1;
    return s;
}

/* First pass: checks the structure and sizes without copying. */
static relay_parse_status scan(const unsigned char *data, size_t len, size_t max_message_len,
                               uint32_t *recipients, size_t *string_bytes, size_t *header_len,
                               uint32_t *message_len, mr_err *err)
{
    reader r = {data, len};
    const unsigned char *start;
    uint32_t n;
    int got;

    if (len < 4)
        return memcmp(data, RELAY_MAGIC, len) == 0 ? RELAY_PARSE_MORE
                                                   : (mr_err_set(err, "not a relay request"),
                                                      RELAY_PARSE_BAD);
    if (memcmp(data, RELAY_MAGIC, 4) != 0)
        return mr_err_set(err, "not a relay request"), RELAY_PARSE_BAD;
    r.p += 4;
    r.left -= 4;
    *string_bytes = 0;
    for (int i = 0; i < ENVELOPE_FIELDS; i++) {
        if ((got = get_field(&r, &start, &n)) <= 0)
            goto short_or_bad;
        *string_bytes += n + 1;
    }
    if (!get_u32(&r, recipients))
        return RELAY_PARSE_MORE;
    if (*recipients == 0 || *recipients > MR_MAX_RECIPIENTS)
        return mr_err_set(err, "bad recipient count %u", *recipients), RELAY_PARSE_BAD;
    for (uint32_t i = 0; i < 2 * *recipients; i++) {
        if ((got = get_field(&r, &start, &n)) <= 0)
            goto short_or_bad;
        *string_bytes += n + 1;
    }
    if (!get_u32(&r, message_len))
        return RELAY_PARSE_MORE;
    if (*message_len > max_message_len)
        return mr_err_set(err, "message of %u bytes is over the limit of %zu", *message_len,
                          max_message_len), RELAY_PARSE_BAD;
    *header_len = len - r.left;
    return RELAY_PARSE_OK;
short_or_bad:
    if (got == 0)
        return RELAY_PARSE_MORE;
    return mr_err_set(err, "envelope field longer than %d bytes", RELAY_FIELD_LIMIT),
           RELAY_PARSE_BAD;
}

relay_parse_status relay_request_parse(const unsigned char *data, size_t len,
                                       size_t max_message_len, relay_request *req, mr_err *err)
{
    const char **fields[ENVELOPE_FIELDS];
    mr_envelope *env = &req->envelope;
    uint32_t recipients = 0, message_len = 0, n;
    size_t string_bytes = 0, header_len = 0;
    relay_parse_status status;
    const unsigned char *start;
    reader r;
    char *cursor;

    memset(req, 0, sizeof *req);
    status = scan(data, len, max_message_len, &recipients, &string_bytes, &header_len,
                  &message_len, err);
    if (status != RELAY_PARSE_OK)
        return status;
    req->storage = malloc(string_bytes);
    env->recipients = calloc(recipients, sizeof *env->recipients);
    env->original_recipients = calloc(recipients, sizeof *env->original_recipients);
    if (req->storage == NULL || env->recipients == NULL || env->original_recipients == NULL) {
        relay_request_free(req);
        return mr_err_set(err, "out of memory"), RELAY_PARSE_BAD;
    }
    fields[0] = &env->sender;
    fields[1] = &env->queue_id;
    fields[2] = &env->client_address;
    fields[3] = &env->helo;
    fields[4] = &env->sasl_username;
    fields[5] = &env->client_hostname;
    fields[6] = &env->client_protocol;
    fields[7] = &env->sasl_method;
    fields[8] = &env->sasl_sender;
    cursor = req->storage;
    r.p = data + 4;
    r.left = header_len - 4;
    /* scan() checked every length: these reads cannot fail. */
    for (int i = 0; i < ENVELOPE_FIELDS; i++) {
        get_field(&r, &start, &n);
        if ((*fields[i] = store(&cursor, start, n)) == NULL)
            goto nul;
    }
    get_u32(&r, &n);
    for (uint32_t i = 0; i < recipients; i++) {
        get_field(&r, &start, &n);
        if ((env->recipients[i] = store(&cursor, start, n)) == NULL)
            goto nul;
        get_field(&r, &start, &n);
        if ((env->original_recipients[i] = store(&cursor, start, n)) == NULL)
            goto nul;
        if (env->recipients[i][0] == '\0') {
            relay_request_free(req);
            return mr_err_set(err, "recipient %u is empty", i + 1), RELAY_PARSE_BAD;
        }
    }
    env->recipient_count = recipients;
    req->header_len = header_len;
    req->message_len = message_len;
    return RELAY_PARSE_OK;
nul:
    relay_request_free(req);
    return mr_err_set(err, "NUL byte in an envelope field"), RELAY_PARSE_BAD;
}

void relay_request_free(relay_request *req)
{
    free(req->storage);
    free(req->envelope.recipients);
    free(req->envelope.original_recipients);
    memset(req, 0, sizeof *req);
}

size_t relay_response_format(char *out, size_t outsz, int status, const char *text)
{
    int n = snprintf(out, outsz > 1 ? outsz - 1 : outsz, "%d %s", status, text);
    size_t len;

    if (n < 0)
        n = 0;
    len = (size_t)n < outsz - 1 ? (size_t)n : outsz - 2;
    for (size_t i = 0; i < len; i++)
        if (out[i] == '\n' || out[i] == '\r')
            out[i] = ' ';
    out[len] = '\n';
    out[len + 1] = '\0';
    return len + 1;
}

int relay_response_parse(char *line, int *status, const char **text)
{
    char *end;
    long v = strtol(line, &end, 10);

    if (end == line || *end != ' ' || v < 0 || v > 255)
        return -1;
    end[strcspn(end, "\r\n")] = '\0';
    *status = (int)v;
    *text = end + 1;
    return 0;
}
