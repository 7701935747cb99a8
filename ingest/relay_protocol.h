/*
 * relay_protocol.h - how mailrobot-ingest hands a message to
 * mailrobot-ingestd over a Unix socket, and how the answer comes back.
 *
 * Request (client -> daemon), all integers 32-bit big-endian:
 *
 *   "MRI2"
 *   field sender, field queue_id, field client_address, field helo,
 *   field sasl_username, field client_hostname, field client_protocol,
 *   field sasl_method, field sasl_sender
 *   u32 recipient count, then per recipient: field recipient,
 *   field original_recipient
 *   u32 message length, then the message bytes
 *
 * where a field is a u32 length and that many bytes (no NUL). The message
 * length comes first so the daemon can budget memory before it reads.
 *
 * Response (daemon -> client): one line, "<exit status> <status text>\n",
 * e.g. "0 ok", "75 4.4.1 Kafka did not take the message: ...",
 * "65 5.3.4 message too big: ...". The client prints the text (unless the
 * status is 0) and exits with the status, so Postfix sees exactly what the
 * direct publisher would have given it.
 */
#ifndef INGEST_RELAY_PROTOCOL_H
#define INGEST_RELAY_PROTOCOL_H

#include <stddef.h>

#include "mailrobot/buf.h"
#include "mailrobot/envelope.h"
#include "mailrobot/err.h"

#define RELAY_MAGIC "MRI2"
#define RELAY_FIELD_LIMIT 2048        /* bytes of one envelope field */
#define RELAY_RESPONSE_LIMIT 1024     /* bytes of the response line */

/* Appends the request header (everything before the message bytes). */
int relay_request_encode(mr_buf *out, const mr_envelope *envelope, size_t message_len,
                         mr_err *err);

typedef enum relay_parse_status {
    RELAY_PARSE_OK = 0,     /* header complete */
    RELAY_PARSE_MORE = 1,   /* need more bytes */
    RELAY_PARSE_BAD = -1    /* malformed or over a limit; err says which */
} relay_parse_status;

/* A decoded request header. The envelope's strings are NUL-terminated
 * copies owned by the request. */
typedef struct relay_request {
    mr_envelope envelope;
    size_t header_len;   /* bytes before the message */
    size_t message_len;
    char *storage;       /* all strings, one allocation */
} relay_request;

/* Decodes the header at the start of data[0..len). max_message_len bounds
 * the announced message length. On RELAY_PARSE_OK, req is filled (free it
 * with relay_request_free()). */
relay_parse_status relay_request_parse(const unsigned char *data, size_t len,
                                       size_t max_message_len, relay_request *req,
                                       mr_err *err);

void relay_request_free(relay_request *req);

/* Formats "<status> <text>\n" into out; newlines in text become spaces.
 * Returns the length. */
size_t relay_response_format(char *out, size_t outsz, int status, const char *text);

/* Parses a response line (without or with its newline). Returns 0 and sets
 * *status and *text (pointing into line), or -1 if it is malformed. */
int relay_response_parse(char *line, int *status, const char **text);

#endif
