/*
 * outbound_tool.c - outbound.h from the command line, for the Python
 * oracle (tests/mime/test_outbound_oracle.py); not installed.
 *
 *   outbound_tool actions|reply CONTEXT.json ORIGINAL.eml < OUTPUT
 *
 * CONTEXT.json: {"id", "replay", "robot", "recipient", "sender",
 * "hostname", "size_limit"} (mr_outbound_context). OUTPUT is what the
 * robot printed: the actions JSON, or its reply message. Writes one JSON
 * object: {"ok": true, "actions": [...]} with, per action, its type and
 * for mails effect_id, kind, mail_from, rcpt_to and message_base64; or
 * {"ok": false, "error": "..."}. Exit status 0 either way; 2 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "mailrobot/buf.h"
#include "mailrobot/mime_json.h"
#include "mailrobot/outbound.h"

#define INPUT_LIMIT (64 * 1024 * 1024)

static const char *const type_names[] = {"reply", "send", "forward", "webhook", "set_state",
                                         "defer", "reject"};

static int read_file(const char *path, mr_buf *buf, mr_err *err)
{
    FILE *f = fopen(path, "rb");
    unsigned char chunk[65536];
    size_t n;
    int rc = 0;

    if (f == NULL)
        return mr_err_set(err, "%s: cannot open", path);
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = mr_buf_append(buf, chunk, n, err);
    fclose(f);
    return rc;
}

static json_t *mail_json(const mr_outbound_mail *mail)
{
    json_t *o = json_object(), *rcpts = json_array();
    size_t b64_len = sodium_base64_encoded_len(mail->message_len, sodium_base64_VARIANT_ORIGINAL);
    char *b64 = malloc(b64_len);

    for (size_t i = 0; i < mail->rcpt_count; i++)
        json_array_append_new(rcpts, json_string(mail->rcpt_to[i]));
    sodium_bin2base64(b64, b64_len, mail->message, mail->message_len, sodium_base64_VARIANT_ORIGINAL);
    json_object_set_new(o, "effect_id", json_string(mail->effect_id));
    json_object_set_new(o, "kind", json_string(mail->kind));
    json_object_set_new(o, "mail_from", json_string(mail->mail_from));
    json_object_set_new(o, "rcpt_to", rcpts);
    json_object_set_new(o, "message_base64", json_string(b64));
    free(b64);
    return o;
}

static json_t *action_json(const mr_action *a)
{
    json_t *o = a->mail.message != NULL ? mail_json(&a->mail) : json_object();

    json_object_set_new(o, "type", json_string(type_names[a->type]));
    if (a->url != NULL)
        json_object_set_new(o, "url", json_string(a->url));
    if (a->body != NULL)
        json_object_set_new(o, "body", json_string(a->body));
    if (a->key != NULL)
        json_object_set_new(o, "key", json_string(a->key));
    if (a->type == MR_ACTION_SET_STATE)
        json_object_set_new(o, "value", a->value != NULL ? json_string(a->value) : json_null());
    if (a->ttl_ms != 0)
        json_object_set_new(o, "ttl_ms", json_integer(a->ttl_ms));
    if (a->reason != NULL)
        json_object_set_new(o, "reason", json_string(a->reason));
    return o;
}

static const char *member(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static json_t *run(const char *mode, json_t *context, const mr_buf *original, const mr_buf *output)
{
    mr_outbound_context ctx = {
        .original = original->data, .original_len = original->len,
        .id = member(context, "id"), .replay = member(context, "replay"),
        .robot = member(context, "robot"), .recipient = member(context, "recipient"),
        .sender = member(context, "sender"), .hostname = member(context, "hostname"),
        .size_limit = (size_t)json_integer_value(json_object_get(context, "size_limit")),
    };
    json_t *list = json_array();
    mr_err err;

    if (strcmp(mode, "reply") == 0) {
        mr_outbound_mail mail;

        if (mr_outbound_from_reply(&ctx, output->data, output->len, &mail, &err) < 0)
            goto failed;
        json_array_append_new(list, mail_json(&mail));
        mr_outbound_mail_free(&mail);
    } else {
        mr_actions actions;

        if (mr_actions_parse(&ctx, output->data != NULL ? (const char *)output->data : "",
                             output->len, &actions, &err) < 0)
            goto failed;
        for (size_t i = 0; i < actions.count; i++)
            json_array_append_new(list, action_json(&actions.items[i]));
        mr_actions_free(&actions);
    }
    return json_pack("{s:b, s:o}", "ok", 1, "actions", list);
failed:
    json_decref(list);
    return json_pack("{s:b, s:s}", "ok", 0, "error", err.msg);
}

int main(int argc, char **argv)
{
    mr_buf original, output;
    json_t *context, *result;
    json_error_t jerr;
    mr_err err;

    if (argc != 4 || (strcmp(argv[1], "actions") != 0 && strcmp(argv[1], "reply") != 0)) {
        fprintf(stderr, "usage: outbound_tool actions|reply CONTEXT.json ORIGINAL.eml < OUTPUT\n");
        return 2;
    }
    mr_mime_init();
    mr_buf_init(&original, INPUT_LIMIT);
    mr_buf_init(&output, INPUT_LIMIT);
    if ((context = json_load_file(argv[2], 0, &jerr)) == NULL || read_file(argv[3], &original, &err) < 0
        || mr_buf_read_fd(&output, 0, &err) != MR_READ_OK) {
        fprintf(stderr, "outbound_tool: cannot read the input\n");
        return 2;
    }
    result = run(argv[1], context, &original, &output);
    json_dumpf(result, stdout, JSON_COMPACT);
    putchar('\n');
    json_decref(result);
    json_decref(context);
    mr_buf_free(&original);
    mr_buf_free(&output);
    return 0;
}
