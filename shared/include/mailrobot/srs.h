/*
 * srs.h - the Sender Rewriting Scheme (SRS) of libsrs2 and postsrsd, for
 * forward robots (docs/robots/builtin.md).
 *
 * A forwarded mail keeps its original envelope sender only at the price
 * of SPF: the receiving site sees alice@example.org arrive from our host,
 * which example.org's SPF record does not name. SRS gives the copy an
 * envelope sender at our own domain (srs_domain) that encodes the original
 * one, so that SPF passes and a bounce can still find its way back:
 *
 *   alice@example.org  ->  SRS0=HHHH=TT=example.org=alice@srs_domain
 *
 *   TT    the day (unix time / 86400) modulo 1024 in base32
 *         (ABCDEFGHIJKLMNOPQRSTUVWXYZ234567), 2 characters
 *   HHHH  the first 4 characters of the base64 of HMAC-SHA1(secret,
 *         lowercase(TT domain local)), exactly as libsrs2 computes it
 *
 * Forwarding an address that is already SRS0 at another forwarder makes
 * it SRS1, which points at that forwarder rather than growing with each
 * hop (SRS0's own "=" stays in place, hence the "=="):
 *
 *   SRS0=HHHH=TT=example.org=alice@fwd.example
 *       -> SRS1=GGGG=fwd.example==HHHH=TT=example.org=alice@srs_domain
 *
 * GGGG = HMAC over lowercase("fwd.example" "=HHHH=TT=example.org=alice").
 * An SRS1 address forwarded again keeps its inner part and gets a new hash.
 * The addresses are byte for byte those of libsrs2 and postsrsd 1.x/2.x
 * with their defaults (separator "=", hash length 4, maximum age 21 days),
 * which tests/integration/test_srs_oracle.py checks against postsrsd.
 *
 * A sender whose domain is srs_domain itself (case-insensitively) is left
 * unchanged, as libsrs2 and postsrsd do unless told to "always rewrite":
 * our own addresses need no rewriting, and so neither do our SRS addresses.
 *
 * Everything given here may come from a message (untrusted): lengths are
 * bounded (MR_SRS_ADDRESS_MAX), characters checked, and every failure is -1
 * with a one-line reason in err. Nothing is kept between calls; both
 * functions are thread-safe.
 */
#ifndef MAILROBOT_SRS_H
#define MAILROBOT_SRS_H

#include <stddef.h>
#include <stdint.h>

#include "mailrobot/err.h"

#define MR_SRS_ADDRESS_MAX 512   /* longest address taken (senders, SRS addresses) */
#define MR_SRS_SECRET_MAX 1024   /* longest secret */
#define MR_SRS_MAX_AGE_DAYS 21   /* how long an SRS0 address reverses (libsrs2's default) */
#define MR_SRS_HASH_LENGTH 4

/* Rewrites the envelope sender `sender` of a mail being forwarded into
 * `out` (outsz bytes, NUL-terminated):
 *   ""                       stays "" (the null sender of bounces)
 *   local@srs_domain         unchanged (any case)
 *   SRS0...@host / SRS1...   SRS1=...@srs_domain (see above)
 *   local@domain             SRS0=HHHH=TT=domain=local@srs_domain
 * now_s (unix seconds, >= 0) gives TT. secret: 1 to MR_SRS_SECRET_MAX bytes;
 * srs_domain: a host name. Refused (-1): a sender longer than
 * MR_SRS_ADDRESS_MAX, without '@' or with an empty part, with characters an
 * SRS address cannot carry (quotes, blanks, brackets, ...; non-ASCII), a
 * domain other than letters, digits, '.', '-' and '_', a malformed SRS1
 * address, a result longer than MR_SRS_ADDRESS_MAX (which mr_srs_reverse
 * could not take back) or one that does not fit in out. */
int mr_srs_forward(const char *secret, const char *srs_domain, const char *sender,
                   int64_t now_s, char *out, size_t outsz, mr_err *err);

/* The address an SRS address stands for, into out: for SRS0, the original
 * sender (local@domain); for SRS1, the SRS0 address at the forwarder before
 * us (SRS0=HHHH=TT=domain=local@fwd.example). The domain of `address` is
 * not looked at (the caller routes only srs_domain here). The tag and the
 * hash compare case-insensitively (MTAs that smash case are common), a
 * longer hash is compared on its first MR_SRS_HASH_LENGTH characters, as in
 * libsrs2. max_age_days: 1 to 1023, 0 for MR_SRS_MAX_AGE_DAYS; an SRS0
 * address made on day D reverses on days D to D + max_age_days.
 * Returns -1 with the reason in err when address is not an SRS address, is
 * malformed, its hash does not match (forged, or made with another secret),
 * its timestamp is too old, or the result does not fit in out. */
int mr_srs_reverse(const char *secret, const char *address, int64_t now_s, int max_age_days,
                   char *out, size_t outsz, mr_err *err);

#endif
