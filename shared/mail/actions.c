/*
 * actions.c - the "actions" output mode (outbound.h,
 * schemas/actions-v1.json, docs/robots/actions.md): a robot's JSON,
 * checked field by field against exactly what the schema says, and the
 * mails of its reply, send and forward actions built on the way.
 *
 * The JSON is untrusted. Every error names the offending value as a JSON
 * pointer ("/actions/2/to/0: not an email address"); the first error
 * found is the one reported. Beyond the schema (which cannot say these):
 * to, cc and bcc together name at most MR_RCPT_LIMIT recipients; defer
 * and reject exclude each other; a reply may be refused (RFC 3834, see
 * mr_reply_refused()); a mail may exceed the size limit.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "mailrobot/json_pointer.h"
#include "mailrobot/outbound.h"
#include "outbound_internal.h"

#define POINTER_MAX 200
#define SUBJECT_CHARS 900
#define NAME_CHARS 200
#define HEADERS_LIMIT 20
#define HEADER_NAME_MAX 76
#define ATTACHMENTS_LIMIT 10
#define FILENAME_CHARS 255
#define CONTENT_TYPE_SUBTYPE_MAX 127
#define URL_CHARS 2048
#define STATE_KEY_MAX 200
#define STATE_VALUE_CHARS 65536
#define TTL_SECONDS_MAX 315360000
#define REASON_CHARS 1000

typedef struct action_type {
    const char *name;
    mr_action_type type;
    const char *const *fields;
    int (*parse)(const mr_outbound_context *ctx, json_t *obj, const char *at, unsigned index,
                 mr_action *action, mr_err *err);
} action_type;

/* --- JSON pointers and plain values -------------------------------------------------- */

static void pointer_key(char *out, const char *parent, const char *key)
{
    mr_json_pointer(out, POINTER_MAX, parent, key);
}

static void pointer_index(char *out, const char *parent, size_t index)
{
    snprintf(out, POINTER_MAX, "%s/%zu", parent, index);
}

static int listed(const char *const *names, const char *name)
{
    for (; *names != NULL; names++)
        if (strcmp(*names, name) == 0)
            return 1;
    return 0;
}

static int reject_unknown(json_t *obj, const char *at, const char *const *allowed, mr_err *err)
{
    const char *key;
    json_t *value;
    char pointer[POINTER_MAX];

    json_object_foreach(obj, key, value) {
        if (!listed(allowed, key)) {
            pointer_key(pointer, at, key);
            return mr_err_set(err, "%s: unknown field", pointer);
        }
    }
    return 0;
}

static size_t utf8_chars(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int has_control(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 1;
    return 0;
}

/* What a string field must be: at most max characters (0: any), at
 * least min, no control characters (one_line), and what check says. */
typedef struct string_rule {
    size_t min, max;
    int one_line;
    int (*check)(const char *s);
    const char *invalid;   /* the message when check fails */
} string_rule;

/* obj's member key as a string per rule: 0 (*out NULL when absent and
 * not required), or -1. */
static int member_string(json_t *obj, const char *key, const char *at, int required,
                         const string_rule *rule, const char **out, mr_err *err)
{
    json_t *v = json_object_get(obj, key);
    char pointer[POINTER_MAX];
    const char *s;

    *out = NULL;
    pointer_key(pointer, at, key);
    if (v == NULL)
        return required ? mr_err_set(err, "%s: required", pointer) : 0;
    if (!json_is_string(v))
        return mr_err_set(err, "%s: must be a string", pointer);
    s = json_string_value(v);
    if (rule->min > 0 && utf8_chars(s) < rule->min)
        return mr_err_set(err, "%s: must not be empty", pointer);
    if (rule->max > 0 && utf8_chars(s) > rule->max)
        return mr_err_set(err, "%s: must be at most %zu characters", pointer, rule->max);
    if (rule->one_line && has_control(s))
        return mr_err_set(err, "%s: must not hold control characters (line breaks, tabs)", pointer);
    if (rule->check != NULL && !rule->check(s))
        return mr_err_set(err, "%s: %s", pointer, rule->invalid);
    *out = s;
    return 0;
}

static int copy_string(const char *s, char **out, mr_err *err)
{
    if (s == NULL)
        return 0;
    return (*out = strdup(s)) != NULL ? 0 : mr_err_set(err, "out of memory");
}

/* --- addresses ----------------------------------------------------------------------- */

static const char *const mailbox_fields[] = {"name", "address", NULL};
static const string_rule name_rule = {0, NAME_CHARS, 1, NULL, NULL};
static const string_rule address_rule = {0, 0, 0, mr_address_valid, "not an email address"};

/* "address" or {"name": ..., "address": ...}. */
static int mailbox_parse(json_t *v, const char *at, mr_mailbox *mailbox, mr_err *err)
{
    mailbox->name = NULL;
    if (json_is_string(v)) {
        mailbox->address = json_string_value(v);
        return mr_address_valid(mailbox->address) ? 0 : mr_err_set(err, "%s: not an email address", at);
    }
    if (!json_is_object(v))
        return mr_err_set(err, "%s: must be an address or an object {name, address}", at);
    if (reject_unknown(v, at, mailbox_fields, err) < 0
        || member_string(v, "name", at, 0, &name_rule, &mailbox->name, err) < 0
        || member_string(v, "address", at, 1, &address_rule, &mailbox->address, err) < 0)
        return -1;
    return 0;
}

/* An array of 1 (if required) to MR_RCPT_LIMIT mailboxes; *list is
 * calloc'd (free it). */
static int mailbox_list(json_t *obj, const char *key, const char *at, int required,
                        mr_mailbox **list, size_t *count, mr_err *err)
{
    json_t *v = json_object_get(obj, key);
    char pointer[POINTER_MAX], item[POINTER_MAX];

    *list = NULL;
    *count = 0;
    pointer_key(pointer, at, key);
    if (v == NULL)
        return required ? mr_err_set(err, "%s: required", pointer) : 0;
    if (!json_is_array(v))
        return mr_err_set(err, "%s: must be an array of addresses", pointer);
    if (required && json_array_size(v) == 0)
        return mr_err_set(err, "%s: must name at least one recipient", pointer);
    if (json_array_size(v) > MR_RCPT_LIMIT)
        return mr_err_set(err, "%s: more than %d recipients", pointer, MR_RCPT_LIMIT);
    if (json_array_size(v) > 0 && (*list = calloc(json_array_size(v), sizeof **list)) == NULL)
        return mr_err_set(err, "out of memory");
    for (size_t i = 0; i < json_array_size(v); i++) {
        pointer_index(item, pointer, i);
        if (mailbox_parse(json_array_get(v, i), item, &(*list)[(*count)++], err) < 0)
            return -1;
    }
    return 0;
}

/* --- mail content -------------------------------------------------------------------- */

/* Fields a reply or send may not set: built from other fields or ours. */
static int header_name_allowed(const char *name)
{
    static const char *const reserved[] = {
        "Date", "From", "Sender", "Reply-To", "To", "Cc", "Bcc", "Message-ID", "In-Reply-To",
        "References", "Subject", "Auto-Submitted", "MIME-Version", "Return-Path", "Received", NULL,
    };
    size_t n = strlen(name);

    if (n == 0 || n > HEADER_NAME_MAX || !g_ascii_isalpha(name[0])
        || strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-") != n)
        return 0;
    if (g_ascii_strncasecmp(name, "Content-", 8) == 0 || g_ascii_strncasecmp(name, "Resent-", 7) == 0)
        return 0;
    for (size_t i = 0; reserved[i] != NULL; i++)
        if (g_ascii_strcasecmp(name, reserved[i]) == 0)
            return 0;
    return 1;
}

static const string_rule header_value_rule = {0, OUTBOUND_HEADER_VALUE_MAX, 1, NULL, NULL};

static int headers_parse(json_t *obj, const char *at, mr_mail_content *c, mr_mail_header **store,
                         mr_err *err)
{
    json_t *v = json_object_get(obj, "headers"), *value;
    char pointer[POINTER_MAX], item[POINTER_MAX];
    const char *name;

    pointer_key(pointer, at, "headers");
    if (v == NULL)
        return 0;
    if (!json_is_object(v))
        return mr_err_set(err, "%s: must be an object of header fields", pointer);
    if (json_object_size(v) > HEADERS_LIMIT)
        return mr_err_set(err, "%s: more than %d fields", pointer, HEADERS_LIMIT);
    if (json_object_size(v) > 0 && (*store = calloc(json_object_size(v), sizeof **store)) == NULL)
        return mr_err_set(err, "out of memory");
    json_object_foreach(v, name, value) {
        mr_mail_header *h = &(*store)[c->header_count++];

        pointer_key(item, pointer, name);
        if (!header_name_allowed(name))
            return mr_err_set(err, "%s: not a header field name a robot may set", item);
        h->name = name;
        if (member_string(v, name, pointer, 1, &header_value_rule, &h->value, err) < 0)
            return -1;
    }
    c->headers = *store;
    return 0;
}

static int content_type_valid(const char *s)
{
    static const char *const types[] = {"application/", "audio/", "font/", "image/", "model/",
                                        "text/", "video/", NULL};
    static const char rest[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!#$&^_.+-";

    for (size_t i = 0; types[i] != NULL; i++) {
        size_t t = strlen(types[i]), n;

        if (strncmp(s, types[i], t) != 0)
            continue;
        n = strlen(s + t);
        return n > 0 && n <= CONTENT_TYPE_SUBTYPE_MAX && g_ascii_isalnum(s[t])
                   && strspn(s + t, rest) == n;
    }
    return 0;
}

static int b64_char(char c)
{
    return g_ascii_isalnum(c) || c == '+' || c == '/';
}

/* Canonical base64: groups of four, padding only at the end, and the bits
 * the padding leaves over zero (the schema's pattern). */
static int base64_valid(const char *s)
{
    size_t n = strlen(s), full;

    if (n % 4 != 0)
        return 0;
    full = n >= 4 && s[n - 1] == '=' ? n - 4 : n;
    for (size_t i = 0; i < full; i++)
        if (!b64_char(s[i]))
            return 0;
    if (full == n)
        return 1;
    s += full;
    if (s[2] == '=')
        return b64_char(s[0]) && s[1] != '\0' && strchr("AQgw", s[1]) != NULL && s[3] == '=';
    return b64_char(s[0]) && b64_char(s[1]) && strchr("AEIMQUYcgkosw048", s[2]) != NULL;
}

static const char *const attachment_fields[] = {"filename", "content_type", "content_base64", NULL};
static const string_rule filename_rule = {1, FILENAME_CHARS, 1, NULL, NULL};
static const string_rule content_type_rule = {
    0, 0, 0, content_type_valid,
    "must be type/subtype of application, audio, font, image, model, text or video"};
static const string_rule base64_rule = {0, 0, 0, base64_valid, "not valid base64"};

static int attachment_parse(json_t *v, const char *at, mr_mail_attachment *a, mr_err *err)
{
    const char *b64;
    size_t max;

    if (!json_is_object(v))
        return mr_err_set(err, "%s: must be an object {filename, content_type, content_base64}", at);
    if (reject_unknown(v, at, attachment_fields, err) < 0
        || member_string(v, "filename", at, 1, &filename_rule, &a->filename, err) < 0
        || member_string(v, "content_type", at, 1, &content_type_rule, &a->content_type, err) < 0
        || member_string(v, "content_base64", at, 1, &base64_rule, &b64, err) < 0)
        return -1;
    max = strlen(b64) / 4 * 3 + 1;
    if ((a->data = malloc(max)) == NULL)
        return mr_err_set(err, "out of memory");
    if (sodium_base642bin((unsigned char *)a->data, max, b64, strlen(b64), NULL, &a->len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return mr_err_set(err, "%s/content_base64: not valid base64", at);
    return 0;
}

static int attachments_parse(json_t *obj, const char *at, mr_mail_content *c,
                             mr_mail_attachment **store, mr_err *err)
{
    json_t *v = json_object_get(obj, "attachments");
    char pointer[POINTER_MAX], item[POINTER_MAX];

    pointer_key(pointer, at, "attachments");
    if (v == NULL)
        return 0;
    if (!json_is_array(v))
        return mr_err_set(err, "%s: must be an array", pointer);
    if (json_array_size(v) > ATTACHMENTS_LIMIT)
        return mr_err_set(err, "%s: more than %d attachments", pointer, ATTACHMENTS_LIMIT);
    if (json_array_size(v) > 0 && (*store = calloc(json_array_size(v), sizeof **store)) == NULL)
        return mr_err_set(err, "out of memory");
    c->attachments = *store;
    for (size_t i = 0; i < json_array_size(v); i++) {
        pointer_index(item, pointer, i);
        c->attachment_count++;
        if (attachment_parse(json_array_get(v, i), item, &(*store)[i], err) < 0)
            return -1;
    }
    return 0;
}

/* What a reply or send says, borrowed from the JSON, plus what had to be
 * decoded or allocated for it. */
typedef struct mail_fields {
    mr_mail_content content;
    mr_mailbox from;
    mr_mailbox *to, *cc, *bcc;
    mr_mail_header *headers;
    mr_mail_attachment *attachments;
} mail_fields;

static void mail_fields_free(mail_fields *m)
{
    for (size_t i = 0; i < m->content.attachment_count; i++)
        free((void *)m->attachments[i].data);
    free(m->attachments);
    free(m->headers);
    free(m->to);
    free(m->cc);
    free(m->bcc);
}

static const string_rule subject_rule = {0, SUBJECT_CHARS, 1, NULL, NULL};
static const string_rule body_rule = {0, 0, 0, NULL, NULL};

static int content_parse(json_t *obj, const char *at, int subject_required, mail_fields *m,
                         mr_err *err)
{
    mr_mail_content *c = &m->content;
    json_t *from = json_object_get(obj, "from");
    char pointer[POINTER_MAX];

    if (member_string(obj, "subject", at, subject_required, &subject_rule, &c->subject, err) < 0
        || member_string(obj, "text", at, 1, &body_rule, &c->text, err) < 0
        || member_string(obj, "html", at, 0, &body_rule, &c->html, err) < 0)
        return -1;
    pointer_key(pointer, at, "from");
    if (from != NULL && mailbox_parse(from, pointer, &m->from, err) < 0)
        return -1;
    c->from = from != NULL ? &m->from : NULL;
    if (headers_parse(obj, at, c, &m->headers, err) < 0
        || attachments_parse(obj, at, c, &m->attachments, err) < 0)
        return -1;
    return 0;
}

/* --- the actions ----------------------------------------------------------------------- */

static int parse_reply(const mr_outbound_context *ctx, json_t *obj, const char *at, unsigned index,
                       mr_action *action, mr_err *err)
{
    mail_fields m;
    mr_err why;
    int rc;

    memset(&m, 0, sizeof m);
    rc = content_parse(obj, at, 0, &m, err);
    if (rc == 0 && ctx->skip_refused_replies && mr_reply_refused(ctx, &why)) {
        mail_fields_free(&m);
        return copy_string(why.msg, &action->reason, err);   /* suppressed, no mail */
    }
    if (rc == 0 && mr_outbound_reply(ctx, index, &m.content, &action->mail, err) < 0)
        rc = mr_err_prefix(err, "%s", at);
    mail_fields_free(&m);
    return rc;
}

static int parse_send(const mr_outbound_context *ctx, json_t *obj, const char *at, unsigned index,
                      mr_action *action, mr_err *err)
{
    mail_fields m;
    mr_mail_content *c = &m.content;
    int rc;

    memset(&m, 0, sizeof m);
    rc = mailbox_list(obj, "to", at, 1, &m.to, &c->to_count, err);
    if (rc == 0)
        rc = mailbox_list(obj, "cc", at, 0, &m.cc, &c->cc_count, err);
    if (rc == 0)
        rc = mailbox_list(obj, "bcc", at, 0, &m.bcc, &c->bcc_count, err);
    c->to = m.to;
    c->cc = m.cc;
    c->bcc = m.bcc;
    if (rc == 0)
        rc = content_parse(obj, at, 1, &m, err);
    if (rc == 0 && mr_outbound_send(ctx, index, c, &action->mail, err) < 0)
        rc = mr_err_prefix(err, "%s", at);
    mail_fields_free(&m);
    return rc;
}

static int parse_forward(const mr_outbound_context *ctx, json_t *obj, const char *at,
                         unsigned index, mr_action *action, mr_err *err)
{
    mr_mailbox *to;
    size_t count;
    const char **addresses = NULL;
    int rc = mailbox_list(obj, "to", at, 1, &to, &count, err);

    if (rc == 0 && (addresses = calloc(count, sizeof *addresses)) == NULL)
        rc = mr_err_set(err, "out of memory");
    for (size_t i = 0; rc == 0 && i < count; i++)
        addresses[i] = to[i].address;
    if (rc == 0 && mr_outbound_forward(ctx, index, addresses, count, &action->mail, err) < 0)
        rc = mr_err_prefix(err, "%s", at);
    free(addresses);
    free(to);
    return rc;
}

static int url_valid(const char *s)
{
    size_t scheme = strncmp(s, "https://", 8) == 0 ? 8 : strncmp(s, "http://", 7) == 0 ? 7 : 0;

    if (scheme == 0 || s[scheme] == '\0')
        return 0;
    for (s += scheme; *s != '\0'; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

static const string_rule url_rule = {0, URL_CHARS, 0, url_valid,
                                     "must be an http:// or https:// URL (no blanks, ASCII)"};

static int parse_webhook(const mr_outbound_context *ctx, json_t *obj, const char *at,
                         unsigned index, mr_action *action, mr_err *err)
{
    const char *url;
    json_t *body = json_object_get(obj, "body");
    char pointer[POINTER_MAX];

    if (member_string(obj, "url", at, 1, &url_rule, &url, err) < 0)
        return -1;
    pointer_key(pointer, at, "body");
    if (body == NULL)
        return mr_err_set(err, "%s: required", pointer);
    if (copy_string(url, &action->url, err) < 0)
        return -1;
    if ((action->body = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY)) == NULL)
        return mr_err_set(err, "out of memory");
    action->body_len = strlen(action->body);
    return 0;
}

static int state_key_valid(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n <= STATE_KEY_MAX
           && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-") == n;
}

static const string_rule state_key_rule = {0, 0, 0, state_key_valid,
                                           "must be 1 to 200 of A-Z a-z 0-9 . _ : -"};
static const string_rule state_value_rule = {0, STATE_VALUE_CHARS, 0, NULL, NULL};

/* ttl_seconds: an integer (a number without fraction, as JSON Schema
 * counts) from 1 to TTL_SECONDS_MAX. */
static int ttl_parse(json_t *obj, const char *at, int64_t *ttl_ms, mr_err *err)
{
    json_t *v = json_object_get(obj, "ttl_seconds");
    char pointer[POINTER_MAX];
    double seconds;

    *ttl_ms = 0;
    if (v == NULL)
        return 0;
    pointer_key(pointer, at, "ttl_seconds");
    seconds = json_is_integer(v) ? (double)json_integer_value(v) : json_is_real(v) ? json_real_value(v) : 0;
    if (!json_is_number(v) || seconds != floor(seconds) || seconds < 1 || seconds > TTL_SECONDS_MAX)
        return mr_err_set(err, "%s: must be an integer from 1 to %d", pointer, TTL_SECONDS_MAX);
    *ttl_ms = (int64_t)seconds * 1000;
    return 0;
}

static int parse_set_state(const mr_outbound_context *ctx, json_t *obj, const char *at,
                           unsigned index, mr_action *action, mr_err *err)
{
    const char *key, *value = NULL;
    json_t *v = json_object_get(obj, "value");
    char pointer[POINTER_MAX];

    if (member_string(obj, "key", at, 1, &state_key_rule, &key, err) < 0)
        return -1;
    pointer_key(pointer, at, "value");
    if (v == NULL)
        return mr_err_set(err, "%s: required (a string, or null to delete)", pointer);
    if (!json_is_null(v) && !json_is_string(v))
        return mr_err_set(err, "%s: must be a string, or null to delete", pointer);
    if (json_is_string(v) && member_string(obj, "value", at, 1, &state_value_rule, &value, err) < 0)
        return -1;
    if (ttl_parse(obj, at, &action->ttl_ms, err) < 0 || copy_string(key, &action->key, err) < 0
        || copy_string(value, &action->value, err) < 0)
        return -1;
    return 0;
}

static const string_rule reason_rule = {0, REASON_CHARS, 1, NULL, NULL};

static int parse_outcome(const mr_outbound_context *ctx, json_t *obj, const char *at,
                         unsigned index, mr_action *action, mr_err *err)
{
    const char *reason;

    if (member_string(obj, "reason", at, 0, &reason_rule, &reason, err) < 0)
        return -1;
    return copy_string(reason, &action->reason, err);
}

static const char *const reply_fields[] = {"type", "text", "html", "subject", "from", "headers",
                                           "attachments", NULL};
static const char *const send_fields[] = {"type", "to", "cc", "bcc", "subject", "text", "html",
                                          "from", "headers", "attachments", NULL};
static const char *const forward_fields[] = {"type", "to", NULL};
static const char *const webhook_fields[] = {"type", "url", "body", NULL};
static const char *const set_state_fields[] = {"type", "key", "value", "ttl_seconds", NULL};
static const char *const outcome_fields[] = {"type", "reason", NULL};

static const action_type action_types[] = {
    {"reply", MR_ACTION_REPLY, reply_fields, parse_reply},
    {"send", MR_ACTION_SEND, send_fields, parse_send},
    {"forward", MR_ACTION_FORWARD, forward_fields, parse_forward},
    {"webhook", MR_ACTION_WEBHOOK, webhook_fields, parse_webhook},
    {"set_state", MR_ACTION_SET_STATE, set_state_fields, parse_set_state},
    {"defer", MR_ACTION_DEFER, outcome_fields, parse_outcome},
    {"reject", MR_ACTION_REJECT, outcome_fields, parse_outcome},
};

static const action_type *type_of(json_t *obj, const char *at, mr_err *err)
{
    json_t *v = json_object_get(obj, "type");

    if (v == NULL) {
        mr_err_set(err, "%s/type: required", at);
        return NULL;
    }
    for (size_t i = 0; json_is_string(v) && i < sizeof action_types / sizeof action_types[0]; i++)
        if (strcmp(json_string_value(v), action_types[i].name) == 0)
            return &action_types[i];
    mr_err_set(err, "%s/type: must be one of reply, send, forward, webhook, set_state, defer, reject",
               at);
    return NULL;
}

static int action_parse(const mr_outbound_context *ctx, json_t *obj, unsigned index,
                        mr_action *action, mr_err *err)
{
    char at[POINTER_MAX];
    const action_type *type;

    pointer_index(at, "/actions", index);
    if (!json_is_object(obj))
        return mr_err_set(err, "%s: must be an object", at);
    if ((type = type_of(obj, at, err)) == NULL || reject_unknown(obj, at, type->fields, err) < 0)
        return -1;
    action->type = type->type;
    return type->parse(ctx, obj, at, index, action, err);
}

/* defer and reject exclude each other. */
static int outcomes_check(const mr_actions *actions, mr_err *err)
{
    int deferred = 0, rejected = 0;

    for (size_t i = 0; i < actions->count; i++) {
        deferred |= actions->items[i].type == MR_ACTION_DEFER;
        rejected |= actions->items[i].type == MR_ACTION_REJECT;
        if (deferred && rejected)
            return mr_err_set(err, "/actions/%zu: defer and reject cannot both be given", i);
    }
    return 0;
}

static const char *const top_fields[] = {"actions", NULL};

static int root_parse(const mr_outbound_context *ctx, json_t *root, mr_actions *actions, mr_err *err)
{
    json_t *list;

    if (!json_is_object(root))
        return mr_err_set(err, "/: must be an object {\"actions\": [...]}");
    if (reject_unknown(root, "", top_fields, err) < 0)
        return -1;
    if ((list = json_object_get(root, "actions")) == NULL)
        return mr_err_set(err, "/actions: required");
    if (!json_is_array(list))
        return mr_err_set(err, "/actions: must be an array");
    if (json_array_size(list) > MR_ACTIONS_LIMIT)
        return mr_err_set(err, "/actions: more than %d actions", MR_ACTIONS_LIMIT);
    if (json_array_size(list) > 0
        && (actions->items = calloc(json_array_size(list), sizeof *actions->items)) == NULL)
        return mr_err_set(err, "out of memory");
    for (size_t i = 0; i < json_array_size(list); i++) {
        actions->count++;
        if (action_parse(ctx, json_array_get(list, i), (unsigned)i, &actions->items[i], err) < 0)
            return -1;
    }
    return outcomes_check(actions, err);
}

int mr_actions_parse(const mr_outbound_context *ctx, const char *json, size_t len,
                     mr_actions *actions, mr_err *err)
{
    json_error_t jerr;
    json_t *root;
    int rc;

    actions->items = NULL;
    actions->count = 0;
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return mr_err_set(err, "/: not valid JSON (line %d, column %d: %s)", jerr.line, jerr.column,
                          jerr.text);
    rc = root_parse(ctx, root, actions, err);
    json_decref(root);
    if (rc < 0)
        mr_actions_free(actions);
    return rc;
}

void mr_actions_free(mr_actions *actions)
{
    for (size_t i = 0; i < actions->count; i++) {
        mr_action *a = &actions->items[i];

        mr_outbound_mail_free(&a->mail);
        free(a->url);
        free(a->body);
        free(a->key);
        free(a->value);
        free(a->reason);
    }
    free(actions->items);
    actions->items = NULL;
    actions->count = 0;
}
