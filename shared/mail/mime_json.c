/*
 * mime_json.c - a raw message as the JSON a webhook robot posts (SPEC §7,
 * schemas/webhook-v1.json, docs/robots/webhook-payload.md): gmime 3 parses,
 * jansson writes.
 *
 * THE RULES (tests/data/mime/ holds us to them, against Python's email
 * package where it can)
 *
 * Parsing. A leading mbox "From " line is skipped. The header section ends
 * at the first empty line, or at the first line that is neither a field
 * ("name:") nor a continuation (leading blank): that line starts the body,
 * as in Python's email package (input without any header section is all
 * body). gmime then parses leniently: loose RFC 2047, address and
 * parameter rules; 8-bit header bytes read as UTF-8, else windows-1252.
 *
 * Header fields. `headers` lists the top-level fields in their order (the
 * message's own and its Content-* fields, which gmime keeps apart, merged
 * by stream offset), values unfolded and RFC 2047-decoded. `subject` and
 * `from`/`to`/`cc`/`reply_to` come from the first field of that name
 * (groups flattened into their members, display names decoded, an empty
 * name is null); `message_id` without <>; `in_reply_to` is the first msg-id
 * of In-Reply-To, `references` every msg-id of References. `date` is the
 * Date field as RFC 3339 UTC, or null when it is missing or unreadable.
 * gmime 3.2 decodes a run of adjacent B-encoded words of one charset as
 * one base64 stream, so a padded word inside the run cuts the text short
 * at a NUL; such runs are first rewritten into one encoded word holding
 * all of their bytes (encoded_word_runs_merged()).
 *
 * Which parts are the body. Walking the MIME tree from the top:
 *   - a text/plain or text/html leaf is body, unless its
 *     Content-Disposition is "attachment" (the rule of Python's
 *     EmailMessage.get_body() and of mail clients);
 *   - multipart/alternative: for text, the first alternative that holds a
 *     text/plain body; for html, the first that holds a text/html body;
 *     the other alternatives are not body;
 *   - multipart/related: only the root (the part its start parameter
 *     names, else the first) can be body;
 *   - any other multipart (mixed, signed, report, unknown): every child;
 *     `text` joins every text/plain body part in order (a newline between
 *     two where the first does not end in one), `html` likewise;
 *   - message/rfc822 (a forwarded or bounced mail) is not descended into:
 *     its texts are not the outer message's;
 *   - a multipart whose boundary never occurs (or that has none) has no
 *     parts; its preamble, all the content there is, is text/plain body.
 * `text` and `html` are null when there is no such body part.
 *
 * Charsets of bodies. The decoded bytes (base64, quoted-printable,
 * uuencode undone) are converted to UTF-8 from the charset parameter:
 *   - utf-8: invalid sequences become U+FFFD (one per maximal invalid
 *     subpart, as Python and the Unicode standard do it);
 *   - none, us-ascii, or a label iconv does not know: UTF-8 if the bytes
 *     are valid UTF-8, else windows-1252 (8-bit text labelled ASCII or
 *     nothing is mislabelled; those are the two likely truths);
 *   - any other label (gmime's aliases applied): converted by iconv, a
 *     byte invalid in that charset becomes U+FFFD.
 * CRLF line ends of text and html become LF.
 *
 * Attachments. Every leaf that is not body is an attachment, in tree
 * order: real attachments, inline images of multipart/related, other
 * alternatives (text/calendar), and each message/rfc822 part (its
 * content_type message/rfc822, its bytes the forwarded message as gmime
 * writes it back out: the original unless that was broken). filename: the
 * Content-Disposition filename, else the Content-Type name, RFC 2231 and
 * RFC 2047 decoded. disposition: the Content-Disposition if it is "inline"
 * or "attachment"; without one (or with another value) "inline" if the
 * part has a Content-ID, else "attachment".
 *
 * Limits. Parts nested deeper than MR_MIME_DEPTH_LIMIT, and parts after
 * the MR_MIME_PARTS_LIMIT-th, are neither body nor attachments. Header
 * fields after the MR_MIME_FIELDS_LIMIT-th (counted over all header
 * sections) are left out, and so are fields beyond a megabyte of fields
 * or 10,000 mailboxes, and fields that would crash or stall gmime (groups
 * nested by the thousand, thousands of unterminated encoded words: see
 * mime_scan). A message whose MIME structure would cost
 * gmime's parser too much (multiparts nested by the thousand, parts by the
 * ten thousand) is taken apart only up to the point where that begins
 * (see mime_scan).
 *
 * stripped_text: `text` without quoted history and signature, line by
 * line (null when text is null):
 *   1. "-----Original Message-----" (and "----- Original Message -----",
 *      "-----Ursprüngliche Nachricht-----", ...), an Outlook header block
 *      ("From: ..." directly followed by "Sent: ...", or "Von:" and
 *      "Gesendet:"), or a line of underscores directly followed by one:
 *      that line and everything after it go;
 *   2. the first "-- " (or "--") line, the signature separator: it and
 *      everything after it go;
 *   3. an attribution: up to three lines that start with "On ", "Am ",
 *      "Le ", "El ", "Op " or "Il ", end with ":" and say "wrote",
 *      "schrieb", "a écrit", "escribió", "schreef" or "ha scritto"; or
 *      any line ending with ":" that says one of those words and is
 *      followed by a quoted line. When only quoted and empty lines follow
 *      it (a top-posted reply), it and everything after it go; otherwise
 *      (answers between the quotes) only its own lines go;
 *   4. every line whose first non-blank character is ">" goes;
 *   5. a removed stretch leaves one empty line between the lines around
 *      it; trailing blanks of lines and white space around the whole go.
 *
 * spam: null unless there are top-level fields named X-Spam*, X-Rspamd-*
 * or X-Virus-*; then {flag, score, headers}. flag: mr_spam_verdict()
 * (spam.h: the first of X-Spam-Flag (YES/NO), X-Spam-Status ("Yes, ..."/
 * "No, ..."), X-Spam (rspamd: "Yes"/"No")); score: from the first of
 * X-Spam-Score, X-Spam-Status's score=, X-Rspamd-Score. Either is null when no field
 * says it.
 *
 * Every string in the output is valid UTF-8: what is not is repaired with
 * U+FFFD. Nothing a message contains makes the conversion fail.
 */
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

#include <gmime/gmime.h>
#include <jansson.h>

#include "mailrobot/buf.h"
#include "mailrobot/mime_json.h"
#include "mailrobot/spam.h"

#define UTF8_REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */
#define ICONV_CHUNK 4096
#define ADDRESS_GROUP_DEPTH_LIMIT 4
#define ENCODED_WORD_SCAN_LIMIT 256 /* longer "encoded words" are left to gmime */
#define ATTRIBUTION_LINES 3
#define GMIME_NESTING_LIMIT 1024             /* gmime's parser goes no deeper */
#define BOUNDARY_CHECK_WORK_LIMIT 2000000    /* about 10 ms of gmime's boundary checks */
#define MIME_DELIMITER_LIMIT (2 * MR_MIME_PARTS_LIMIT) /* parts gmime is given */
#define FIELD_COLON_LIMIT 1000               /* gmime nests a group per colon, recursively */
#define ENCODED_WORD_SCAN_BUDGET 10000000    /* about 40 ms of gmime's RFC 2047 scanning */
#define HEADER_BYTES_BUDGET (1024 * 1024)    /* header fields gmime is given, all sections */
#define ADDRESS_BUDGET 10000                 /* mailboxes in address fields, all sections */

/* Body kinds a subtree may supply (a bit set). */
enum { WANT_PLAIN = 1, WANT_HTML = 2 };

/* The parsed message and what every part of the conversion needs. */
typedef struct message_view {
    const unsigned char *raw; /* the message as given (the spam verdict reads it) */
    size_t raw_len;
    GMimeMessage *message;
    GMimeParserOptions *options;
    GPtrArray *fields; /* GMimeHeader *: the top-level fields in order */
} message_view;

/* The walk over the MIME tree: what it found so far. */
typedef struct mime_walk {
    GMimeParserOptions *options;
    mr_buf text;          /* the text/plain bodies joined */
    mr_buf html;          /* the text/html bodies joined */
    int have_text, have_html;
    json_t *attachments;  /* array */
    int parts_visited;
    int failed;           /* memory ran out; err says where */
    mr_err *err;
} mime_walk;

/* --- bytes and UTF-8 ------------------------------------------------------- */

/* mr_buf_append, for n that may be 0 (mr_buf_append of nothing to a buffer
 * that never allocated writes its NUL through a NULL pointer). */
static int bytes_append(mr_buf *buf, const void *p, size_t n, mr_err *err)
{
    return n == 0 ? 0 : mr_buf_append(buf, p, n, err);
}

/*
 * The length of the valid UTF-8 sequence at p (at most n bytes), or, when
 * it is invalid, minus the length of its maximal invalid subpart (Unicode
 * 3.9, table 3-7), which becomes one U+FFFD. Overlongs, surrogates and code
 * points above U+10FFFF are invalid, exactly as for jansson.
 */
static int utf8_sequence(const unsigned char *p, size_t n)
{
    unsigned char lo = 0x80, hi = 0xBF, c = p[0];
    int need;

    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else {
        return -1;
    }
    for (int i = 1; i <= need; i++) {
        if ((size_t)i >= n || p[i] < lo || p[i] > hi)
            return -i;
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

static int utf8_valid(const unsigned char *p, size_t n)
{
    size_t i = 0;

    while (i < n) {
        int k = utf8_sequence(p + i, n - i);

        if (k < 0)
            return 0;
        i += (size_t)k;
    }
    return 1;
}

/* Appends p as UTF-8, invalid subparts replaced by U+FFFD. */
static int utf8_append_repaired(mr_buf *out, const unsigned char *p, size_t n, mr_err *err)
{
    size_t i = 0, start = 0;

    while (i < n) {
        int k = utf8_sequence(p + i, n - i);

        if (k > 0) {
            i += (size_t)k;
            continue;
        }
        if (bytes_append(out, p + start, i - start, err) < 0
            || mr_buf_append_str(out, UTF8_REPLACEMENT, err) < 0)
            return -1;
        i += (size_t)-k;
        start = i;
    }
    return bytes_append(out, p + start, n - start, err);
}

/* --- JSON values ------------------------------------------------------------ */

/* A JSON string of n bytes of text (repaired if it is not valid UTF-8), or
 * NULL when memory runs out. */
static json_t *json_text(const char *s, size_t n)
{
    mr_buf repaired;
    json_t *value;

    if (utf8_valid((const unsigned char *)s, n))
        return json_stringn(s, n);
    mr_buf_init(&repaired, 3 * n + 1);
    if (utf8_append_repaired(&repaired, (const unsigned char *)s, n, NULL) < 0) {
        mr_buf_free(&repaired);
        return NULL;
    }
    value = json_stringn((const char *)repaired.data, repaired.len);
    mr_buf_free(&repaired);
    return value;
}

/* A C string as JSON, null for NULL. */
static json_t *json_text_or_null(const char *s)
{
    return s != NULL ? json_text(s, strlen(s)) : json_null();
}

/* Like json_text_or_null, and frees s (g_malloc'd). */
static json_t *json_text_take(char *s)
{
    json_t *value = json_text_or_null(s);

    g_free(s);
    return value;
}

/* o, or NULL (and o released) if filling it failed: the end of every
 * function that builds an object. */
static json_t *json_complete(json_t *o, int failed)
{
    if (failed) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The text in a buffer, from the first to the last byte that is not white
 * space. */
static json_t *json_text_trimmed(const mr_buf *buf)
{
    const char *s = buf->data != NULL ? (const char *)buf->data : "";
    size_t start = 0, end = buf->len;

    while (start < end && strchr(" \t\r\n", s[start]) != NULL)
        start++;
    while (end > start && strchr(" \t\r\n", s[end - 1]) != NULL)
        end--;
    return json_text(s + start, end - start);
}

/* --- body text: charsets ---------------------------------------------------- */

/* Whether charset names US-ASCII (*utf8 = 0) or UTF-8 (*utf8 = 1). */
static int ascii_or_utf8_label(const char *charset, int *utf8)
{
    static const char *const ascii_labels[] = {"us-ascii", "ascii", "us_ascii", "ansi_x3.4-1968"};

    *utf8 = g_ascii_strcasecmp(charset, "utf-8") == 0 || g_ascii_strcasecmp(charset, "utf8") == 0;
    for (size_t i = 0; i < G_N_ELEMENTS(ascii_labels) && !*utf8; i++)
        if (g_ascii_strcasecmp(charset, ascii_labels[i]) == 0)
            return 1;
    return *utf8;
}

/* Converts with cd to UTF-8; a byte iconv rejects becomes U+FFFD. */
static int iconv_append(iconv_t cd, const unsigned char *in, size_t n, mr_buf *out, mr_err *err)
{
    char chunk[ICONV_CHUNK];
    char *inp = (char *)in;
    size_t inleft = n;

    for (;;) {
        char *outp = chunk;
        size_t outleft = sizeof chunk;
        size_t rc = iconv(cd, &inp, &inleft, &outp, &outleft);
        int saved = errno;

        if (bytes_append(out, chunk, (size_t)(outp - chunk), err) < 0)
            return -1;
        if (inleft == 0)
            return 0;
        if (rc == (size_t)-1 && saved == E2BIG)
            continue;
        if (mr_buf_append_str(out, UTF8_REPLACEMENT, err) < 0)
            return -1;
        inp++;
        inleft--;
    }
}

/* Appends n bytes in charset (NULL: none declared) as UTF-8. */
static int charset_append(const char *charset, const unsigned char *p, size_t n, mr_buf *out,
                          mr_err *err)
{
    iconv_t cd = (iconv_t)-1;
    int utf8 = 0, rc;

    if (charset == NULL || ascii_or_utf8_label(charset, &utf8)
        || (cd = g_mime_iconv_open("UTF-8", charset)) == (iconv_t)-1) {
        if (utf8 || utf8_valid(p, n))
            return utf8_append_repaired(out, p, n, err);
        if ((cd = g_mime_iconv_open("UTF-8", "windows-1252")) == (iconv_t)-1)
            return utf8_append_repaired(out, p, n, err);
    }
    rc = iconv_append(cd, p, n, out, err);
    g_mime_iconv_close(cd);
    return rc;
}

/* Turns CRLF into LF from offset start on. */
static void crlf_to_lf(mr_buf *buf, size_t start)
{
    size_t to = start;

    for (size_t from = start; from < buf->len; from++) {
        if (buf->data[from] == '\r' && from + 1 < buf->len && buf->data[from + 1] == '\n')
            continue;
        buf->data[to++] = buf->data[from];
    }
    buf->len = to;
    if (buf->data != NULL)
        buf->data[to] = '\0';
}

/* Appends one body part's text to a body, a newline between parts. */
static int body_append(mr_buf *body, int *have, const char *charset, const unsigned char *p,
                       size_t n, mr_err *err)
{
    size_t start;

    if (*have && body->len > 0 && body->data[body->len - 1] != '\n'
        && mr_buf_append(body, "\n", 1, err) < 0)
        return -1;
    *have = 1;
    start = body->len;
    if (charset_append(charset, p, n, body, err) < 0)
        return -1;
    crlf_to_lf(body, start);
    return 0;
}

/* --- RFC 2047: runs of encoded words ---------------------------------------- */

/* An encoded word "=?charset?B?payload?=" (or ?Q?). */
typedef struct encoded_word {
    const char *charset, *payload, *end; /* end: just after "?=" */
    size_t charset_len, payload_len;
    char encoding;                       /* 'B' or 'Q' */
} encoded_word;

/* Reads the encoded word at p, if there is one. */
static int encoded_word_at(const char *p, encoded_word *w)
{
    const char *q = p + 2;
    size_t n = 0;

    if (p[0] != '=' || p[1] != '?')
        return 0;
    while (q[n] != '\0' && q[n] != '?' && !g_ascii_isspace(q[n]) && n < ENCODED_WORD_SCAN_LIMIT)
        n++;
    if (q[n] != '?' || n == 0 || strchr("BbQq", q[n + 1]) == NULL || q[n + 1] == '\0'
        || q[n + 2] != '?')
        return 0;
    w->charset = q;
    w->charset_len = n;
    w->encoding = g_ascii_toupper(q[n + 1]);
    w->payload = q + n + 3;
    for (n = 0; n < ENCODED_WORD_SCAN_LIMIT; n++) {
        if (w->payload[n] == '\0' || g_ascii_isspace(w->payload[n]))
            return 0;
        if (w->payload[n] == '?' && w->payload[n + 1] == '=')
            break;
    }
    w->payload_len = n;
    w->end = w->payload + n + 2;
    return n < ENCODED_WORD_SCAN_LIMIT;
}

/* The B-encoded word after the blanks at p with the same charset as
 * first, if there is one. */
static int next_word_of_run(const char *p, const encoded_word *first, encoded_word *next)
{
    while (g_ascii_isspace(*p))
        p++;
    return encoded_word_at(p, next) && next->encoding == 'B'
           && next->charset_len == first->charset_len
           && g_ascii_strncasecmp(next->charset, first->charset, first->charset_len) == 0;
}

/* Appends the run of B-encoded words that starts with first as one word. */
static void merge_run(const encoded_word *first, GString *out)
{
    GByteArray *bytes = g_byte_array_new();
    encoded_word w = *first;
    const char *end;
    gchar *encoded;

    do {
        gchar *payload = g_strndup(w.payload, w.payload_len);
        gsize n = 0;
        guchar *decoded = g_base64_decode(payload, &n);

        g_byte_array_append(bytes, decoded, (guint)n);
        g_free(decoded);
        g_free(payload);
        end = w.end;
    } while (next_word_of_run(end, first, &w));
    encoded = g_base64_encode(bytes->data, bytes->len);
    g_string_append_printf(out, "=?%.*s?B?%s?=", (int)first->charset_len, first->charset, encoded);
    g_free(encoded);
    g_byte_array_free(bytes, TRUE);
}

/* Where the run of B-encoded words that starts with first ends, and
 * whether a word before its last one is padded ("...="): what gmime 3.2
 * misdecodes. */
static const char *run_end(const encoded_word *first, int *padded_inside)
{
    encoded_word w = *first, next;

    *padded_inside = 0;
    while (next_word_of_run(w.end, first, &next)) {
        *padded_inside |= w.payload_len > 0 && w.payload[w.payload_len - 1] == '=';
        w = next;
    }
    return w.end;
}

/* value with every run of adjacent B-encoded words of one charset that
 * gmime would misdecode rewritten into one encoded word holding all of
 * their bytes (which also keeps characters split across words whole).
 * NULL when there is no such run: value is fine as it is. */
static char *encoded_word_runs_merged(const char *value)
{
    GString *out = NULL;
    const char *p = value, *copied = value;
    encoded_word w;

    while ((p = strstr(p, "=?")) != NULL) {
        int padded_inside;
        const char *end;

        if (!encoded_word_at(p, &w) || w.encoding != 'B') {
            p += 2;
            continue;
        }
        end = run_end(&w, &padded_inside);
        if (padded_inside) {
            if (out == NULL)
                out = g_string_new(NULL);
            g_string_append_len(out, copied, p - copied);
            merge_run(&w, out);
            copied = end;
        }
        p = end;
    }
    if (out == NULL)
        return NULL;
    g_string_append(out, copied);
    return g_string_free(out, FALSE);
}

/* A field's value, unfolded and decoded; g_free it. */
static char *field_decoded(GMimeHeader *field, GMimeParserOptions *options)
{
    char *merged = encoded_word_runs_merged(g_mime_header_get_raw_value(field));
    char *unfolded, *decoded;

    if (merged == NULL)
        return g_strdup(g_mime_header_get_value(field));
    unfolded = g_mime_utils_header_unfold(merged);
    decoded = g_mime_utils_header_decode_text(options, unfolded);
    g_free(unfolded);
    g_free(merged);
    return decoded;
}

/* --- header fields -------------------------------------------------------------- */

static void header_list_collect(GMimeHeaderList *list, GPtrArray *into)
{
    int n = list != NULL ? g_mime_header_list_get_count(list) : 0;

    for (int i = 0; i < n; i++)
        g_ptr_array_add(into, g_mime_header_list_get_header_at(list, i));
}

static gint header_offset_order(gconstpointer a, gconstpointer b)
{
    gint64 x = g_mime_header_get_offset(*(GMimeHeader *const *)a);
    gint64 y = g_mime_header_get_offset(*(GMimeHeader *const *)b);

    if (x < 0 || y < 0) /* not read from the stream: after those that were */
        return (x < 0) - (y < 0);
    return (x > y) - (x < y);
}

/* The top-level fields in stream order: the message's own and its body's
 * Content-* fields, which gmime keeps in two lists. */
static GPtrArray *header_fields_in_order(GMimeMessage *message)
{
    GPtrArray *fields = g_ptr_array_new();
    GMimeObject *body = g_mime_message_get_mime_part(message);

    header_list_collect(g_mime_object_get_header_list(GMIME_OBJECT(message)), fields);
    if (body != NULL)
        header_list_collect(g_mime_object_get_header_list(body), fields);
    g_ptr_array_sort(fields, header_offset_order);
    return fields;
}

/* The first field called name, or NULL. */
static GMimeHeader *first_field(const message_view *v, const char *name)
{
    for (guint i = 0; i < v->fields->len; i++) {
        GMimeHeader *field = g_ptr_array_index(v->fields, i);

        if (g_ascii_strcasecmp(g_mime_header_get_name(field), name) == 0)
            return field;
    }
    return NULL;
}

/* The decoded value of the first field called name, or NULL; g_free it. */
static char *first_field_decoded(const message_view *v, const char *name)
{
    GMimeHeader *field = first_field(v, name);

    return field != NULL ? field_decoded(field, v->options) : NULL;
}

static json_t *json_name_value(GMimeHeader *field, GMimeParserOptions *options)
{
    json_t *pair = json_object();
    int failed = pair == NULL;

    if (!failed) {
        failed |= json_object_set_new(pair, "name", json_text_or_null(g_mime_header_get_name(field)));
        failed |= json_object_set_new(pair, "value", json_text_take(field_decoded(field, options)));
    }
    return json_complete(pair, failed);
}

static int spam_field(const char *name)
{
    return g_ascii_strncasecmp(name, "X-Spam", 6) == 0
           || g_ascii_strncasecmp(name, "X-Rspamd-", 9) == 0
           || g_ascii_strncasecmp(name, "X-Virus-", 8) == 0;
}

/* [{name, value}] of every field for which keep(name) holds (NULL: all). */
static json_t *json_fields(const message_view *v, int (*keep)(const char *name))
{
    json_t *array = json_array();

    for (guint i = 0; array != NULL && i < v->fields->len; i++) {
        GMimeHeader *field = g_ptr_array_index(v->fields, i);

        if (keep != NULL && !keep(g_mime_header_get_name(field)))
            continue;
        if (json_array_append_new(array, json_name_value(field, v->options)) < 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

/* --- addresses, ids, date --------------------------------------------------------- */

/* {name, address} of a mailbox; an empty name is null. */
static json_t *json_mailbox(InternetAddress *ia)
{
    const char *name = internet_address_get_name(ia);
    const char *address = internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(ia));
    json_t *a = json_object();
    int failed = a == NULL;

    if (!failed) {
        failed |= json_object_set_new(a, "name", json_text_or_null(name != NULL && *name ? name : NULL));
        failed |= json_object_set_new(a, "address", json_text_or_null(address != NULL ? address : ""));
    }
    return json_complete(a, failed);
}

/* Appends the mailboxes of list to array, those of groups flattened. */
static int addresses_append(json_t *array, InternetAddressList *list, int depth)
{
    int n = list != NULL ? internet_address_list_length(list) : 0;

    for (int i = 0; i < n; i++) {
        InternetAddress *ia = internet_address_list_get_address(list, i);

        if (INTERNET_ADDRESS_IS_MAILBOX(ia)) {
            if (json_array_append_new(array, json_mailbox(ia)) < 0)
                return -1;
        } else if (INTERNET_ADDRESS_IS_GROUP(ia) && depth < ADDRESS_GROUP_DEPTH_LIMIT) {
            InternetAddressGroup *group = INTERNET_ADDRESS_GROUP(ia);

            if (addresses_append(array, internet_address_group_get_members(group), depth + 1) < 0)
                return -1;
        }
    }
    return 0;
}

/* The mailboxes of the first field called name. */
static json_t *json_addresses(const message_view *v, const char *name)
{
    GMimeHeader *field = first_field(v, name);
    const char *raw = field != NULL ? g_mime_header_get_raw_value(field) : NULL;
    char *merged = raw != NULL ? encoded_word_runs_merged(raw) : NULL;
    InternetAddressList *list = raw != NULL ? internet_address_list_parse(v->options, merged ? merged : raw)
                                            : NULL;
    json_t *array = json_array();

    if (array != NULL && addresses_append(array, list, 0) < 0) {
        json_decref(array);
        array = NULL;
    }
    if (list != NULL)
        g_object_unref(list);
    g_free(merged);
    return array;
}

static json_t *json_reference_list(GMimeReferences *refs)
{
    int n = refs != NULL ? g_mime_references_length(refs) : 0;
    json_t *array = json_array();

    for (int i = 0; i < n && array != NULL; i++) {
        const char *id = g_mime_references_get_message_id(refs, i);

        if (json_array_append_new(array, json_text_or_null(id)) < 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

/* The msg-ids of the first field called name, without <>: all of them as
 * an array, or (first_only) the first as a string or null. */
static json_t *json_message_ids(const message_view *v, const char *name, int first_only)
{
    GMimeHeader *field = first_field(v, name);
    GMimeReferences *refs = field != NULL
                                ? g_mime_references_parse(v->options, g_mime_header_get_value(field))
                                : NULL;
    json_t *result;

    if (first_only)
        result = json_text_or_null(refs != NULL && g_mime_references_length(refs) > 0
                                       ? g_mime_references_get_message_id(refs, 0)
                                       : NULL);
    else
        result = json_reference_list(refs);
    if (refs != NULL)
        g_mime_references_free(refs);
    return result;
}

static json_t *json_date(GMimeMessage *message)
{
    GDateTime *date = g_mime_message_get_date(message);
    GDateTime *utc = date != NULL ? g_date_time_to_utc(date) : NULL;
    json_t *value;

    if (utc == NULL)
        return json_null();
    value = json_text_take(g_date_time_format(utc, "%Y-%m-%dT%H:%M:%SZ"));
    g_date_time_unref(utc);
    return value;
}

/* --- spam verdicts ------------------------------------------------------------- */

/* A decimal number at the start of s (blanks skipped): [+-]digits[.digits]. */
static int parse_score(const char *s, double *score)
{
    char number[64];
    size_t n = 0;

    while (*s == ' ' || *s == '\t')
        s++;
    if (*s == '-' || *s == '+')
        number[n++] = *s++;
    if (!g_ascii_isdigit(*s))
        return 0;
    while ((g_ascii_isdigit(*s) || *s == '.') && n < sizeof number - 1)
        number[n++] = *s++;
    number[n] = '\0';
    *score = g_ascii_strtod(number, NULL);
    return 1;
}

static const char *first_field_value(const message_view *v, const char *name)
{
    GMimeHeader *field = first_field(v, name);

    return field != NULL ? g_mime_header_get_value(field) : NULL;
}

/* The verdict as spam.h defines it, from the raw header section: the
 * worker's per-robot spam policy reads the same function. */
static json_t *spam_flag(const message_view *v)
{
    int flag = mr_spam_verdict(v->raw, v->raw_len);

    return flag >= 0 ? json_boolean(flag) : json_null();
}

static json_t *spam_score(const message_view *v)
{
    const char *status = first_field_value(v, "X-Spam-Status");
    const char *value;
    double score;

    if ((value = first_field_value(v, "X-Spam-Score")) != NULL && parse_score(value, &score))
        return json_real(score);
    if (status != NULL && (value = strstr(status, "score=")) != NULL && parse_score(value + 6, &score))
        return json_real(score);
    if ((value = first_field_value(v, "X-Rspamd-Score")) != NULL && parse_score(value, &score))
        return json_real(score);
    return json_null();
}

static json_t *json_spam(const message_view *v)
{
    json_t *spam, *headers = json_fields(v, spam_field);
    int failed;

    if (headers == NULL)
        return NULL;
    if (json_array_size(headers) == 0) {
        json_decref(headers);
        return json_null();
    }
    spam = json_object();
    failed = spam == NULL;
    if (!failed) {
        failed |= json_object_set_new(spam, "flag", spam_flag(v));
        failed |= json_object_set_new(spam, "score", spam_score(v));
        failed |= json_object_set_new(spam, "headers", json_incref(headers));
    }
    json_decref(headers);
    return json_complete(spam, failed);
}

/* --- MIME parts ------------------------------------------------------------- */

/* The decoded content of a leaf (transfer encoding undone), in a memory
 * stream the caller unrefs. */
static GMimeStream *part_decoded(GMimePart *part)
{
    GMimeStream *stream = g_mime_stream_mem_new();
    GMimeDataWrapper *content = g_mime_part_get_content(part);

    if (content != NULL)
        g_mime_data_wrapper_write_to_stream(content, stream);
    return stream;
}

/* A forwarded message's bytes, in a memory stream the caller unrefs. */
static GMimeStream *message_part_bytes(GMimeMessagePart *part)
{
    GMimeStream *stream = g_mime_stream_mem_new();
    GMimeMessage *message = g_mime_message_part_get_message(part);

    if (message != NULL)
        g_mime_object_write_to_stream(GMIME_OBJECT(message), NULL, stream);
    return stream;
}

static int is_type(GMimeObject *object, const char *type, const char *subtype)
{
    GMimeContentType *ct = g_mime_object_get_content_type(object);

    return ct != NULL && g_mime_content_type_is_type(ct, type, subtype);
}

static int is_attachment_disposition(GMimeObject *object)
{
    GMimeContentDisposition *cd = g_mime_object_get_content_disposition(object);

    return cd != NULL && g_mime_content_disposition_is_attachment(cd);
}

/* The body kind a leaf is (0: none). */
static int leaf_body_kind(GMimeObject *object)
{
    if (!GMIME_IS_PART(object) || is_attachment_disposition(object))
        return 0;
    if (is_type(object, "text", "plain"))
        return WANT_PLAIN;
    if (is_type(object, "text", "html"))
        return WANT_HTML;
    return 0;
}

/* The root of a multipart/related: the part its start parameter names,
 * else the first. */
static GMimeObject *related_root(GMimeMultipart *related)
{
    const char *start = g_mime_object_get_content_type_parameter(GMIME_OBJECT(related), "start");
    int count = g_mime_multipart_get_count(related);
    GMimeObject *root = count > 0 ? g_mime_multipart_get_part(related, 0) : NULL;
    char *wanted;

    if (start == NULL)
        return root;
    wanted = g_strstrip(g_strdelimit(g_strdup(start), "<>", ' '));
    for (int i = 0; i < count; i++) {
        GMimeObject *child = g_mime_multipart_get_part(related, i);
        const char *cid = g_mime_object_get_content_id(child);

        if (cid != NULL && strcmp(cid, wanted) == 0) {
            root = child;
            break;
        }
    }
    g_free(wanted);
    return root;
}

/* Which of the body kinds in want the subtree at object supplies. */
static int body_kinds(GMimeObject *object, int want, int depth)
{
    GMimeMultipart *multipart;
    int found = 0, count;

    if (depth > MR_MIME_DEPTH_LIMIT)
        return 0;
    if (!GMIME_IS_MULTIPART(object))
        return leaf_body_kind(object) & want;
    multipart = GMIME_MULTIPART(object);
    count = g_mime_multipart_get_count(multipart);
    if (count == 0)
        return g_mime_multipart_get_prologue(multipart) != NULL ? WANT_PLAIN & want : 0;
    if (is_type(object, "multipart", "related")) {
        GMimeObject *root = related_root(multipart);

        return root != NULL ? body_kinds(root, want, depth + 1) : 0;
    }
    for (int i = 0; i < count && found != want; i++)
        found |= body_kinds(g_mime_multipart_get_part(multipart, i), want, depth + 1);
    return found;
}

/* --- attachments ------------------------------------------------------------ */

/* A parameter of one of object's fields (Content-Disposition,
 * Content-Type), read again if gmime misdecoded its encoded words;
 * g_free it. */
static char *field_parameter(GMimeObject *object, const char *field_name, const char *parameter,
                             GMimeParserOptions *options)
{
    GMimeHeaderList *list = g_mime_object_get_header_list(object);
    GMimeHeader *field = list != NULL ? g_mime_header_list_get_header(list, field_name) : NULL;
    char *merged = field != NULL ? encoded_word_runs_merged(g_mime_header_get_raw_value(field)) : NULL;
    char *value = NULL;

    if (merged == NULL && strcmp(field_name, "Content-Type") == 0)
        return g_strdup(g_mime_object_get_content_type_parameter(object, parameter));
    if (merged == NULL)
        return g_strdup(g_mime_object_get_content_disposition_parameter(object, parameter));
    if (strcmp(field_name, "Content-Type") == 0) {
        GMimeContentType *ct = g_mime_content_type_parse(options, merged);

        value = ct != NULL ? g_strdup(g_mime_content_type_get_parameter(ct, parameter)) : NULL;
        if (ct != NULL)
            g_object_unref(ct);
    } else {
        GMimeContentDisposition *cd = g_mime_content_disposition_parse(options, merged);

        value = cd != NULL ? g_strdup(g_mime_content_disposition_get_parameter(cd, parameter)) : NULL;
        if (cd != NULL)
            g_object_unref(cd);
    }
    g_free(merged);
    return value;
}

/* The Content-Disposition filename, else the Content-Type name. */
static char *part_filename(GMimeObject *object, GMimeParserOptions *options)
{
    char *name = field_parameter(object, "Content-Disposition", "filename", options);

    return name != NULL ? name : field_parameter(object, "Content-Type", "name", options);
}

static const char *part_disposition(GMimeObject *object)
{
    const char *value = g_mime_object_get_disposition(object);

    if (value != NULL && g_ascii_strcasecmp(value, "inline") == 0)
        return "inline";
    if (value != NULL && g_ascii_strcasecmp(value, "attachment") == 0)
        return "attachment";
    return g_mime_object_get_content_id(object) != NULL ? "inline" : "attachment";
}

/* "type/subtype" in lower case. */
static json_t *json_content_type(GMimeObject *object)
{
    GMimeContentType *ct = g_mime_object_get_content_type(object);
    char *mime_type = ct != NULL ? g_mime_content_type_get_mime_type(ct)
                                 : g_strdup("application/octet-stream");
    char *lower = g_ascii_strdown(mime_type, -1);

    g_free(mime_type);
    return json_text_take(lower);
}

static json_t *json_base64(const GByteArray *bytes)
{
    gchar *encoded = g_base64_encode(bytes->data, bytes->len);
    json_t *value = json_string(encoded);

    g_free(encoded);
    return value;
}

/* One attachment object for a leaf or a message/rfc822 part. */
static json_t *attachment_json(GMimeObject *object, GMimeParserOptions *options)
{
    GMimeStream *stream = GMIME_IS_MESSAGE_PART(object)
                              ? message_part_bytes(GMIME_MESSAGE_PART(object))
                              : part_decoded(GMIME_PART(object));
    GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream));
    json_t *a = json_object();
    int failed = a == NULL;

    if (!failed) {
        failed |= json_object_set_new(a, "filename", json_text_take(part_filename(object, options)));
        failed |= json_object_set_new(a, "content_type", json_content_type(object));
        failed |= json_object_set_new(a, "size", json_integer((json_int_t)bytes->len));
        failed |= json_object_set_new(a, "content_id",
                                      json_text_or_null(g_mime_object_get_content_id(object)));
        failed |= json_object_set_new(a, "disposition", json_string(part_disposition(object)));
        failed |= json_object_set_new(a, "content_base64", json_base64(bytes));
    }
    g_object_unref(stream);
    return json_complete(a, failed);
}

/* --- the walk over the MIME tree ------------------------------------------- */

static void walk_attachment(mime_walk *w, GMimeObject *object)
{
    if (json_array_append_new(w->attachments, attachment_json(object, w->options)) < 0) {
        mr_err_set(w->err, "out of memory building an attachment");
        w->failed = 1;
    }
}

static void walk_body_leaf(mime_walk *w, GMimeObject *object, int kind)
{
    GMimeStream *stream = part_decoded(GMIME_PART(object));
    GByteArray *bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(stream));
    const char *charset = g_mime_object_get_content_type_parameter(object, "charset");

    if (body_append(kind == WANT_PLAIN ? &w->text : &w->html,
                    kind == WANT_PLAIN ? &w->have_text : &w->have_html, charset, bytes->data,
                    bytes->len, w->err) < 0)
        w->failed = 1;
    g_object_unref(stream);
}

/* A multipart without parts: its boundary never came. The preamble is all
 * the content there is; it is taken as text/plain. */
static void walk_partless(mime_walk *w, GMimeMultipart *multipart, int want)
{
    const char *preamble = g_mime_multipart_get_prologue(multipart);

    if ((want & WANT_PLAIN) && preamble != NULL
        && body_append(&w->text, &w->have_text, NULL, (const unsigned char *)preamble,
                       strlen(preamble), w->err) < 0)
        w->failed = 1;
}

static void walk(mime_walk *w, GMimeObject *object, int want, int depth);

static void walk_alternative(mime_walk *w, GMimeMultipart *alternative, int want, int depth)
{
    int count = g_mime_multipart_get_count(alternative), plain = -1, html = -1;

    for (int i = 0; i < count; i++) {
        int kinds = body_kinds(g_mime_multipart_get_part(alternative, i), want, depth + 1);

        if (plain < 0 && (kinds & WANT_PLAIN))
            plain = i;
        if (html < 0 && (kinds & WANT_HTML))
            html = i;
    }
    for (int i = 0; i < count; i++)
        walk(w, g_mime_multipart_get_part(alternative, i),
             (i == plain ? WANT_PLAIN : 0) | (i == html ? WANT_HTML : 0), depth + 1);
}

static void walk_multipart(mime_walk *w, GMimeMultipart *multipart, int want, int depth)
{
    GMimeObject *object = GMIME_OBJECT(multipart);
    GMimeObject *root = NULL;
    int count = g_mime_multipart_get_count(multipart);

    if (count == 0) {
        walk_partless(w, multipart, want);
        return;
    }
    if (is_type(object, "multipart", "alternative")) {
        walk_alternative(w, multipart, want, depth);
        return;
    }
    if (is_type(object, "multipart", "related"))
        root = related_root(multipart);
    for (int i = 0; i < count; i++) {
        GMimeObject *child = g_mime_multipart_get_part(multipart, i);

        walk(w, child, root == NULL || child == root ? want : 0, depth + 1);
    }
}

/* Visits object and what is below it: body leaves of the kinds in want
 * add to text and html, other leaves are attachments. */
static void walk(mime_walk *w, GMimeObject *object, int want, int depth)
{
    int kind;

    if (w->failed || depth > MR_MIME_DEPTH_LIMIT || w->parts_visited >= MR_MIME_PARTS_LIMIT)
        return;
    w->parts_visited++;
    if (GMIME_IS_MULTIPART(object)) {
        walk_multipart(w, GMIME_MULTIPART(object), want, depth);
        return;
    }
    if (!GMIME_IS_PART(object) && !GMIME_IS_MESSAGE_PART(object))
        return;
    kind = leaf_body_kind(object) & want;
    if (kind != 0)
        walk_body_leaf(w, object, kind);
    else
        walk_attachment(w, object);
}

/* --- stripped_text ------------------------------------------------------------ */

typedef struct text_line {
    const char *p;
    size_t n;     /* without the newline */
    int removed;
} text_line;

/* How attributions start, and the verbs they use, per language. */
static const char *const attribution_starts[] = {"On ", "Am ", "Le ", "El ", "Op ", "Il "};
static const char *const attribution_verbs[] = {"wrote", "schrieb", "a écrit", "escribió",
                                                "schreef", "ha scritto"};

static const char *const original_message_markers[] = {
    "original message", "ursprüngliche nachricht", "message d'origine", "mensaje original",
};

static int line_blank(const text_line *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->p[i] != ' ' && l->p[i] != '\t' && l->p[i] != '\r')
            return 0;
    return 1;
}

static int line_quoted(const text_line *l)
{
    size_t i = 0;

    while (i < l->n && (l->p[i] == ' ' || l->p[i] == '\t'))
        i++;
    return i < l->n && l->p[i] == '>';
}

/* The line's length without trailing blanks. */
static size_t line_trimmed_len(const text_line *l)
{
    size_t n = l->n;

    while (n > 0 && (l->p[n - 1] == ' ' || l->p[n - 1] == '\t' || l->p[n - 1] == '\r'))
        n--;
    return n;
}

static int line_starts(const text_line *l, const char *prefix)
{
    size_t n = strlen(prefix);

    return l->n >= n && g_ascii_strncasecmp(l->p, prefix, n) == 0;
}

static int line_ends_with_colon(const text_line *l)
{
    size_t n = line_trimmed_len(l);

    return n > 0 && l->p[n - 1] == ':';
}

static int line_has_attribution_verb(const text_line *l)
{
    for (size_t i = 0; i < G_N_ELEMENTS(attribution_verbs); i++)
        if (memmem(l->p, l->n, attribution_verbs[i], strlen(attribution_verbs[i])) != NULL)
            return 1;
    return 0;
}

/* "-----Original Message-----" and its translations. */
static int line_original_message(const text_line *l)
{
    size_t len = line_trimmed_len(l), start = 0, end;
    char *words;
    int match = 0;

    while (start < len && (l->p[start] == '-' || l->p[start] == ' '))
        start++;
    end = len;
    while (end > start && (l->p[end - 1] == '-' || l->p[end - 1] == ' '))
        end--;
    if (start < 2 || len - end < 2 || end == start)
        return 0;
    words = g_ascii_strdown(l->p + start, (gssize)(end - start));
    for (size_t i = 0; i < G_N_ELEMENTS(original_message_markers); i++)
        match |= strcmp(words, original_message_markers[i]) == 0;
    g_free(words);
    return match;
}

static int line_underscores(const text_line *l)
{
    size_t len = line_trimmed_len(l);

    if (len < 10)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (l->p[i] != '_')
            return 0;
    return 1;
}

/* Outlook's "From: ..." / "Sent: ..." block starts at line i. */
static int outlook_header_block(const text_line *lines, size_t i, size_t count)
{
    return i + 1 < count
           && ((line_starts(&lines[i], "From: ") && line_starts(&lines[i + 1], "Sent: "))
               || (line_starts(&lines[i], "Von: ") && line_starts(&lines[i + 1], "Gesendet: ")));
}

/* Step 1: where the original message below the reply starts (or count). */
static size_t find_original_message(const text_line *lines, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (line_quoted(&lines[i]))
            continue;
        if (line_original_message(&lines[i]) || outlook_header_block(lines, i, count)
            || (line_underscores(&lines[i]) && outlook_header_block(lines, i + 1, count)))
            return i;
    }
    return count;
}

/* Step 2: the signature separator (or count). */
static size_t find_signature(const text_line *lines, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if ((lines[i].n == 3 && memcmp(lines[i].p, "-- ", 3) == 0)
            || (lines[i].n == 2 && memcmp(lines[i].p, "--", 2) == 0))
            return i;
    return count;
}

/* The next line after i that is not blank is quoted. */
static int quote_follows(const text_line *lines, size_t i, size_t count)
{
    for (size_t j = i + 1; j < count; j++)
        if (!line_blank(&lines[j]))
            return line_quoted(&lines[j]);
    return 0;
}

static int line_starts_attribution(const text_line *l)
{
    for (size_t i = 0; i < G_N_ELEMENTS(attribution_starts); i++)
        if (line_starts(l, attribution_starts[i]))
            return 1;
    return 0;
}

/* If an attribution starts at line i, the index after its last line. */
static size_t attribution_end(const text_line *lines, size_t i, size_t count)
{
    int verb = 0;

    if (line_quoted(&lines[i]) || line_blank(&lines[i]))
        return 0;
    if (line_ends_with_colon(&lines[i]) && line_has_attribution_verb(&lines[i])
        && quote_follows(lines, i, count))
        return i + 1;
    if (!line_starts_attribution(&lines[i]))
        return 0;
    for (size_t j = i; j < count && j < i + ATTRIBUTION_LINES && !line_blank(&lines[j]); j++) {
        verb |= line_has_attribution_verb(&lines[j]);
        if (verb && line_ends_with_colon(&lines[j]))
            return j + 1;
    }
    return 0;
}

/* Step 3. Returns the new end of the text. */
static size_t drop_attribution(text_line *lines, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        size_t end = attribution_end(lines, i, count), j = end;

        if (end == 0)
            continue;
        while (j < count && (line_blank(&lines[j]) || line_quoted(&lines[j])))
            j++;
        if (j == count)
            return i;
        for (j = i; j < end; j++)
            lines[j].removed = 1;
        return count;
    }
    return count;
}

/* Step 5: the kept lines, one empty line for each removed stretch. */
static int render_kept_lines(const text_line *lines, size_t count, mr_buf *out, mr_err *err)
{
    size_t blanks = 0;
    int gap = 0;

    for (size_t i = 0; i < count; i++) {
        if (lines[i].removed || line_blank(&lines[i])) {
            gap |= lines[i].removed;
            blanks++;
            continue;
        }
        if (out->len > 0) {
            size_t newlines = 1 + (gap ? 1 : blanks);

            for (size_t k = 0; k < newlines; k++)
                if (mr_buf_append(out, "\n", 1, err) < 0)
                    return -1;
        }
        if (bytes_append(out, lines[i].p, line_trimmed_len(&lines[i]), err) < 0)
            return -1;
        blanks = 0;
        gap = 0;
    }
    return 0;
}

static text_line *split_lines(const char *text, size_t len, size_t *count)
{
    size_t n = 1;
    text_line *lines;
    const char *p = text, *end = text + len;

    for (size_t i = 0; i < len; i++)
        n += text[i] == '\n';
    lines = calloc(n, sizeof *lines);
    if (lines == NULL)
        return NULL;
    for (size_t k = 0; k < n; k++) {
        const char *nl = p < end ? memchr(p, '\n', (size_t)(end - p)) : NULL;

        lines[k].p = p;
        lines[k].n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        p = nl != NULL ? nl + 1 : end;
    }
    *count = n;
    return lines;
}

/* stripped_text of a text body (see the rules at the top). */
static json_t *json_stripped_text(const mr_buf *text)
{
    size_t count = 0, end;
    text_line *lines = split_lines(text->data != NULL ? (const char *)text->data : "", text->len,
                                   &count);
    mr_buf out;
    json_t *value = NULL;

    if (lines == NULL)
        return NULL;
    end = find_original_message(lines, count);
    end = find_signature(lines, end);
    end = drop_attribution(lines, end);
    for (size_t i = 0; i < end; i++)
        lines[i].removed |= line_quoted(&lines[i]);
    mr_buf_init(&out, text->len + 1);
    if (render_kept_lines(lines, end, &out, NULL) == 0)
        value = json_text_trimmed(&out);
    mr_buf_free(&out);
    free(lines);
    return value;
}

/* --- the whole object ----------------------------------------------------------- */

static json_t *json_envelope(const mr_mime_envelope *e)
{
    json_t *o = json_object();
    int failed = o == NULL;

    if (!failed) {
        failed |= json_object_set_new(o, "sender", json_text_or_null(e->sender));
        failed |= json_object_set_new(o, "recipient", json_text_or_null(e->recipient));
        failed |= json_object_set_new(o, "original_recipient", json_text_or_null(e->original_recipient));
        failed |= json_object_set_new(o, "extension", json_text_or_null(e->extension));
        failed |= json_object_set_new(o, "client_address", json_text_or_null(e->client_address));
        failed |= json_object_set_new(o, "helo", json_text_or_null(e->helo));
    }
    return json_complete(o, failed);
}

static json_t *json_body(const mr_buf *body, int have)
{
    if (!have)
        return json_null();
    return json_text(body->data != NULL ? (const char *)body->data : "", body->len);
}

/* The fields from the header section, message_id to headers. */
static int put_header_fields(json_t *o, const message_view *v)
{
    int failed = 0;

    failed |= json_object_set_new(o, "message_id",
                                  json_text_or_null(g_mime_message_get_message_id(v->message)));
    failed |= json_object_set_new(o, "subject", json_text_take(first_field_decoded(v, "Subject")));
    failed |= json_object_set_new(o, "date", json_date(v->message));
    failed |= json_object_set_new(o, "from", json_addresses(v, "From"));
    failed |= json_object_set_new(o, "to", json_addresses(v, "To"));
    failed |= json_object_set_new(o, "cc", json_addresses(v, "Cc"));
    failed |= json_object_set_new(o, "reply_to", json_addresses(v, "Reply-To"));
    failed |= json_object_set_new(o, "in_reply_to", json_message_ids(v, "In-Reply-To", 1));
    failed |= json_object_set_new(o, "references", json_message_ids(v, "References", 0));
    failed |= json_object_set_new(o, "headers", json_fields(v, NULL));
    return failed;
}

/* The fields from the MIME tree, text to attachments. */
static int put_body_fields(json_t *o, const message_view *v, size_t len, mr_err *err)
{
    GMimeObject *body = g_mime_message_get_mime_part(v->message);
    mime_walk w;
    int failed;

    memset(&w, 0, sizeof w);
    w.options = v->options;
    mr_buf_init(&w.text, 4 * len + 64);
    mr_buf_init(&w.html, 4 * len + 64);
    w.attachments = json_array();
    w.err = err;
    w.failed = w.attachments == NULL;
    if (body != NULL)
        walk(&w, body, WANT_PLAIN | WANT_HTML, 1);
    failed = w.failed;
    failed |= json_object_set_new(o, "text", json_body(&w.text, w.have_text));
    failed |= json_object_set_new(o, "html", json_body(&w.html, w.have_html));
    failed |= json_object_set_new(o, "stripped_text",
                                  w.have_text ? json_stripped_text(&w.text) : json_null());
    failed |= json_object_set_new(o, "attachments", w.attachments);
    mr_buf_free(&w.text);
    mr_buf_free(&w.html);
    return failed;
}

static json_t *payload_json(const message_view *v, size_t len, const mr_mime_envelope *e,
                            mr_err *err)
{
    json_t *o = json_object();
    int failed = o == NULL;

    mr_err_set(err, "out of memory building the JSON");
    if (!failed) {
        failed |= json_object_set_new(o, "id", json_text_or_null(e->id));
        failed |= json_object_set_new(o, "robot", json_text_or_null(e->robot));
        failed |= json_object_set_new(o, "received_at", json_text_or_null(e->received_at));
        failed |= json_object_set_new(o, "envelope", json_envelope(e));
        failed |= put_header_fields(o, v);
        failed |= put_body_fields(o, v, len, err);
        failed |= json_object_set_new(o, "spam", json_spam(v));
        failed |= json_object_set_new(o, "size", json_integer((json_int_t)len));
    }
    return json_complete(o, failed);
}

/* --- parsing ---------------------------------------------------------------------- */

static GMimeParserOptions *lenient_parser_options(void)
{
    static const char *fallback_charsets[] = {"UTF-8", "windows-1252", NULL};
    GMimeParserOptions *options = g_mime_parser_options_new();

    g_mime_parser_options_set_rfc2047_compliance_mode(options, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_address_compliance_mode(options, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_parameter_compliance_mode(options, GMIME_RFC_COMPLIANCE_LOOSE);
    g_mime_parser_options_set_allow_addresses_without_domain(options, TRUE);
    g_mime_parser_options_set_fallback_charsets(options, fallback_charsets);
    return options;
}

/*
 * What gmime gets to parse. gmime allocates an object of about a kilobyte
 * for every header field and every part, and compares every line starting
 * with "--" with each boundary it is inside of: a 25 MiB message of empty
 * parts, of tiny fields or of nested multiparts costs it gigabytes or
 * seconds. One linear pass over the message (mime_scan) hands gmime the
 * message itself or, where needed, a copy in which
 *   - the message's own header section ends (an empty line is inserted)
 *     at a line that is neither a field nor a continuation, as in Python;
 *   - header fields are left out (field_left_out) after the
 *     MR_MIME_FIELDS_LIMIT-th, beyond HEADER_BYTES_BUDGET bytes of fields
 *     or ADDRESS_BUDGET mailboxes in address fields (gmime needs up to a
 *     kilobyte per mailbox, parameter or id), and when gmime cannot take
 *     them: more than FIELD_COLON_LIMIT colons (its address parser
 *     recurses into a group per colon: 50,000 overflow the stack), or
 *     encoded-word starts ("=?cs?B?") that never end (its RFC 2047 decoder
 *     looks for the end from each of them to the end of the field:
 *     quadratic; they get ENCODED_WORD_SCAN_BUDGET in all);
 *   - the message is cut off before the delimiter line after the
 *     MIME_DELIMITER_LIMIT-th, or before the "--" line at which gmime's
 *     boundary checks would exceed BOUNDARY_CHECK_WORK_LIMIT.
 * Boundaries, delimiters and header sections are recognised well enough
 * to count, not to parse: the estimates only need to be close.
 */
typedef struct mime_scan {
    const unsigned char *msg;
    size_t len;
    GByteArray *copy;         /* NULL while what gmime gets is msg itself */
    GHashTable *boundaries;   /* boundary values declared so far */
    size_t open;              /* declared and not yet closed */
    size_t work;              /* boundary comparisons gmime would make */
    size_t delimiters, fields;
    size_t word_scan;         /* RFC 2047 scanning gmime would do so far */
    size_t header_bytes;      /* of the fields kept so far */
    size_t addresses;         /* mailboxes in the address fields kept so far */
    int in_headers;           /* in a header section */
    int top_level;            /* in the message's own header section */
    int embedded_message;     /* this header section says message/rfc822 */
    int dropping;             /* the current field is left out */
} mime_scan;

/* A field ("name:", blanks allowed before the colon) or a continuation. */
static int header_line(const unsigned char *p, size_t n)
{
    size_t i = 0;

    if (n > 0 && (p[0] == ' ' || p[0] == '\t'))
        return 1;
    while (i < n && p[i] >= 0x21 && p[i] <= 0x7e && p[i] != ':')
        i++;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    return i < n && p[i] == ':';
}

/* Where needle (lower case) first occurs in the n bytes at p, ignoring
 * case; NULL if nowhere. */
static const unsigned char *find_ci(const unsigned char *p, size_t n, const char *needle)
{
    size_t k = strlen(needle);

    for (size_t i = 0; i + k <= n; i++)
        if (g_ascii_tolower(p[i]) == needle[0] && g_ascii_strncasecmp((const char *)p + i, needle, k) == 0)
            return p + i;
    return NULL;
}

/* From here on, what gmime gets differs from the message: a copy of what
 * was scanned before pos. */
static void scan_diverge(mime_scan *s, size_t pos)
{
    if (s->copy != NULL)
        return;
    s->copy = g_byte_array_sized_new((guint)MIN(s->len + 1, G_MAXUINT));
    g_byte_array_append(s->copy, s->msg, (guint)pos);
}

static void scan_keep(mime_scan *s, size_t pos, size_t end)
{
    if (s->copy != NULL)
        g_byte_array_append(s->copy, s->msg + pos, (guint)(end - pos));
}

/* Notes the boundaries a header line declares, and message/rfc822. */
static void scan_declarations(mime_scan *s, const unsigned char *p, size_t n)
{
    const unsigned char *end = p + n, *b;

    if (find_ci(p, n, "message/rfc822") != NULL)
        s->embedded_message = 1;
    while ((b = find_ci(p, (size_t)(end - p), "boundary=")) != NULL) {
        const unsigned char *v = b + 9, *ve;
        int quoted = v < end && *v == '"';

        v += quoted;
        for (ve = v; ve < end && (quoted ? *ve != '"' : (*ve != ';' && *ve != ' ' && *ve != '\t')); ve++)
            ;
        if (g_hash_table_size(s->boundaries) < MIME_DELIMITER_LIMIT)
            g_hash_table_add(s->boundaries, g_strndup((const char *)v, (gsize)(ve - v)));
        s->open++;
        p = ve;
    }
}

/* Where the field that starts at pos ends: after its continuation lines. */
static size_t field_end(const mime_scan *s, size_t pos)
{
    const unsigned char *nl;

    while ((nl = memchr(s->msg + pos, '\n', s->len - pos)) != NULL) {
        pos = (size_t)(nl + 1 - s->msg);
        if (pos >= s->len || (s->msg[pos] != ' ' && s->msg[pos] != '\t'))
            return pos;
    }
    return s->len;
}

/* How far gmime's RFC 2047 decoder would scan in vain in the n bytes at p:
 * from every "=?" after the last "?=" to the end. */
static size_t unterminated_word_scan(const unsigned char *p, size_t n)
{
    size_t start = n, scan = 0;

    while (start >= 2 && !(p[start - 2] == '?' && p[start - 1] == '='))
        start--;
    for (size_t i = start < 2 ? 0 : start; i + 1 < n; i++)
        if (p[i] == '=' && p[i + 1] == '?')
            scan += n - i;
    return scan;
}

/* Whether a field of this name holds addresses for gmime. */
static int address_field(const unsigned char *p, size_t n)
{
    static const char *const names[] = {"From", "Sender", "Reply-To", "To", "Cc", "Bcc"};
    size_t name = 0;

    while (name < n && p[name] != ':' && p[name] != ' ' && p[name] != '\t')
        name++;
    if (name > 7 && g_ascii_strncasecmp((const char *)p, "Resent-", 7) == 0) {
        p += 7;
        name -= 7;
    }
    for (size_t i = 0; i < G_N_ELEMENTS(names); i++)
        if (name == strlen(names[i]) && g_ascii_strncasecmp((const char *)p, names[i], name) == 0)
            return 1;
    return 0;
}

static size_t count_byte(const unsigned char *p, size_t n, unsigned char c)
{
    size_t count = 0;

    for (size_t i = 0; i < n; i++)
        count += p[i] == c;
    return count;
}

/* Whether the field of n bytes at p is left out (see mime_scan); what a
 * kept field costs is charged to the budgets. */
static int field_left_out(mime_scan *s, const unsigned char *p, size_t n)
{
    size_t scan = unterminated_word_scan(p, n);
    size_t addresses = address_field(p, n) ? count_byte(p, n, ',') + 1 : 0;

    if (++s->fields > MR_MIME_FIELDS_LIMIT || count_byte(p, n, ':') > FIELD_COLON_LIMIT
        || n > HEADER_BYTES_BUDGET - s->header_bytes || addresses > ADDRESS_BUDGET - s->addresses
        || scan > ENCODED_WORD_SCAN_BUDGET - s->word_scan)
        return 1;
    s->header_bytes += n;
    s->addresses += addresses;
    s->word_scan += scan;
    return 0;
}

/* A line of a header section. Returns 0, or 1 when the line is not part
 * of the section but starts the body. */
static int scan_header_line(mime_scan *s, size_t pos, size_t end, size_t n)
{
    const unsigned char *line = s->msg + pos;

    if (n == 0) {
        s->in_headers = s->embedded_message;
        s->embedded_message = s->top_level = s->dropping = 0;
        scan_keep(s, pos, end);
        return 0;
    }
    if (!header_line(line, n)) {
        if (s->top_level) {
            scan_diverge(s, pos);
            g_byte_array_append(s->copy, (const guint8 *)"\n", 1);
        }
        s->in_headers = s->embedded_message = s->top_level = s->dropping = 0;
        return 1;
    }
    if (line[0] != ' ' && line[0] != '\t')
        s->dropping = field_left_out(s, line, field_end(s, pos) - pos);
    if (s->dropping) {
        scan_diverge(s, pos);
        return 0;
    }
    scan_declarations(s, line, n);
    scan_keep(s, pos, end);
    return 0;
}

/* A line of a body. Returns 0, or 1 when the message is cut off here. */
static int scan_body_line(mime_scan *s, size_t pos, size_t end, size_t n)
{
    const unsigned char *line = s->msg + pos;

    while (n > 0 && (line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    if (n >= 2 && line[0] == '-' && line[1] == '-') {
        int closing = n >= 4 && line[n - 1] == '-' && line[n - 2] == '-';
        char *value = g_strndup((const char *)line + 2, closing ? n - 4 : n - 2);

        s->work += MIN(s->open, GMIME_NESTING_LIMIT);
        /* with the table full, any "--" line may be a delimiter */
        if (g_hash_table_contains(s->boundaries, value)
            || g_hash_table_size(s->boundaries) >= MIME_DELIMITER_LIMIT) {
            s->delimiters++;
            s->in_headers = !closing;
            s->open -= closing && s->open > 0;
        }
        g_free(value);
        if (s->work > BOUNDARY_CHECK_WORK_LIMIT || s->delimiters > MIME_DELIMITER_LIMIT) {
            scan_diverge(s, pos);
            return 1;
        }
    }
    scan_keep(s, pos, end);
    return 0;
}

/* Scans the message; afterwards s->copy, if not NULL, is what gmime gets. */
static void scan_message(mime_scan *s)
{
    size_t pos = 0;

    while (pos < s->len) {
        const unsigned char *nl = memchr(s->msg + pos, '\n', s->len - pos);
        size_t end = nl != NULL ? (size_t)(nl + 1 - s->msg) : s->len;
        size_t n = end - pos - (nl != NULL);

        if (n > 0 && s->msg[pos + n - 1] == '\r')
            n--;
        if (s->in_headers && scan_header_line(s, pos, end, n) == 0) {
            pos = end;
            continue;
        }
        if (scan_body_line(s, pos, end, n) != 0)
            return;
        pos = end;
    }
}

static GMimeMessage *parse_bytes(const unsigned char *bytes, size_t len, GMimeParserOptions *options)
{
    GMimeStream *stream = g_mime_stream_mem_new_with_buffer((const char *)bytes, len);
    GMimeParser *parser = g_mime_parser_new_with_stream(stream);
    GMimeMessage *message;

    g_mime_parser_set_format(parser, GMIME_FORMAT_MESSAGE);
    message = g_mime_parser_construct_message(parser, options);
    g_object_unref(parser);
    g_object_unref(stream);
    return message;
}

/* Parses bytes behind an empty header section: all of it is body. */
static GMimeMessage *parse_as_body(const unsigned char *bytes, size_t len, GMimeParserOptions *options)
{
    unsigned char *copy = g_malloc(len + 1);
    GMimeMessage *message;

    copy[0] = '\n';
    if (len > 0)
        memcpy(copy + 1, bytes, len);
    message = parse_bytes(copy, len + 1, options);
    g_free(copy);
    return message;
}

/* Parses msg (see "Parsing" at the top and mime_scan). Never NULL. */
static GMimeMessage *parse_message(const unsigned char *msg, size_t len, GMimeParserOptions *options)
{
    mime_scan s;
    GMimeMessage *message;
    const unsigned char *bytes;

    if (len >= 5 && memcmp(msg, "From ", 5) == 0) {
        const unsigned char *nl = memchr(msg, '\n', len);

        len = nl != NULL ? len - (size_t)(nl + 1 - msg) : 0;
        msg = nl != NULL ? nl + 1 : msg + len;
    }
    memset(&s, 0, sizeof s);
    s.msg = msg;
    s.len = len;
    s.boundaries = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    s.in_headers = s.top_level = 1;
    scan_message(&s);
    bytes = s.copy != NULL ? s.copy->data : msg;
    len = s.copy != NULL ? s.copy->len : len;
    message = parse_bytes(bytes, len, options);
    if (message == NULL) /* nothing gmime reads as a message */
        message = parse_as_body(bytes, len, options);
    if (s.copy != NULL)
        g_byte_array_free(s.copy, TRUE);
    g_hash_table_destroy(s.boundaries);
    return message != NULL ? message : g_mime_message_new(FALSE);
}

void mr_mime_init(void)
{
    g_mime_init(); /* counts its callers; safe to repeat */
}

static int convert(const unsigned char *msg, size_t len, const mr_mime_envelope *envelope,
                   size_t dump_flags, char **json, size_t *json_len, mr_err *err)
{
    static const mr_mime_envelope no_envelope;
    message_view v;
    json_t *payload;

    v.raw = msg;
    v.raw_len = len;
    v.options = lenient_parser_options();
    v.message = parse_message(msg, len, v.options);
    v.fields = header_fields_in_order(v.message);
    payload = payload_json(&v, len, envelope != NULL ? envelope : &no_envelope, err);
    g_ptr_array_free(v.fields, TRUE);
    g_object_unref(v.message);
    g_mime_parser_options_free(v.options);
    if (payload == NULL)
        return -1;
    *json = json_dumps(payload, dump_flags | JSON_REAL_PRECISION(15));
    json_decref(payload);
    if (*json == NULL)
        return mr_err_set(err, "out of memory writing the JSON");
    *json_len = strlen(*json);
    return 0;
}

int mr_mime_to_json(const unsigned char *msg, size_t len, const mr_mime_envelope *envelope,
                    char **json, size_t *json_len, mr_err *err)
{
    return convert(msg, len, envelope, JSON_COMPACT, json, json_len, err);
}

int mr_mime_to_json_indented(const unsigned char *msg, size_t len,
                             const mr_mime_envelope *envelope, char **json, size_t *json_len,
                             mr_err *err)
{
    return convert(msg, len, envelope, JSON_INDENT(2), json, json_len, err);
}
