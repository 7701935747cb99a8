/*
 * message_ids.h - the conversation a raw message belongs to, read from its
 * Message-ID, In-Reply-To and References header fields.
 *
 * Input is untrusted and may be anything: no header section, bare LF or
 * CRLF line ends, folded fields, NUL bytes, 8-bit garbage, absurdly long
 * lines. Only the header section is scanned (up to the first empty line,
 * and never more than MR_HEADER_SCAN_LIMIT bytes); nothing is allocated.
 * A leading mbox "From " line (as local(8) may prepend) is skipped.
 */
#ifndef MAILROBOT_MESSAGE_IDS_H
#define MAILROBOT_MESSAGE_IDS_H

#include <stddef.h>

#define MR_HEADER_SCAN_LIMIT (1u << 20)
#define MR_MSGID_MAX 256

/*
 * Writes the root Message-ID of the message's conversation into out,
 * without angle brackets: the first msg-id of References, else that of
 * In-Reply-To, else the message's own Message-ID (the first field of each
 * name counts). Whitespace and bytes outside printable ASCII are dropped;
 * the result is cut to MR_MSGID_MAX bytes and outsz - 1. Returns its
 * length; 0 (and out = "") when the message names no id at all.
 */
size_t mr_thread_root(const unsigned char *msg, size_t len, char *out, size_t outsz);

#endif
