/*
 * directory.h - the hosted-mail directory in Redis: domains, accounts,
 * password resets, aliases, backup and restore (SPEC §9; key layout:
 * docs/directory-layout.md; use cases: docs/accounts.md).
 *
 * One module per concern (shared/directory/): domains.c, accounts.c,
 * reset.c, aliases.c, backup.c, and change.c, the transaction helper that
 * mailrobotctl's robot and route commands use too. mailrobotctl and the
 * admin API are thin shells over these functions.
 *
 * Every operation returns an mr_dir_status and, unless MR_DIR_OK, a one-line
 * message in err that names the field at fault ("password: shorter than 10
 * characters"). The statuses map onto HTTP: invalid 400, not_found 404,
 * conflict 409, denied 403, unavailable 503. Passwords and reset tokens
 * never appear in an error message, a log line or Redis in clear.
 *
 * Every change is one MULTI/EXEC under WATCH of <p>:directory:version and
 * <p>:robots:version, INCRing the first (and the second when robots or
 * routes were written): checks and writes are atomic against concurrent
 * admins, and a change whose checks were invalidated is re-planned.
 *
 * Not thread-safe: one mr_dir per thread. Strings passed in are borrowed;
 * strings returned are malloc'd and documented as such.
 */
#ifndef MAILROBOT_DIRECTORY_H
#define MAILROBOT_DIRECTORY_H

#include <stddef.h>

#include <hiredis/hiredis.h>
#include <jansson.h>

#include "mailrobot/config.h"
#include "mailrobot/err.h"

#define MR_DIR_ADDRESS_MAX 254        /* local@domain, bytes (RFC 5321 path limit) */
#define MR_DIR_DOMAIN_MAX 253
#define MR_DIR_PASSWORD_MAX 1024      /* bytes */
#define MR_DIR_TARGETS_MAX 50         /* targets of one alias */
#define MR_DIR_TOKEN_SIZE 44          /* reset token: 32 bytes base64url, no padding, + NUL */
#define MR_DIR_TOKEN_HASH_SIZE 65     /* SHA-256 hex + NUL */
#define MR_DIR_KEY_MAX 1024

typedef enum mr_dir_status {
    MR_DIR_OK = 0,
    MR_DIR_INVALID,      /* bad input; the message names the field (400) */
    MR_DIR_NOT_FOUND,    /* no such domain, account or alias (404) */
    MR_DIR_CONFLICT,     /* exists already, still in use, would loop (409) */
    MR_DIR_DENIED,       /* wrong password or reset token (403) */
    MR_DIR_UNAVAILABLE   /* Redis unreachable or failing (503) */
} mr_dir_status;

/* "ok", "invalid", "not_found", "conflict", "denied", "unavailable". */
const char *mr_dir_status_name(mr_dir_status status);

/* A connection to the directory. cfg is borrowed and must outlive it. */
typedef struct mr_dir {
    redisContext *redis;
    const mr_config *cfg;
} mr_dir;

/* Connects to redis_url (also initialises libsodium). */
mr_dir_status mr_dir_open(mr_dir *d, const mr_config *cfg, mr_err *err);
void mr_dir_close(mr_dir *d);

/* --- pure checks (no Redis) ------------------------------------------------ */

/* Lower-cases (ASCII) text into out (MR_DIR_ADDRESS_MAX + 1 bytes) and checks
 * it is local@domain (mr_address_valid). field names it in the message. */
mr_dir_status mr_dir_address_parse(const char *field, const char *text, char *out, mr_err *err);

/* The same for a domain (out: MR_DIR_DOMAIN_MAX + 1 bytes). */
mr_dir_status mr_dir_domain_parse(const char *field, const char *text, char *out, mr_err *err);

/* A new password: at least directory_password_min characters (UTF-8 code
 * points), at most MR_DIR_PASSWORD_MAX bytes, no control characters. The
 * message never contains the password. */
mr_dir_status mr_dir_password_check(const mr_config *cfg, const char *password, mr_err *err);

/* The SHA-256 of a reset token, as 64 lower-case hex digits: what Redis
 * stores instead of the token. */
void mr_dir_token_hash(const char *token, char out[MR_DIR_TOKEN_HASH_SIZE]);

/* --- domains (domains.c) --------------------------------------------------- */

mr_dir_status mr_dir_domain_add(mr_dir *d, const char *domain, mr_err *err);
/* Refused (conflict) while accounts or aliases of the domain exist. */
mr_dir_status mr_dir_domain_remove(mr_dir *d, const char *domain, mr_err *err);
/* target: an alias target (as in mr_dir_alias_set) for every address of the
 * domain that is neither an account nor an alias; NULL removes it. */
mr_dir_status mr_dir_domain_catch_all(mr_dir *d, const char *domain, const char *target,
                                      mr_err *err);
/* The catch-all of a hosted domain: *target malloc'd, or NULL for none. */
mr_dir_status mr_dir_domain_get(mr_dir *d, const char *domain, char **target, mr_err *err);

/* Sorted lists (strcmp); free with mr_dir_names_free(). domain (may be NULL)
 * keeps the addresses of that domain only. */
mr_dir_status mr_dir_domain_list(mr_dir *d, char ***names, size_t *count, mr_err *err);
mr_dir_status mr_dir_account_list(mr_dir *d, const char *domain, char ***names, size_t *count,
                                  mr_err *err);
mr_dir_status mr_dir_alias_list(mr_dir *d, const char *domain, char ***names, size_t *count,
                                mr_err *err);
void mr_dir_names_free(char **names, size_t count);

/* --- accounts (accounts.c) ------------------------------------------------- */

/* recovery: where reset mail goes (NULL: none; not the account itself). */
mr_dir_status mr_dir_account_create(mr_dir *d, const char *address, const char *password,
                                    const char *recovery, mr_err *err);

/* Removes the account and everything it owns (docs/directory-layout.md):
 * its hash, reset token, owned aliases, robots (with their state keys) and
 * routes, and the account (and removed aliases) from every alias's targets
 * and domain catch-all; aliases left without targets go too. */
mr_dir_status mr_dir_account_remove(mr_dir *d, const char *address, mr_err *err);

/* old_password NULL: an administrator's change, no old password needed.
 * A wrong old password is MR_DIR_DENIED. Clears a pending reset token. */
mr_dir_status mr_dir_account_passwd(mr_dir *d, const char *address, const char *old_password,
                                    const char *new_password, mr_err *err);

/* MR_DIR_OK if password is the account's; MR_DIR_DENIED if not, or if
 * there is no such account (the same message, so a login cannot probe). */
mr_dir_status mr_dir_account_verify(mr_dir *d, const char *address, const char *password,
                                    mr_err *err);

/* Sets (NULL: removes) the recovery address. */
mr_dir_status mr_dir_account_recovery(mr_dir *d, const char *address, const char *recovery,
                                      mr_err *err);

/* Records that the account owns item ("robot:<name>", "route:<address>" or
 * "alias:<address>", which must exist): it is removed with the account. */
mr_dir_status mr_dir_account_own(mr_dir *d, const char *address, const char *item, mr_err *err);

typedef struct mr_dir_account {
    char address[MR_DIR_ADDRESS_MAX + 1];
    char recovery[MR_DIR_ADDRESS_MAX + 1];    /* "" for none */
    char created[40], updated[40];            /* RFC 3339 */
    int reset_pending;                        /* a reset token is in force */
    char **owns;                              /* sorted; free with mr_dir_account_free */
    size_t owns_count;
} mr_dir_account;

/* Never returns the password hash. */
mr_dir_status mr_dir_account_show(mr_dir *d, const char *address, mr_dir_account *account,
                                  mr_err *err);
void mr_dir_account_free(mr_dir_account *account);

/* --- password reset (reset.c) ---------------------------------------------- */

/* Makes a one-time token (32 random bytes, base64url) for the account, valid
 * for directory_reset_ttl; a token already in force is replaced. Returns the
 * token and the recovery address to mail it to (the account must have one:
 * conflict otherwise). Only the token's SHA-256 is stored. */
mr_dir_status mr_dir_reset_start(mr_dir *d, const char *address, char token[MR_DIR_TOKEN_SIZE],
                                 char recovery[MR_DIR_ADDRESS_MAX + 1], mr_err *err);

/* Sets new_password on the account the token belongs to and invalidates the
 * token. Wrong, used or expired tokens: MR_DIR_DENIED. address (may be NULL,
 * MR_DIR_ADDRESS_MAX + 1 bytes) receives the account. */
mr_dir_status mr_dir_reset_finish(mr_dir *d, const char *token, const char *new_password,
                                  char *address, mr_err *err);

/* Withdraws the token (e.g. its mail could not be queued). */
mr_dir_status mr_dir_reset_cancel(mr_dir *d, const char *token, mr_err *err);

/* Starts a reset (mr_dir_reset_start; address is parsed here) and puts the
 * reset mail with the token onto <prefix>.outbound (reset_mail.c), waiting
 * for Kafka's acknowledgement. If the mail cannot be queued the token is
 * withdrawn and the result is MR_DIR_UNAVAILABLE. token (wipe it with
 * sodium_memzero) and recovery receive what was mailed where. kafka: the
 * caller's client context (log and last broker error). */
struct mr_kafka_context;
mr_dir_status mr_dir_reset_send(mr_dir *d, struct mr_kafka_context *kafka, const char *address,
                                char token[MR_DIR_TOKEN_SIZE],
                                char recovery[MR_DIR_ADDRESS_MAX + 1], mr_err *err);

/* --- aliases (aliases.c) --------------------------------------------------- */

/* Creates or replaces the alias's targets (1 to MR_DIR_TARGETS_MAX, each
 * "local@domain" or "robot:<name>"). Local targets (a hosted domain) must
 * be an account, an alias or an address with a route; robot:<name> must
 * name a robot; a target that leads back to the alias is a conflict. */
mr_dir_status mr_dir_alias_set(mr_dir *d, const char *address, const char *const *targets,
                               size_t count, mr_err *err);

/* Removes the alias, and it from every other alias's targets (as for an
 * account). */
mr_dir_status mr_dir_alias_remove(mr_dir *d, const char *address, mr_err *err);

/* The targets, sorted; free with mr_dir_names_free(). */
mr_dir_status mr_dir_alias_get(mr_dir *d, const char *address, char ***targets, size_t *count,
                               mr_err *err);

/* Checks one alias target (also a catch-all): its form, and when local,
 * that it exists. Used under a change's WATCH. */
mr_dir_status mr_dir_target_check(mr_dir *d, const char *field, const char *target, char *out,
                                  mr_err *err);

/* --- backup and restore (backup.c; schemas/backup-v1.json) ------------------ */

/* The whole directory (account NULL) or one account with what it owns, as a
 * backup-v1 JSON document: *json malloc'd, *len bytes. Password hashes are
 * included as hashes; pending reset tokens and robot state are not. */
mr_dir_status mr_dir_backup(mr_dir *d, const char *account, char **json, size_t *len,
                            mr_err *err);

/* Parses and validates a backup document (no Redis): size (at most
 * directory_backup_limit), structure, every field; errors name the field
 * as a JSON pointer ("/accounts/3/password: not an argon2id hash"). On
 * success *doc is the parsed document (json_decref it). */
mr_dir_status mr_dir_backup_check(const mr_config *cfg, const char *json, size_t len,
                                  json_t **doc, mr_err *err);

/* Validates the whole document (mr_dir_backup_check, then against the
 * directory: domains hosted or in the document, an address never both
 * account and alias) and writes it in one transaction, or writes nothing.
 * Entries in the document replace the ones in Redis; others are left
 * alone, so restoring twice gives the same directory. */
mr_dir_status mr_dir_restore(mr_dir *d, const char *json, size_t len, mr_err *err);

/* --- changes (change.c) ---------------------------------------------------- */

/* The writes of one change, queued by a plan and committed by mr_dir_change. */
typedef struct mr_dir_txn mr_dir_txn;

/* Queues one command: verb and its arguments (NUL-terminated strings, copied),
 * ending with NULL. Returns MR_DIR_OK or MR_DIR_UNAVAILABLE (out of memory). */
mr_dir_status mr_dir_txn_add(mr_dir_txn *t, mr_err *err, const char *verb, ...)
    __attribute__((sentinel));

/* The change writes robots or routes: INCR <p>:robots:version too, so
 * workers drop their caches. */
void mr_dir_txn_touch_robots(mr_dir_txn *t);

/* The change does not write directory keys: leave <p>:directory:version. */
void mr_dir_txn_skip_directory(mr_dir_txn *t);

/* Reads what a change depends on (it may WATCH more keys), checks it and
 * queues the writes. Anything but MR_DIR_OK abandons the change. */
typedef mr_dir_status mr_dir_plan_fn(mr_dir *d, void *opaque, mr_dir_txn *t, mr_err *err);

/* Runs plan under WATCH of both version keys and commits its writes and the
 * version INCRs in one MULTI/EXEC, re-planning when a concurrent change got
 * in first (a bounded number of times: then MR_DIR_CONFLICT). */
mr_dir_status mr_dir_change(mr_dir *d, mr_dir_plan_fn *plan, void *opaque, mr_err *err);

/* "<redis_prefix>:<kind><name>". MR_DIR_INVALID when it does not fit. */
mr_dir_status mr_dir_key(const mr_config *cfg, const char *kind, const char *name, char *out,
                         size_t outsz, mr_err *err);

/* Runs a read command and returns its reply, or NULL with "redis: ..." in
 * err (MR_DIR_UNAVAILABLE). */
redisReply *mr_dir_command(mr_dir *d, mr_err *err, const char *fmt, ...);

/* GET <p>:<kind><name>: MR_DIR_OK with *value (malloc'd; value may be NULL
 * to test existence), MR_DIR_NOT_FOUND, or MR_DIR_UNAVAILABLE. */
mr_dir_status mr_dir_get(mr_dir *d, const char *kind, const char *name, char **value,
                         size_t *len, mr_err *err);

/* 1 if <p>:<kind><name> exists, 0 if not, -1 on error. */
int mr_dir_exists(mr_dir *d, const char *kind, const char *name, mr_err *err);

/* 1 if member is in the set <p>:<kind><name>, 0 if not, -1 on error. */
int mr_dir_is_member(mr_dir *d, const char *kind, const char *name, const char *member,
                     mr_err *err);

/* The members of the set <p>:<kind><name>, sorted (strcmp). */
mr_dir_status mr_dir_members(mr_dir *d, const char *kind, const char *name, char ***names,
                             size_t *count, mr_err *err);

/* 1 if name is in sorted names. */
int mr_dir_names_has(char *const *names, size_t count, const char *name);

/* Keys of the directory layout (after "<p>:"). */
#define MR_KEY_DOMAINS "domains"
#define MR_KEY_DOMAIN "domain:"
#define MR_KEY_ACCOUNTS "accounts"
#define MR_KEY_ACCOUNT "account:"
#define MR_KEY_RESET "reset:"
#define MR_KEY_ALIASES "aliases"
#define MR_KEY_ALIAS "alias:"
#define MR_KEY_OWNED "owned:"
#define MR_KEY_DIRECTORY_VERSION "directory:version"

#endif
