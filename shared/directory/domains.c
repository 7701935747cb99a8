/*
 * domains.c - hosted domains and their catch-all (directory.h;
 * docs/directory-layout.md): <p>:domains and <p>:domain:<domain>.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailrobot/clock.h"

#include "directory_internal.h"

void dir_now(char out[40])
{
    mr_format_rfc3339(mr_wall_ms(), out, 40);
}

const char *dir_domain_of(const char *address)
{
    const char *at = strrchr(address, '@');

    return at != NULL ? at + 1 : address;
}

int dir_domain_hosted(mr_dir *d, const char *domain, mr_err *err)
{
    return mr_dir_is_member(d, MR_KEY_DOMAINS, "", domain, err);
}

typedef struct domain_change {
    char domain[MR_DIR_DOMAIN_MAX + 1];
    const char *target;                      /* catch-all; NULL: remove it */
    char checked[MR_DIR_ADDRESS_MAX + 8];
} domain_change;

static mr_dir_status plan_add(mr_dir *d, void *opaque, mr_dir_txn *t, mr_err *err)
{
    domain_change *dc = opaque;
    char key[MR_DIR_KEY_MAX], domains[MR_DIR_KEY_MAX], now[40];
    int hosted = dir_domain_hosted(d, dc->domain, err);
    mr_dir_status st;

    if (hosted < 0)
        return MR_DIR_UNAVAILABLE;
    if (hosted)
        return mr_err_set(err, "domain %s: already hosted", dc->domain), MR_DIR_CONFLICT;
    dir_now(now);
    if ((st = DIR_KEY(d, MR_KEY_DOMAIN, dc->domain, key, err)) != MR_DIR_OK
        || (st = DIR_KEY(d, MR_KEY_DOMAINS, "", domains, err)) != MR_DIR_OK
        || (st = mr_dir_txn_add(t, err, "HSET", key, "created", now, NULL)) != MR_DIR_OK)
        return st;
    return mr_dir_txn_add(t, err, "SADD", domains, dc->domain, NULL);
}

mr_dir_status mr_dir_domain_add(mr_dir *d, const char *domain, mr_err *err)
{
    domain_change dc = {.target = NULL};
    mr_dir_status st = mr_dir_domain_parse("domain", domain, dc.domain, err);

    return st != MR_DIR_OK ? st : mr_dir_change(d, plan_add, &dc, err);
}

/* How many of the sorted set's addresses are in domain. */
static size_t count_in_domain(char *const *names, size_t count, const char *domain)
{
    size_t n = 0;

    for (size_t i = 0; i < count; i++)
        n += strcmp(dir_domain_of(names[i]), domain) == 0;
    return n;
}

static mr_dir_status plan_remove(mr_dir *d, void *opaque, mr_dir_txn *t, mr_err *err)
{
    domain_change *dc = opaque;
    char key[MR_DIR_KEY_MAX], domains[MR_DIR_KEY_MAX];
    char **accounts = NULL, **aliases = NULL;
    size_t account_count = 0, alias_count = 0, in_accounts = 0, in_aliases = 0;
    int hosted = dir_domain_hosted(d, dc->domain, err);
    mr_dir_status st;

    if (hosted <= 0)
        return hosted < 0 ? MR_DIR_UNAVAILABLE
                          : (mr_err_set(err, "domain %s: not hosted", dc->domain), MR_DIR_NOT_FOUND);
    st = mr_dir_members(d, MR_KEY_ACCOUNTS, "", &accounts, &account_count, err);
    if (st == MR_DIR_OK)
        st = mr_dir_members(d, MR_KEY_ALIASES, "", &aliases, &alias_count, err);
    if (st == MR_DIR_OK) {
        in_accounts = count_in_domain(accounts, account_count, dc->domain);
        in_aliases = count_in_domain(aliases, alias_count, dc->domain);
    }
    mr_dir_names_free(accounts, account_count);
    mr_dir_names_free(aliases, alias_count);
    if (st != MR_DIR_OK)
        return st;
    if (in_accounts + in_aliases > 0)
        return mr_err_set(err, "domain %s: still has %zu account(s) and %zu alias(es); remove "
                          "them first", dc->domain, in_accounts, in_aliases), MR_DIR_CONFLICT;
    if ((st = DIR_KEY(d, MR_KEY_DOMAIN, dc->domain, key, err)) != MR_DIR_OK
        || (st = DIR_KEY(d, MR_KEY_DOMAINS, "", domains, err)) != MR_DIR_OK
        || (st = mr_dir_txn_add(t, err, "DEL", key, NULL)) != MR_DIR_OK)
        return st;
    return mr_dir_txn_add(t, err, "SREM", domains, dc->domain, NULL);
}

mr_dir_status mr_dir_domain_remove(mr_dir *d, const char *domain, mr_err *err)
{
    domain_change dc = {.target = NULL};
    mr_dir_status st = mr_dir_domain_parse("domain", domain, dc.domain, err);

    return st != MR_DIR_OK ? st : mr_dir_change(d, plan_remove, &dc, err);
}

static mr_dir_status plan_catch_all(mr_dir *d, void *opaque, mr_dir_txn *t, mr_err *err)
{
    domain_change *dc = opaque;
    char key[MR_DIR_KEY_MAX];
    int hosted = dir_domain_hosted(d, dc->domain, err);
    mr_dir_status st;

    if (hosted <= 0)
        return hosted < 0 ? MR_DIR_UNAVAILABLE
                          : (mr_err_set(err, "domain %s: not hosted", dc->domain), MR_DIR_NOT_FOUND);
    if ((st = DIR_KEY(d, MR_KEY_DOMAIN, dc->domain, key, err)) != MR_DIR_OK)
        return st;
    if (dc->target == NULL)
        return mr_dir_txn_add(t, err, "HDEL", key, "catch_all", NULL);
    if ((st = mr_dir_target_check(d, "catch_all", dc->target, dc->checked, err)) != MR_DIR_OK)
        return st;
    return mr_dir_txn_add(t, err, "HSET", key, "catch_all", dc->checked, NULL);
}

mr_dir_status mr_dir_domain_catch_all(mr_dir *d, const char *domain, const char *target,
                                      mr_err *err)
{
    domain_change dc = {.target = target};
    mr_dir_status st = mr_dir_domain_parse("domain", domain, dc.domain, err);

    return st != MR_DIR_OK ? st : mr_dir_change(d, plan_catch_all, &dc, err);
}

mr_dir_status mr_dir_domain_get(mr_dir *d, const char *domain_arg, char **target, mr_err *err)
{
    char domain[MR_DIR_DOMAIN_MAX + 1], key[MR_DIR_KEY_MAX];
    redisReply *reply;
    mr_dir_status st = mr_dir_domain_parse("domain", domain_arg, domain, err);
    int hosted;

    *target = NULL;
    if (st != MR_DIR_OK || (st = DIR_KEY(d, MR_KEY_DOMAIN, domain, key, err)) != MR_DIR_OK)
        return st;
    if ((hosted = dir_domain_hosted(d, domain, err)) <= 0)
        return hosted < 0 ? MR_DIR_UNAVAILABLE
                          : (mr_err_set(err, "domain %s: not hosted", domain), MR_DIR_NOT_FOUND);
    if ((reply = mr_dir_command(d, err, "HGET %s catch_all", key)) == NULL)
        return MR_DIR_UNAVAILABLE;
    if (reply->type == REDIS_REPLY_STRING && (*target = strdup(reply->str)) == NULL)
        st = (mr_err_set(err, "out of memory"), MR_DIR_UNAVAILABLE);
    freeReplyObject(reply);
    return st;
}

mr_dir_status mr_dir_domain_list(mr_dir *d, char ***names, size_t *count, mr_err *err)
{
    return mr_dir_members(d, MR_KEY_DOMAINS, "", names, count, err);
}
