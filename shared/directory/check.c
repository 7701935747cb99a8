/*
 * check.c - the directory's checks of input that need no Redis
 * (directory.h): addresses, domains, passwords, reset token hashes.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "mailrobot/directory.h"
#include "mailrobot/outbound.h"

static void lower_copy(const char *text, char *out, size_t len)
{
    for (size_t i = 0; i < len; i++)
        out[i] = (char)(text[i] >= 'A' && text[i] <= 'Z' ? text[i] - 'A' + 'a' : text[i]);
    out[len] = '\0';
}

/* Error messages quote at most this much of what was given. */
#define QUOTE_MAX 80

mr_dir_status mr_dir_address_parse(const char *field, const char *text, char *out, mr_err *err)
{
    size_t len = text != NULL ? strlen(text) : 0;

    if (len == 0)
        return mr_err_set(err, "%s: missing", field), MR_DIR_INVALID;
    if (len > MR_DIR_ADDRESS_MAX)
        return mr_err_set(err, "%s: longer than %d bytes", field, MR_DIR_ADDRESS_MAX),
               MR_DIR_INVALID;
    lower_copy(text, out, len);
    if (!mr_address_valid(out))
        return mr_err_set(err, "%s: '%.*s' is not an address (local@domain)", field, QUOTE_MAX,
                          text), MR_DIR_INVALID;
    return MR_DIR_OK;
}

mr_dir_status mr_dir_domain_parse(const char *field, const char *text, char *out, mr_err *err)
{
    size_t len = text != NULL ? strlen(text) : 0;

    if (len == 0)
        return mr_err_set(err, "%s: missing", field), MR_DIR_INVALID;
    if (len > MR_DIR_DOMAIN_MAX)
        return mr_err_set(err, "%s: longer than %d bytes", field, MR_DIR_DOMAIN_MAX),
               MR_DIR_INVALID;
    lower_copy(text, out, len);
    if (!mr_domain_valid(out))
        return mr_err_set(err, "%s: '%.*s' is not a domain name", field, QUOTE_MAX, text),
               MR_DIR_INVALID;
    return MR_DIR_OK;
}

/* The password is never quoted, whatever is wrong with it. */
mr_dir_status mr_dir_password_check(const mr_config *cfg, const char *password, mr_err *err)
{
    size_t len = password != NULL ? strlen(password) : 0, chars = 0;

    if (len > MR_DIR_PASSWORD_MAX)
        return mr_err_set(err, "password: longer than %d bytes", MR_DIR_PASSWORD_MAX),
               MR_DIR_INVALID;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)password[i];

        if (c < 0x20 || c == 0x7f)
            return mr_err_set(err, "password: contains a control character"), MR_DIR_INVALID;
        if ((c & 0xc0) != 0x80)   /* not a UTF-8 continuation byte */
            chars++;
    }
    if (chars < (size_t)cfg->directory_password_min)
        return mr_err_set(err, "password: shorter than %lld characters",
                          (long long)cfg->directory_password_min), MR_DIR_INVALID;
    return MR_DIR_OK;
}

void mr_dir_token_hash(const char *token, char out[MR_DIR_TOKEN_HASH_SIZE])
{
    unsigned char digest[crypto_hash_sha256_BYTES];

    crypto_hash_sha256(digest, (const unsigned char *)token, strlen(token));
    sodium_bin2hex(out, MR_DIR_TOKEN_HASH_SIZE, digest, sizeof digest);
}
