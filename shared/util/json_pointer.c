/*
 * json_pointer.c - JSON pointers for error messages (json_pointer.h).
 */
#include <stdio.h>

#include "mailrobot/json_pointer.h"

void mr_json_pointer(char *out, size_t outsz, const char *parent, const char *key)
{
    size_t n = (size_t)snprintf(out, outsz, "%s/", parent);

    if (n >= outsz)
        return;
    for (size_t i = 0; key[i] != '\0' && n + 8 < outsz; i++) {
        unsigned char c = (unsigned char)key[i];

        if (i == MR_JSON_POINTER_KEY_LIMIT) {
            n += (size_t)snprintf(out + n, outsz - n, "...");
            break;
        }
        if (c == '~' || c == '/')
            n += (size_t)snprintf(out + n, outsz - n, "~%c", c == '~' ? '0' : '1');
        else if (c < 0x20 || c == 0x7f)
            n += (size_t)snprintf(out + n, outsz - n, "\\x%02x", c);
        else {
            out[n++] = (char)c;
            out[n] = '\0';
        }
    }
}
