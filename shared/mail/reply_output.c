/*
 * reply_output.c - the "reply" output mode (outbound.h): a robot prints a
 * complete message, which is sent as it is, with what a reply must have
 * added.
 *
 * The output's header section must be well formed: fields and their
 * continuations up to an empty line (or the end), at most
 * MR_HEADER_SCAN_LIMIT bytes; a line that is neither is an error, not the
 * start of a body (a robot that forgot the empty line gets told so).
 *
 * Recipients: the addresses of its To, Cc and Bcc fields (Bcc fields are
 * removed). When it names none, the original's Reply-To, else From, and a
 * To field saying so is added. A reply to the original (no recipients of
 * its own, or no Auto-Submitted field of its own: we would mark it
 * auto-replied) is refused as mr_reply_refused() says.
 *
 * Added when missing, before the robot's fields: Message-ID <effect
 * id@host>, Date, From (the robot's address), To (see above), Subject
 * ("Re: " and the original's), In-Reply-To, References, Auto-Submitted:
 * auto-replied, MIME-Version: 1.0. gmime formats them (RFC 2047, folding).
 * Every line end becomes CRLF, and the message ends with one.
 */
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>

#include "mailrobot/buf.h"
#include "mailrobot/header_fields.h"
#include "mailrobot/message_ids.h"
#include "mailrobot/outbound.h"
#include "outbound_internal.h"

#define ADDED_FIELDS_ROOM (64 * 1024)

/* The fields whose absence we make good, in the order they are added. */
enum {
    HAS_MESSAGE_ID, HAS_DATE, HAS_FROM, HAS_TO, HAS_SUBJECT, HAS_IN_REPLY_TO, HAS_REFERENCES,
    HAS_AUTO_SUBMITTED, HAS_MIME_VERSION, HAS_COUNT
};

static const char *const known_fields[HAS_COUNT] = {
    "Message-ID", "Date", "From", "To", "Subject", "In-Reply-To", "References",
    "Auto-Submitted", "MIME-Version",
};

/* What the robot's output says. */
typedef struct reply_output {
    int has[HAS_COUNT];
    rcpt_list rcpts;
    const unsigned char *body;   /* after the header section's empty line */
} reply_output;

static int field_recipients(const mr_header_field *field, rcpt_list *rcpts, mr_err *err)
{
    GPtrArray *mailboxes = g_ptr_array_new_with_free_func(g_object_unref);
    char *value = mr_header_value(field);
    int rc = value != NULL ? outbound_parse_mailboxes(value, mailboxes, err)
                           : mr_err_set(err, "out of memory");

    for (guint i = 0; i < mailboxes->len && rc == 0; i++)
        rc = rcpt_list_add(rcpts, internet_address_mailbox_get_addr(g_ptr_array_index(mailboxes, i)),
                           err);
    free(value);
    g_ptr_array_free(mailboxes, TRUE);
    if (rc < 0)
        return mr_err_prefix(err, "the reply's %.*s field", (int)field->name_len,
                             (const char *)field->start);
    return 0;
}

static int output_read(const unsigned char *output, size_t len, reply_output *out, mr_err *err)
{
    mr_header_scan scan;
    mr_header_field field;
    size_t line = 1;

    memset(out, 0, sizeof *out);
    mr_header_scan_init(&scan, output, len);
    while (mr_header_next(&scan, &field)) {
        for (int i = 0; i < HAS_COUNT; i++)
            out->has[i] |= mr_header_is(&field, known_fields[i]);
        if ((mr_header_is(&field, "To") || mr_header_is(&field, "Cc") || mr_header_is(&field, "Bcc"))
            && field_recipients(&field, &out->rcpts, err) < 0)
            return -1;
        for (size_t i = 0; i < field.len; i++)
            line += field.start[i] == '\n';
    }
    if (scan.ended == MR_HEADER_NOT_A_FIELD)
        return mr_err_set(err, "line %zu of the reply is neither a header field nor the empty line "
                               "before the body", line);
    if (scan.ended == MR_HEADER_TOO_LONG)
        return mr_err_set(err, "the reply's header section is longer than %u bytes",
                          MR_HEADER_SCAN_LIMIT);
    out->body = scan.body;
    return 0;
}

static void header_add(GMimeHeaderList *list, const char *name, const char *value)
{
    if (value != NULL)
        g_mime_header_list_append(list, name, value, "utf-8");
}

/* The fields to add, formatted by gmime with CRLF line ends. */
static char *added_fields(const mr_outbound_context *ctx, const reply_output *out,
                          const original_reply *original)
{
    GMimeHeaderList *list = g_mime_header_list_new(NULL);
    GMimeFormatOptions *format = g_mime_format_options_new();
    char effect_id[MR_EFFECT_ID_SIZE], *text, *value;
    GDateTime *now = g_date_time_new_now_utc();

    mr_effect_id(ctx, 0, effect_id);
    g_mime_format_options_set_newline_format(format, GMIME_NEWLINE_FORMAT_DOS);
    value = g_strdup_printf("<%s@%s>", effect_id, ctx->hostname != NULL ? ctx->hostname : "localhost");
    if (!out->has[HAS_MESSAGE_ID])
        header_add(list, "Message-ID", value);
    g_free(value);
    value = g_mime_utils_header_format_date(now);
    if (!out->has[HAS_DATE])
        header_add(list, "Date", value);
    g_free(value);
    g_date_time_unref(now);
    if (!out->has[HAS_FROM])
        header_add(list, "From", ctx->recipient);
    if (original->to != NULL && original->to->len > 0) {
        InternetAddressList *to = internet_address_list_new();

        for (guint i = 0; i < original->to->len; i++)
            internet_address_list_add(to, g_ptr_array_index(original->to, i));
        value = internet_address_list_to_string(to, NULL, TRUE);
        header_add(list, "To", value);
        g_free(value);
        g_object_unref(to);
    }
    if (!out->has[HAS_SUBJECT])
        header_add(list, "Subject", original->subject);
    if (!out->has[HAS_IN_REPLY_TO])
        header_add(list, "In-Reply-To", original->in_reply_to);
    if (!out->has[HAS_REFERENCES])
        header_add(list, "References", original->references);
    if (!out->has[HAS_AUTO_SUBMITTED])
        header_add(list, "Auto-Submitted", "auto-replied");
    if (!out->has[HAS_MIME_VERSION])
        header_add(list, "MIME-Version", "1.0");
    text = g_mime_header_list_to_string(list, format);
    g_mime_format_options_free(format);
    g_object_unref(list);
    return text;
}

/* The robot's fields but Bcc, then the body. */
static int output_append(mr_buf *buf, const unsigned char *output, size_t len,
                         const reply_output *out, mr_err *err)
{
    mr_header_scan scan;
    mr_header_field field;
    const unsigned char *body = out->body != NULL ? out->body : output + len;

    mr_header_scan_init(&scan, output, len);
    while (mr_header_next(&scan, &field))
        if (!mr_header_is(&field, "Bcc") && outbound_append_crlf(buf, field.start, field.len, err) < 0)
            return -1;
    if (buf->len > 0 && buf->data[buf->len - 1] != '\n' && mr_buf_append(buf, "\r\n", 2, err) < 0)
        return -1;
    if (mr_buf_append(buf, "\r\n", 2, err) < 0
        || outbound_append_crlf(buf, body, (size_t)(output + len - body), err) < 0)
        return -1;
    if (buf->data[buf->len - 1] != '\n')
        return mr_buf_append(buf, "\r\n", 2, err);
    return 0;
}

static int reply_build(const mr_outbound_context *ctx, const unsigned char *output, size_t len,
                       const reply_output *out, const original_reply *original, mr_buf *buf,
                       mr_err *err)
{
    char *added = added_fields(ctx, out, original);
    int rc = mr_buf_append_str(buf, added, err);

    g_free(added);
    return rc == 0 ? output_append(buf, output, len, out, err) : -1;
}

static int original_needed(const mr_outbound_context *ctx, const reply_output *out,
                           original_reply *original, mr_err *err)
{
    if ((out->rcpts.count == 0 || !out->has[HAS_AUTO_SUBMITTED]) && mr_reply_refused(ctx, err))
        return -1;
    if (original_reply_read(ctx, original, err) < 0) {
        if (out->rcpts.count == 0)
            return -1;
        memset(original, 0, sizeof *original); /* the robot named its recipients */
    }
    if (out->rcpts.count > 0 && original->to != NULL)
        g_ptr_array_set_size(original->to, 0);
    return 0;
}

int mr_outbound_from_reply(const mr_outbound_context *ctx, const unsigned char *output,
                           size_t len, mr_outbound_mail *mail, mr_err *err)
{
    reply_output out;
    original_reply original;
    mr_buf buf;
    int rc;

    memset(mail, 0, sizeof *mail);
    if (ctx->size_limit > 0 && len > ctx->size_limit)
        return mr_err_set(err, "the reply is %zu bytes, more than the size limit of %zu", len,
                          ctx->size_limit);
    if (output_read(output, len, &out, err) < 0 || original_needed(ctx, &out, &original, err) < 0) {
        rcpt_list_free(&out.rcpts);
        return -1;
    }
    rc = 0;
    for (guint i = 0; original.to != NULL && i < original.to->len && rc == 0; i++)
        rc = rcpt_list_add(&out.rcpts,
                           internet_address_mailbox_get_addr(g_ptr_array_index(original.to, i)), err);
    /* room for CRLF line ends and the added fields; the size limit is
     * checked on the result */
    mr_buf_init(&buf, ctx->size_limit > 0 ? 2 * ctx->size_limit + ADDED_FIELDS_ROOM : (size_t)-1 / 2);
    if (rc == 0)
        rc = reply_build(ctx, output, len, &out, &original, &buf, err);
    if (rc == 0)
        rc = outbound_mail_finish(ctx, 0, "reply", &out.rcpts, buf.data, buf.len, mail, err);
    mr_buf_free(&buf);
    original_reply_free(&original);
    rcpt_list_free(&out.rcpts);
    return rc;
}
