/*
 * envelope.h - the SMTP envelope of one inbound delivery, as Postfix gives
 * it to a delivery command: pipe(8) on the command line (SPEC §3), or
 * local(8) in environment variables when mailrobot-ingest runs from an
 * alias ("|mailrobot-ingest").
 *
 * An envelope borrows its strings from argv/envp; it owns only the arrays.
 */
#ifndef MAILROBOT_ENVELOPE_H
#define MAILROBOT_ENVELOPE_H

#include <stddef.h>

#include "mailrobot/err.h"

#define MR_MAX_RECIPIENTS 1000

typedef struct mr_envelope {
    const char *sender;          /* "" for the null sender <> */
    const char *queue_id;        /* "" if unknown */
    const char *client_address;  /* "" if unknown */
    const char *helo;            /* "" if unknown */
    const char *sasl_username;   /* "" if not authenticated */
    const char *client_hostname; /* "" if unknown */
    const char *client_protocol; /* "" if unknown (SMTP, ESMTP, ...) */
    const char *sasl_method;     /* "" if not authenticated */
    const char *sasl_sender;     /* "" if none */
    const char **recipients;     /* recipient_count entries */
    const char **original_recipients; /* same count; "" where unknown */
    size_t recipient_count;
    int from_local_env;          /* 1: taken from local(8)'s environment */
} mr_envelope;

/* Where the envelope of a delivery came from, for error messages. */
typedef struct mr_ingest_args {
    const char *config_path;     /* -C FILE, or NULL */
    mr_envelope envelope;
} mr_ingest_args;

/*
 * Parses mailrobot-ingest's command line:
 *
 *   mailrobot-ingest [-C FILE] [-f SENDER] [-q QUEUE_ID] [-c CLIENT_ADDRESS]
 *       [-h HELO] [-s SASL_USERNAME] [-n CLIENT_HOSTNAME] [-p CLIENT_PROTOCOL]
 *       [-m SASL_METHOD] [-a SASL_SENDER] [-o ORIGINAL_RECIPIENT...]
 *       [--] RECIPIENT...
 *
 * Every option takes exactly one argument, which may be empty (Postfix
 * passes "" for an empty macro); -o takes one per recipient, since pipe(8)
 * expands ${original_recipient} into as many arguments as there are
 * recipients. With no recipient on the command line, the envelope comes
 * from local(8)'s environment (RECIPIENT, SENDER, ORIGINAL_RECIPIENT,
 * CLIENT_ADDRESS, CLIENT_HELO, CLIENT_HOSTNAME, CLIENT_PROTOCOL,
 * SASL_USERNAME, SASL_METHOD, SASL_SENDER); options given explicitly win
 * over the environment. Returns 0, or -1 with the reason in err.
 * Free with mr_ingest_args_free().
 */
int mr_ingest_args_parse(mr_ingest_args *args, int argc, char *const *argv,
                         char *const *envp, mr_err *err);

void mr_ingest_args_free(mr_ingest_args *args);

#endif
