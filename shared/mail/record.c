/*
 * record.c - ids and keys of inbound records (see record.h).
 */
#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "mailrobot/record.h"

static void hash_field(crypto_generichash_state *state, const void *bytes, size_t len)
{
    unsigned char prefix[8];
    uint64_t n = len;

    for (int i = 0; i < 8; i++)
        prefix[i] = (unsigned char)(n >> (8 * i));
    crypto_generichash_update(state, prefix, sizeof prefix);
    crypto_generichash_update(state, bytes, len);
}

void mr_record_id(const char *queue_id, const char *recipient,
                  const unsigned char *msg, size_t len, char out[MR_ID_SIZE])
{
    crypto_generichash_state state;
    unsigned char digest[16];

    crypto_generichash_init(&state, NULL, 0, sizeof digest);
    hash_field(&state, queue_id, strlen(queue_id));
    hash_field(&state, recipient, strlen(recipient));
    hash_field(&state, msg, len);
    crypto_generichash_final(&state, digest, sizeof digest);
    sodium_bin2hex(out, MR_ID_SIZE, digest, sizeof digest);
}

static int append_lower(mr_buf *buf, const char *s, mr_err *err)
{
    for (; *s; s++) {
        char c = (char)tolower((unsigned char)*s);

        if (mr_buf_append(buf, &c, 1, err) < 0)
            return -1;
    }
    return 0;
}

int mr_record_key(mr_partition_by mode, const char *recipient, const char *thread_root,
                  const char *record_id, mr_buf *key, mr_err *err)
{
    mr_buf_reset(key);
    switch (mode) {
    case MR_PARTITION_NONE:
        return mr_buf_append_str(key, record_id, err);
    case MR_PARTITION_RECIPIENT:
        return append_lower(key, recipient, err);
    case MR_PARTITION_THREAD:
        if (append_lower(key, recipient, err) < 0 || mr_buf_append(key, " ", 1, err) < 0)
            return -1;
        return mr_buf_append_str(key, thread_root[0] ? thread_root : record_id, err);
    }
    return mr_err_set(err, "unknown partition_by mode %d", (int)mode);
}
