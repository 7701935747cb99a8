/*
 * fuzz_mime_json.c - libFuzzer target: the webhook JSON (mime_json.h) of
 * arbitrary bytes. Checks that the conversion never fails on any input,
 * and that what it writes is one JSON object with all twenty fields that
 * jansson reads back (which also proves every string valid UTF-8; NUL
 * bytes of the message are written as \u0000).
 * ASan and UBSan watch the rest; LeakSanitizer, that gmime objects are
 * released. (Checks abort() themselves: the fuzz build is RelWithDebInfo,
 * whose -DNDEBUG would turn assert() off.)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mailrobot/mime_json.h"

#define PAYLOAD_FIELDS 20

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void require(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_mime_json: %s\n", what);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    mr_mime_init();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const mr_mime_envelope envelope = {
        .id = "0123456789abcdef0123456789abcdef", .robot = "fuzz", .recipient = "bot@example.test",
    };
    char *json = NULL;
    size_t len = 0;
    json_error_t parse_error;
    json_t *payload;
    mr_err err;

    require(mr_mime_to_json(data, size, &envelope, &json, &len, &err) == 0, "conversion failed");
    require(strlen(json) == len, "json_len is not the length of the JSON");
    payload = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &parse_error);
    require(payload != NULL && json_is_object(payload), "the output is not a JSON object");
    require(json_object_size(payload) == PAYLOAD_FIELDS, "a field is missing");
    require(json_integer_value(json_object_get(payload, "size")) == (json_int_t)size,
            "size is not the input's length");
    json_decref(payload);
    free(json);
    return 0;
}
