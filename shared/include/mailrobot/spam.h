/*
 * spam.h - the spam verdict a filter at the door (rspamd, SpamAssassin)
 * wrote into a message's header section (docs/spam.md).
 *
 * One definition for everything that reads it: the webhook JSON's
 * spam.flag (mime_json.c) and the worker's per-robot "spam" policy
 * (robot.h). The first of these top-level fields that says yes or no
 * decides, in this order:
 *
 *   X-Spam-Flag    SpamAssassin: "YES" / "NO"
 *   X-Spam-Status  SpamAssassin: "Yes, score=..." / "No, score=..."
 *   X-Spam         rspamd's milter headers: "Yes" (there only when spam)
 *
 * A value says yes when it starts (after blanks) with "yes" or "true", no
 * with "no" or "false", ASCII case-insensitively; any other value of a
 * field is passed over. Only the first field of each name counts.
 *
 * The header section is read with header_fields.h (untrusted input, at
 * most MR_HEADER_SCAN_LIMIT bytes, nothing allocated). The verdict is only
 * as trustworthy as the filter that wrote it: the MTA must remove these
 * fields from arriving mail before the filter adds its own (docs/spam.md).
 */
#ifndef MAILROBOT_SPAM_H
#define MAILROBOT_SPAM_H

#include <stddef.h>

/* 1 spam, 0 not spam, -1 no field gives a verdict. */
int mr_spam_verdict(const unsigned char *msg, size_t len);

#endif
