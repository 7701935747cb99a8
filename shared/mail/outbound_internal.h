/*
 * outbound_internal.h - what the files behind outbound.h share; not part
 * of libmailrobot's API.
 *
 *   outbound.c      effect ids, addresses, building and finishing mails
 *   original.c      what a reply needs from the original message
 *   reply_output.c  a robot's own reply message ("reply" output mode)
 *   actions.c       the actions JSON ("actions" output mode)
 */
#ifndef MAILROBOT_OUTBOUND_INTERNAL_H
#define MAILROBOT_OUTBOUND_INTERNAL_H

#include <gmime/gmime.h>

#include "mailrobot/buf.h"
#include "mailrobot/outbound.h"

#define OUTBOUND_FIELD_LIMIT (64 * 1024) /* longest address field read */
#define OUTBOUND_COLON_LIMIT 1000        /* gmime nests a group per colon */
#define OUTBOUND_COMMA_LIMIT 1000        /* gmime takes a kilobyte per mailbox */
#define OUTBOUND_GROUP_DEPTH 4
#define OUTBOUND_HEADER_VALUE_MAX 900    /* characters; + name stays under 998 */

/* Envelope recipients being collected: malloc'd addresses, no repeats. */
typedef struct rcpt_list {
    char **items;
    size_t count;
} rcpt_list;

/* Appends a copy of address unless it is there already; -1 past
 * MR_RCPT_LIMIT (err says so) or out of memory. */
int rcpt_list_add(rcpt_list *list, const char *address, mr_err *err);
void rcpt_list_free(rcpt_list *list);

/* Appends n bytes with every line end (CRLF, LF or CR) written as CRLF. */
int outbound_append_crlf(mr_buf *buf, const unsigned char *p, size_t n, mr_err *err);

/* The parser options for untrusted header text (lenient, UTF-8 then
 * windows-1252 for 8-bit bytes); free with g_mime_parser_options_free. */
GMimeParserOptions *outbound_parser_options(void);

/* The mailboxes of an address field's value, groups flattened, that pass
 * mr_address_valid() (others are skipped): appended to mailboxes
 * (InternetAddressMailbox *, referenced). -1 when the value is longer than
 * OUTBOUND_FIELD_LIMIT or has more than OUTBOUND_COLON_LIMIT colons or
 * OUTBOUND_COMMA_LIMIT commas. */
int outbound_parse_mailboxes(const char *value, GPtrArray *mailboxes, mr_err *err);

/* Fills mail: effect id, kind, mail_from (ctx->recipient), the recipients
 * (taken over: rcpts is left empty) and a copy of the message, after
 * checking it against ctx->size_limit. */
int outbound_mail_finish(const mr_outbound_context *ctx, unsigned index, const char *kind,
                         rcpt_list *rcpts, const unsigned char *message, size_t len,
                         mr_outbound_mail *mail, mr_err *err);

/* What a reply takes from the original (original.c). */
typedef struct original_reply {
    GPtrArray *to;        /* InternetAddressMailbox *: Reply-To, else From */
    char *subject;        /* "Re: ..." (g_malloc'd) */
    char *in_reply_to;    /* "<id>" or NULL */
    char *references;     /* "<id> <id> ..." or NULL */
} original_reply;

/* Reads the original (after mr_reply_refused() said no). -1 when there
 * is nobody to reply to. */
int original_reply_read(const mr_outbound_context *ctx, original_reply *reply, mr_err *err);
void original_reply_free(original_reply *reply);

#endif
