/*
 * dkim.c - DKIM signatures for outbound mail (dkim.h): the dkim_keys
 * entries and their key files, the From domain of a message, and signing
 * it with libopendkim.
 *
 * Key files are checked with OpenSSL when they are loaded, so that a bad
 * file is a configuration error at start-up rather than a failure at the
 * first mail, and rewritten as PKCS #8 PEM: libopendkim takes a key as
 * text beginning "-----", which a PEM file with anything before its BEGIN
 * line (openssl's "Bag Attributes", a comment) is not.
 *
 * The From domain is found by a small scan of the field's bytes rather
 * than by gmime: signing needs only the domain of one address, and this
 * module stays usable without gmime having been initialised.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <opendkim/dkim.h>

#include "mailrobot/buf.h"
#include "mailrobot/dkim.h"
#include "mailrobot/header_fields.h"

#define DOMAIN_MAX 253
#define LABEL_MAX 63
#define ADDRESS_MAX 254
#define SIGNATURE_FIELD "DKIM-Signature: "
#define LOG_ID "mailrobot"   /* libopendkim's name for a message in its logs */

typedef struct dkim_key {
    char *domain;            /* lower case */
    char *selector;
    unsigned char *pem;      /* PKCS #8 PEM, NUL-terminated */
    size_t pem_len;
} dkim_key;

struct mr_dkim {
    DKIM_LIB *lib;
    dkim_key *keys;
    size_t count;
};

/* --- key entries --------------------------------------------------------------------- */

/* Whether s is dot-separated labels of letters, digits and inner hyphens
 * (a host name; also what RFC 6376 §3.1 allows as a selector). */
static bool dns_name_valid(const char *s)
{
    size_t label = 0, total = strlen(s);

    if (total == 0 || total > DOMAIN_MAX)
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        if (*p == '.') {
            if (label == 0 || p[-1] == '-')
                return false;
            label = 0;
        } else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
                   || (*p >= '0' && *p <= '9') || (*p == '-' && label > 0)) {
            if (++label > LABEL_MAX)
                return false;
        } else {
            return false;
        }
    }
    return label > 0 && s[total - 1] != '-';
}

static int read_key_file(const char *path, mr_buf *buf, mr_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    mr_read_status status;

    if (fd < 0)
        return mr_err_set(err, "cannot read %s: %s", path, strerror(errno));
    status = mr_buf_read_fd(buf, fd, err);
    close(fd);
    if (status == MR_READ_ERROR)
        return mr_err_prefix(err, "cannot read %s", path);
    if (status == MR_READ_TOO_BIG)
        return mr_err_set(err, "%s is larger than %d bytes: not a key file", path,
                          MR_DKIM_KEY_FILE_LIMIT);
    return 0;
}

/* An encrypted key would make OpenSSL ask for a password on the terminal;
 * there is none to give. */
static int no_password(char *buf, int size, int rwflag, void *u)
{
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0;
}

/* RSA only: libopendkim 2.11 can sign with Ed25519 keys but leaks the
 * key's OpenSSL objects (about 0.5 KB) with every signature, which a
 * long-running sender cannot afford. */
static int check_key(const EVP_PKEY *pkey, const char *path, mr_err *err)
{
    if (EVP_PKEY_base_id(pkey) == EVP_PKEY_ED25519)
        return mr_err_set(err, "%s: an Ed25519 key; libopendkim leaks memory with every "
                               "Ed25519 signature, so only RSA keys are used", path);
    if (EVP_PKEY_base_id(pkey) != EVP_PKEY_RSA)
        return mr_err_set(err, "%s: not an RSA key", path);
    if (EVP_PKEY_bits(pkey) < MR_DKIM_RSA_BITS_MIN)
        return mr_err_set(err, "%s: an RSA key of %d bits; at least %d are needed", path,
                          EVP_PKEY_bits(pkey), MR_DKIM_RSA_BITS_MIN);
    return 0;
}

/* Writes pkey into key->pem as PKCS #8 PEM. */
static int write_pkcs8(EVP_PKEY *pkey, dkim_key *key)
{
    BIO *out = BIO_new(BIO_s_secmem());   /* wiped when freed */
    char *pem;
    long len = 0;

    if (out != NULL && PEM_write_bio_PKCS8PrivateKey(out, pkey, NULL, NULL, 0, NULL, NULL))
        len = BIO_get_mem_data(out, &pem);
    if (len > 0 && (key->pem = malloc((size_t)len + 1)) != NULL) {
        memcpy(key->pem, pem, (size_t)len);
        key->pem[len] = '\0';
        key->pem_len = (size_t)len;
    }
    BIO_free_all(out);
    return key->pem != NULL ? 0 : -1;
}

/* Parses the PEM text in buf, checks it and keeps it in key->pem. */
static int load_key(const mr_buf *buf, const char *path, dkim_key *key, mr_err *err)
{
    BIO *in = BIO_new_mem_buf(buf->data != NULL ? buf->data : (unsigned char *)"", (int)buf->len);
    EVP_PKEY *pkey = NULL;
    int rc;

    if (in == NULL)
        rc = mr_err_set(err, "out of memory");
    else if ((pkey = PEM_read_bio_PrivateKey(in, NULL, no_password, NULL)) == NULL)
        rc = mr_err_set(err, "%s: not a PEM private key (or an encrypted one)", path);
    else if ((rc = check_key(pkey, path, err)) == 0 && write_pkcs8(pkey, key) < 0)
        rc = mr_err_set(err, "%s: cannot convert the key (out of memory)", path);
    ERR_clear_error();
    EVP_PKEY_free(pkey);
    BIO_free(in);
    return rc;
}

static int find_key(const mr_dkim *d, const char *domain)
{
    for (size_t i = 0; i < d->count; i++)
        if (strcasecmp(d->keys[i].domain, domain) == 0)
            return (int)i;
    return -1;
}

/* One "domain:selector:path" entry (a NUL-terminated copy) into key. */
static int parse_entry(const mr_dkim *d, char *entry, dkim_key *key, mr_err *err)
{
    char *selector = strchr(entry, ':'), *path;
    mr_buf file;
    int rc;

    if (selector == NULL || (path = strchr(selector + 1, ':')) == NULL)
        return mr_err_set(err, "not domain:selector:/path/key.pem");
    *selector++ = '\0';
    *path++ = '\0';
    if (!dns_name_valid(entry))
        return mr_err_set(err, "'%s' is not a domain name", entry);
    if (!dns_name_valid(selector))
        return mr_err_set(err, "'%s' is not a selector (letters, digits, hyphens, dots)",
                          selector);
    if (path[0] != '/')
        return mr_err_set(err, "the key file '%s' is not an absolute path", path);
    if (find_key(d, entry) >= 0)
        return mr_err_set(err, "a second key for %s", entry);
    mr_buf_init(&file, MR_DKIM_KEY_FILE_LIMIT);
    rc = read_key_file(path, &file, err);
    if (rc == 0)
        rc = load_key(&file, path, key, err);
    if (file.data != NULL)
        OPENSSL_cleanse(file.data, file.len);
    mr_buf_free(&file);
    if (rc < 0)
        return -1;
    key->domain = strdup(entry);
    key->selector = strdup(selector);
    if (key->domain == NULL || key->selector == NULL)
        return mr_err_set(err, "out of memory");
    for (char *p = key->domain; *p != '\0'; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
    return 0;
}

static void key_free(dkim_key *key)
{
    if (key->pem != NULL)
        OPENSSL_cleanse(key->pem, key->pem_len);
    free(key->pem);
    free(key->domain);
    free(key->selector);
}

/* Adds the entry of n bytes at start (entry number index, from 1). */
static int add_entry(mr_dkim *d, const char *start, size_t n, unsigned index, mr_err *err)
{
    char *entry = strndup(start, n);
    dkim_key *keys, key = {0};
    int rc;

    if (entry == NULL)
        return mr_err_set(err, "out of memory");
    rc = parse_entry(d, entry, &key, err);
    free(entry);
    if (rc == 0 && (keys = realloc(d->keys, (d->count + 1) * sizeof *keys)) == NULL)
        rc = mr_err_set(err, "out of memory");
    if (rc < 0) {
        key_free(&key);
        return mr_err_prefix(err, "dkim_keys entry %u (%.*s)", index, (int)n, start);
    }
    d->keys = keys;
    d->keys[d->count++] = key;
    return 0;
}

/* The library handle: lines may end in a bare LF (signed as CRLF), and
 * the fields to sign are ours rather than libopendkim's longer default. */
static int library_init(mr_dkim *d, mr_err *err)
{
    static const char *const fields[] = {MR_DKIM_SIGNED_FIELDS, NULL};
    const char **list = (const char **)fields;
    unsigned flags = DKIM_LIBFLAGS_FIXCRLF;

    if ((d->lib = dkim_init(NULL, NULL)) == NULL)
        return mr_err_set(err, "cannot start libopendkim");
    if (dkim_options(d->lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags) != DKIM_STAT_OK
        || dkim_options(d->lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS, list, sizeof list)
               != DKIM_STAT_OK)
        return mr_err_set(err, "cannot set libopendkim's options");
    return 0;
}

int mr_dkim_load(const char *spec, mr_dkim **out, mr_err *err)
{
    static const char blanks[] = " \t\r\n";
    mr_dkim *d = calloc(1, sizeof *d);
    unsigned index = 0;

    *out = NULL;
    if (d == NULL)
        return mr_err_set(err, "out of memory");
    if (spec == NULL)
        spec = "";
    if (library_init(d, err) < 0) {
        mr_dkim_free(d);
        return -1;
    }
    for (const char *p = spec + strspn(spec, blanks); *p != '\0'; p += strspn(p, blanks)) {
        size_t n = strcspn(p, blanks);

        if (add_entry(d, p, n, ++index, err) < 0) {
            mr_dkim_free(d);
            return -1;
        }
        p += n;
    }
    *out = d;
    return 0;
}

size_t mr_dkim_key_count(const mr_dkim *d)
{
    return d->count;
}

void mr_dkim_free(mr_dkim *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->count; i++)
        key_free(&d->keys[i]);
    free(d->keys);
    if (d->lib != NULL)
        dkim_close(d->lib);
    free(d);
}

/* --- the From domain ----------------------------------------------------------------- */

/* The domain of the first address in an address field's value (raw
 * bytes, folding included): the addr-spec between < and > if the first
 * mailbox has one, else the first bare addr-spec. Comments and quoted
 * strings are skipped (an '@' in them is no separator), so is a group's
 * display name. Returns 1 with the domain in out, or 0 if there is none
 * or it does not fit. */
static int address_domain(const unsigned char *p, size_t n, char *out, size_t size)
{
    char addr[ADDRESS_MAX + 1];
    size_t len = 0;
    int comment = 0, quoted = 0, angle = 0;
    const char *at;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];

        if ((quoted || comment > 0) && c == '\\')
            i++;
        else if (quoted)
            quoted = c != '"';
        else if (comment > 0)
            comment += c == '(' ? 1 : c == ')' ? -1 : 0;
        else if (c == '(')
            comment = 1;
        else if (c == '"')
            quoted = 1;
        else if (c == '<' || (c == ':' && !angle))
            angle = c == '<', len = 0;
        else if (c == '>' || ((c == ',' || c == ';') && len > 0))
            break;
        else if (strchr(" \t\r\n,;", c) == NULL) {
            if (len + 1 >= sizeof addr)
                return 0;
            addr[len++] = (char)c;
        }
    }
    addr[len] = '\0';
    if ((at = strrchr(addr, '@')) == NULL || at[1] == '\0' || strlen(at + 1) >= size)
        return 0;
    strcpy(out, at + 1);
    return 1;
}

/* The domain of the address in the message's last From field. */
static int from_domain(const unsigned char *message, size_t len, char *out, size_t size)
{
    mr_header_scan scan;
    mr_header_field field, from = {0};
    int found = 0;

    mr_header_scan_init(&scan, message, len);
    while (mr_header_next(&scan, &field))
        if (mr_header_is(&field, "From"))
            from = field, found = 1;
    return found && address_domain(from.value, from.value_len, out, size);
}

/* --- signing ------------------------------------------------------------------------- */

static int dkim_failed(DKIM *dkim, DKIM_STAT status, const char *domain, mr_err *err)
{
    const char *why = dkim != NULL ? dkim_geterror(dkim) : NULL;

    if (why == NULL || why[0] == '\0')
        why = dkim_getresultstr(status);
    return mr_err_set(err, "DKIM signing for %s failed: %s", domain, why != NULL ? why : "?");
}

/* "DKIM-Signature: " value CRLF, with every line end of the value (LF or
 * CRLF: libopendkim folds with LF) as CRLF. */
static char *signature_field(const unsigned char *value, size_t len)
{
    size_t prefix = strlen(SIGNATURE_FIELD), n = prefix;
    char *field = malloc(prefix + 2 * len + 3);

    if (field == NULL)
        return NULL;
    memcpy(field, SIGNATURE_FIELD, prefix);
    for (size_t i = 0; i < len; i++) {
        if (value[i] == '\r')
            continue;
        if (value[i] == '\n')
            field[n++] = '\r';
        field[n++] = (char)value[i];
    }
    memcpy(field + n, "\r\n", 3);
    return field;
}

/* Runs message through a signing handle; the header value in *value
 * (owned by dkim). */
static DKIM_STAT sign_message(DKIM *dkim, const unsigned char *message, size_t len,
                              unsigned char **value, size_t *value_len)
{
    DKIM_STAT status;

    /* dkim_chunk() only reads the buffer; its prototype lacks the const. */
    status = dkim_chunk(dkim, (unsigned char *)message, len);
    if (status == DKIM_STAT_OK)
        status = dkim_chunk(dkim, NULL, 0);
    if (status == DKIM_STAT_OK)
        status = dkim_eom(dkim, NULL);
    if (status == DKIM_STAT_OK)
        status = dkim_getsighdr_d(dkim, strlen(SIGNATURE_FIELD), value, value_len);
    return status;
}

int mr_dkim_sign(const mr_dkim *d, const unsigned char *message, size_t len, char **header,
                 mr_err *err)
{
    char domain[DOMAIN_MAX + 2];
    const dkim_key *key;
    unsigned char *value;
    size_t value_len;
    DKIM_STAT status;
    DKIM *dkim;
    int i, rc = 0;

    *header = NULL;
    if (d->count == 0 || !from_domain(message, len, domain, sizeof domain)
        || (i = find_key(d, domain)) < 0)
        return 0;
    key = &d->keys[i];
    dkim = dkim_sign(d->lib, (const unsigned char *)LOG_ID, NULL, key->pem,
                     (const unsigned char *)key->selector, (const unsigned char *)key->domain,
                     DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, DKIM_SIGN_RSASHA256, -1, &status);
    if (dkim == NULL)
        return dkim_failed(NULL, status, key->domain, err);
    status = sign_message(dkim, message, len, &value, &value_len);
    if (status != DKIM_STAT_OK)
        rc = dkim_failed(dkim, status, key->domain, err);
    else if ((*header = signature_field(value, value_len)) == NULL)
        rc = mr_err_set(err, "out of memory");
    dkim_free(dkim);
    return rc;
}
