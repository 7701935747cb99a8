/*
 * accounts.c - accounts (directory.h; docs/directory-layout.md):
 * <p>:accounts, <p>:account:<address> and what an account owns,
 * <p>:owned:<address>.
 *
 * Passwords are hashed with argon2id (libsodium's crypto_pwhash_str at the
 * "interactive" cost) before anything touches Redis, outside the change's
 * WATCH because hashing takes a tenth of a second. Only the hash is stored,
 * and no message here contains a password.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "mailrobot/keys.h"

#include "directory_internal.h"

mr_dir_status dir_password_hash(const char *password, char out[DIR_HASH_SIZE], mr_err *err)
{
    if (crypto_pwhash_str_alg(out, password, strlen(password), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                              crypto_pwhash_MEMLIMIT_INTERACTIVE, crypto_pwhash_ALG_ARGON2ID13)
        != 0)
        return mr_err_set(err, "password: cannot hash it (out of memory)"), MR_DIR_UNAVAILABLE;
    return MR_DIR_OK;
}

typedef struct account_change {
    char address[MR_DIR_ADDRESS_MAX + 1];
    char recovery[MR_DIR_ADDRESS_MAX + 1];    /* "" for none */
    char hash[DIR_HASH_SIZE];
    const char *old_password;                 /* passwd; NULL: admin */
    const char *item;                         /* own */
} account_change;

/* HGET <p>:account:<address> field: MR_DIR_OK with *value malloc'd (NULL if
 * the field is absent), MR_DIR_NOT_FOUND if there is no such account. */
static mr_dir_status account_field(mr_dir *d, const char *address, const char *field,
                                   char **value, mr_err *err)
{
    char key[MR_DIR_KEY_MAX];
    redisReply *reply;
    mr_dir_status st;

    *value = NULL;
    if ((st = dir_require(d, address, DIR_ACCOUNT, err)) != MR_DIR_OK)
        return st;
    if ((st = DIR_KEY(d, MR_KEY_ACCOUNT, address, key, err)) != MR_DIR_OK)
        return st;
    if ((reply = mr_dir_command(d, err, "HGET %s %s", key, field)) == NULL)
        return MR_DIR_UNAVAILABLE;
    if (reply->type == REDIS_REPLY_STRING && (*value = strdup(reply->str)) == NULL)
        st = (mr_err_set(err, "out of memory"), MR_DIR_UNAVAILABLE);
    freeReplyObject(reply);
    return st;
}

static mr_dir_status check_recovery(const char *address, const char *text, char *out,
                                    mr_err *err)
{
    mr_dir_status st;

    out[0] = '\0';
    if (text == NULL || text[0] == '\0')
        return MR_DIR_OK;
    if ((st = mr_dir_address_parse("recovery", text, out, err)) != MR_DIR_OK)
        return st;
    if (strcmp(out, address) == 0)
        return mr_err_set(err, "recovery: must be another address than the account's"),
               MR_DIR_INVALID;
    return MR_DIR_OK;
}

/* --- create -------------------------------------------------------------------- */

static mr_dir_status plan_create(mr_dir *d, void *opaque, mr_dir_txn *t, mr_err *err)
{
    account_change *ac = opaque;
    char key[MR_DIR_KEY_MAX], accounts[MR_DIR_KEY_MAX], now[40];
    int hosted = dir_domain_hosted(d, dir_domain_of(ac->address), err), kind;
    mr_dir_status st;

    if (hosted <= 0)
        return hosted < 0 ? MR_DIR_UNAVAILABLE
                          : (mr_err_set(err, "address: domain %s is not hosted",
                                        dir_domain_of(ac->address)), MR_DIR_INVALID);
    if ((kind = dir_kind_of(d, ac->address, err)) != DIR_NONE)
        return kind < 0 ? MR_DIR_UNAVAILABLE
                        : (mr_err_set(err, "address: %s is already %s", ac->address,
                                      kind == DIR_ACCOUNT ? "an account" : "an alias"),
                           MR_DIR_CONFLICT);
    dir_now(now);
    if ((st = DIR_KEY(d, MR_KEY_ACCOUNT, ac->address, key, err)) != MR_DIR_OK
        || (st = DIR_KEY(d, MR_KEY_ACCOUNTS, "", accounts, err)) != MR_DIR_OK
        || (st = mr_dir_txn_add(t, err, "HSET", key, "password", ac->hash, "created", now,
                                "updated", now, NULL)) != MR_DIR_OK)
        return st;
    if (ac->recovery[0] != '\0'
        && (st = mr_dir_txn_add(t, err, "HSET", key, "recovery", ac->recovery, NULL)) != MR_DIR_OK)
        return st;
    return mr_dir_txn_add(t, err, "SADD", accounts, ac->address, NULL);
}

mr_dir_status mr_dir_account_create(mr_dir *d, const char *address, const char *password,
                                    const char *recovery, mr_err *err)
{
    account_change ac = {.old_password = NULL};
    mr_dir_status st;

    if ((st = mr_dir_address_parse("address", address, ac.address, err)) != MR_DIR_OK
        || (st = check_recovery(ac.address, recovery, ac.recovery, err)) != MR_DIR_OK
        || (st = mr_dir_password_check(d->cfg, password, err)) != MR_DIR_OK
        || (st = dir_password_hash(password, ac.hash, err)) != MR_DIR_OK)
        return st;
    st = mr_dir_change(d, plan_create, &ac, err);
    sodium_memzero(ac.hash, sizeof ac.hash);
    return st;
}

/* --- remove -------------------------------------------------------------------- */

/* Queues DEL of every key matching pattern (SCAN). */
static mr_dir_status delete_matching(mr_dir *d, mr_dir_txn *t, const char *pattern, mr_err *err)
{
    char cursor[32] = "0";
    mr_dir_status st = MR_DIR_OK;

    do {
        redisReply *reply = mr_dir_command(d, err, "SCAN %s MATCH %s COUNT 1000", cursor,
                                           pattern);

        if (reply == NULL)
            return MR_DIR_UNAVAILABLE;
        snprintf(cursor, sizeof cursor, "%s", reply->element[0]->str);
        for (size_t k = 0; k < reply->element[1]->elements && st == MR_DIR_OK; k++)
            st = mr_dir_txn_add(t, err, "DEL", reply->element[1]->element[k]->str, NULL);
        freeReplyObject(reply);
    } while (st == MR_DIR_OK && strcmp(cursor, "0") != 0);
    return st;
}

/* The writes that remove one owned item; what it was goes onto gone
 * (robot:<name>, or an address). */
static mr_dir_status remove_owned(mr_dir *d, mr_dir_txn *t, const char *item, char **gone,
                                  mr_err *err)
{
    char key[MR_DIR_KEY_MAX], set[MR_DIR_KEY_MAX], pattern[MR_DIR_KEY_MAX + 4];
    const char *colon = strchr(item, ':');
    const char *name = colon ? colon + 1 : "";
    mr_dir_status st = MR_DIR_OK;

    *gone = NULL;
    if (strncmp(item, "alias:", 6) == 0) {
        if ((st = DIR_KEY(d, MR_KEY_ALIAS, name, key, err)) == MR_DIR_OK
            && (st = DIR_KEY(d, MR_KEY_ALIASES, "", set, err)) == MR_DIR_OK
            && (st = mr_dir_txn_add(t, err, "DEL", key, NULL)) == MR_DIR_OK)
            st = mr_dir_txn_add(t, err, "SREM", set, name, NULL);
        *gone = strdup(name);
    } else if (strncmp(item, "robot:", 6) == 0) {
        mr_dir_txn_touch_robots(t);
        if ((st = DIR_KEY(d, MR_KEY_ROBOT, name, key, err)) == MR_DIR_OK
            && (st = DIR_KEY(d, MR_KEY_ROBOTS, "", set, err)) == MR_DIR_OK
            && (st = mr_dir_txn_add(t, err, "DEL", key, NULL)) == MR_DIR_OK
            && (st = mr_dir_txn_add(t, err, "SREM", set, name, NULL)) == MR_DIR_OK
            && (st = DIR_KEY(d, MR_KEY_STATE, name, pattern, err)) == MR_DIR_OK
            && (st = delete_matching(d, t, strcat(pattern, ":*"), err)) == MR_DIR_OK
            && (st = DIR_KEY(d, MR_KEY_AUTOREPLY, name, pattern, err)) == MR_DIR_OK)
            st = delete_matching(d, t, strcat(pattern, ":*"), err);
        *gone = strdup(item);
    } else if (strncmp(item, "route:", 6) == 0) {
        int kind = dir_kind_of(d, name, err);

        mr_dir_txn_touch_robots(t);
        if ((st = DIR_KEY(d, MR_KEY_ROUTE, name, key, err)) == MR_DIR_OK
            && (st = DIR_KEY(d, MR_KEY_ROUTES, "", set, err)) == MR_DIR_OK
            && (st = mr_dir_txn_add(t, err, "DEL", key, NULL)) == MR_DIR_OK)
            st = mr_dir_txn_add(t, err, "SREM", set, name, NULL);
        if (kind < 0)
            st = MR_DIR_UNAVAILABLE;
        *gone = strdup(kind == DIR_NONE ? name : "");
    } else {
        *gone = strdup("");   /* unknown kinds of item: nothing to remove */
    }
    if (*gone == NULL && st == MR_DIR_OK)
        st = (mr_err_set(err, "out of memory"), MR_DIR_UNAVAILABLE);
    return st;
}

static mr_dir_status plan_remove(mr_dir *d, void *opaque, mr_dir_txn *t, mr_err *err)
{
    account_change *ac = opaque;
    char key[MR_DIR_KEY_MAX], set[MR_DIR_KEY_MAX], owned[MR_DIR_KEY_MAX];
    char *reset = NULL, **items = NULL, **gone = NULL;
    size_t count = 0;
    mr_dir_status st = account_field(d, ac->address, "reset", &reset, err);

    if (st != MR_DIR_OK)
        return st;
    if (reset != NULL && (st = DIR_KEY(d, MR_KEY_RESET, reset, key, err)) == MR_DIR_OK)
        st = mr_dir_txn_add(t, err, "DEL", key, NULL);
    free(reset);
    if (st == MR_DIR_OK)
        st = mr_dir_members(d, MR_KEY_OWNED, ac->address, &items, &count, err);
    if (st == MR_DIR_OK && (gone = calloc(count + 1, sizeof *gone)) == NULL)
        st = (mr_err_set(err, "out of memory"), MR_DIR_UNAVAILABLE);
    for (size_t i = 0; i < count && st == MR_DIR_OK; i++)
        st = remove_owned(d, t, items[i], &gone[i], err);
    if (st == MR_DIR_OK && (gone[count] = strdup(ac->address)) == NULL)
        st = (mr_err_set(err, "out of memory"), MR_DIR_UNAVAILABLE);
    if (st == MR_DIR_OK && (st = DIR_KEY(d, MR_KEY_ACCOUNT, ac->address, key, err)) == MR_DIR_OK
        && (st = DIR_KEY(d, MR_KEY_ACCOUNTS, "", set, err)) == MR_DIR_OK
        && (st = DIR_KEY(d, MR_KEY_OWNED, ac->address, owned, err)) == MR_DIR_OK
        && (st = mr_dir_txn_add(t, err, "DEL", key, owned, NULL)) == MR_DIR_OK
        && (st = mr_dir_txn_add(t, err, "SREM", set, ac->address, NULL)) == MR_DIR_OK)
        st = dir_forget(d, t, (const char *const *)gone, count + 1, err);
    mr_dir_names_free(items, count);
    mr_dir_names_free(gone, gone ? count + 1 : 0);
    return st;
}

mr_dir_status mr_dir_account_remove(mr_dir *d, const char *address, mr_err *err)
{
    account_change ac = {.old_password = NULL};
    mr_dir_status st = mr_dir_address_parse("address", address, ac.address, err);

    return st != MR_DIR_OK ? st : mr_dir_change(d, plan_remove, &ac, err);
}

/* --- passwords ----------------------------------------------------------------- */

/* MR_DIR_OK if password matches the account's hash, MR_DIR_DENIED if not. */
static mr_dir_status password_matches(mr_dir *d, const char *address, const char *password,
                                      mr_err *err)
{
    char *hash = NULL;
    mr_dir_status st = account_field(d, address, "password", &hash, err);

    if (st == MR_DIR_OK && (hash == NULL || password == NULL
                            || strlen(password) > MR_DIR_PASSWORD_MAX
                            || crypto_pwhash_str_verify(hash, password, strlen(password)) != 0))
        st = MR_DIR_DENIED;
    if (st == MR_DIR_DENIED || st == MR_DIR_NOT_FOUND) {
        mr_err_set(err, "wrong address or password");
        st = MR_DIR_DENIED;
    }
    free(hash);
    return st;
}

mr_dir_status mr_dir_account_verify(mr_dir *d, const char *address_arg, const char *password,
                                    mr_err *err)
{
    char address[MR_DIR_ADDRESS_MAX + 1];

    if (mr_dir_address_parse("address", address_arg, address, err) != MR_DIR_OK)
        return mr_err_set(err, "wrong address or password"), MR_DIR_DENIED;
    return password_matches(d, address, password, err);
}

mr_dir_status dir_set_password(mr_dir *d, mr_dir_txn *t, const char *address, const char *hash,
                               mr_err *err)
{
    char key[MR_DIR_KEY_MAX], reset_key[MR_DIR_KEY_MAX], now[40];
    char *reset = NULL;
    mr_dir_status st = account_field(d, address, "reset", &reset, err);

    dir_now(now);
    if (st == MR_DIR_OK && reset != NULL
        && (st = DIR_KEY(d, MR_KEY_RESET, reset, reset_key, err)) == MR_DIR_OK)
        st = mr_dir_txn_add(t, err, "DEL", reset_key, NULL);
    free(reset);
    if (st == MR_DIR_OK && (st = DIR_KEY(d, MR_KEY_ACCOUNT, address, key, err)) == MR_DIR_OK
        && (st = mr_dir_txn_add(t, err, "HSET", key, "password", hash, "updated", now, NULL))
               == MR_DIR_OK)
        st = mr_dir_txn_add(t, err, "HDEL", key, "reset", NULL);
    return st;
}

static mr_dir_status plan_passwd(mr_dir *d, void *opaque, mr_dir_txn *t, mr_err *err)
{
    account_change *ac = opaque;
    mr_dir_status st;

    if (ac->old_password != NULL
        && (st = password_matches(d, ac->address, ac->old_password, err)) != MR_DIR_OK)
        return st;
    return dir_set_password(d, t, ac->address, ac->hash, err);
}

mr_dir_status mr_dir_account_passwd(mr_dir *d, const char *address, const char *old_password,
                                    const char *new_password, mr_err *err)
{
    account_change ac = {.old_password = old_password};
    mr_dir_status st;
    char *none = NULL;

    if ((st = mr_dir_address_parse("address", address, ac.address, err)) != MR_DIR_OK
        || (st = mr_dir_password_check(d->cfg, new_password, err)) != MR_DIR_OK)
        return st;
    /* Unknown accounts and wrong old passwords are found before hashing. */
    if (old_password != NULL)
        st = password_matches(d, ac.address, old_password, err);
    else if ((st = account_field(d, ac.address, "password", &none, err)) == MR_DIR_OK)
        free(none);
    if (st != MR_DIR_OK || (st = dir_password_hash(new_password, ac.hash, err)) != MR_DIR_OK)
        return st;
    st = mr_dir_change(d, plan_passwd, &ac, err);
    sodium_memzero(ac.hash, sizeof ac.hash);
    return st;
}

/* --- recovery, own ------------------------------------------------------------- */

static mr_dir_status plan_recovery(mr_dir *d, void *opaque, mr_dir_txn *t, mr_err *err)
{
    account_change *ac = opaque;
    char key[MR_DIR_KEY_MAX], *none = NULL, now[40];
    mr_dir_status st = account_field(d, ac->address, "created", &none, err);

    free(none);
    dir_now(now);
    if (st != MR_DIR_OK || (st = DIR_KEY(d, MR_KEY_ACCOUNT, ac->address, key, err)) != MR_DIR_OK
        || (st = mr_dir_txn_add(t, err, "HSET", key, "updated", now, NULL)) != MR_DIR_OK)
        return st;
    if (ac->recovery[0] == '\0')
        return mr_dir_txn_add(t, err, "HDEL", key, "recovery", NULL);
    return mr_dir_txn_add(t, err, "HSET", key, "recovery", ac->recovery, NULL);
}

mr_dir_status mr_dir_account_recovery(mr_dir *d, const char *address, const char *recovery,
                                      mr_err *err)
{
    account_change ac = {.old_password = NULL};
    mr_dir_status st;

    if ((st = mr_dir_address_parse("address", address, ac.address, err)) != MR_DIR_OK
        || (st = check_recovery(ac.address, recovery, ac.recovery, err)) != MR_DIR_OK)
        return st;
    return mr_dir_change(d, plan_recovery, &ac, err);
}

static mr_dir_status plan_own(mr_dir *d, void *opaque, mr_dir_txn *t, mr_err *err)
{
    account_change *ac = opaque;
    char key[MR_DIR_KEY_MAX], *none = NULL, name[MR_DIR_ADDRESS_MAX + 1];
    const char *colon = strchr(ac->item, ':');
    mr_dir_status st = account_field(d, ac->address, "created", &none, err);
    int found = 0;

    free(none);
    if (st != MR_DIR_OK)
        return st;
    if (colon == NULL || strlen(colon + 1) > MR_DIR_ADDRESS_MAX)
        return mr_err_set(err, "item: expected robot:<name>, route:<address> or "
                          "alias:<address>"), MR_DIR_INVALID;
    snprintf(name, sizeof name, "%s", colon + 1);
    if (strncmp(ac->item, "robot:", 6) == 0)
        found = mr_dir_exists(d, MR_KEY_ROBOT, name, err);
    else if (strncmp(ac->item, "route:", 6) == 0)
        found = mr_dir_exists(d, MR_KEY_ROUTE, name, err);
    else if (strncmp(ac->item, "alias:", 6) == 0)
        found = dir_kind_of(d, name, err) == DIR_ALIAS;
    else
        return mr_err_set(err, "item: expected robot:<name>, route:<address> or "
                          "alias:<address>"), MR_DIR_INVALID;
    if (found <= 0)
        return found < 0 ? MR_DIR_UNAVAILABLE
                         : (mr_err_set(err, "item: no %.*s %s", (int)(colon - ac->item), ac->item,
                                       name), MR_DIR_NOT_FOUND);
    if ((st = DIR_KEY(d, MR_KEY_OWNED, ac->address, key, err)) != MR_DIR_OK)
        return st;
    return mr_dir_txn_add(t, err, "SADD", key, ac->item, NULL);
}

mr_dir_status mr_dir_account_own(mr_dir *d, const char *address, const char *item, mr_err *err)
{
    account_change ac = {.item = item};
    mr_dir_status st = mr_dir_address_parse("address", address, ac.address, err);

    if (st == MR_DIR_OK && (item == NULL || strlen(item) > MR_DIR_ADDRESS_MAX + 6))
        st = (mr_err_set(err, "item: missing or too long"), MR_DIR_INVALID);
    return st != MR_DIR_OK ? st : mr_dir_change(d, plan_own, &ac, err);
}

/* --- show ---------------------------------------------------------------------- */

mr_dir_status mr_dir_account_show(mr_dir *d, const char *address, mr_dir_account *a,
                                  mr_err *err)
{
    char key[MR_DIR_KEY_MAX];
    redisReply *reply;
    mr_dir_status st;

    memset(a, 0, sizeof *a);
    if ((st = mr_dir_address_parse("address", address, a->address, err)) != MR_DIR_OK)
        return st;
    if ((st = dir_require(d, a->address, DIR_ACCOUNT, err)) != MR_DIR_OK)
        return st;
    if ((st = DIR_KEY(d, MR_KEY_ACCOUNT, a->address, key, err)) != MR_DIR_OK)
        return st;
    if ((reply = mr_dir_command(d, err, "HGETALL %s", key)) == NULL)
        return MR_DIR_UNAVAILABLE;
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
        const char *field = reply->element[i]->str, *value = reply->element[i + 1]->str;

        if (strcmp(field, "recovery") == 0)
            snprintf(a->recovery, sizeof a->recovery, "%s", value);
        else if (strcmp(field, "created") == 0)
            snprintf(a->created, sizeof a->created, "%s", value);
        else if (strcmp(field, "updated") == 0)
            snprintf(a->updated, sizeof a->updated, "%s", value);
        else if (strcmp(field, "reset") == 0)
            a->reset_pending = 1;
    }
    freeReplyObject(reply);
    return mr_dir_members(d, MR_KEY_OWNED, a->address, &a->owns, &a->owns_count, err);
}

void mr_dir_account_free(mr_dir_account *account)
{
    mr_dir_names_free(account->owns, account->owns_count);
    account->owns = NULL;
    account->owns_count = 0;
}
