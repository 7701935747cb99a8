/*
 * auth.c - the admin API's bearer token (admind.h).
 *
 * The token is read once from admind_token_file; only its BLAKE2b hash is
 * kept. A presented token is hashed the same way and the two hashes are
 * compared with sodium_memcmp, so neither the token's length nor its
 * first differing byte shows in the answer time.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admind.h"

int admind_auth_load(admind_auth *auth, const mr_config *cfg, const mr_logger *log,
                     mr_err *err)
{
    const char *path = cfg->admind_token_file;
    char token[ADMIND_TOKEN_MAX + 2];
    struct stat st;
    ssize_t n;
    size_t len;
    int fd;

    if (path[0] == '\0')
        return mr_err_set(err, "admind_token_file is not set: the API needs a bearer token "
                          "(a file holding one line of at least %d characters, mode 0600)",
                          ADMIND_TOKEN_MIN);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return mr_err_set(err, "admind_token_file %s: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return mr_err_set(err, "admind_token_file %s: not a regular file", path);
    }
    n = read(fd, token, sizeof token - 1);
    close(fd);
    if (n < 0)
        return mr_err_set(err, "admind_token_file %s: %s", path, strerror(errno));
    len = (size_t)n;
    while (len > 0 && (token[len - 1] == '\n' || token[len - 1] == '\r'
                       || token[len - 1] == ' ' || token[len - 1] == '\t'))
        len--;
    token[len] = '\0';
    if (len < ADMIND_TOKEN_MIN || len > ADMIND_TOKEN_MAX || memchr(token, '\n', len)) {
        sodium_memzero(token, sizeof token);
        return mr_err_set(err, "admind_token_file %s: expected one line of %d to %d "
                          "characters", path, ADMIND_TOKEN_MIN, ADMIND_TOKEN_MAX);
    }
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)token[i] <= ' ' || (unsigned char)token[i] >= 0x7f) {
            sodium_memzero(token, sizeof token);
            return mr_err_set(err, "admind_token_file %s: the token may hold printable "
                              "ASCII only, no blanks", path);
        }
    crypto_generichash(auth->hash, sizeof auth->hash, (const unsigned char *)token, len, NULL,
                       0);
    sodium_memzero(token, sizeof token);
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        mr_log(log, MR_LOG_WARN, "admind_token_file is readable by its group or others: "
               "make it mode 0600", "path", path, NULL);
    return 0;
}

int admind_auth_check(const admind_auth *auth, const char *header)
{
    static const char scheme[] = "Bearer ";
    unsigned char hash[crypto_generichash_BYTES];
    size_t len;

    if (header == NULL || strncasecmp(header, scheme, sizeof scheme - 1) != 0)
        return 0;
    header += sizeof scheme - 1;
    len = strlen(header);
    if (len > ADMIND_TOKEN_MAX)
        return 0;
    crypto_generichash(hash, sizeof hash, (const unsigned char *)header, len, NULL, 0);
    return sodium_memcmp(hash, auth->hash, sizeof hash) == 0;
}
