/*
 * srs.c - the Sender Rewriting Scheme as libsrs2 (Shevek) and postsrsd
 * write it (see srs.h).
 *
 * libsrs2 is the reference: its addresses are what receivers, and our own
 * reverse, must agree on byte for byte. What it does and we do the same:
 * the hash is HMAC-SHA1 over the lowercased fields concatenated without a
 * separator, encoded as the first characters of standard base64; the SRS1
 * hash covers the previous forwarder's host and the rest of the SRS0 local
 * part including its separator; the SRS tag and the separator after it
 * ("=", "+" or "-") match case-insensitively on input, and our output
 * always uses "="; an SRS0 timestamp is valid from its day to max_age days
 * later, counted in the 1024-day cycle of two base32 digits.
 *
 * Where we are stricter, because the input is a message's envelope:
 * lengths are bounded, an address must have its '@' and both parts, and
 * characters that would make the SRS local part need quoting are refused
 * rather than copied into a broken address. The hash is checked before the
 * timestamp, so that a forged address is called forged, not expired.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "mailrobot/outbound.h"
#include "mailrobot/srs.h"

#define TIME_PRECISION 86400   /* one day */
#define TIME_SLOTS 1024        /* two base32 digits */
#define MAX_AGE_LIMIT (TIME_SLOTS - 1)
#define DOMAIN_MAX 253

static const char base32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
static const char base64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* --- characters ------------------------------------------------------------------ */

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static int alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* RFC 5322 atext and '.': what a local part may hold without quoting. */
static int local_char(int c)
{
    return alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL);
}

/* Host names as they occur in envelopes: letters, digits, '-', '.', '_'.
 * No '=' (the field separator) and no IP literals (brackets need quoting). */
static int domain_char(int c)
{
    return alnum(c) || c == '-' || c == '.' || c == '_';
}

static int all_chars(const char *s, size_t n, int (*ok)(int))
{
    for (size_t i = 0; i < n; i++)
        if (!ok((unsigned char)s[i]))
            return 0;
    return 1;
}

static int printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

static int equal_nocase(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return 0;
    for (size_t i = 0; i < an; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* "SRS0=" / "SRS1+" ...: tag (case-insensitive) and one of libsrs2's
 * separators. which is '0' or '1'. */
static int has_tag(const char *s, size_t n, char which)
{
    return n >= 5 && lower((unsigned char)s[0]) == 's' && lower((unsigned char)s[1]) == 'r'
           && lower((unsigned char)s[2]) == 's' && s[3] == which
           && (s[4] == '=' || s[4] == '+' || s[4] == '-');
}

/* A host name (outbound.h) of at most DOMAIN_MAX bytes. */
static int host_valid(const char *s)
{
    size_t len = strlen(s);

    return len > 0 && len <= DOMAIN_MAX && mr_domain_valid(s);
}

/* --- the hash and the timestamp --------------------------------------------------- */

typedef struct span {
    const char *p;
    size_t n;
} span;

/* The first MR_SRS_HASH_LENGTH base64 characters of HMAC-SHA1(secret,
 * lowercase(fields...)). The fields are at most MR_SRS_ADDRESS_MAX bytes
 * together (they are parts of one bounded address). */
static int hash_create(const char *secret, const span *fields, size_t count,
                       char hash[MR_SRS_HASH_LENGTH + 1], mr_err *err)
{
    unsigned char data[MR_SRS_ADDRESS_MAX + 8], md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    size_t len = 0;

    for (size_t i = 0; i < count; i++) {
        if (fields[i].n > sizeof data - len)
            return mr_err_set(err, "SRS: address too long");
        for (size_t j = 0; j < fields[i].n; j++)
            data[len++] = (unsigned char)lower((unsigned char)fields[i].p[j]);
    }
    if (HMAC(EVP_sha1(), secret, (int)strlen(secret), data, len, md, &md_len) == NULL
        || md_len < 3)
        return mr_err_set(err, "SRS: HMAC-SHA1 failed");
    /* 4 base64 characters are the first 3 bytes. */
    hash[0] = base64[md[0] >> 2];
    hash[1] = base64[((md[0] & 0x03) << 4) | (md[1] >> 4)];
    hash[2] = base64[((md[1] & 0x0f) << 2) | (md[2] >> 6)];
    hash[3] = base64[md[2] & 0x3f];
    hash[4] = '\0';
    return 0;
}

/* Whether given (n >= MR_SRS_HASH_LENGTH characters) starts with expected,
 * ignoring case; every character is compared. */
static int hash_matches(const char *given, const char *expected)
{
    int diff = 0;

    for (size_t i = 0; i < MR_SRS_HASH_LENGTH; i++)
        diff |= lower((unsigned char)given[i]) ^ lower((unsigned char)expected[i]);
    return diff == 0;
}

static int64_t day_of(int64_t now_s)
{
    return now_s / TIME_PRECISION;
}

static void timestamp_create(int64_t now_s, char stamp[3])
{
    int64_t day = day_of(now_s);

    stamp[0] = base32[(day >> 5) & 31];
    stamp[1] = base32[day & 31];
    stamp[2] = '\0';
}

/* The slot (0..1023) of a two-character base32 timestamp (any case), or -1. */
static int timestamp_slot(span stamp)
{
    int slot = 0;

    if (stamp.n != 2)
        return -1;
    for (size_t i = 0; i < stamp.n; i++) {
        int c = stamp.p[i] >= 'a' && stamp.p[i] <= 'z' ? stamp.p[i] - 'a' + 'A' : stamp.p[i];
        const char *at = c != '\0' ? strchr(base32, c) : NULL;

        if (at == NULL)
            return -1;
        slot = slot << 5 | (int)(at - base32);
    }
    return slot;
}

/* --- fields and results ------------------------------------------------------------ */

/* Splits s (n bytes) at its first '=' into head and the rest; both must
 * be non-empty. */
static int split(const char *s, size_t n, span *head, span *rest)
{
    const char *eq = memchr(s, '=', n);

    if (eq == NULL || eq == s || (size_t)(eq - s) + 1 == n)
        return -1;
    *head = (span){s, (size_t)(eq - s)};
    *rest = (span){eq + 1, n - (size_t)(eq - s) - 1};
    return 0;
}

/* Formats an address into out (outsz > 0): -1 if it does not fit, or is
 * longer than MR_SRS_ADDRESS_MAX (what we make, we must be able to reverse). */
static int put(char *out, size_t outsz, mr_err *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int put(char *out, size_t outsz, mr_err *err, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(out, outsz, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= outsz || n > MR_SRS_ADDRESS_MAX) {
        out[0] = '\0';
        if (n > MR_SRS_ADDRESS_MAX)
            return mr_err_set(err, "SRS: the address would be longer than %d bytes",
                              MR_SRS_ADDRESS_MAX);
        return mr_err_set(err, "SRS: the address (%d characters) does not fit in %zu bytes", n,
                          outsz);
    }
    return 0;
}

static int check_secret(const char *secret, mr_err *err)
{
    size_t len = secret != NULL ? strlen(secret) : 0;

    if (len == 0)
        return mr_err_set(err, "SRS: no secret (srs_secret)");
    if (len > MR_SRS_SECRET_MAX)
        return mr_err_set(err, "SRS: the secret is longer than %d bytes", MR_SRS_SECRET_MAX);
    return 0;
}

/* --- forward ------------------------------------------------------------------------ */

/* SRS1=HHHH=host=rest@ forwarded again: a new hash over host and rest
 * (the old hash is another forwarder's; we cannot check it). */
static int forward_srs1(const char *secret, const char *srs_domain, const char *local,
                        size_t local_len, char *out, size_t outsz, mr_err *err)
{
    char h[MR_SRS_HASH_LENGTH + 1];
    span hash, tail, fields[2];

    if (split(local + 5, local_len - 5, &hash, &tail) < 0
        || split(tail.p, tail.n, &fields[0], &fields[1]) < 0)
        return mr_err_set(err, "SRS: malformed SRS1 sender: expected SRS1=HASH=HOST=USER");
    if (hash_create(secret, fields, 2, h, err) < 0)
        return -1;
    return put(out, outsz, err, "SRS1=%s=%.*s=%.*s@%s", h, (int)fields[0].n, fields[0].p,
               (int)fields[1].n, fields[1].p, srs_domain);
}

int mr_srs_forward(const char *secret, const char *srs_domain, const char *sender,
                   int64_t now_s, char *out, size_t outsz, mr_err *err)
{
    const char *at, *domain;
    size_t len, local_len, domain_len;
    char h[MR_SRS_HASH_LENGTH + 1], stamp[3];

    if (out == NULL || outsz == 0)
        return mr_err_set(err, "SRS: no room for the address");
    out[0] = '\0';
    if (check_secret(secret, err) < 0)
        return -1;
    if (srs_domain == NULL || !host_valid(srs_domain))
        return mr_err_set(err, "SRS: srs_domain is not a host name");
    if (now_s < 0)
        return mr_err_set(err, "SRS: time before 1970");
    if (sender == NULL)
        return mr_err_set(err, "SRS: no sender");
    len = strnlen(sender, MR_SRS_ADDRESS_MAX + 1);
    if (len == 0)
        return put(out, outsz, err, "%s", "");   /* the null sender stays null */
    if (len > MR_SRS_ADDRESS_MAX)
        return mr_err_set(err, "SRS: sender longer than %d bytes", MR_SRS_ADDRESS_MAX);
    at = strrchr(sender, '@');
    if (at == NULL || at == sender || at[1] == '\0')
        return mr_err_set(err, "SRS: sender is not local@domain");
    local_len = (size_t)(at - sender);
    domain = at + 1;
    domain_len = strlen(domain);
    if (!all_chars(sender, local_len, local_char))
        return mr_err_set(err, "SRS: sender's local part has characters an SRS address "
                          "cannot carry (quotes, blanks, brackets, non-ASCII)");
    if (!all_chars(domain, domain_len, domain_char))
        return mr_err_set(err, "SRS: sender's domain is not a host name");

    if (equal_nocase(domain, domain_len, srs_domain, strlen(srs_domain)))
        return put(out, outsz, err, "%s", sender);   /* ours already */
    if (has_tag(sender, local_len, '1'))
        return forward_srs1(secret, srs_domain, sender, local_len, out, outsz, err);
    if (has_tag(sender, local_len, '0')) {
        /* SRS1 over the forwarder's host and the SRS0 local part after "SRS0"
         * (its separator included, whence "host==HHHH"). */
        span fields[2] = {{domain, domain_len}, {sender + 4, local_len - 4}};

        if (hash_create(secret, fields, 2, h, err) < 0)
            return -1;
        return put(out, outsz, err, "SRS1=%s=%s=%.*s@%s", h, domain, (int)(local_len - 4),
                   sender + 4, srs_domain);
    }
    timestamp_create(now_s, stamp);
    {
        span fields[3] = {{stamp, 2}, {domain, domain_len}, {sender, local_len}};

        if (hash_create(secret, fields, 3, h, err) < 0)
            return -1;
    }
    return put(out, outsz, err, "SRS0=%s=%s=%s=%.*s@%s", h, stamp, domain, (int)local_len,
               sender, srs_domain);
}

/* --- reverse ------------------------------------------------------------------------ */

static int check_hash(const char *secret, span given, const span *fields, size_t count,
                      const char *what, mr_err *err)
{
    char expected[MR_SRS_HASH_LENGTH + 1];

    if (given.n < MR_SRS_HASH_LENGTH)
        return mr_err_set(err, "%s address: hash shorter than %d characters", what,
                          MR_SRS_HASH_LENGTH);
    if (hash_create(secret, fields, count, expected, err) < 0)
        return -1;
    if (!hash_matches(given.p, expected))
        return mr_err_set(err, "%s address: hash does not match (forged, or made with "
                          "another secret)", what);
    return 0;
}

/* SRS1=HHHH=host=rest -> SRS0rest@host. */
static int reverse_srs1(const char *secret, const char *local, size_t local_len, char *out,
                        size_t outsz, mr_err *err)
{
    span hash, host, user, tail;
    span fields[2];

    if (split(local + 5, local_len - 5, &hash, &tail) < 0
        || split(tail.p, tail.n, &host, &user) < 0)
        return mr_err_set(err, "SRS1 address: malformed (expected SRS1=HASH=HOST=USER)");
    fields[0] = host;
    fields[1] = user;
    if (check_hash(secret, hash, fields, 2, "SRS1", err) < 0)
        return -1;
    return put(out, outsz, err, "SRS0%.*s@%.*s", (int)user.n, user.p, (int)host.n, host.p);
}

/* SRS0=HHHH=TT=host=user -> user@host. */
static int reverse_srs0(const char *secret, const char *local, size_t local_len, int64_t now_s,
                        int max_age, char *out, size_t outsz, mr_err *err)
{
    span hash, stamp, host, user, tail, tail2;
    span fields[3];
    int64_t then, today;
    int slot;

    if (split(local + 5, local_len - 5, &hash, &tail) < 0
        || split(tail.p, tail.n, &stamp, &tail2) < 0 || split(tail2.p, tail2.n, &host, &user) < 0)
        return mr_err_set(err, "SRS0 address: malformed (expected SRS0=HASH=TT=HOST=USER)");
    if ((slot = timestamp_slot(stamp)) < 0)
        return mr_err_set(err, "SRS0 address: the timestamp is not 2 base32 characters");
    fields[0] = stamp;
    fields[1] = host;
    fields[2] = user;
    if (check_hash(secret, hash, fields, 3, "SRS0", err) < 0)
        return -1;
    /* libsrs2: today's slot, moved up by whole cycles until not before then. */
    today = day_of(now_s) % TIME_SLOTS;
    then = slot;
    while (today < then)
        today += TIME_SLOTS;
    if (today > then + max_age)
        return mr_err_set(err, "SRS0 address: expired (%lld days old, more than %d)",
                          (long long)(today - then), max_age);
    return put(out, outsz, err, "%.*s@%.*s", (int)user.n, user.p, (int)host.n, host.p);
}

int mr_srs_reverse(const char *secret, const char *address, int64_t now_s, int max_age_days,
                   char *out, size_t outsz, mr_err *err)
{
    const char *at;
    size_t len, local_len;

    if (out == NULL || outsz == 0)
        return mr_err_set(err, "SRS: no room for the address");
    out[0] = '\0';
    if (check_secret(secret, err) < 0)
        return -1;
    if (max_age_days == 0)
        max_age_days = MR_SRS_MAX_AGE_DAYS;
    if (max_age_days < 1 || max_age_days > MAX_AGE_LIMIT)
        return mr_err_set(err, "SRS: maximum age must be from 1 to %d days", MAX_AGE_LIMIT);
    if (now_s < 0)
        return mr_err_set(err, "SRS: time before 1970");
    if (address == NULL)
        return mr_err_set(err, "not an SRS address: none given");
    len = strnlen(address, MR_SRS_ADDRESS_MAX + 1);
    if (len > MR_SRS_ADDRESS_MAX)
        return mr_err_set(err, "not an SRS address: longer than %d bytes", MR_SRS_ADDRESS_MAX);
    if (!printable(address))
        return mr_err_set(err, "not an SRS address: holds blanks, control characters or "
                          "non-ASCII");
    at = strchr(address, '@');
    if (at == NULL || at[1] == '\0')
        return mr_err_set(err, "not an SRS address: not local@domain");
    local_len = (size_t)(at - address);
    if (has_tag(address, local_len, '1'))
        return reverse_srs1(secret, address, local_len, out, outsz, err);
    if (has_tag(address, local_len, '0'))
        return reverse_srs0(secret, address, local_len, now_s, max_age_days, out, outsz, err);
    return mr_err_set(err, "not an SRS address: its local part does not start with SRS0= or "
                      "SRS1=");
}
