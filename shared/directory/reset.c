/*
 * reset.c - resetting a forgotten password with a one-time token
 * (directory.h; docs/accounts.md).
 *
 * The token is 32 random bytes, base64url without padding (43 characters):
 * unguessable, so it needs no attempt counter. Redis keeps only its
 * SHA-256 — <p>:reset:<hex> holding the account, expiring with the token,
 * and the account's `reset` field naming the one token in force — so a
 * copy of the database (or a backup, which leaves resets out) cannot be
 * used to take over an account. Finishing a reset checks both, under
 * WATCH of the token's key, and removes both with the password change.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "directory_internal.h"

#define TOKEN_BYTES 32

typedef struct reset_change {
    char address[MR_DIR_ADDRESS_MAX + 1];
    char recovery[MR_DIR_ADDRESS_MAX + 1];
    char hash[MR_DIR_TOKEN_HASH_SIZE];        /* of the token */
    char password_hash[DIR_HASH_SIZE];
} reset_change;

/* HGET of the account's field into out ("" when absent). */
static mr_dir_status hget(mr_dir *d, const char *address, const char *field, char *out,
                          size_t outsz, mr_err *err)
{
    char key[MR_DIR_KEY_MAX];
    redisReply *reply;
    mr_dir_status st = DIR_KEY(d, MR_KEY_ACCOUNT, address, key, err);

    out[0] = '\0';
    if (st != MR_DIR_OK)
        return st;
    if ((reply = mr_dir_command(d, err, "HGET %s %s", key, field)) == NULL)
        return MR_DIR_UNAVAILABLE;
    if (reply->type == REDIS_REPLY_STRING)
        snprintf(out, outsz, "%s", reply->str);
    freeReplyObject(reply);
    return MR_DIR_OK;
}

static mr_dir_status plan_start(mr_dir *d, void *opaque, mr_dir_txn *t, mr_err *err)
{
    reset_change *rc = opaque;
    char key[MR_DIR_KEY_MAX], old[MR_DIR_TOKEN_HASH_SIZE], ttl[32];
    mr_dir_status st;

    if ((st = dir_require(d, rc->address, DIR_ACCOUNT, err)) != MR_DIR_OK)
        return st;
    if ((st = hget(d, rc->address, "recovery", rc->recovery, sizeof rc->recovery, err))
        != MR_DIR_OK
        || (st = hget(d, rc->address, "reset", old, sizeof old, err)) != MR_DIR_OK)
        return st;
    if (rc->recovery[0] == '\0')
        return mr_err_set(err, "account %s: has no recovery address to send a reset to",
                          rc->address), MR_DIR_CONFLICT;
    if (old[0] != '\0' && (st = DIR_KEY(d, MR_KEY_RESET, old, key, err)) == MR_DIR_OK
        && (st = mr_dir_txn_add(t, err, "DEL", key, NULL)) != MR_DIR_OK)
        return st;
    snprintf(ttl, sizeof ttl, "%lld", (long long)d->cfg->directory_reset_ttl);
    if ((st = DIR_KEY(d, MR_KEY_RESET, rc->hash, key, err)) != MR_DIR_OK
        || (st = mr_dir_txn_add(t, err, "SET", key, rc->address, "PX", ttl, NULL)) != MR_DIR_OK
        || (st = DIR_KEY(d, MR_KEY_ACCOUNT, rc->address, key, err)) != MR_DIR_OK)
        return st;
    return mr_dir_txn_add(t, err, "HSET", key, "reset", rc->hash, NULL);
}

mr_dir_status mr_dir_reset_start(mr_dir *d, const char *address, char token[MR_DIR_TOKEN_SIZE],
                                 char recovery[MR_DIR_ADDRESS_MAX + 1], mr_err *err)
{
    unsigned char bytes[TOKEN_BYTES];
    reset_change rc;
    mr_dir_status st;

    memset(&rc, 0, sizeof rc);
    token[0] = '\0';
    recovery[0] = '\0';
    if ((st = mr_dir_address_parse("address", address, rc.address, err)) != MR_DIR_OK)
        return st;
    randombytes_buf(bytes, sizeof bytes);
    sodium_bin2base64(token, MR_DIR_TOKEN_SIZE, bytes, sizeof bytes,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(bytes, sizeof bytes);
    mr_dir_token_hash(token, rc.hash);
    if ((st = mr_dir_change(d, plan_start, &rc, err)) != MR_DIR_OK) {
        sodium_memzero(token, MR_DIR_TOKEN_SIZE);
        return st;
    }
    memcpy(recovery, rc.recovery, sizeof rc.recovery);
    return MR_DIR_OK;
}

/* The account whose token has hash rc->hash: WATCHes the token's key, reads
 * it and checks the account still names it. MR_DIR_DENIED otherwise. */
static mr_dir_status token_account(mr_dir *d, reset_change *rc, mr_err *err)
{
    char key[MR_DIR_KEY_MAX], current[MR_DIR_TOKEN_HASH_SIZE];
    redisReply *reply;
    mr_dir_status st = DIR_KEY(d, MR_KEY_RESET, rc->hash, key, err);

    if (st != MR_DIR_OK)
        return st;
    if ((reply = mr_dir_command(d, err, "WATCH %s", key)) == NULL)
        return MR_DIR_UNAVAILABLE;
    freeReplyObject(reply);
    if ((reply = mr_dir_command(d, err, "GET %s", key)) == NULL)
        return MR_DIR_UNAVAILABLE;
    rc->address[0] = '\0';
    if (reply->type == REDIS_REPLY_STRING)
        snprintf(rc->address, sizeof rc->address, "%s", reply->str);
    freeReplyObject(reply);
    if (rc->address[0] == '\0'
        || (st = hget(d, rc->address, "reset", current, sizeof current, err)) != MR_DIR_OK
        || strcmp(current, rc->hash) != 0)
        return st == MR_DIR_UNAVAILABLE ? st
               : (mr_err_set(err, "token: wrong, used or expired"), MR_DIR_DENIED);
    return MR_DIR_OK;
}

static mr_dir_status plan_finish(mr_dir *d, void *opaque, mr_dir_txn *t, mr_err *err)
{
    reset_change *rc = opaque;
    mr_dir_status st = token_account(d, rc, err);

    return st != MR_DIR_OK ? st : dir_set_password(d, t, rc->address, rc->password_hash, err);
}

/* A token as mr_dir_reset_start makes them: 43 base64url characters. */
static int token_well_formed(const char *token)
{
    size_t len = token != NULL ? strlen(token) : 0;

    if (len != MR_DIR_TOKEN_SIZE - 1)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", token[i]))
            return 0;
    return 1;
}

mr_dir_status mr_dir_reset_finish(mr_dir *d, const char *token, const char *new_password,
                                  char *address, mr_err *err)
{
    reset_change rc;
    mr_dir_status st;

    memset(&rc, 0, sizeof rc);
    if ((st = mr_dir_password_check(d->cfg, new_password, err)) != MR_DIR_OK)
        return st;
    if (!token_well_formed(token))
        return mr_err_set(err, "token: wrong, used or expired"), MR_DIR_DENIED;
    mr_dir_token_hash(token, rc.hash);
    /* A wrong token is refused before the (slow) hashing of the password. */
    if ((st = token_account(d, &rc, err)) != MR_DIR_OK) {
        freeReplyObject(redisCommand(d->redis, "UNWATCH"));
        return st;
    }
    freeReplyObject(redisCommand(d->redis, "UNWATCH"));
    if ((st = dir_password_hash(new_password, rc.password_hash, err)) != MR_DIR_OK)
        return st;
    st = mr_dir_change(d, plan_finish, &rc, err);
    sodium_memzero(rc.password_hash, sizeof rc.password_hash);
    if (st == MR_DIR_OK && address != NULL)
        snprintf(address, MR_DIR_ADDRESS_MAX + 1, "%s", rc.address);
    return st;
}

static mr_dir_status plan_cancel(mr_dir *d, void *opaque, mr_dir_txn *t, mr_err *err)
{
    reset_change *rc = opaque;
    char key[MR_DIR_KEY_MAX];
    mr_dir_status st = token_account(d, rc, err);

    if (st != MR_DIR_OK || (st = DIR_KEY(d, MR_KEY_RESET, rc->hash, key, err)) != MR_DIR_OK
        || (st = mr_dir_txn_add(t, err, "DEL", key, NULL)) != MR_DIR_OK
        || (st = DIR_KEY(d, MR_KEY_ACCOUNT, rc->address, key, err)) != MR_DIR_OK)
        return st;
    return mr_dir_txn_add(t, err, "HDEL", key, "reset", NULL);
}

mr_dir_status mr_dir_reset_cancel(mr_dir *d, const char *token, mr_err *err)
{
    reset_change rc;

    memset(&rc, 0, sizeof rc);
    if (!token_well_formed(token))
        return mr_err_set(err, "token: wrong, used or expired"), MR_DIR_DENIED;
    mr_dir_token_hash(token, rc.hash);
    return mr_dir_change(d, plan_cancel, &rc, err);
}
