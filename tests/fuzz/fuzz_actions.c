/*
 * fuzz_actions.c - libFuzzer target: a robot's output as the actions
 * JSON (mr_actions_parse) and as a reply-mode message
 * (mr_outbound_from_reply), for a fixed original message; and the same
 * bytes as the original message a reply action answers. Checks that
 * every parse either fails with a message naming a JSON pointer or yields
 * at most MR_ACTIONS_LIMIT actions, and that every mail built has CRLF
 * line ends only, an effect id, at most MR_RCPT_LIMIT recipients and no
 * more bytes than the size limit. ASan, UBSan and LeakSanitizer watch the
 * rest. (Checks abort() themselves: -DNDEBUG would turn assert() off.)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailrobot/mime_json.h"
#include "mailrobot/outbound.h"

#define SIZE_LIMIT (256 * 1024)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char original[] =
    "From: Alice <alice@example.org>\r\n"
    "Reply-To: =?utf-8?q?J=C3=B6rg?= <joerg@example.de>, bob@example.org\r\n"
    "Subject: =?utf-8?b?R3LDvMOfZQ==?=\r\n"
    "Message-ID: <m3@example.org>\r\n"
    "References: <m1@example.org> <m2@example.org>\r\n"
    "\r\n"
    "Hello\r\n";

static void require(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_actions: %s\n", what);
        abort();
    }
}

static void check_mail(const mr_outbound_mail *mail)
{
    require(strlen(mail->effect_id) == 32, "no effect id");
    require(mail->rcpt_count > 0 && mail->rcpt_count <= MR_RCPT_LIMIT, "recipient count");
    require(mail->message_len <= SIZE_LIMIT, "over the size limit");
    for (size_t i = 0; i < mail->message_len; i++) {
        if (mail->message[i] == '\n')
            require(i > 0 && mail->message[i - 1] == '\r', "bare LF");
        if (mail->message[i] == '\r')
            require(i + 1 < mail->message_len && mail->message[i + 1] == '\n', "bare CR");
    }
}

/* data as the original of a reply: only its header section is read. */
static void reply_to_original(const mr_outbound_context *fixed, const uint8_t *data, size_t size)
{
    static const char reply[] = "{\"actions\": [{\"type\": \"reply\", \"text\": \"ok\"}]}";
    mr_outbound_context ctx = *fixed;
    mr_actions actions;
    mr_err err;

    ctx.original = data;
    ctx.original_len = size;
    if (mr_actions_parse(&ctx, reply, sizeof reply - 1, &actions, &err) == 0) {
        require(actions.count == 1, "one reply");
        check_mail(&actions.items[0].mail);
        mr_actions_free(&actions);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    mr_mime_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const mr_outbound_context ctx = {
        .original = (const unsigned char *)original, .original_len = sizeof original - 1,
        .id = "0123456789abcdef0123456789abcdef", .robot = "fuzz", .recipient = "bot@robots.example",
        .sender = "alice@example.org", .hostname = "mx.robots.example", .size_limit = SIZE_LIMIT,
    };
    mr_actions actions;
    mr_outbound_mail mail;
    mr_err err;

    if (mr_actions_parse(&ctx, (const char *)data, size, &actions, &err) == 0) {
        require(actions.count <= MR_ACTIONS_LIMIT, "too many actions");
        for (size_t i = 0; i < actions.count; i++)
            if (actions.items[i].mail.message != NULL)
                check_mail(&actions.items[i].mail);
        mr_actions_free(&actions);
    } else {
        require(err.msg[0] == '/', "an error without a JSON pointer");
    }
    if (mr_outbound_from_reply(&ctx, data, size, &mail, &err) == 0) {
        check_mail(&mail);
        mr_outbound_mail_free(&mail);
    }
    reply_to_original(&ctx, data, size);
    return 0;
}
