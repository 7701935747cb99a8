/*
 * test_outbound.c - mails robots send and the actions JSON (outbound.h,
 * schemas/actions-v1.json): effect ids, the header fields of replies,
 * RFC 3834 refusals, CRLF and RFC 2047 output, the size limit, every
 * action type, and the exact JSON pointer error for each kind of bad
 * input. tests/mime/test_outbound_oracle.py reads the built mails with
 * Python's email package.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mailrobot/header_fields.h"
#include "mailrobot/mime_json.h"
#include "mailrobot/outbound.h"

#define ORIGINAL                                                                   \
    "Return-Path: <alice@example.org>\n"                                           \
    "From: Alice <alice@example.org>\n"                                            \
    "Reply-To: Help Desk <help@example.org>\n"                                     \
    "To: bot@robots.example\n"                                                     \
    "Subject: Hello\n"                                                             \
    "Message-ID: <m3@example.org>\n"                                               \
    "In-Reply-To: <m2@example.org>\n"                                              \
    "References: <m1@example.org>\n <m2@example.org>\n"                            \
    "\n"                                                                           \
    "Body\n"

static mr_outbound_context context(const char *original)
{
    mr_outbound_context ctx = {
        .original = (const unsigned char *)original, .original_len = strlen(original),
        .id = "0123456789abcdef0123456789abcdef", .replay = NULL, .robot = "helper",
        .recipient = "bot@robots.example", .sender = "alice@example.org",
        .hostname = "mx.robots.example", .size_limit = 1024 * 1024,
    };
    return ctx;
}

static int parse_with(const mr_outbound_context *ctx, const char *json, mr_actions *actions,
                      mr_err *err)
{
    return mr_actions_parse(ctx, json, strlen(json), actions, err);
}

/* The value of the first field called name in a built mail, unfolded
 * ("" if none; the caller frees it). */
static char *field(const mr_outbound_mail *mail, const char *name)
{
    mr_header_field f;

    if (!mr_header_find(mail->message, mail->message_len, name, &f))
        return strdup("");
    return mr_header_value(&f);
}

static void assert_field(const mr_outbound_mail *mail, const char *name, const char *expected)
{
    char *value = field(mail, name);

    assert_string_equal(value, expected);
    free(value);
}

static void assert_crlf_ascii(const mr_outbound_mail *mail)
{
    for (size_t i = 0; i < mail->message_len; i++) {
        assert_true(mail->message[i] < 0x80);
        if (mail->message[i] == '\n')
            assert_true(i > 0 && mail->message[i - 1] == '\r');
        if (mail->message[i] == '\r')
            assert_true(i + 1 < mail->message_len && mail->message[i + 1] == '\n');
    }
}

/* The error that parsing json gives, in ctx (NULL: the default). */
static void assert_error(const mr_outbound_context *ctx, const char *json, const char *expected)
{
    mr_outbound_context fallback = context(ORIGINAL);
    mr_actions actions;
    mr_err err;

    assert_int_equal(parse_with(ctx != NULL ? ctx : &fallback, json, &actions, &err), -1);
    assert_string_equal(err.msg, expected);
    assert_null(actions.items);
    assert_int_equal(actions.count, 0);
}

/* --- effect ids ----------------------------------------------------------------------- */

static void effect_ids(void **state)
{
    mr_outbound_context ctx = context(ORIGINAL);
    char a[MR_EFFECT_ID_SIZE], b[MR_EFFECT_ID_SIZE], c[MR_EFFECT_ID_SIZE];

    mr_effect_id(&ctx, 0, a);
    mr_effect_id(&ctx, 0, b);
    assert_int_equal(strlen(a), 32);
    assert_int_equal(strspn(a, "0123456789abcdef"), 32);
    assert_string_equal(a, b);                          /* stable */
    mr_effect_id(&ctx, 1, b);
    assert_string_not_equal(a, b);                      /* per index */
    mr_effect_id(&ctx, 10, c);
    assert_string_not_equal(b, c);
    ctx.replay = "";
    mr_effect_id(&ctx, 0, b);
    assert_string_equal(a, b);                          /* no replay is "" */
    ctx.replay = "r1";
    mr_effect_id(&ctx, 0, b);
    assert_string_not_equal(a, b);                      /* per replay */
    ctx.replay = NULL;
    ctx.robot = "other";
    mr_effect_id(&ctx, 0, b);
    assert_string_not_equal(a, b);                      /* per robot */
    /* fields are delimited: moving a character between them changes the id */
    ctx.id = "ab";
    ctx.robot = "c";
    mr_effect_id(&ctx, 0, b);
    ctx.id = "a";
    ctx.robot = "bc";
    mr_effect_id(&ctx, 0, c);
    assert_string_not_equal(b, c);
}

/* --- replies ------------------------------------------------------------------------- */

static void reply_headers(void **state)
{
    mr_outbound_context ctx = context(ORIGINAL);
    mr_actions actions;
    mr_err err;
    char id[MR_EFFECT_ID_SIZE], expected[128];
    const mr_outbound_mail *mail;

    assert_int_equal(parse_with(&ctx, "{\"actions\": [{\"type\": \"reply\", \"text\": \"Thanks!\"}]}",
                                &actions, &err), 0);
    assert_int_equal(actions.count, 1);
    mail = &actions.items[0].mail;
    mr_effect_id(&ctx, 0, id);
    assert_string_equal(mail->effect_id, id);
    assert_string_equal(mail->kind, "reply");
    assert_string_equal(mail->mail_from, "bot@robots.example");
    assert_int_equal(mail->rcpt_count, 1);
    assert_string_equal(mail->rcpt_to[0], "help@example.org");    /* Reply-To wins */
    assert_field(mail, "To", "Help Desk <help@example.org>");
    assert_field(mail, "From", "bot@robots.example");
    assert_field(mail, "Subject", "Re: Hello");
    assert_field(mail, "In-Reply-To", "<m3@example.org>");
    assert_field(mail, "References", "<m1@example.org> <m2@example.org> <m3@example.org>");
    assert_field(mail, "Auto-Submitted", "auto-replied");
    assert_field(mail, "MIME-Version", "1.0");
    snprintf(expected, sizeof expected, "<%s@mx.robots.example>", id);
    assert_field(mail, "Message-ID", expected);
    assert_true(strstr((const char *)mail->message, "\r\nDate: ") != NULL
                || strncmp((const char *)mail->message, "Date: ", 6) == 0);
    assert_true(strstr((const char *)mail->message, "\r\n\r\nThanks!") != NULL);
    assert_crlf_ascii(mail);
    mr_actions_free(&actions);
}

static void reply_to_from_without_reply_to(void **state)
{
    static const char original[] = "From: Alice <alice@example.org>\r\n"
                                    "Subject: RE: Question\r\n"
                                    "In-Reply-To: <p@example.org>\r\n"
                                    "Message-ID: <q@example.org>\r\n\r\nhi\r\n";
    mr_outbound_context ctx = context(original);
    mr_actions actions;
    mr_err err;

    assert_int_equal(parse_with(&ctx, "{\"actions\": [{\"type\": \"reply\", \"text\": \"x\", "
                                      "\"from\": {\"name\": \"Bot\", \"address\": \"b@robots.example\"}}]}",
                                &actions, &err), 0);
    assert_string_equal(actions.items[0].mail.rcpt_to[0], "alice@example.org");
    assert_field(&actions.items[0].mail, "Subject", "RE: Question");     /* no second Re: */
    assert_field(&actions.items[0].mail, "References", "<p@example.org> <q@example.org>");
    assert_field(&actions.items[0].mail, "From", "Bot <b@robots.example>");
    assert_string_equal(actions.items[0].mail.mail_from, "bot@robots.example");
    mr_actions_free(&actions);
}

static void reply_refusals(void **state)
{
    static const char *const originals[][2] = {
        {"From: a@example.org\nAuto-Submitted: auto-replied\n\nx",
         "/actions/0: the original is auto-submitted (Auto-Submitted: auto-replied); no reply (RFC 3834)"},
        {"From: a@example.org\nList-Id: <list.example.org>\n\nx",
         "/actions/0: the original comes from a mailing list (List-Id); no reply (RFC 3834)"},
        {"From: a@example.org\nPrecedence: bulk\n\nx",
         "/actions/0: the original is bulk mail (Precedence: bulk); no reply (RFC 3834)"},
        {"From: a@example.org\nPrecedence: junk\n\nx",
         "/actions/0: the original is junk mail (Precedence: junk); no reply (RFC 3834)"},
        {"From: bot@robots.example\n\nx",
         "/actions/0: the original has no Reply-To or From address to reply to"},
        {"Subject: no from\n\nx",
         "/actions/0: the original has no Reply-To or From address to reply to"},
    };
    static const char reply[] = "{\"actions\": [{\"type\": \"reply\", \"text\": \"x\"}]}";
    mr_outbound_context ctx;
    mr_actions actions;
    mr_err err;

    for (size_t i = 0; i < sizeof originals / sizeof originals[0]; i++) {
        ctx = context(originals[i][0]);
        assert_error(&ctx, reply, originals[i][1]);
    }
    ctx = context(ORIGINAL);
    ctx.sender = "";
    assert_error(&ctx, reply, "/actions/0: the original has a null sender; no reply (RFC 3834)");
    ctx.sender = "MAILER-DAEMON@example.org";
    assert_error(&ctx, reply, "/actions/0: the original's sender MAILER-DAEMON@example.org is a mail "
                              "system or list address; no reply (RFC 3834)");
    /* Auto-Submitted: no is a person's mail */
    ctx = context("From: a@example.org\nAuto-Submitted: no\n\nx");
    assert_int_equal(parse_with(&ctx, reply, &actions, &err), 0);
    mr_actions_free(&actions);
    /* a refused reply is not an error for send */
    ctx.sender = "";
    assert_int_equal(parse_with(&ctx, "{\"actions\": [{\"type\": \"send\", \"to\": [\"c@example.org\"], "
                                      "\"subject\": \"s\", \"text\": \"t\"}]}", &actions, &err), 0);
    mr_actions_free(&actions);
    assert_int_equal(mr_reply_refused(&ctx, &err), 1);
    /* the worker's way: a refused reply becomes an action without a mail */
    ctx.skip_refused_replies = 1;
    assert_int_equal(parse_with(&ctx, reply, &actions, &err), 0);
    assert_int_equal(actions.count, 1);
    assert_int_equal(actions.items[0].type, MR_ACTION_REPLY);
    assert_null(actions.items[0].mail.message);
    assert_string_equal(actions.items[0].reason,
                        "the original has a null sender; no reply (RFC 3834)");
    mr_actions_free(&actions);
}

/* --- send, encodings, limits --------------------------------------------------------- */

static void send_encoded(void **state)
{
    mr_outbound_context ctx = context(ORIGINAL);
    mr_actions actions;
    mr_err err;
    const mr_outbound_mail *mail;
    char *subject;

    assert_int_equal(parse_with(&ctx,
        "{\"actions\": [{\"type\": \"send\", \"to\": [{\"name\": \"Jörg Müller\", \"address\": \"j@example.de\"}],"
        " \"cc\": [\"c@example.org\"], \"bcc\": [\"hidden@example.org\", \"j@example.de\"],"
        " \"subject\": \"Grüße — 日本語\", \"text\": \"line 1\\nline 2\\r\\nline 3\\rGrüße\\n\","
        " \"html\": \"<p>Grüße</p>\", \"headers\": {\"X-Ticket\": \"Nr. 5 — ok\"},"
        " \"attachments\": [{\"filename\": \"Bericht März.txt\", \"content_type\": \"text/plain\","
        " \"content_base64\": \"aGVsbG8K\"}]}]}", &actions, &err), 0);
    mail = &actions.items[0].mail;
    assert_string_equal(mail->kind, "send");
    assert_int_equal(mail->rcpt_count, 3);      /* j@example.de once */
    assert_string_equal(mail->rcpt_to[0], "j@example.de");
    assert_string_equal(mail->rcpt_to[1], "c@example.org");
    assert_string_equal(mail->rcpt_to[2], "hidden@example.org");
    assert_null(strstr((const char *)mail->message, "hidden"));
    assert_field(mail, "Auto-Submitted", "auto-generated");
    subject = field(mail, "Subject");
    assert_non_null(strstr(subject, "=?"));     /* RFC 2047 */
    free(subject);
    assert_field(mail, "In-Reply-To", "");
    assert_crlf_ascii(mail);                    /* 8-bit nowhere, CRLF everywhere */
    mr_actions_free(&actions);
}

static void size_limit(void **state)
{
    mr_outbound_context ctx = context(ORIGINAL);
    mr_actions actions;
    mr_err err;
    char json[4096];
    char text[3001];

    memset(text, 'a', 3000);
    text[3000] = '\0';
    ctx.size_limit = 2000;
    snprintf(json, sizeof json, "{\"actions\": [{\"type\": \"reply\", \"text\": \"%s\"}]}", text);
    assert_error(&ctx, json, "/actions/0: the reply would be more than 2000 bytes, the size limit");
    /* content under the limit, message with its header fields over it */
    ctx.size_limit = 3100;
    assert_int_equal(parse_with(&ctx, json, &actions, &err), -1);
    assert_non_null(strstr(err.msg, "/actions/0: the reply would be "));
    assert_non_null(strstr(err.msg, "bytes, more than the size limit of 3100"));
    ctx.size_limit = 40;
    assert_error(&ctx, "{\"actions\": [{\"type\": \"forward\", \"to\": [\"x@example.org\"]}]}",
                 "/actions/0: the forward would be more than 40 bytes, the size limit");
}

static void forward(void **state)
{
    mr_outbound_context ctx = context(ORIGINAL);
    mr_actions actions;
    mr_err err;
    const mr_outbound_mail *mail;
    const char *expected = "Return-Path: <alice@example.org>\r\nFrom: Alice <alice@example.org>\r\n";

    assert_int_equal(parse_with(&ctx, "{\"actions\": [{\"type\": \"set_state\", \"key\": \"k\", \"value\": null},"
                                      " {\"type\": \"forward\", \"to\": [\"x@example.org\", {\"address\": \"y@example.org\"}]}]}",
                                &actions, &err), 0);
    mail = &actions.items[1].mail;
    assert_string_equal(mail->kind, "forward");
    assert_string_equal(mail->mail_from, "bot@robots.example");
    assert_int_equal(mail->rcpt_count, 2);
    assert_string_equal(mail->rcpt_to[1], "y@example.org");
    assert_int_equal(mail->message_len, strlen(ORIGINAL) + 11);   /* 11 lines, LF -> CRLF */
    assert_memory_equal(mail->message, expected, strlen(expected));
    assert_crlf_ascii(mail);
    mr_effect_id(&ctx, 1, (char[MR_EFFECT_ID_SIZE]){0});
    mr_actions_free(&actions);
}

/* --- every action -------------------------------------------------------------------- */

static void every_action(void **state)
{
    mr_outbound_context ctx = context(ORIGINAL);
    mr_actions actions;
    mr_err err;
    char id[MR_EFFECT_ID_SIZE];

    assert_int_equal(parse_with(&ctx,
        "{\"actions\": ["
        " {\"type\": \"reply\", \"text\": \"t\", \"subject\": \"custom\"},"
        " {\"type\": \"send\", \"to\": [\"a@example.org\"], \"subject\": \"s\", \"text\": \"t\"},"
        " {\"type\": \"forward\", \"to\": [\"b@example.org\"]},"
        " {\"type\": \"webhook\", \"url\": \"https://hooks.example/x?a=1\", \"body\": {\"a\": [1, 2.5, null], \"b\": \"ü\"}},"
        " {\"type\": \"set_state\", \"key\": \"seen:alice.example.org\", \"value\": \"1\", \"ttl_seconds\": 86400},"
        " {\"type\": \"set_state\", \"key\": \"gone\", \"value\": null},"
        " {\"type\": \"defer\", \"reason\": \"busy\"},"
        " {\"type\": \"defer\"}"
        "]}", &actions, &err), 0);
    assert_int_equal(actions.count, 8);
    assert_int_equal(actions.items[0].type, MR_ACTION_REPLY);
    assert_field(&actions.items[0].mail, "Subject", "custom");
    assert_int_equal(actions.items[1].type, MR_ACTION_SEND);
    assert_int_equal(actions.items[2].type, MR_ACTION_FORWARD);
    for (unsigned i = 0; i < 3; i++) {
        mr_effect_id(&ctx, i, id);
        assert_string_equal(actions.items[i].mail.effect_id, id);
    }
    assert_int_equal(actions.items[3].type, MR_ACTION_WEBHOOK);
    assert_null(actions.items[3].mail.message);
    assert_string_equal(actions.items[3].url, "https://hooks.example/x?a=1");
    assert_string_equal(actions.items[3].body, "{\"a\":[1,2.5,null],\"b\":\"\xc3\xbc\"}");
    assert_int_equal(actions.items[3].body_len, strlen(actions.items[3].body));
    assert_int_equal(actions.items[4].type, MR_ACTION_SET_STATE);
    assert_string_equal(actions.items[4].key, "seen:alice.example.org");
    assert_string_equal(actions.items[4].value, "1");
    assert_int_equal(actions.items[4].ttl_ms, 86400000);
    assert_null(actions.items[5].value);
    assert_int_equal(actions.items[5].ttl_ms, 0);
    assert_int_equal(actions.items[6].type, MR_ACTION_DEFER);
    assert_string_equal(actions.items[6].reason, "busy");
    assert_null(actions.items[7].reason);
    mr_actions_free(&actions);

    assert_int_equal(parse_with(&ctx, "{\"actions\": [{\"type\": \"reject\", \"reason\": \"spam\"},"
                                      " {\"type\": \"webhook\", \"url\": \"http://h\", \"body\": null}]}",
                                &actions, &err), 0);
    assert_int_equal(actions.items[0].type, MR_ACTION_REJECT);
    assert_string_equal(actions.items[0].reason, "spam");
    assert_string_equal(actions.items[1].body, "null");
    mr_actions_free(&actions);

    assert_int_equal(parse_with(&ctx, "{\"actions\": []}", &actions, &err), 0);
    assert_int_equal(actions.count, 0);
    mr_actions_free(&actions);
}

/* --- bad input ----------------------------------------------------------------------- */

static void bad_input(void **state)
{
    static const char *const cases[][2] = {
        {"[]", "/: must be an object {\"actions\": [...]}"},
        {"{}", "/actions: required"},
        {"{\"actions\": {}}", "/actions: must be an array"},
        {"{\"actions\": [], \"x\": 1}", "/x: unknown field"},
        {"{\"actions\": [], \"a/b~\": 1}", "/a~1b~0: unknown field"},
        {"{\"actions\": [1]}", "/actions/0: must be an object"},
        {"{\"actions\": [{}]}", "/actions/0/type: required"},
        {"{\"actions\": [{\"type\": \"mail\"}]}",
         "/actions/0/type: must be one of reply, send, forward, webhook, set_state, defer, reject"},
        {"{\"actions\": [{\"type\": 7}]}",
         "/actions/0/type: must be one of reply, send, forward, webhook, set_state, defer, reject"},
        {"{\"actions\": [{\"type\": \"defer\", \"to\": []}]}", "/actions/0/to: unknown field"},
        {"{\"actions\": [{\"type\": \"reply\"}]}", "/actions/0/text: required"},
        {"{\"actions\": [{\"type\": \"reply\", \"text\": 1}]}", "/actions/0/text: must be a string"},
        {"{\"actions\": [{\"type\": \"reply\", \"text\": \"t\", \"subject\": \"a\\nBcc: x@y.z\"}]}",
         "/actions/0/subject: must not hold control characters (line breaks, tabs)"},
        {"{\"actions\": [{\"type\": \"reply\", \"text\": \"t\", \"from\": \"nobody\"}]}",
         "/actions/0/from: not an email address"},
        {"{\"actions\": [{\"type\": \"reply\", \"text\": \"t\", \"from\": {\"address\": \"a@b..c\"}}]}",
         "/actions/0/from/address: not an email address"},
        {"{\"actions\": [{\"type\": \"reply\", \"text\": \"t\", \"from\": {\"address\": \"a@b.c\", \"x\": 1}}]}",
         "/actions/0/from/x: unknown field"},
        {"{\"actions\": [{\"type\": \"reply\", \"text\": \"t\", \"headers\": {\"Subject\": \"x\"}}]}",
         "/actions/0/headers/Subject: not a header field name a robot may set"},
        {"{\"actions\": [{\"type\": \"reply\", \"text\": \"t\", \"headers\": {\"Content-Type\": \"x\"}}]}",
         "/actions/0/headers/Content-Type: not a header field name a robot may set"},
        {"{\"actions\": [{\"type\": \"reply\", \"text\": \"t\", \"headers\": {\"X-A\": 1}}]}",
         "/actions/0/headers/X-A: must be a string"},
        {"{\"actions\": [{\"type\": \"reply\", \"text\": \"t\", \"attachments\": [{\"filename\": \"a\","
         " \"content_type\": \"text/plain\", \"content_base64\": \"QR==\"}]}]}",
         "/actions/0/attachments/0/content_base64: not valid base64"},
        {"{\"actions\": [{\"type\": \"reply\", \"text\": \"t\", \"attachments\": [{\"filename\": \"a\","
         " \"content_type\": \"multipart/mixed\", \"content_base64\": \"\"}]}]}",
         "/actions/0/attachments/0/content_type: must be type/subtype of application, audio, font, "
         "image, model, text or video"},
        {"{\"actions\": [{\"type\": \"reply\", \"text\": \"t\", \"attachments\": [{\"filename\": \"\","
         " \"content_type\": \"text/plain\", \"content_base64\": \"\"}]}]}",
         "/actions/0/attachments/0/filename: must not be empty"},
        {"{\"actions\": [{\"type\": \"send\", \"subject\": \"s\", \"text\": \"t\"}]}",
         "/actions/0/to: required"},
        {"{\"actions\": [{\"type\": \"send\", \"to\": [], \"subject\": \"s\", \"text\": \"t\"}]}",
         "/actions/0/to: must name at least one recipient"},
        {"{\"actions\": [{\"type\": \"send\", \"to\": \"a@b.c\", \"subject\": \"s\", \"text\": \"t\"}]}",
         "/actions/0/to: must be an array of addresses"},
        {"{\"actions\": [{\"type\": \"send\", \"to\": [\"a@b.c\"], \"text\": \"t\"}]}",
         "/actions/0/subject: required"},
        {"{\"actions\": [{\"type\": \"defer\"}, {\"type\": \"send\", \"to\": [\"a@b.c\", \"Bob <b@c.d>\"],"
         " \"subject\": \"s\", \"text\": \"t\"}]}", "/actions/1/to/1: not an email address"},
        {"{\"actions\": [{\"type\": \"send\", \"to\": [\"a@b.c\"], \"cc\": [\"x@-b.c\"], \"subject\": \"s\","
         " \"text\": \"t\"}]}", "/actions/0/cc/0: not an email address"},
        {"{\"actions\": [{\"type\": \"forward\", \"to\": [\"a@b.c\", 5]}]}",
         "/actions/0/to/1: must be an address or an object {name, address}"},
        {"{\"actions\": [{\"type\": \"webhook\", \"url\": \"ftp://x\", \"body\": 1}]}",
         "/actions/0/url: must be an http:// or https:// URL (no blanks, ASCII)"},
        {"{\"actions\": [{\"type\": \"webhook\", \"url\": \"https://x\"}]}", "/actions/0/body: required"},
        {"{\"actions\": [{\"type\": \"set_state\", \"key\": \"a b\", \"value\": \"v\"}]}",
         "/actions/0/key: must be 1 to 200 of A-Z a-z 0-9 . _ : -"},
        {"{\"actions\": [{\"type\": \"set_state\", \"key\": \"k\"}]}",
         "/actions/0/value: required (a string, or null to delete)"},
        {"{\"actions\": [{\"type\": \"set_state\", \"key\": \"k\", \"value\": 3}]}",
         "/actions/0/value: must be a string, or null to delete"},
        {"{\"actions\": [{\"type\": \"set_state\", \"key\": \"k\", \"value\": \"v\", \"ttl_seconds\": 0}]}",
         "/actions/0/ttl_seconds: must be an integer from 1 to 315360000"},
        {"{\"actions\": [{\"type\": \"set_state\", \"key\": \"k\", \"value\": \"v\", \"ttl_seconds\": 1.5}]}",
         "/actions/0/ttl_seconds: must be an integer from 1 to 315360000"},
        {"{\"actions\": [{\"type\": \"defer\", \"reason\": [\"x\"]}]}", "/actions/0/reason: must be a string"},
        {"{\"actions\": [{\"type\": \"defer\"}, {\"type\": \"reject\"}]}",
         "/actions/1: defer and reject cannot both be given"},
        {"{\"actions\": [{\"type\": \"defer\", \"type\": \"reject\"}]}",
         "/: not valid JSON (line 1, column 37: duplicate object key near '\"type\"')"},
        {"{\"actions\": []} x", "/: not valid JSON (line 1, column 17: end of file expected near 'x')"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        assert_error(NULL, cases[i][0], cases[i][1]);
}

static void limits(void **state)
{
    char json[8192];
    size_t n;

    n = (size_t)snprintf(json, sizeof json, "{\"actions\": [");
    for (int i = 0; i < 17; i++)
        n += (size_t)snprintf(json + n, sizeof json - n, "%s{\"type\": \"defer\"}", i ? ", " : "");
    snprintf(json + n, sizeof json - n, "]}");
    assert_error(NULL, json, "/actions: more than 16 actions");

    n = (size_t)snprintf(json, sizeof json, "{\"actions\": [{\"type\": \"send\", \"subject\": \"s\", "
                                            "\"text\": \"t\", \"to\": [");
    for (int i = 0; i < 51; i++)
        n += (size_t)snprintf(json + n, sizeof json - n, "%s\"r%d@example.org\"", i ? ", " : "", i);
    snprintf(json + n, sizeof json - n, "]}]}");
    assert_error(NULL, json, "/actions/0/to: more than 50 recipients");

    n = (size_t)snprintf(json, sizeof json, "{\"actions\": [{\"type\": \"send\", \"subject\": \"s\", "
                                            "\"text\": \"t\", \"to\": [\"a@example.org\"], \"bcc\": [");
    for (int i = 0; i < 50; i++)
        n += (size_t)snprintf(json + n, sizeof json - n, "%s\"r%d@example.org\"", i ? ", " : "", i);
    snprintf(json + n, sizeof json - n, "]}]}");
    assert_error(NULL, json, "/actions/0: more than 50 recipients in to, cc and bcc");

    n = (size_t)snprintf(json, sizeof json, "{\"actions\": [{\"type\": \"reply\", \"text\": \"t\", \"headers\": {");
    for (int i = 0; i < 21; i++)
        n += (size_t)snprintf(json + n, sizeof json - n, "%s\"X-H%d\": \"v\"", i ? ", " : "", i);
    snprintf(json + n, sizeof json - n, "}}]}");
    assert_error(NULL, json, "/actions/0/headers: more than 20 fields");
}

/* --- the "reply" output mode -------------------------------------------------------- */

static void reply_output(void **state)
{
    mr_outbound_context ctx = context(ORIGINAL);
    static const char own[] = "To: Carol <carol@example.org>\nBcc: dave@example.org\nSubject: Mine\n\nHi\n";
    static const char bare[] = "Content-Type: text/plain; charset=utf-8\n\nHi";
    mr_outbound_mail mail;
    mr_err err;
    char id[MR_EFFECT_ID_SIZE];

    assert_int_equal(mr_outbound_from_reply(&ctx, (const unsigned char *)own, strlen(own), &mail, &err), 0);
    assert_int_equal(mail.rcpt_count, 2);
    assert_string_equal(mail.rcpt_to[0], "carol@example.org");
    assert_string_equal(mail.rcpt_to[1], "dave@example.org");
    assert_null(strstr((const char *)mail.message, "Bcc"));
    assert_field(&mail, "Subject", "Mine");
    assert_field(&mail, "In-Reply-To", "<m3@example.org>");
    assert_field(&mail, "Auto-Submitted", "auto-replied");
    mr_effect_id(&ctx, 0, id);
    assert_string_equal(mail.effect_id, id);
    assert_crlf_ascii(&mail);
    mr_outbound_mail_free(&mail);

    assert_int_equal(mr_outbound_from_reply(&ctx, (const unsigned char *)bare, strlen(bare), &mail, &err), 0);
    assert_int_equal(mail.rcpt_count, 1);
    assert_string_equal(mail.rcpt_to[0], "help@example.org");
    assert_field(&mail, "To", "Help Desk <help@example.org>");
    assert_field(&mail, "Subject", "Re: Hello");
    assert_field(&mail, "From", "bot@robots.example");
    assert_true(mail.message_len > 4 && memcmp(mail.message + mail.message_len - 4, "\r\nHi", 4) != 0);
    assert_memory_equal(mail.message + mail.message_len - 4, "Hi\r\n", 4);
    mr_outbound_mail_free(&mail);

    ctx.sender = "";
    assert_int_equal(mr_outbound_from_reply(&ctx, (const unsigned char *)bare, strlen(bare), &mail, &err), -1);
    assert_string_equal(err.msg, "the original has a null sender; no reply (RFC 3834)");
    assert_int_equal(mr_outbound_from_reply(&ctx, (const unsigned char *)"Hello\n\nx", 8, &mail, &err), -1);
    assert_string_equal(err.msg, "line 1 of the reply is neither a header field nor the empty line before the body");
    ctx = context(ORIGINAL);
    ctx.size_limit = 10;
    assert_int_equal(mr_outbound_from_reply(&ctx, (const unsigned char *)own, strlen(own), &mail, &err), -1);
    assert_string_equal(err.msg, "the reply is 70 bytes, more than the size limit of 10");
}

static void addresses(void **state)
{
    assert_true(mr_address_valid("a@b"));
    assert_true(mr_address_valid("first.last+tag@sub.example.org"));
    assert_true(mr_address_valid("o'brien@x-y.example"));
    assert_false(mr_address_valid(""));
    assert_false(mr_address_valid("a"));
    assert_false(mr_address_valid("@b"));
    assert_false(mr_address_valid("a@"));
    assert_false(mr_address_valid(".a@b"));
    assert_false(mr_address_valid("a..b@c"));
    assert_false(mr_address_valid("a@b."));
    assert_false(mr_address_valid("a@-b"));
    assert_false(mr_address_valid("a b@c"));
    assert_false(mr_address_valid("a@b@c"));
    assert_false(mr_address_valid("\"a\"@b"));
    assert_false(mr_address_valid("jörg@b"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(effect_ids),
        cmocka_unit_test(reply_headers),
        cmocka_unit_test(reply_to_from_without_reply_to),
        cmocka_unit_test(reply_refusals),
        cmocka_unit_test(send_encoded),
        cmocka_unit_test(size_limit),
        cmocka_unit_test(forward),
        cmocka_unit_test(every_action),
        cmocka_unit_test(bad_input),
        cmocka_unit_test(limits),
        cmocka_unit_test(reply_output),
        cmocka_unit_test(addresses),
    };

    mr_mime_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
