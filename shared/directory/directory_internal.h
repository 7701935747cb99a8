/*
 * directory_internal.h - what the files of shared/directory/ share and
 * nothing else may use.
 */
#ifndef DIRECTORY_INTERNAL_H
#define DIRECTORY_INTERNAL_H

#include "mailrobot/directory.h"

/* Now as RFC 3339 (UTC, milliseconds) into out (40 bytes). */
void dir_now(char out[40]);

/* The domain part of a parsed address (after its last '@'). */
const char *dir_domain_of(const char *address);

/* What an address is: DIR_NONE, DIR_ACCOUNT or DIR_ALIAS; -1 on error. */
enum { DIR_NONE, DIR_ACCOUNT, DIR_ALIAS };
int dir_kind_of(mr_dir *d, const char *address, mr_err *err);

/* MR_DIR_OK if address is of that kind (DIR_ACCOUNT or DIR_ALIAS); else
 * MR_DIR_NOT_FOUND ("account <a>: no such account") or MR_DIR_UNAVAILABLE. */
mr_dir_status dir_require(mr_dir *d, const char *address, int kind, mr_err *err);

/* 1 if the domain is hosted, 0 if not, -1 on error. */
int dir_domain_hosted(mr_dir *d, const char *domain, mr_err *err);

/* Every alias and its targets, read in one pipeline. */
typedef struct dir_alias_map {
    char **names;           /* sorted */
    char ***targets;        /* targets[i]: the targets of names[i] */
    size_t *counts;
    size_t count;
} dir_alias_map;

mr_dir_status dir_alias_map_load(mr_dir *d, dir_alias_map *map, mr_err *err);
void dir_alias_map_free(dir_alias_map *map);

/*
 * Queues the writes that make the addresses gone[0..count) (accounts or
 * aliases being removed) disappear from the directory's references: from
 * every alias's targets (an alias left without targets is removed too, and
 * so on), from every domain's catch-all, and (removed aliases) from every
 * account's owned set. The addresses' own keys are the caller's.
 */
mr_dir_status dir_forget(mr_dir *d, mr_dir_txn *t, const char *const *gone, size_t count,
                         mr_err *err);

/* The argon2id hash (crypto_pwhash_str) of a password already checked with
 * mr_dir_password_check, into out (DIR_HASH_SIZE bytes). */
#define DIR_HASH_SIZE 128
mr_dir_status dir_password_hash(const char *password, char out[DIR_HASH_SIZE], mr_err *err);

/* Queues the writes that set an account's password hash and clear its
 * pending reset token (passwd, and a finished reset). */
mr_dir_status dir_set_password(mr_dir *d, mr_dir_txn *t, const char *address, const char *hash,
                               mr_err *err);

/* "<p>:<kind><name>" into a buffer of MR_DIR_KEY_MAX, or an error. */
#define DIR_KEY(d, kind, name, buf, err) \
    mr_dir_key((d)->cfg, kind, name, buf, sizeof buf, err)

#endif
