/*
 * change.c - the directory's plumbing (directory.h): connecting, keys,
 * reads, and changes as one MULTI/EXEC under WATCH.
 *
 * A change is planned by a callback that reads what the change depends on
 * and queues its writes. The plan runs after WATCH of both version keys;
 * every change INCRs one of them inside its transaction, so if any other
 * change committed between our reads and our EXEC, EXEC fails, nothing is
 * written, and the plan runs again on fresh data. Admins rarely collide;
 * a change that keeps losing gives up after CHANGE_ATTEMPTS tries.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "mailrobot/directory.h"
#include "mailrobot/keys.h"
#include "mailrobot/redis.h"

#define CHANGE_ATTEMPTS 50

typedef struct txn_command {
    int argc;
    char **argv;
} txn_command;

struct mr_dir_txn {
    txn_command *commands;
    size_t count, cap;
    int touch_robots;
    int skip_directory;
};

const char *mr_dir_status_name(mr_dir_status status)
{
    static const char *const names[] = {"ok", "invalid", "not_found", "conflict", "denied",
                                        "unavailable"};

    return (unsigned)status < sizeof names / sizeof names[0] ? names[status] : "unknown";
}

mr_dir_status mr_dir_open(mr_dir *d, const mr_config *cfg, mr_err *err)
{
    d->cfg = cfg;
    d->redis = NULL;
    if (sodium_init() < 0) {
        mr_err_set(err, "libsodium cannot be initialised");
        return MR_DIR_UNAVAILABLE;
    }
    d->redis = mr_redis_connect(cfg, err);
    return d->redis != NULL ? MR_DIR_OK : MR_DIR_UNAVAILABLE;
}

void mr_dir_close(mr_dir *d)
{
    if (d->redis != NULL)
        redisFree(d->redis);
    d->redis = NULL;
}

mr_dir_status mr_dir_key(const mr_config *cfg, const char *kind, const char *name, char *out,
                         size_t outsz, mr_err *err)
{
    int n = snprintf(out, outsz, "%s:%s%s", cfg->redis_prefix, kind, name);

    if (n < 0 || (size_t)n >= outsz) {
        mr_err_set(err, "redis key %s:%s%.40s... is too long", cfg->redis_prefix, kind, name);
        return MR_DIR_INVALID;
    }
    return MR_DIR_OK;
}

redisReply *mr_dir_command(mr_dir *d, mr_err *err, const char *fmt, ...)
{
    redisReply *reply;
    va_list ap;

    va_start(ap, fmt);
    reply = mr_redis_vcommand(d->redis, err, fmt, ap);
    va_end(ap);
    return reply;
}

mr_dir_status mr_dir_get(mr_dir *d, const char *kind, const char *name, char **value,
                         size_t *len, mr_err *err)
{
    char key[MR_DIR_KEY_MAX];
    redisReply *reply;
    mr_dir_status st = mr_dir_key(d->cfg, kind, name, key, sizeof key, err);

    if (st != MR_DIR_OK)
        return st;
    if ((reply = mr_dir_command(d, err, "GET %s", key)) == NULL)
        return MR_DIR_UNAVAILABLE;
    st = reply->type == REDIS_REPLY_STRING ? MR_DIR_OK : MR_DIR_NOT_FOUND;
    if (st == MR_DIR_OK && value != NULL) {
        *value = malloc(reply->len + 1);
        if (*value == NULL) {
            freeReplyObject(reply);
            mr_err_set(err, "out of memory");
            return MR_DIR_UNAVAILABLE;
        }
        memcpy(*value, reply->str, reply->len);
        (*value)[reply->len] = '\0';
        if (len != NULL)
            *len = reply->len;
    }
    if (st == MR_DIR_NOT_FOUND)
        mr_err_set(err, "no such key %s", key);
    freeReplyObject(reply);
    return st;
}

static int integer_reply(redisReply *reply)
{
    int n;

    if (reply == NULL)
        return -1;
    n = reply->type == REDIS_REPLY_INTEGER && reply->integer > 0;
    freeReplyObject(reply);
    return n;
}

int mr_dir_exists(mr_dir *d, const char *kind, const char *name, mr_err *err)
{
    char key[MR_DIR_KEY_MAX];

    if (mr_dir_key(d->cfg, kind, name, key, sizeof key, err) != MR_DIR_OK)
        return -1;
    return integer_reply(mr_dir_command(d, err, "EXISTS %s", key));
}

int mr_dir_is_member(mr_dir *d, const char *kind, const char *name, const char *member,
                     mr_err *err)
{
    char key[MR_DIR_KEY_MAX];

    if (mr_dir_key(d->cfg, kind, name, key, sizeof key, err) != MR_DIR_OK)
        return -1;
    return integer_reply(mr_dir_command(d, err, "SISMEMBER %s %s", key, member));
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

mr_dir_status mr_dir_members(mr_dir *d, const char *kind, const char *name, char ***names,
                             size_t *count, mr_err *err)
{
    char key[MR_DIR_KEY_MAX];
    redisReply *reply;
    size_t n = 0, total;
    mr_dir_status st = mr_dir_key(d->cfg, kind, name, key, sizeof key, err);

    *names = NULL;
    *count = 0;
    if (st != MR_DIR_OK)
        return st;
    if ((reply = mr_dir_command(d, err, "SMEMBERS %s", key)) == NULL)
        return MR_DIR_UNAVAILABLE;
    total = reply->type == REDIS_REPLY_ARRAY ? reply->elements
                                                                               : 0;
    *names = calloc(total + 1, sizeof **names);
    for (; *names != NULL && n < total; n++)
        if (((*names)[n] = strdup(reply->element[n]->str ? reply->element[n]->str : "")) == NULL)
            break;
    freeReplyObject(reply);
    if (*names == NULL || n < total) {
        mr_dir_names_free(*names, n);
        *names = NULL;
        mr_err_set(err, "out of memory");
        return MR_DIR_UNAVAILABLE;
    }
    qsort(*names, n, sizeof **names, compare_names);
    *count = n;
    return MR_DIR_OK;
}

void mr_dir_names_free(char **names, size_t count)
{
    for (size_t i = 0; names != NULL && i < count; i++)
        free(names[i]);
    free(names);
}

int mr_dir_names_has(char *const *names, size_t count, const char *name)
{
    return count > 0 && bsearch(&name, names, count, sizeof *names, compare_names) != NULL;
}

/* --- transactions ---------------------------------------------------------------- */

mr_dir_status mr_dir_txn_add(mr_dir_txn *t, mr_err *err, const char *verb, ...)
{
    txn_command *cmd;
    va_list ap;
    int argc = 1;

    va_start(ap, verb);
    while (va_arg(ap, const char *) != NULL)
        argc++;
    va_end(ap);
    if (t->count == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 16;
        txn_command *grown = realloc(t->commands, cap * sizeof *grown);

        if (grown == NULL)
            goto oom;
        t->commands = grown;
        t->cap = cap;
    }
    cmd = &t->commands[t->count];
    cmd->argc = 0;
    if ((cmd->argv = calloc((size_t)argc, sizeof *cmd->argv)) == NULL)
        goto oom;
    t->count++;
    va_start(ap, verb);
    for (const char *arg = verb; arg != NULL; arg = va_arg(ap, const char *)) {
        if ((cmd->argv[cmd->argc] = strdup(arg)) == NULL) {
            va_end(ap);
            goto oom;
        }
        cmd->argc++;
    }
    va_end(ap);
    return MR_DIR_OK;
oom:
    mr_err_set(err, "out of memory");
    return MR_DIR_UNAVAILABLE;
}

void mr_dir_txn_touch_robots(mr_dir_txn *t)
{
    t->touch_robots = 1;
}

void mr_dir_txn_skip_directory(mr_dir_txn *t)
{
    t->skip_directory = 1;
}

static void txn_clear(mr_dir_txn *t)
{
    for (size_t i = 0; i < t->count; i++) {
        for (int a = 0; a < t->commands[i].argc; a++)
            free(t->commands[i].argv[a]);
        free(t->commands[i].argv);
    }
    free(t->commands);
    memset(t, 0, sizeof *t);
}

/* MULTI, the writes, the version INCRs, EXEC: pipelined, then the replies
 * read. Returns 0 when committed, 1 when the WATCH saw a concurrent change
 * (nothing was written), -1 on error (err). */
static int commit(mr_dir *d, const mr_dir_txn *t, const char *dir_version,
                  const char *robots_version, mr_err *err)
{
    redisContext *c = d->redis;
    size_t queued = 1;
    redisReply *reply = NULL;
    int rc = 0;

    redisAppendCommand(c, "MULTI");
    for (size_t i = 0; i < t->count; i++, queued++)
        redisAppendCommandArgv(c, t->commands[i].argc, (const char **)t->commands[i].argv, NULL);
    if (!t->skip_directory && ++queued)
        redisAppendCommand(c, "INCR %s", dir_version);
    if (t->touch_robots && ++queued)
        redisAppendCommand(c, "INCR %s", robots_version);
    redisAppendCommand(c, "EXEC");
    for (size_t i = 0; i <= queued; i++) {
        if (redisGetReply(c, (void **)&reply) != REDIS_OK)
            return mr_err_set(err, "redis: %s", c->errstr[0] ? c->errstr : "no reply");
        if (reply->type == REDIS_REPLY_ERROR && rc == 0)
            rc = mr_err_set(err, "redis: %s", reply->str);
        else if (i == queued && reply->type == REDIS_REPLY_NIL && rc == 0)
            rc = 1;
        for (size_t e = 0; i == queued && reply->type == REDIS_REPLY_ARRAY && e < reply->elements;
             e++)
            if (reply->element[e]->type == REDIS_REPLY_ERROR && rc == 0)
                rc = mr_err_set(err, "redis: %s", reply->element[e]->str);
        freeReplyObject(reply);
    }
    return rc;
}

mr_dir_status mr_dir_change(mr_dir *d, mr_dir_plan_fn *plan, void *opaque, mr_err *err)
{
    char dir_version[MR_DIR_KEY_MAX], robots_version[MR_DIR_KEY_MAX];
    mr_dir_status st;

    if ((st = mr_dir_key(d->cfg, MR_KEY_DIRECTORY_VERSION, "", dir_version, sizeof dir_version,
                         err)) != MR_DIR_OK
        || (st = mr_dir_key(d->cfg, MR_KEY_VERSION, "", robots_version, sizeof robots_version,
                            err)) != MR_DIR_OK)
        return st;
    for (int attempt = 0; attempt < CHANGE_ATTEMPTS; attempt++) {
        mr_dir_txn t = {NULL, 0, 0, 0, 0};
        redisReply *reply = mr_dir_command(d, err, "WATCH %s %s", dir_version, robots_version);
        int rc;

        if (reply == NULL)
            return MR_DIR_UNAVAILABLE;
        freeReplyObject(reply);
        st = plan(d, opaque, &t, err);
        if (st != MR_DIR_OK) {
            freeReplyObject(redisCommand(d->redis, "UNWATCH"));
            txn_clear(&t);
            return st;
        }
        rc = commit(d, &t, dir_version, robots_version, err);
        txn_clear(&t);
        if (rc <= 0)
            return rc == 0 ? MR_DIR_OK : MR_DIR_UNAVAILABLE;
        /* Lost to a concurrent change: back off a little, at random, so that
         * many admins writing at once do not keep colliding. */
        usleep(1000 * (1 + randombytes_uniform(5 + 2 * (uint32_t)attempt)));
    }
    mr_err_set(err, "the directory changed under this change %d times; try again",
               CHANGE_ATTEMPTS);
    return MR_DIR_CONFLICT;
}
