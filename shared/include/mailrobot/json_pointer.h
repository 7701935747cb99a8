/*
 * json_pointer.h - JSON pointers (RFC 6901) for error messages about
 * untrusted JSON documents: "/actions/2/to/0: not an email address".
 */
#ifndef MAILROBOT_JSON_POINTER_H
#define MAILROBOT_JSON_POINTER_H

#include <stddef.h>

#define MR_JSON_POINTER_KEY_LIMIT 64  /* characters of one key shown, then "..." */

/* parent + "/" + key into out: ~ becomes ~0, / becomes ~1, control
 * characters \xNN (so the message stays one line), keys longer than
 * MR_JSON_POINTER_KEY_LIMIT cut with "...". Always NUL-terminated. */
void mr_json_pointer(char *out, size_t outsz, const char *parent, const char *key);

#endif
