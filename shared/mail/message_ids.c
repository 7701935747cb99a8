/*
 * message_ids.c - the root Message-ID of a raw message's conversation
 * (see message_ids.h).
 *
 * A deliberately small header scanner: it needs three fields, must be fast
 * on the ingest's hot path (gmime would parse the whole MIME tree), and must
 * survive any byte sequence. It walks lines once, treating a line that
 * starts with a blank as the continuation of the field before it.
 */
#include <string.h>
#include <strings.h>

#include "mailrobot/message_ids.h"

enum { FIELD_REFERENCES, FIELD_IN_REPLY_TO, FIELD_MESSAGE_ID, FIELD_COUNT };

static const char *const field_names[FIELD_COUNT] = {"references", "in-reply-to", "message-id"};

typedef struct span {
    const unsigned char *start; /* first byte after the colon */
    size_t len;                 /* through the end of the last continuation */
} span;

static size_t line_length(const unsigned char *p, const unsigned char *end)
{
    const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));

    return nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
}

static int is_blank_line(const unsigned char *p, size_t n)
{
    return (n == 1 && p[0] == '\n') || (n == 2 && p[0] == '\r' && p[1] == '\n')
           || (n == 1 && p[0] == '\r');
}

/* Which of the wanted fields a line starts, or -1. */
static int field_of_line(const unsigned char *p, size_t n, size_t *value_offset)
{
    const unsigned char *colon = memchr(p, ':', n);
    size_t name_len;

    if (colon == NULL)
        return -1;
    name_len = (size_t)(colon - p);
    while (name_len > 0 && (p[name_len - 1] == ' ' || p[name_len - 1] == '\t'))
        name_len--;
    for (int f = 0; f < FIELD_COUNT; f++) {
        if (strlen(field_names[f]) == name_len
            && strncasecmp((const char *)p, field_names[f], name_len) == 0) {
            *value_offset = (size_t)(colon - p) + 1;
            return f;
        }
    }
    return -1;
}

/* Finds the first value of each wanted field in the header section. */
static void scan_header(const unsigned char *msg, size_t len, span found[FIELD_COUNT])
{
    const unsigned char *p = msg;
    const unsigned char *end = msg + (len < MR_HEADER_SCAN_LIMIT ? len : MR_HEADER_SCAN_LIMIT);
    int current = -1; /* field whose continuation lines extend found[current] */

    if (end - p >= 5 && memcmp(p, "From ", 5) == 0)
        p += line_length(p, end);
    while (p < end) {
        size_t n = line_length(p, end);
        size_t offset;

        if (is_blank_line(p, n))
            return;
        if (p[0] == ' ' || p[0] == '\t') {
            if (current >= 0)
                found[current].len = (size_t)(p + n - found[current].start);
        } else {
            int f = field_of_line(p, n, &offset);

            current = -1;
            if (f >= 0 && found[f].start == NULL) {
                found[f].start = p + offset;
                found[f].len = n - offset;
                current = f;
            }
        }
        p += n;
    }
}

/* Copies the first msg-id of a field value: the text between the first
 * '<' and the next '>', or, without brackets, the first word. */
static size_t copy_msgid(span value, char *out, size_t outsz)
{
    const unsigned char *p = value.start;
    const unsigned char *end = value.start + value.len;
    const unsigned char *lt = memchr(p, '<', value.len);
    size_t max = outsz - 1 < MR_MSGID_MAX ? outsz - 1 : MR_MSGID_MAX;
    size_t n = 0;
    int bracketed = lt != NULL;

    if (bracketed)
        p = lt + 1;
    else
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
            p++;
    for (; p < end && n < max; p++) {
        if (bracketed && *p == '>')
            break;
        if (!bracketed && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
            break;
        if (*p > 0x20 && *p < 0x7f)
            out[n++] = (char)*p;
    }
    out[n] = '\0';
    return n;
}

size_t mr_thread_root(const unsigned char *msg, size_t len, char *out, size_t outsz)
{
    span found[FIELD_COUNT] = {{NULL, 0}};

    if (outsz == 0)
        return 0;
    out[0] = '\0';
    scan_header(msg, len, found);
    for (int f = 0; f < FIELD_COUNT; f++) {
        size_t n;

        if (found[f].start == NULL)
            continue;
        n = copy_msgid(found[f], out, outsz);
        if (n > 0)
            return n;
    }
    return 0;
}
