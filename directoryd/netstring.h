/*
 * netstring.h - netstrings (D. J. Bernstein, "<len>:<bytes>,") and the
 * Postfix socketmap protocol carried in them (socketmap_table(5)).
 *
 * Pure functions over caller-owned buffers: no allocation, no I/O, so the
 * unit tests and the fuzzer reach every branch.
 *
 *   request   "<len>:<name> <key>,"      e.g. "20:mailboxes bob@a.test,"
 *   reply     "<len>:OK <data>,"  "<len>:NOTFOUND ,"  "<len>:TEMP <reason>,"
 *             "<len>:TIMEOUT <reason>,"  "<len>:PERM <reason>,"
 */
#ifndef DIRECTORYD_NETSTRING_H
#define DIRECTORYD_NETSTRING_H

#include <stddef.h>

/* The length prefix has at most this many digits (10^9 - 1 bytes). */
#define NETSTRING_DIGITS_MAX 9

typedef enum netstring_status {
    NETSTRING_OK = 0,          /* one complete netstring */
    NETSTRING_INCOMPLETE = 1,  /* a valid prefix: read more */
    NETSTRING_BAD = 2,         /* not a netstring: the stream cannot be resynchronised */
    NETSTRING_TOO_LONG = 3     /* its length is over the caller's limit */
} netstring_status;

/* Parses the netstring at the start of buf[0..len). On NETSTRING_OK sets
 * *payload and *payload_len (pointing into buf) and *consumed (the bytes of
 * the whole netstring, which may be followed by more). A length prefix over
 * limit is NETSTRING_TOO_LONG as soon as its digits are read, so a caller
 * never needs to buffer more than limit + NETSTRING_DIGITS_MAX + 2 bytes.
 * Strict: digits without leading zeros (except "0"), ':' and ','. */
netstring_status netstring_parse(const char *buf, size_t len, size_t limit,
                                 const char **payload, size_t *payload_len, size_t *consumed);

/* Writes the netstring of data[0..len) to out (NUL-terminated if it fits).
 * Returns the length of the netstring (not counting the NUL): if it is
 * >= outsz, out was too small and holds nothing useful. */
size_t netstring_encode(char *out, size_t outsz, const char *data, size_t len);

/* Splits a socketmap request payload "<name> <key>" at its first space.
 * The name is 1..64 bytes of [a-z0-9_-]; the key is 1 byte or more and may
 * hold anything but NUL. Returns 0, or -1 if the payload is not a request. */
int sockmap_request_split(const char *payload, size_t len, const char **name,
                          size_t *name_len, const char **key, size_t *key_len);

/* Writes the netstring of the reply "<status> <data>" (status "OK",
 * "NOTFOUND", "TEMP", "TIMEOUT" or "PERM"; data may be "" and is cut so
 * that the reply fits max_payload bytes). Returns as netstring_encode(). */
size_t sockmap_reply_format(char *out, size_t outsz, size_t max_payload, const char *status,
                            const char *data);

#endif
