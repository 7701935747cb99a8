/*
 * dkim.h - DKIM signatures (RFC 6376) for the mail mailrobot sends, with
 * libopendkim.
 *
 * The keys come from the config value dkim_keys: blank-separated
 * "domain:selector:/path/key.pem" entries, one per signing domain. A mail
 * is signed with the key of the domain of its From address (the last From
 * field if there are several, as a verifier picks it; the domain matched
 * exactly, without regard to case: a key for example.org does not sign
 * mail from lists.example.org). Mail from a domain without a key is sent
 * unsigned.
 *
 * A signature is relaxed/relaxed, rsa-sha256, over the whole body and
 * over those of MR_DKIM_SIGNED_FIELDS that the message has (every
 * instance of each). Its t= is the time of signing; it sets no expiry
 * (x=) and no body length (l=). Ed25519 keys are refused: libopendkim
 * 2.11 leaks memory with every Ed25519 signature.
 *
 * An mr_dkim is read-only once loaded and holds no state between
 * signatures: one thread may sign with it any number of times. It keeps
 * its private keys in memory and wipes them when freed.
 */
#ifndef MAILROBOT_DKIM_H
#define MAILROBOT_DKIM_H

#include <stddef.h>

#include "mailrobot/err.h"

/* The header fields signed when present, as the h= tag lists them. */
#define MR_DKIM_SIGNED_FIELDS                                                        \
    "From", "To", "Cc", "Subject", "Date", "Message-ID", "In-Reply-To", "References", \
        "Reply-To", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",       \
        "Auto-Submitted"

#define MR_DKIM_KEY_FILE_LIMIT (64 * 1024) /* largest key file read */
#define MR_DKIM_RSA_BITS_MIN 1024          /* smaller RSA keys are refused (RFC 8301) */

typedef struct mr_dkim mr_dkim;

/* Reads the keys of spec (the dkim_keys value). Each entry is
 * domain:selector:path; the domain a host name, the selector one or more
 * dot-separated labels, the path absolute (it may hold colons) to an
 * unencrypted PEM private key, RSA of at least MR_DKIM_RSA_BITS_MIN bits
 * (PKCS #1 or PKCS #8). A domain may have one key.
 * An empty (all blank, or NULL) spec gives an mr_dkim without keys, which
 * signs nothing.
 *
 * Returns 0 and *out (free with mr_dkim_free), or -1 with an error that
 * names the entry and what is wrong with it, e.g.
 * "dkim_keys entry 2 (example.org:s1:/x.pem): cannot read /x.pem: No such
 * file or directory". */
int mr_dkim_load(const char *spec, mr_dkim **out, mr_err *err);

/* The number of keys d holds. */
size_t mr_dkim_key_count(const mr_dkim *d);

/* Signs message (len bytes, RFC 5322 with CRLF line ends; a bare LF is
 * signed as CRLF, as SMTP will carry it) with the key of its From domain.
 *
 * Returns 0 and in *header a malloc'd "DKIM-Signature: ...\r\n" field,
 * folded with CRLF, to be put in front of the unchanged message; or 0 and
 * *header NULL when no key matches (no From field, no address in it, or
 * no key for its domain). Returns -1 with err (and *header NULL) when
 * libopendkim fails. */
int mr_dkim_sign(const mr_dkim *d, const unsigned char *message, size_t len, char **header,
                 mr_err *err);

/* Frees d and wipes its keys; NULL is allowed. */
void mr_dkim_free(mr_dkim *d);

#endif
