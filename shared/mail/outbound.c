/*
 * outbound.c - mails that robots send (outbound.h, SPEC §8): effect ids,
 * the addresses we send to, and building reply, send and forward mails
 * with gmime.
 *
 * A built mail: Date, From, Subject, To, Cc, Message-ID <effect id@host>,
 * In-Reply-To and References (replies), Auto-Submitted (auto-replied for
 * replies, auto-generated otherwise), the extra fields, MIME-Version, and
 * a body of text/plain (utf-8), multipart/alternative with text/html, and
 * multipart/mixed around them when there are attachments. Non-ASCII
 * header text becomes RFC 2047 encoded words, filenames RFC 2231
 * parameters; text parts are 7bit, quoted-printable or base64, whichever
 * gmime finds their content needs; attachments are base64. Every line end
 * is CRLF. Bcc addresses are envelope recipients only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>
#include <sodium.h>

#include "mailrobot/buf.h"
#include "mailrobot/outbound.h"
#include "outbound_internal.h"

#define ADDRESS_MAX 254
#define LOCAL_PART_MAX 64
#define LABEL_MAX 63

/* --- effect ids -------------------------------------------------------------------- */

/* BLAKE2b-128 over the fields, each followed by a NUL byte (none of them
 * holds one), the index in decimal: no two inputs share an encoding. */
void mr_effect_id(const mr_outbound_context *ctx, unsigned index, char out[MR_EFFECT_ID_SIZE])
{
    const char *fields[3] = {ctx->id != NULL ? ctx->id : "", ctx->replay != NULL ? ctx->replay : "",
                             ctx->robot != NULL ? ctx->robot : ""};
    unsigned char hash[16];
    char number[16];
    crypto_generichash_state state;

    crypto_generichash_init(&state, NULL, 0, sizeof hash);
    for (size_t i = 0; i < 3; i++)
        crypto_generichash_update(&state, (const unsigned char *)fields[i], strlen(fields[i]) + 1);
    snprintf(number, sizeof number, "%u", index);
    crypto_generichash_update(&state, (const unsigned char *)number, strlen(number) + 1);
    crypto_generichash_final(&state, hash, sizeof hash);
    sodium_bin2hex(out, MR_EFFECT_ID_SIZE, hash, sizeof hash);
}

/* --- addresses --------------------------------------------------------------------- */

static int atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || (c != '\0' && strchr("!#$%&'*+/=?^_`{|}~-", c) != NULL);
}

static int let_dig(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* dot-atom: atext runs joined by single dots. Returns the length. */
static size_t local_part_length(const char *s)
{
    size_t i = 0;

    for (;;) {
        size_t run = i;

        while (atext((unsigned char)s[i]))
            i++;
        if (i == run)
            return 0;
        if (s[i] != '.')
            return i;
        i++;
    }
}

int mr_domain_valid(const char *s)
{
    for (;;) {
        size_t n = 0;

        while (let_dig((unsigned char)s[n]) || s[n] == '-')
            n++;
        if (n == 0 || n > LABEL_MAX || s[0] == '-' || s[n - 1] == '-')
            return 0;
        if (s[n] == '\0')
            return 1;
        if (s[n] != '.')
            return 0;
        s += n + 1;
    }
}

int mr_address_valid(const char *s)
{
    size_t local;

    if (s == NULL || strlen(s) > ADDRESS_MAX)
        return 0;
    local = local_part_length(s);
    return local > 0 && local <= LOCAL_PART_MAX && s[local] == '@' && mr_domain_valid(s + local + 1);
}

/* --- shared pieces ----------------------------------------------------------------- */

int rcpt_list_add(rcpt_list *list, const char *address, mr_err *err)
{
    char **grown;

    for (size_t i = 0; i < list->count; i++)
        if (strcmp(list->items[i], address) == 0)
            return 0;
    if (list->count >= MR_RCPT_LIMIT)
        return mr_err_set(err, "more than %d recipients", MR_RCPT_LIMIT);
    if ((grown = realloc(list->items, (list->count + 1) * sizeof *grown)) == NULL)
        return mr_err_set(err, "out of memory");
    list->items = grown;
    if ((list->items[list->count] = strdup(address)) == NULL)
        return mr_err_set(err, "out of memory");
    list->count++;
    return 0;
}

void rcpt_list_free(rcpt_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i]);
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

int outbound_append_crlf(mr_buf *buf, const unsigned char *p, size_t n, mr_err *err)
{
    size_t start = 0;

    for (size_t i = 0; i < n; i++) {
        if (p[i] != '\r' && p[i] != '\n')
            continue;
        if ((i > start && mr_buf_append(buf, p + start, i - start, err) < 0)
            || mr_buf_append(buf, "\r\n", 2, err) < 0)
            return -1;
        i += p[i] == '\r' && i + 1 < n && p[i + 1] == '\n';
        start = i + 1;
    }
    return n > start ? mr_buf_append(buf, p + start, n - start, err) : 0;
}

GMimeParserOptions *outbound_parser_options(void)
{
    static const char *fallback_charsets[] = {"UTF-8", "windows-1252", NULL};
    GMimeParserOptions *options = g_mime_parser_options_new();

    g_mime_parser_options_set_rfc2047_compliance_mode(options, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_address_compliance_mode(options, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_fallback_charsets(options, fallback_charsets);
    return options;
}

static void mailboxes_collect(InternetAddressList *list, GPtrArray *into, int depth)
{
    int n = list != NULL ? internet_address_list_length(list) : 0;

    for (int i = 0; i < n; i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);

        if (INTERNET_ADDRESS_IS_GROUP(ia) && depth < OUTBOUND_GROUP_DEPTH)
            mailboxes_collect(internet_address_group_get_members(INTERNET_ADDRESS_GROUP(ia)), into,
                              depth + 1);
        else if (INTERNET_ADDRESS_IS_MAILBOX(ia)
                 && mr_address_valid(internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia))))
            g_ptr_array_add(into, g_object_ref(ia));
    }
}

int outbound_parse_mailboxes(const char *value, GPtrArray *mailboxes, mr_err *err)
{
    GMimeParserOptions *options;
    InternetAddressList *list;
    size_t colons = 0, commas = 0;

    if (strlen(value) > OUTBOUND_FIELD_LIMIT)
        return mr_err_set(err, "longer than %d bytes", OUTBOUND_FIELD_LIMIT);
    for (const char *p = value; *p != '\0'; p++) {
        colons += *p == ':';
        commas += *p == ',';
    }
    if (colons > OUTBOUND_COLON_LIMIT || commas > OUTBOUND_COMMA_LIMIT)
        return mr_err_set(err, "more than %d colons or %d commas", OUTBOUND_COLON_LIMIT,
                          OUTBOUND_COMMA_LIMIT);
    options = outbound_parser_options();
    list = internet_address_list_parse(options, value);
    mailboxes_collect(list, mailboxes, 0);
    if (list != NULL)
        g_object_unref(list);
    g_mime_parser_options_free(options);
    return 0;
}

int outbound_mail_finish(const mr_outbound_context *ctx, unsigned index, const char *kind,
                         rcpt_list *rcpts, const unsigned char *message, size_t len,
                         mr_outbound_mail *mail, mr_err *err)
{
    if (ctx->size_limit > 0 && len > ctx->size_limit)
        return mr_err_set(err, "the %s would be %zu bytes, more than the size limit of %zu",
                          kind, len, ctx->size_limit);
    memset(mail, 0, sizeof *mail);
    mr_effect_id(ctx, index, mail->effect_id);
    mail->kind = kind;
    mail->mail_from = strdup(ctx->recipient != NULL ? ctx->recipient : "");
    mail->message = malloc(len + 1);
    if (mail->mail_from == NULL || mail->message == NULL) {
        mr_outbound_mail_free(mail);
        return mr_err_set(err, "out of memory");
    }
    memcpy(mail->message, message, len);
    mail->message[len] = '\0';
    mail->message_len = len;
    mail->rcpt_to = rcpts->items;
    mail->rcpt_count = rcpts->count;
    rcpts->items = NULL;
    rcpts->count = 0;
    return 0;
}

void mr_outbound_mail_free(mr_outbound_mail *mail)
{
    for (size_t i = 0; i < mail->rcpt_count; i++)
        free(mail->rcpt_to[i]);
    free(mail->rcpt_to);
    free(mail->mail_from);
    free(mail->message);
    memset(mail, 0, sizeof *mail);
}

/* --- checks on what a caller gives --------------------------------------------------- */

static int header_text_valid(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

static int mailbox_check(const mr_mailbox *m, const char *what, mr_err *err)
{
    if (!mr_address_valid(m->address))
        return mr_err_set(err, "%s: not an email address", what);
    if (m->name != NULL && !header_text_valid(m->name))
        return mr_err_set(err, "%s: the name holds a control character", what);
    return 0;
}

static int content_check(const mr_mail_content *c, mr_err *err)
{
    if (c->text == NULL)
        return mr_err_set(err, "no text");
    if (c->subject != NULL && !header_text_valid(c->subject))
        return mr_err_set(err, "the subject holds a control character");
    if (c->from != NULL && mailbox_check(c->from, "from", err) < 0)
        return -1;
    for (size_t i = 0; i < c->header_count; i++)
        if (!header_text_valid(c->headers[i].name) || !header_text_valid(c->headers[i].value))
            return mr_err_set(err, "header field %s holds a control character", c->headers[i].name);
    return 0;
}

/* What a mail's content will take at least: refused early, before gmime
 * copies it. */
static size_t content_size(const mr_mail_content *c)
{
    size_t size = strlen(c->text) + (c->html != NULL ? strlen(c->html) : 0);

    for (size_t i = 0; i < c->attachment_count; i++)
        size += c->attachments[i].len;
    return size;
}

/* --- gmime parts --------------------------------------------------------------------- */

/* text with every line end a LF (gmime writes them as CRLF). */
static GByteArray *lf_text(const char *text)
{
    size_t n = strlen(text);
    GByteArray *out = g_byte_array_sized_new((guint)n);

    for (size_t i = 0; i < n; i++) {
        if (text[i] == '\r') {
            g_byte_array_append(out, (const guint8 *)"\n", 1);
            i += text[i + 1] == '\n';
        } else {
            g_byte_array_append(out, (const guint8 *)text + i, 1);
        }
    }
    return out;
}

static void part_set_bytes(GMimePart *part, const unsigned char *data, size_t len)
{
    /* gmime refuses a NULL buffer even for no bytes */
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer(data != NULL ? (const char *)data : "", len);
    GMimeDataWrapper *content = g_mime_data_wrapper_new_with_stream(stream, GMIME_CONTENT_ENCODING_DEFAULT);

    g_mime_part_set_content(part, content);
    g_object_unref(content);
    g_object_unref(stream);
}

static GMimeObject *text_part(const char *subtype, const char *text)
{
    GMimeTextPart *part = g_mime_text_part_new_with_subtype(subtype);
    GByteArray *bytes = lf_text(text);

    part_set_bytes(GMIME_PART(part), bytes->data, bytes->len);
    g_byte_array_free(bytes, TRUE);
    g_mime_object_set_content_type_parameter(GMIME_OBJECT(part), "charset", "utf-8");
    g_mime_object_encode(GMIME_OBJECT(part), GMIME_ENCODING_CONSTRAINT_7BIT);
    return GMIME_OBJECT(part);
}

static GMimeObject *attachment_part(const mr_mail_attachment *a)
{
    const char *slash = strchr(a->content_type, '/');
    char *type = g_strndup(a->content_type, slash != NULL ? (gsize)(slash - a->content_type) : 0);
    GMimePart *part = g_mime_part_new_with_type(slash != NULL ? type : "application",
                                                slash != NULL ? slash + 1 : "octet-stream");

    g_free(type);
    part_set_bytes(part, a->data, a->len);
    g_mime_part_set_content_encoding(part, GMIME_CONTENT_ENCODING_BASE64);
    g_mime_object_set_disposition(GMIME_OBJECT(part), GMIME_DISPOSITION_ATTACHMENT);
    g_mime_part_set_filename(part, a->filename);
    return GMIME_OBJECT(part);
}

static GMimeObject *multipart_of(const char *subtype, GMimeObject *first)
{
    GMimeMultipart *multipart = g_mime_multipart_new_with_subtype(subtype);

    g_mime_multipart_add(multipart, first);
    g_object_unref(first);
    return GMIME_OBJECT(multipart);
}

static GMimeObject *body_of(const mr_mail_content *c)
{
    GMimeObject *body = text_part("plain", c->text);

    if (c->html != NULL) {
        GMimeObject *html = text_part("html", c->html);

        body = multipart_of("alternative", body);
        g_mime_multipart_add(GMIME_MULTIPART(body), html);
        g_object_unref(html);
    }
    if (c->attachment_count > 0) {
        body = multipart_of("mixed", body);
        for (size_t i = 0; i < c->attachment_count; i++) {
            GMimeObject *part = attachment_part(&c->attachments[i]);

            g_mime_multipart_add(GMIME_MULTIPART(body), part);
            g_object_unref(part);
        }
    }
    return body;
}

/* --- messages ------------------------------------------------------------------------ */

static void add_mailboxes(GMimeMessage *message, GMimeAddressType type, const mr_mailbox *list,
                          size_t count)
{
    for (size_t i = 0; i < count; i++)
        g_mime_message_add_mailbox(message, type, list[i].name, list[i].address);
}

/* The header fields every built mail has. */
static GMimeMessage *message_new(const mr_outbound_context *ctx, unsigned index,
                                 const mr_mail_content *c, const char *auto_submitted)
{
    GMimeMessage *message = g_mime_message_new(TRUE);
    mr_mailbox robot = {NULL, ctx->recipient};
    char effect_id[MR_EFFECT_ID_SIZE];
    char *message_id;
    GDateTime *now = g_date_time_new_now_utc();

    g_mime_message_set_date(message, now);
    g_date_time_unref(now);
    add_mailboxes(message, GMIME_ADDRESS_TYPE_FROM, c->from != NULL ? c->from : &robot, 1);
    mr_effect_id(ctx, index, effect_id);
    message_id = g_strdup_printf("%s@%s", effect_id, ctx->hostname != NULL ? ctx->hostname : "localhost");
    g_mime_message_set_message_id(message, message_id);
    g_free(message_id);
    g_mime_object_set_header(GMIME_OBJECT(message), "Auto-Submitted", auto_submitted, NULL);
    return message;
}

static void message_finish(GMimeMessage *message, const mr_mail_content *c)
{
    GMimeObject *body = body_of(c);

    for (size_t i = 0; i < c->header_count; i++)
        g_mime_object_append_header(GMIME_OBJECT(message), c->headers[i].name,
                                    c->headers[i].value, "utf-8");
    g_mime_message_set_mime_part(message, body);
    g_object_unref(body);
}

/* The message's bytes, CRLF line ends, into mail (see outbound_mail_finish). */
static int message_write(const mr_outbound_context *ctx, unsigned index, const char *kind,
                         GMimeMessage *message, rcpt_list *rcpts, mr_outbound_mail *mail,
                         mr_err *err)
{
    GMimeFormatOptions *format = g_mime_format_options_new();
    GMimeStream *stream = g_mime_stream_mem_new();
    GByteArray *bytes;
    int rc;

    g_mime_format_options_set_newline_format(format, GMIME_NEWLINE_FORMAT_DOS);
    g_mime_object_write_to_stream(GMIME_OBJECT(message), format, stream);
    bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream));
    rc = outbound_mail_finish(ctx, index, kind, rcpts, bytes->data, bytes->len, mail, err);
    g_object_unref(stream);
    g_mime_format_options_free(format);
    return rc;
}

static int too_big(const mr_outbound_context *ctx, const mr_mail_content *c, const char *kind,
                   mr_err *err)
{
    size_t size = content_size(c);

    if (ctx->size_limit > 0 && size > ctx->size_limit)
        return mr_err_set(err, "the %s would be more than %zu bytes, the size limit", kind,
                          ctx->size_limit);
    return 0;
}

int mr_outbound_reply(const mr_outbound_context *ctx, unsigned index,
                      const mr_mail_content *content, mr_outbound_mail *mail, mr_err *err)
{
    original_reply original;
    rcpt_list rcpts = {NULL, 0};
    GMimeMessage *message;
    int rc = 0;

    memset(mail, 0, sizeof *mail);
    if (content_check(content, err) < 0 || too_big(ctx, content, "reply", err) < 0
        || mr_reply_refused(ctx, err) || original_reply_read(ctx, &original, err) < 0)
        return -1;
    message = message_new(ctx, index, content, "auto-replied");
    g_mime_message_set_subject(message, content->subject != NULL ? content->subject : original.subject,
                               "utf-8");
    for (guint i = 0; i < original.to->len && rc == 0; i++) {
        InternetAddressMailbox *m = g_ptr_array_index(original.to, i);

        internet_address_list_add(g_mime_message_get_addresses(message, GMIME_ADDRESS_TYPE_TO),
                                  INTERNET_ADDRESS(m));
        rc = rcpt_list_add(&rcpts, internet_address_mailbox_get_addr(m), err);
    }
    if (original.in_reply_to != NULL)
        g_mime_object_set_header(GMIME_OBJECT(message), "In-Reply-To", original.in_reply_to, NULL);
    if (original.references != NULL)
        g_mime_object_set_header(GMIME_OBJECT(message), "References", original.references, NULL);
    message_finish(message, content);
    if (rc == 0)
        rc = message_write(ctx, index, "reply", message, &rcpts, mail, err);
    g_object_unref(message);
    original_reply_free(&original);
    rcpt_list_free(&rcpts);
    return rc;
}

static int recipients_add(rcpt_list *rcpts, const mr_mailbox *list, size_t count, const char *what,
                          mr_err *err)
{
    char where[32];

    for (size_t i = 0; i < count; i++) {
        snprintf(where, sizeof where, "%s %zu", what, i);
        if (mailbox_check(&list[i], where, err) < 0 || rcpt_list_add(rcpts, list[i].address, err) < 0)
            return -1;
    }
    return 0;
}

int mr_outbound_send(const mr_outbound_context *ctx, unsigned index,
                     const mr_mail_content *content, mr_outbound_mail *mail, mr_err *err)
{
    rcpt_list rcpts = {NULL, 0};
    GMimeMessage *message;
    int rc;

    memset(mail, 0, sizeof *mail);
    if (content->to_count + content->cc_count + content->bcc_count > MR_RCPT_LIMIT)
        return mr_err_set(err, "more than %d recipients in to, cc and bcc", MR_RCPT_LIMIT);
    if (content->to_count + content->cc_count + content->bcc_count == 0)
        return mr_err_set(err, "no recipients");
    if (content_check(content, err) < 0 || too_big(ctx, content, "mail", err) < 0
        || recipients_add(&rcpts, content->to, content->to_count, "to", err) < 0
        || recipients_add(&rcpts, content->cc, content->cc_count, "cc", err) < 0
        || recipients_add(&rcpts, content->bcc, content->bcc_count, "bcc", err) < 0) {
        rcpt_list_free(&rcpts);
        return -1;
    }
    message = message_new(ctx, index, content, "auto-generated");
    g_mime_message_set_subject(message, content->subject != NULL ? content->subject : "", "utf-8");
    add_mailboxes(message, GMIME_ADDRESS_TYPE_TO, content->to, content->to_count);
    add_mailboxes(message, GMIME_ADDRESS_TYPE_CC, content->cc, content->cc_count);
    message_finish(message, content);
    rc = message_write(ctx, index, "send", message, &rcpts, mail, err);
    g_object_unref(message);
    rcpt_list_free(&rcpts);
    return rc;
}

int mr_outbound_forward(const mr_outbound_context *ctx, unsigned index, const char *const *to,
                        size_t count, mr_outbound_mail *mail, mr_err *err)
{
    rcpt_list rcpts = {NULL, 0};
    const unsigned char *p = ctx->original;
    size_t n = ctx->original_len;
    mr_buf bytes;
    int rc = 0;

    memset(mail, 0, sizeof *mail);
    if (count == 0)
        return mr_err_set(err, "no recipients");
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = mr_address_valid(to[i]) ? rcpt_list_add(&rcpts, to[i], err)
                                     : mr_err_set(err, "to %zu: not an email address", i);
    if (n >= 5 && memcmp(p, "From ", 5) == 0) {
        const unsigned char *nl = memchr(p, '\n', n);

        n = nl != NULL ? n - (size_t)(nl + 1 - p) : 0;
        p = nl != NULL ? nl + 1 : p + n;
    }
    if (rc == 0 && ctx->size_limit > 0 && n > ctx->size_limit)
        rc = mr_err_set(err, "the forward would be more than %zu bytes, the size limit", ctx->size_limit);
    /* room for CRLF line ends; the size limit is checked on the result */
    mr_buf_init(&bytes, ctx->size_limit > 0 ? 2 * ctx->size_limit : (size_t)-1 / 2);
    if (rc == 0)
        rc = outbound_append_crlf(&bytes, p, n, err);
    if (rc == 0)
        rc = outbound_mail_finish(ctx, index, "forward", &rcpts, bytes.data != NULL ? bytes.data
                                  : (const unsigned char *)"", bytes.len, mail, err);
    mr_buf_free(&bytes);
    rcpt_list_free(&rcpts);
    return rc;
}
