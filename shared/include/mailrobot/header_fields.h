/*
 * header_fields.h - the header section of a raw message, field by field,
 * without parsing the rest (for the few fields outbound mail needs from
 * the original message and from a robot's reply).
 *
 * Input is untrusted: bare LF or CRLF, folded fields, NUL bytes, 8-bit
 * bytes, lines that are not fields. The section ends at the first empty
 * line, at the first line that is neither a field ("name:") nor a
 * continuation (leading blank), or after MR_HEADER_SCAN_LIMIT bytes
 * (message_ids.h). A leading mbox "From " line is skipped. Nothing is
 * allocated except by mr_header_value().
 */
#ifndef MAILROBOT_HEADER_FIELDS_H
#define MAILROBOT_HEADER_FIELDS_H

#include <stddef.h>

/* One field as it is in the message. */
typedef struct mr_header_field {
    const unsigned char *start;  /* its first byte (the name) */
    size_t len;                  /* through the line end of its last line */
    size_t name_len;             /* name without blanks before the colon */
    const unsigned char *value;  /* the byte after the colon */
    size_t value_len;            /* to the end of the field, line ends included */
} mr_header_field;

typedef enum mr_header_end {
    MR_HEADER_MORE = 0,      /* not at the end yet */
    MR_HEADER_EMPTY_LINE,    /* ended by an empty line (body follows it) */
    MR_HEADER_NOT_A_FIELD,   /* ended by a line that is no field: the body starts there */
    MR_HEADER_END_OF_INPUT,  /* the message is all header section */
    MR_HEADER_TOO_LONG       /* MR_HEADER_SCAN_LIMIT reached */
} mr_header_end;

typedef struct mr_header_scan {
    const unsigned char *msg, *pos, *end;
    const unsigned char *body;   /* where the body starts, once ended */
    mr_header_end ended;
} mr_header_scan;

/* Starts scanning msg (len bytes). */
void mr_header_scan_init(mr_header_scan *s, const unsigned char *msg, size_t len);

/* The next field: 1, or 0 at the end of the section (s->ended says why). */
int mr_header_next(mr_header_scan *s, mr_header_field *field);

/* Whether field is called name (ASCII case-insensitive). */
int mr_header_is(const mr_header_field *field, const char *name);

/* The first field called name: 1 (and *field), or 0 if there is none. */
int mr_header_find(const unsigned char *msg, size_t len, const char *name, mr_header_field *field);

/* The field's value unfolded (line ends removed), blanks around it
 * trimmed and NUL bytes dropped: a malloc'd string, NULL when memory runs
 * out. */
char *mr_header_value(const mr_header_field *field);

#endif
