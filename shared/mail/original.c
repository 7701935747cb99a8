/*
 * original.c - what a reply takes from the message it answers, and when
 * there must be no reply at all (RFC 3834 §2).
 *
 * Only the header section of the original is read (header_fields.h), and
 * only the few fields a reply needs: gmime never sees the rest of a
 * message that may be hostile. Field values handed to gmime are bounded
 * (OUTBOUND_FIELD_LIMIT, OUTBOUND_COLON_LIMIT, SUBJECT_READ_LIMIT), so
 * neither its address parser nor its RFC 2047 decoder gets a shape that
 * costs it more than linear time.
 *
 * Threading (RFC 5322 §3.6.4): In-Reply-To is the original's Message-ID;
 * References is the original's References (or, without one, its single
 * In-Reply-To id) followed by its Message-ID. Long chains keep their
 * first id and the last REFERENCES_KEPT - 1.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <gmime/gmime.h>

#include "mailrobot/header_fields.h"
#include "mailrobot/message_ids.h"
#include "mailrobot/outbound.h"
#include "outbound_internal.h"

#define SUBJECT_READ_LIMIT 4096   /* bytes of the original's Subject decoded */
#define SUBJECT_MAX 900           /* bytes of a reply's Subject */
#define REFERENCES_KEPT 20

/* --- refusal ------------------------------------------------------------------------- */

/* The first word of a field's value (up to ';', blank or the end), lower-cased. */
static void first_word(const mr_header_field *field, char *out, size_t outsz)
{
    size_t i = 0, n = 0;

    while (i < field->value_len && strchr(" \t\r\n", field->value[i]) != NULL)
        i++;
    while (i < field->value_len && n + 1 < outsz && strchr(" \t\r\n;", field->value[i]) == NULL)
        out[n++] = (char)g_ascii_tolower(field->value[i++]);
    out[n] = '\0';
}

static int sender_refused(const char *sender, mr_err *why)
{
    const char *at;
    size_t local;

    if (sender == NULL || sender[0] == '\0')
        return mr_err_set(why, "the original has a null sender; no reply (RFC 3834)"), 1;
    at = strrchr(sender, '@');
    local = at != NULL ? (size_t)(at - sender) : strlen(sender);
    if ((local == 13 && strncasecmp(sender, "mailer-daemon", 13) == 0)
        || strncasecmp(sender, "owner-", 6) == 0
        || (local >= 8 && strncasecmp(sender + local - 8, "-request", 8) == 0))
        return mr_err_set(why, "the original's sender %s is a mail system or list address; "
                               "no reply (RFC 3834)", sender), 1;
    return 0;
}

static int field_refused(const mr_header_field *field, mr_err *why)
{
    static const char *const list_fields[] = {"List-Id", "List-Post", "List-Unsubscribe"};
    char word[32];

    first_word(field, word, sizeof word);
    if (mr_header_is(field, "Auto-Submitted") && strcmp(word, "no") != 0)
        return mr_err_set(why, "the original is auto-submitted (Auto-Submitted: %s); no reply "
                               "(RFC 3834)", word), 1;
    if (mr_header_is(field, "Precedence")
        && (strcmp(word, "bulk") == 0 || strcmp(word, "list") == 0 || strcmp(word, "junk") == 0))
        return mr_err_set(why, "the original is %s mail (Precedence: %s); no reply (RFC 3834)",
                          word, word), 1;
    for (size_t i = 0; i < G_N_ELEMENTS(list_fields); i++)
        if (mr_header_is(field, list_fields[i]))
            return mr_err_set(why, "the original comes from a mailing list (%s); no reply "
                                   "(RFC 3834)", list_fields[i]), 1;
    return 0;
}

int mr_reply_refused(const mr_outbound_context *ctx, mr_err *why)
{
    mr_header_scan scan;
    mr_header_field field;

    if (sender_refused(ctx->sender, why))
        return 1;
    mr_header_scan_init(&scan, ctx->original, ctx->original_len);
    while (mr_header_next(&scan, &field))
        if (field_refused(&field, why))
            return 1;
    return 0;
}

/* --- recipients ---------------------------------------------------------------------- */

/* The valid mailboxes of the first field called name, except the robot's
 * own address (a reply to itself would loop). */
static int field_mailboxes(const mr_outbound_context *ctx, const char *name, GPtrArray *into,
                           mr_err *err)
{
    mr_header_field field;
    char *value;
    int rc;

    if (!mr_header_find(ctx->original, ctx->original_len, name, &field))
        return 0;
    if ((value = mr_header_value(&field)) == NULL)
        return mr_err_set(err, "out of memory");
    rc = outbound_parse_mailboxes(value, into, err);
    free(value);
    if (rc < 0)
        return mr_err_prefix(err, "the original's %s field", name);
    for (guint i = into->len; i > 0; i--) {
        InternetAddressMailbox *m = g_ptr_array_index(into, i - 1);

        if (ctx->recipient != NULL
            && g_ascii_strcasecmp(internet_address_mailbox_get_addr(m), ctx->recipient) == 0)
            g_ptr_array_remove_index(into, i - 1);
    }
    if (into->len > MR_RCPT_LIMIT)
        return mr_err_set(err, "the original's %s field names more than %d addresses", name,
                          MR_RCPT_LIMIT);
    return 0;
}

static int reply_recipients(const mr_outbound_context *ctx, GPtrArray *to, mr_err *err)
{
    if (field_mailboxes(ctx, "Reply-To", to, err) < 0)
        return -1;
    if (to->len == 0 && field_mailboxes(ctx, "From", to, err) < 0)
        return -1;
    if (to->len == 0)
        return mr_err_set(err, "the original has no Reply-To or From address to reply to");
    return 0;
}

/* --- subject ------------------------------------------------------------------------- */

/* Control characters become spaces; invalid UTF-8 is repaired. */
static char *text_cleaned(const char *s)
{
    char *valid = g_utf8_make_valid(s, -1);

    for (char *p = valid; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return valid;
}

/* s cut to at most max bytes, at a character boundary. */
static void utf8_cut(char *s, size_t max)
{
    if (strlen(s) <= max)
        return;
    while (max > 0 && ((unsigned char)s[max] & 0xC0) == 0x80)
        max--;
    s[max] = '\0';
}

/* The decoded, cleaned subject (g_malloc'd; "" without one). */
static char *decoded_subject(const mr_outbound_context *ctx)
{
    mr_header_field field;
    char *raw, *decoded, *clean;
    GMimeParserOptions *options;

    if (!mr_header_find(ctx->original, ctx->original_len, "Subject", &field)
        || (raw = mr_header_value(&field)) == NULL)
        return g_strdup("");
    utf8_cut(raw, SUBJECT_READ_LIMIT);
    options = outbound_parser_options();
    decoded = g_mime_utils_header_decode_text(options, raw);
    g_mime_parser_options_free(options);
    free(raw);
    clean = text_cleaned(decoded != NULL ? decoded : "");
    g_free(decoded);
    g_strstrip(clean);
    return clean;
}

char *mr_original_subject(const mr_outbound_context *ctx)
{
    char *subject = decoded_subject(ctx);
    char *copy = strdup(subject);

    g_free(subject);
    return copy;
}

static char *reply_subject(const mr_outbound_context *ctx)
{
    char *clean, *subject;

    if (!mr_header_find(ctx->original, ctx->original_len, "Subject", &(mr_header_field){0}))
        return g_strdup("Re:");
    clean = decoded_subject(ctx);
    subject = g_ascii_strncasecmp(clean, "re:", 3) == 0 ? g_strdup(clean)
                                                        : g_strconcat("Re: ", clean, NULL);
    g_free(clean);
    utf8_cut(subject, SUBJECT_MAX);
    return g_strchomp(subject);
}

/* --- threading ----------------------------------------------------------------------- */

/* The msg-ids ("<...>") in a field, appended as g_malloc'd "<id>" to ids;
 * beyond REFERENCES_KEPT, the second one is dropped to make room. */
static void ids_scan(const mr_header_field *field, GPtrArray *ids)
{
    const unsigned char *p = field->value, *end = field->value + field->value_len;

    while ((p = memchr(p, '<', (size_t)(end - p))) != NULL) {
        const unsigned char *q = p + 1;

        while (q < end && *q > 0x20 && *q < 0x7f && *q != '<' && *q != '>')
            q++;
        if (q < end && *q == '>' && q > p + 1 && (size_t)(q - p) <= MR_MSGID_MAX) {
            if (ids->len >= REFERENCES_KEPT)
                g_ptr_array_remove_index(ids, 1);
            g_ptr_array_add(ids, g_strndup((const char *)p, (gsize)(q - p + 1)));
        }
        p = q;
    }
}

static void field_ids(const mr_outbound_context *ctx, const char *name, GPtrArray *ids)
{
    mr_header_field field;

    if (mr_header_find(ctx->original, ctx->original_len, name, &field))
        ids_scan(&field, ids);
}

static void thread_fields(const mr_outbound_context *ctx, original_reply *reply)
{
    GPtrArray *own = g_ptr_array_new_with_free_func(g_free);
    GPtrArray *refs = g_ptr_array_new_with_free_func(g_free);

    field_ids(ctx, "Message-ID", own);
    field_ids(ctx, "References", refs);
    if (refs->len == 0) {
        field_ids(ctx, "In-Reply-To", refs);
        if (refs->len > 1)
            g_ptr_array_set_size(refs, 0);
    }
    if (own->len > 0) {
        reply->in_reply_to = g_strdup(g_ptr_array_index(own, 0));
        if (refs->len >= REFERENCES_KEPT)
            g_ptr_array_remove_index(refs, 1);
        g_ptr_array_add(refs, g_strdup(reply->in_reply_to));
    }
    if (refs->len > 0) {
        g_ptr_array_add(refs, NULL);
        reply->references = g_strjoinv(" ", (char **)refs->pdata);
    }
    g_ptr_array_free(own, TRUE);
    g_ptr_array_free(refs, TRUE);
}

int original_reply_read(const mr_outbound_context *ctx, original_reply *reply, mr_err *err)
{
    memset(reply, 0, sizeof *reply);
    reply->to = g_ptr_array_new_with_free_func(g_object_unref);
    if (reply_recipients(ctx, reply->to, err) < 0) {
        original_reply_free(reply);
        return -1;
    }
    reply->subject = reply_subject(ctx);
    thread_fields(ctx, reply);
    return 0;
}

void original_reply_free(original_reply *reply)
{
    if (reply->to != NULL)
        g_ptr_array_free(reply->to, TRUE);
    g_free(reply->subject);
    g_free(reply->in_reply_to);
    g_free(reply->references);
    memset(reply, 0, sizeof *reply);
}
