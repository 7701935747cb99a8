/*
 * mime_json.h - a raw message as the JSON a webhook robot posts
 * (SPEC §7, schemas/webhook-v1.json), built with gmime.
 *
 * Input is untrusted: malformed MIME, wrong or missing charsets, broken
 * encodings, absurd nesting. The conversion never fails because of the
 * message: it does its best (what cannot be decoded is passed through with
 * invalid bytes replaced, U+FFFD) and always yields valid JSON, every
 * field present. It fails only when memory runs out (err says where).
 * Parts nested deeper than MR_MIME_DEPTH_LIMIT are not visited, nor parts
 * after the MR_MIME_PARTS_LIMIT-th, nor header fields after the
 * MR_MIME_FIELDS_LIMIT-th; time and memory grow linearly with the size of
 * any message. The rules for which part is what are at the top of
 * mime_json.c. A conversion keeps no state after it returns.
 */
#ifndef MAILROBOT_MIME_JSON_H
#define MAILROBOT_MIME_JSON_H

#include <stddef.h>

#include "mailrobot/err.h"

#define MR_MIME_DEPTH_LIMIT 32      /* deeper parts are not visited */
#define MR_MIME_PARTS_LIMIT 1000     /* parts after these are not visited */
#define MR_MIME_FIELDS_LIMIT 10000   /* header fields of all sections; more are left out */

/* What the JSON says about the delivery, from the record's mr.* headers.
 * NULL fields are written as null. */
typedef struct mr_mime_envelope {
    const char *id;                 /* mr.id */
    const char *robot;              /* robot name */
    const char *received_at;        /* mr.received_at */
    const char *sender;
    const char *recipient;
    const char *original_recipient;
    const char *extension;          /* "" if none */
    const char *client_address;
    const char *helo;
} mr_mime_envelope;

/* Initialises gmime (call from main, before any thread uses this; calling
 * it again is harmless). */
void mr_mime_init(void);

/* Builds the webhook JSON for msg (len bytes, as received). envelope may
 * be NULL (all its fields null). On success returns 0, *json is a
 * malloc'd, NUL-terminated UTF-8 JSON object on one line (the caller frees
 * it) and *json_len its length. Returns -1 only when memory runs out. */
int mr_mime_to_json(const unsigned char *msg, size_t len, const mr_mime_envelope *envelope,
                    char **json, size_t *json_len, mr_err *err);

/* As mr_mime_to_json, indented by two spaces a level: for people
 * (`mailrobotctl mime`). */
int mr_mime_to_json_indented(const unsigned char *msg, size_t len,
                             const mr_mime_envelope *envelope, char **json, size_t *json_len,
                             mr_err *err);

#endif
