/*
 * directory.c - robots and routes in Redis for mailrobotctl: keys and the
 * writes of a change, sorted listings (see directory.h). The transactions
 * themselves are the directory library's (mailrobot/directory.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailrobot/keys.h"
#include "mailrobot/redis.h"

#include "directory.h"

int dir_key(const mr_config *cfg, const char *kind, const char *name, char *out, size_t outsz,
            mr_err *err)
{
    int n = snprintf(out, outsz, "%s:%s%s", cfg->redis_prefix, kind, name);

    if (n < 0 || (size_t)n >= outsz)
        return mr_err_set(err, "redis key %s:%s%.40s... is too long", cfg->redis_prefix, kind,
                          name);
    return 0;
}

static int add_write(const mr_config *cfg, dir_write *writes, size_t *count, const char *verb,
                     const char *kind, const char *name, const char *arg, mr_err *err)
{
    dir_write *w = &writes[*count];

    if (*count >= DIR_MAX_WRITES)
        return mr_err_set(err, "too many writes in one change");
    if (dir_key(cfg, kind, name, w->key, sizeof w->key, err) < 0)
        return -1;
    w->verb = verb;
    w->arg = arg;
    w->arg_len = arg ? strlen(arg) : 0;
    (*count)++;
    return 0;
}

int dir_put(const mr_config *cfg, dir_write *writes, size_t *count, const char *kind,
            const char *set, const char *name, const char *value, mr_err *err)
{
    if (add_write(cfg, writes, count, "SET", kind, name, value, err) < 0
        || add_write(cfg, writes, count, "SADD", set, "", name, err) < 0)
        return -1;
    return 0;
}

int dir_drop(const mr_config *cfg, dir_write *writes, size_t *count, const char *kind,
             const char *set, const char *name, mr_err *err)
{
    if (add_write(cfg, writes, count, "DEL", kind, name, NULL, err) < 0
        || add_write(cfg, writes, count, "SREM", set, "", name, err) < 0)
        return -1;
    return 0;
}

/* Runs the admin plan inside mr_dir_change (directory.h) and queues its
 * writes: robots and routes only, so only <p>:robots:version is INCR'd. */
typedef struct plan_adapter {
    dir_plan_fn *plan;
    void *opaque;
} plan_adapter;

static mr_dir_status adapt_plan(mr_dir *d, void *opaque, mr_dir_txn *t, mr_err *err)
{
    plan_adapter *a = opaque;
    dir_write writes[DIR_MAX_WRITES];
    size_t count = 0;
    mr_dir_status st = MR_DIR_OK;

    if (a->plan(d->redis, d->cfg, a->opaque, writes, &count, err) < 0)
        return MR_DIR_INVALID;
    mr_dir_txn_touch_robots(t);
    mr_dir_txn_skip_directory(t);
    for (size_t i = 0; i < count && st == MR_DIR_OK; i++)
        st = mr_dir_txn_add(t, err, writes[i].verb, writes[i].key, writes[i].arg, NULL);
    return st;
}

int dir_change(redisContext *c, const mr_config *cfg, dir_plan_fn *plan, void *opaque,
               mr_err *err)
{
    mr_dir d = {c, cfg};
    plan_adapter a = {plan, opaque};

    return mr_dir_change(&d, adapt_plan, &a, err) == MR_DIR_OK ? 0 : -1;
}

int dir_get(redisContext *c, const mr_config *cfg, const char *kind, const char *name,
            char **value, size_t *len, mr_err *err)
{
    mr_dir d = {c, cfg};
    mr_dir_status st = mr_dir_get(&d, kind, name, value, len, err);

    return st == MR_DIR_OK ? 1 : st == MR_DIR_NOT_FOUND ? 0 : -1;
}

int dir_members(redisContext *c, const mr_config *cfg, const char *kind, char ***names,
                size_t *count, mr_err *err)
{
    mr_dir d = {c, cfg};

    return mr_dir_members(&d, kind, "", names, count, err) == MR_DIR_OK ? 0 : -1;
}

void dir_names_free(char **names, size_t count)
{
    mr_dir_names_free(names, count);
}

int dir_names_has(char *const *names, size_t count, const char *name)
{
    return mr_dir_names_has(names, count, name);
}

/* GETs the route of every address in one pipeline. */
static int fetch_routes(redisContext *c, const mr_config *cfg, dir_route *routes, size_t count,
                        mr_err *err)
{
    for (size_t i = 0; i < count; i++)
        if (redisAppendCommand(c, "GET %s:%s%s", cfg->redis_prefix, MR_KEY_ROUTE,
                               routes[i].address) != REDIS_OK)
            return mr_err_set(err, "out of memory");
    for (size_t i = 0; i < count; i++) {
        redisReply *reply = NULL;

        if (redisGetReply(c, (void **)&reply) != REDIS_OK)
            return mr_err_set(err, "redis: %s", c->errstr[0] ? c->errstr : "no reply");
        if (reply->type == REDIS_REPLY_STRING)
            routes[i].robot = strdup(reply->str);
        freeReplyObject(reply);
    }
    return 0;
}

int dir_routes(redisContext *c, const mr_config *cfg, dir_route **routes, size_t *count,
               mr_err *err)
{
    char **names;
    size_t n;

    if (dir_members(c, cfg, MR_KEY_ROUTES, &names, &n, err) < 0)
        return -1;
    *routes = calloc(n + 1, sizeof **routes);
    if (*routes == NULL) {
        dir_names_free(names, n);
        return mr_err_set(err, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        (*routes)[i].address = names[i];
    free(names);
    *count = n;
    if (fetch_routes(c, cfg, *routes, n, err) < 0) {
        dir_routes_free(*routes, n);
        return -1;
    }
    return 0;
}

void dir_routes_free(dir_route *routes, size_t count)
{
    for (size_t i = 0; routes != NULL && i < count; i++) {
        free(routes[i].address);
        free(routes[i].robot);
    }
    free(routes);
}
