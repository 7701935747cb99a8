/*
 * directory.c - robots and routes in Redis for mailrobotctl: keys,
 * transactional changes under WATCH, and sorted listings (see directory.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailrobot/keys.h"
#include "mailrobot/redis.h"

#include "directory.h"

/* A change whose checks keep being invalidated by other changes gives up
 * after this many tries. */
#define DIR_ATTEMPTS 5

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

/* A reply that only matters as success (not NULL) or failure. */
static int command_ok(redisReply *reply)
{
    if (reply == NULL)
        return -1;
    freeReplyObject(reply);
    return 0;
}

static int queue_write(redisContext *c, const dir_write *w, mr_err *err)
{
    if (w->arg == NULL)
        return command_ok(mr_redis_command(c, err, "%s %s", w->verb, w->key));
    return command_ok(mr_redis_command(c, err, "%s %s %b", w->verb, w->key, w->arg,
                                               w->arg_len));
}

/* MULTI, the writes, INCR version, EXEC. Returns 0 when committed, 1 when
 * the WATCH saw a concurrent change (nothing was written), -1 on error. */
static int commit(redisContext *c, const char *version, const dir_write *writes, size_t count,
                  mr_err *err)
{
    redisReply *reply;
    int rc = 0;

    if (command_ok(mr_redis_command(c, err, "MULTI")) < 0)
        return -1;
    for (size_t i = 0; i < count; i++)
        if (queue_write(c, &writes[i], err) < 0) {
            freeReplyObject(redisCommand(c, "DISCARD"));
            return -1;
        }
    if (command_ok(mr_redis_command(c, err, "INCR %s", version)) < 0
        || (reply = mr_redis_command(c, err, "EXEC")) == NULL)
        return -1;
    if (reply->type == REDIS_REPLY_NIL)
        rc = 1;
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_ERROR && rc == 0)
            rc = mr_err_set(err, "redis: %s", reply->element[i]->str);
    freeReplyObject(reply);
    return rc;
}

int dir_change(redisContext *c, const mr_config *cfg, dir_plan_fn *plan, void *opaque,
               mr_err *err)
{
    char version[DIR_KEY_MAX];

    if (dir_key(cfg, MR_KEY_VERSION, "", version, sizeof version, err) < 0)
        return -1;
    for (int attempt = 0; attempt < DIR_ATTEMPTS; attempt++) {
        dir_write writes[DIR_MAX_WRITES];
        size_t count = 0;
        int rc;

        if (command_ok(mr_redis_command(c, err, "WATCH %s", version)) < 0)
            return -1;
        if (plan(c, cfg, opaque, writes, &count, err) < 0) {
            freeReplyObject(redisCommand(c, "UNWATCH"));
            return -1;
        }
        rc = commit(c, version, writes, count, err);
        if (rc <= 0)
            return rc;
    }
    return mr_err_set(err, "the directory changed under this command %d times; try again",
                      DIR_ATTEMPTS);
}

int dir_get(redisContext *c, const mr_config *cfg, const char *kind, const char *name,
            char **value, size_t *len, mr_err *err)
{
    char key[DIR_KEY_MAX];
    redisReply *reply;
    int found;

    if (dir_key(cfg, kind, name, key, sizeof key, err) < 0
        || (reply = mr_redis_command(c, err, "GET %s", key)) == NULL)
        return -1;
    found = reply->type == REDIS_REPLY_STRING;
    if (found && value != NULL) {
        *value = malloc(reply->len + 1);
        if (*value == NULL) {
            freeReplyObject(reply);
            return mr_err_set(err, "out of memory");
        }
        memcpy(*value, reply->str, reply->len);
        (*value)[reply->len] = '\0';
        if (len != NULL)
            *len = reply->len;
    }
    freeReplyObject(reply);
    return found;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int dir_members(redisContext *c, const mr_config *cfg, const char *kind, char ***names,
                size_t *count, mr_err *err)
{
    char key[DIR_KEY_MAX];
    redisReply *reply;
    size_t n = 0, total;

    if (dir_key(cfg, kind, "", key, sizeof key, err) < 0
        || (reply = mr_redis_command(c, err, "SMEMBERS %s", key)) == NULL)
        return -1;
    total = reply->elements;
    *names = calloc(total + 1, sizeof **names);
    for (; *names != NULL && n < total; n++)
        if (((*names)[n] = strdup(reply->element[n]->str ? reply->element[n]->str : "")) == NULL)
            break;
    freeReplyObject(reply);
    if (*names == NULL || n < total) {
        dir_names_free(*names, n);
        return mr_err_set(err, "out of memory");
    }
    qsort(*names, n, sizeof **names, compare_names);
    *count = n;
    return 0;
}

void dir_names_free(char **names, size_t count)
{
    for (size_t i = 0; names != NULL && i < count; i++)
        free(names[i]);
    free(names);
}

int dir_names_has(char *const *names, size_t count, const char *name)
{
    return bsearch(&name, names, count, sizeof *names, compare_names) != NULL;
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
