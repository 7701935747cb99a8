/*
 * admind.h - what the files of mailrobot-admind share: the daemon's state
 * (server.c), the bearer token (auth.c) and the routes (routes.c).
 *
 * One thread does everything: libmicrohttpd runs from main's loop
 * (MHD_run_wait), so the one directory connection and the one audit
 * writer need no locks, and a request is answered before the next one is
 * read. Directory operations are short (one Redis transaction; account
 * creation hashes one password with argon2id).
 */
#ifndef ADMIND_H
#define ADMIND_H

#include <stddef.h>

#include <jansson.h>
#include <microhttpd.h>
#include <sodium.h>

#include "mailrobot/audit.h"
#include "mailrobot/config.h"
#include "mailrobot/directory.h"
#include "mailrobot/kafka.h"
#include "mailrobot/log.h"

#define ADMIND_TOKEN_MIN 16
#define ADMIND_TOKEN_MAX 4096

/* The bearer token, kept only as its BLAKE2b hash so that comparing it
 * with a presented one takes the same time whatever their lengths. */
typedef struct admind_auth {
    unsigned char hash[crypto_generichash_BYTES];
} admind_auth;

typedef struct admind {
    const mr_config *cfg;
    const mr_logger *log;
    mr_kafka_context kafka;
    mr_dir dir;
    int dir_open;
    mr_audit *audit;
    admind_auth auth;
    char *tls_cert, *tls_key;       /* PEM, read at start */
    struct MHD_Daemon *daemon;
} admind;

/* One request as routes.c sees it: the body is complete and within
 * admind_body_limit. */
typedef struct admind_request {
    struct MHD_Connection *conn;
    const char *method;
    const char *path;               /* percent-decoded by libmicrohttpd */
    const char *body;               /* NUL-terminated; "" when none */
    size_t len;
} admind_request;

/* What a route answers: JSON (json, owned) or JSON text made elsewhere
 * (raw, owned: a backup). */
typedef struct admind_reply {
    unsigned status;
    json_t *json;
    char *raw;
    size_t raw_len;
    const char *allow;              /* 405: the Allow header */
} admind_reply;

/* --- auth.c --- */

/* Reads admind_token_file (0, or -1 with err). Logs a warning when the
 * file is readable by its group or others. */
int admind_auth_load(admind_auth *auth, const mr_config *cfg, const mr_logger *log,
                     mr_err *err);

/* 1 if the Authorization header is "Bearer <the token>", else 0. header
 * may be NULL. Constant time in the token. */
int admind_auth_check(const admind_auth *auth, const char *header);

/* --- server.c --- */

/* Starts listening (0, or -1 with err). */
int admind_start(admind *a, mr_err *err);

/* Serves until *stop becomes non-zero (a signal handler sets it). */
void admind_serve(admind *a, volatile int *stop);

void admind_stop(admind *a);

/* The directory connection, reconnected when Redis failed. NULL with err
 * (then the request is answered 503). */
mr_dir *admind_dir(admind *a, mr_err *err);

/* --- routes.c --- */

/* Answers one authenticated request. */
void admind_route(admind *a, const admind_request *req, admind_reply *r);

/* {"error": {"status": S, "field": F|null, "message": M}} into r. */
void admind_error(admind_reply *r, unsigned status, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
