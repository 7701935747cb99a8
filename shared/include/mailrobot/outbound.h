/*
 * outbound.h - mail that robots send (SPEC §7 actions, §8 outbound), and
 * the actions an exec (or Lua) robot asks for on its standard output
 * (schemas/actions-v1.json).
 *
 * Robots never speak SMTP: every mail they send becomes one record on
 * <prefix>.outbound —
 *
 *   key      the effect id (32 hex digits): BLAKE2b-128 of the source
 *            record's mr.id, mr.replay (or ""), the robot and the effect's
 *            index in the robot's output. Processing the same record again
 *            yields the same effect ids, so the sender (issue 6) can refuse
 *            to send an effect twice.
 *   value    the RFC 5322 message, CRLF line ends, no bare LF
 *   headers  mr.v = 1, mr.effect_id, mr.kind (reply | send | forward),
 *            mr.id (the source message), mr.robot, mr.mail_from (envelope
 *            sender; "" = null sender <>), and one mr.rcpt_to per envelope
 *            recipient
 *
 * The messages are built with gmime: Message-ID <effect id@hostname>,
 * In-Reply-To and References for replies, Auto-Submitted: auto-replied on
 * replies, Date, MIME-Version; non-ASCII headers RFC 2047-encoded and
 * filenames RFC 2231-encoded; text parts quoted-printable or base64 as
 * their content needs.
 *
 * gmime must have been initialised (mr_mime_init(), mime_json.h). Of the
 * original message only the header section is read (header_fields.h).
 * A size_limit of 0 means no limit.
 *
 * Everything here reads what a robot printed, i.e. untrusted input: every
 * size and count is bounded (MR_ACTIONS_LIMIT, MR_RCPT_LIMIT, the size
 * limit passed in), and errors name the offending field as a JSON pointer
 * ("/actions/2/to/0: not an email address").
 */
#ifndef MAILROBOT_OUTBOUND_H
#define MAILROBOT_OUTBOUND_H

#include <stddef.h>
#include <stdint.h>

#include "mailrobot/err.h"

#define MR_ACTIONS_LIMIT 16  /* actions in one output */
#define MR_RCPT_LIMIT 50     /* envelope recipients of one mail */
#define MR_EFFECT_ID_SIZE 33

#define MR_H_EFFECT_ID "mr.effect_id"
#define MR_H_KIND "mr.kind"
#define MR_H_MAIL_FROM "mr.mail_from"
#define MR_H_RCPT_TO "mr.rcpt_to"

/* One mail to send. */
typedef struct mr_outbound_mail {
    char effect_id[MR_EFFECT_ID_SIZE];
    const char *kind;            /* "reply", "send", "forward" (static) */
    char *mail_from;             /* envelope sender; "" = <> */
    char **rcpt_to;              /* envelope recipients */
    size_t rcpt_count;
    unsigned char *message;      /* RFC 5322, CRLF */
    size_t message_len;
} mr_outbound_mail;

/* What the mail is a consequence of. All strings are borrowed. */
typedef struct mr_outbound_context {
    const unsigned char *original;   /* the inbound message bytes */
    size_t original_len;
    const char *id;                  /* its mr.id */
    const char *replay;              /* its mr.replay, or NULL */
    const char *robot;               /* the robot's name */
    const char *recipient;           /* the envelope recipient: the robot's address */
    const char *sender;              /* the original envelope sender ("" = <>) */
    const char *hostname;            /* right-hand side of Message-IDs (NULL: "localhost") */
    size_t size_limit;               /* largest message to build (max_message_bytes) */
    int skip_refused_replies;        /* mr_actions_parse: a reply that mr_reply_refused()
                                        refuses is no error but an action with no mail
                                        (message NULL) and the reason in `reason` */
} mr_outbound_context;

typedef enum mr_action_type {
    MR_ACTION_REPLY,      /* mail to the original's Reply-To, else From */
    MR_ACTION_SEND,       /* a new mail to given recipients */
    MR_ACTION_FORWARD,    /* the original message, unchanged, to new recipients */
    MR_ACTION_WEBHOOK,    /* POST a JSON body to a URL */
    MR_ACTION_SET_STATE,  /* remember a value for the robot (Redis) */
    MR_ACTION_DEFER,      /* try this message again later */
    MR_ACTION_REJECT      /* give up on this message: dead letter */
} mr_action_type;

typedef struct mr_action {
    mr_action_type type;
    mr_outbound_mail mail;   /* reply, send, forward */
    char *url;               /* webhook */
    char *body;              /* webhook: JSON text */
    size_t body_len;
    char *key;               /* set_state */
    char *value;             /* set_state (NULL: delete) */
    int64_t ttl_ms;          /* set_state, 0 = no expiry */
    char *reason;            /* defer, reject */
} mr_action;

typedef struct mr_actions {
    mr_action *items;
    size_t count;
} mr_actions;

/* "actions" output mode: parses and validates the robot's JSON and builds
 * the mails of reply/send/forward actions (effect index = action index).
 * Returns 0, or -1 with "<json pointer>: <what is wrong>" in err. */
int mr_actions_parse(const mr_outbound_context *ctx, const char *json, size_t len,
                     mr_actions *actions, mr_err *err);

void mr_actions_free(mr_actions *actions);

/* "reply" output mode: output is a complete RFC 5322 message written by the
 * robot. It is sent to its To/Cc/Bcc addresses (Bcc removed from the
 * message), or, if it names none, to the original's Reply-To, else From.
 * Missing Message-ID, Date, In-Reply-To, References, Auto-Submitted and
 * MIME-Version are added; line ends become CRLF. Effect index 0. */
int mr_outbound_from_reply(const mr_outbound_context *ctx, const unsigned char *output,
                           size_t len, mr_outbound_mail *mail, mr_err *err);

/* The effect id of effect number index of ctx's message and robot. */
void mr_effect_id(const mr_outbound_context *ctx, unsigned index,
                  char out[MR_EFFECT_ID_SIZE]);

void mr_outbound_mail_free(mr_outbound_mail *mail);

/*
 * Building mails directly (what the actions above do; also for robot kinds
 * written in C, such as autoreply). All strings are borrowed UTF-8 without
 * control characters in header values; addresses are checked with
 * mr_address_valid(). Each returns 0, or -1 with an error (without a JSON
 * pointer) in err.
 */

/* A mailbox: display name (NULL: none) and address. */
typedef struct mr_mailbox {
    const char *name;
    const char *address;
} mr_mailbox;

typedef struct mr_mail_header {
    const char *name;
    const char *value;
} mr_mail_header;

typedef struct mr_mail_attachment {
    const char *filename;
    const char *content_type;        /* "type/subtype" */
    const unsigned char *data;
    size_t len;
} mr_mail_attachment;

typedef struct mr_mail_content {
    const mr_mailbox *from;          /* NULL: ctx->recipient */
    const char *subject;             /* reply: NULL = "Re: " + the original's */
    const char *text;                /* text/plain body */
    const char *html;                /* NULL: no text/html alternative */
    const mr_mailbox *to, *cc, *bcc; /* send only */
    size_t to_count, cc_count, bcc_count;
    const mr_mail_header *headers;   /* extra fields, after the standard ones */
    size_t header_count;
    const mr_mail_attachment *attachments;
    size_t attachment_count;
} mr_mail_content;

/* A reply to ctx's message (effect number index): to the original's
 * Reply-To, else From; refused as mr_reply_refused() says. */
int mr_outbound_reply(const mr_outbound_context *ctx, unsigned index,
                      const mr_mail_content *content, mr_outbound_mail *mail, mr_err *err);

/* A new mail to content's to, cc and bcc (at most MR_RCPT_LIMIT in all). */
int mr_outbound_send(const mr_outbound_context *ctx, unsigned index,
                     const mr_mail_content *content, mr_outbound_mail *mail, mr_err *err);

/* ctx's message, unchanged but for CRLF line ends (a leading mbox "From "
 * line is dropped), to the count addresses of to. */
int mr_outbound_forward(const mr_outbound_context *ctx, unsigned index, const char *const *to,
                        size_t count, mr_outbound_mail *mail, mr_err *err);

/* Whether ctx's message must not be answered (RFC 3834 §2): its envelope
 * sender is null (or NULL), MAILER-DAEMON, owner-* or *-request; it has
 * Auto-Submitted other than "no", List-Id, List-Post or List-Unsubscribe,
 * or Precedence bulk, list or junk. Returns 1 with the reason in why
 * ("the original has a null sender; no reply (RFC 3834)"), else 0. */
int mr_reply_refused(const mr_outbound_context *ctx, mr_err *why);

/* The original's Subject, decoded (RFC 2047) to UTF-8, control characters
 * as spaces, trimmed; "" without one. malloc'd, or NULL (out of memory). */
char *mr_original_subject(const mr_outbound_context *ctx);

/* Whether s is an address mail can be sent to: local@domain, the local
 * part a dot-atom of at most 64 characters, the domain host names of
 * letters, digits and hyphens joined by dots, at most 254 in all (the
 * pattern of schemas/actions-v1.json). */
int mr_address_valid(const char *s);

/* Whether s is a host name: labels of letters, digits and inner hyphens
 * (at most 63 each) joined by dots. The length is the caller's to check. */
int mr_domain_valid(const char *s);

#endif
