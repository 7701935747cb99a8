/*
 * directory.h - the robots and routes in Redis, as mailrobotctl reads and
 * changes them (key layout v1: mailrobot/keys.h, docs/redis.md).
 *
 * Every change is one MULTI/EXEC transaction that also INCRs
 * <p>:robots:version, so workers see all of it or none of it and know to
 * drop their caches. The checks a change depends on ("the robot exists",
 * "no route points to it") are made under WATCH of the version key: if
 * another change lands between the check and the write, the transaction
 * fails and the whole change (checks included) is tried again.
 */
#ifndef ADMIN_DIRECTORY_H
#define ADMIN_DIRECTORY_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "mailrobot/config.h"
#include "mailrobot/directory.h"
#include "mailrobot/err.h"

#define DIR_KEY_MAX 1024
#define DIR_MAX_WRITES 4

/* One write of a change: VERB KEY [ARG]. */
typedef struct dir_write {
    const char *verb;       /* "SET", "DEL", "SADD", "SREM" */
    char key[DIR_KEY_MAX];
    const char *arg;        /* value or member; NULL for none */
    size_t arg_len;
} dir_write;

/* "<redis_prefix>:<kind><name>", e.g. dir_key(cfg, MR_KEY_ROBOT, "tickets").
 * Returns 0, or -1 when it does not fit. */
int dir_key(const mr_config *cfg, const char *kind, const char *name, char *out, size_t outsz,
            mr_err *err);

/* The writes that store an entry: SET <p>:<kind><name> value and
 * SADD <p>:<set> name, appended to writes[*count]. Returns 0, or -1. */
int dir_put(const mr_config *cfg, dir_write *writes, size_t *count, const char *kind,
            const char *set, const char *name, const char *value, mr_err *err);

/* The writes that remove one: DEL <p>:<kind><name>, SREM <p>:<set> name. */
int dir_drop(const mr_config *cfg, dir_write *writes, size_t *count, const char *kind,
             const char *set, const char *name, mr_err *err);

/* Reads what a change depends on, checks it and fills writes (room for
 * DIR_MAX_WRITES). Returns 0, or -1 with the reason (nothing is written). */
typedef int dir_plan_fn(redisContext *c, const mr_config *cfg, void *opaque, dir_write *writes,
                        size_t *count, mr_err *err);

/* Runs plan under WATCH and commits its writes with the version INCR in one
 * transaction, retrying when a concurrent change got in first: the
 * library's mr_dir_change (mailrobot/directory.h), which also WATCHes
 * <p>:directory:version, so aliases naming robots and robot changes never
 * cross. */
int dir_change(redisContext *c, const mr_config *cfg, dir_plan_fn *plan, void *opaque,
               mr_err *err);

/* GET <p>:<kind><name>: 1 with *value (malloc'd, NUL-terminated) and *len,
 * 0 if there is no such key, -1 on error. value may be NULL (existence). */
int dir_get(redisContext *c, const mr_config *cfg, const char *kind, const char *name,
            char **value, size_t *len, mr_err *err);

/* The members of the set <p>:<kind>, sorted (strcmp). Free with
 * dir_names_free(). */
int dir_members(redisContext *c, const mr_config *cfg, const char *kind, char ***names,
                size_t *count, mr_err *err);

void dir_names_free(char **names, size_t count);

/* 1 if name is in sorted names. */
int dir_names_has(char *const *names, size_t count, const char *name);

typedef struct dir_route {
    char *address;  /* local@domain, @domain or * */
    char *robot;    /* NULL if the route key is missing */
} dir_route;

/* Every route, sorted by address. Free with dir_routes_free(). */
int dir_routes(redisContext *c, const mr_config *cfg, dir_route **routes, size_t *count,
               mr_err *err);

void dir_routes_free(dir_route *routes, size_t count);

#endif
