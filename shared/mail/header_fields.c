/*
 * header_fields.c - walking the fields of a raw message's header section
 * (see header_fields.h). One pass over lines, like message_ids.c.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mailrobot/header_fields.h"
#include "mailrobot/message_ids.h"

static size_t line_length(const unsigned char *p, const unsigned char *end)
{
    const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));

    return nl ? (size_t)(nl - p) + 1 : (size_t)(end - p);
}

static int empty_line(const unsigned char *p, size_t n)
{
    return (n == 1 && p[0] == '\n') || (n == 2 && p[0] == '\r' && p[1] == '\n');
}

/* The length of the field name that starts the line (blanks allowed
 * before the colon), or 0 when the line does not start a field. */
static size_t field_name_length(const unsigned char *p, size_t n, size_t *colon)
{
    size_t i = 0, name;

    while (i < n && p[i] >= 0x21 && p[i] <= 0x7e && p[i] != ':')
        i++;
    name = i;
    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    if (name == 0 || i >= n || p[i] != ':')
        return 0;
    *colon = i;
    return name;
}

void mr_header_scan_init(mr_header_scan *s, const unsigned char *msg, size_t len)
{
    s->msg = s->pos = msg;
    s->end = msg + len;
    s->body = NULL;
    s->ended = MR_HEADER_MORE;
    if (len >= 5 && memcmp(msg, "From ", 5) == 0)
        s->pos += line_length(s->pos, s->end);
}

static int scan_end(mr_header_scan *s, mr_header_end why, const unsigned char *body)
{
    s->ended = why;
    s->body = body;
    s->pos = s->end;
    return 0;
}

int mr_header_next(mr_header_scan *s, mr_header_field *field)
{
    const unsigned char *p = s->pos;
    size_t n, colon;

    if (s->ended != MR_HEADER_MORE)
        return 0;
    if (p >= s->end)
        return scan_end(s, MR_HEADER_END_OF_INPUT, s->end);
    if ((size_t)(p - s->msg) >= MR_HEADER_SCAN_LIMIT)
        return scan_end(s, MR_HEADER_TOO_LONG, p);
    n = line_length(p, s->end);
    if (empty_line(p, n))
        return scan_end(s, MR_HEADER_EMPTY_LINE, p + n);
    if ((field->name_len = field_name_length(p, n, &colon)) == 0)
        return scan_end(s, MR_HEADER_NOT_A_FIELD, p);
    field->start = p;
    field->value = p + colon + 1;
    p += n;
    while (p < s->end && (*p == ' ' || *p == '\t'))
        p += line_length(p, s->end);
    field->len = (size_t)(p - field->start);
    field->value_len = (size_t)(p - field->value);
    s->pos = p;
    return 1;
}

int mr_header_is(const mr_header_field *field, const char *name)
{
    return strlen(name) == field->name_len
           && strncasecmp((const char *)field->start, name, field->name_len) == 0;
}

int mr_header_find(const unsigned char *msg, size_t len, const char *name, mr_header_field *field)
{
    mr_header_scan s;

    mr_header_scan_init(&s, msg, len);
    while (mr_header_next(&s, field))
        if (mr_header_is(field, name))
            return 1;
    return 0;
}

static int blank(unsigned char c)
{
    return c == ' ' || c == '\t';
}

char *mr_header_value(const mr_header_field *field)
{
    char *out = malloc(field->value_len + 1);
    size_t n = 0, lead = 0;

    if (out == NULL)
        return NULL;
    for (size_t i = 0; i < field->value_len; i++) {
        unsigned char c = field->value[i];

        if (c != '\r' && c != '\n' && c != '\0')
            out[n++] = (char)c;
    }
    while (n > 0 && blank((unsigned char)out[n - 1]))
        n--;
    out[n] = '\0';
    while (blank((unsigned char)out[lead]))
        lead++;
    memmove(out, out + lead, n - lead + 1);
    return out;
}
