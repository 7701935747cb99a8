/*
 * router.c - which robot a record goes to (SPEC §6), from Redis, picked up
 * without restart.
 *
 * One MGET per record asks for every route that could match, in order of
 * precedence, plus the layout's version counter (keys.h):
 *
 *   route:local+ext@domain   exact
 *   route:local@domain       the address without its +extension
 *   route:@domain            the domain's catch-all
 *   route:*                  the default robot
 *
 * The first that exists wins; none: no_route. A record that already names
 * its robot (mr.robot: retries, `replay --robot`) skips the routes.
 * Robot definitions are cached by name and dropped when the version
 * counter changes (every robot apply/delete and route change bumps it);
 * a definition still used by a job is freed when its last job lets go.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "mailrobot/keys.h"
#include "mailrobot/route.h"

#include "worker.h"

#define MAX_CANDIDATES MR_ROUTE_CANDIDATES

typedef struct cached_robot {
    mr_robot robot;       /* first: a mr_robot * is a cached_robot * */
    int refs;
    int stale;
} cached_robot;

typedef struct route_query {
    job *j;
    mr_route_candidates candidates;
    int count;                /* 0 when the record names its robot */
} route_query;

/* --- the robot cache ---------------------------------------------------------------- */

static void cached_free(cached_robot *c)
{
    mr_robot_free(&c->robot);
    free(c);
}

static void drop_unused(mr_strmap *map, const char *key, size_t len, void *value, void *arg)
{
    cached_robot *c = value;

    mr_strmap_del(map, key, len);
    c->stale = 1;
    if (c->refs == 0)
        cached_free(c);
}

static void check_version(worker *w, const redisReply *version)
{
    long long v = version && version->type == REDIS_REPLY_STRING ? atoll(version->str) : 0;

    if (v != w->robots_version) {
        mr_strmap_each(&w->robots, drop_unused, NULL);
        w->robots_version = v;
    }
}

void router_robot_release(worker *w, mr_robot *robot)
{
    cached_robot *c = (cached_robot *)robot;

    if (--c->refs == 0 && c->stale)
        cached_free(c);
}

static void use_robot(job *j, cached_robot *c)
{
    c->refs++;
    j->robot = &c->robot;
    job_routed(j, NULL);
}

static void on_robot_reply(void *arg, redisReply *reply, const char *error)
{
    job *j = arg;
    worker *w = j->w;
    cached_robot *c;
    void *old;
    mr_err err;

    if (error != NULL) {
        job_redis_trouble(j, error);
        return;
    }
    if (reply->type != REDIS_REPLY_STRING) {
        snprintf(j->error, sizeof j->error, "robot '%s' is not defined (mailrobotctl robot apply)",
                 j->robot_name);
        job_routed(j, "undefined");
        return;
    }
    c = calloc(1, sizeof *c);
    if (c == NULL || mr_robot_parse(reply->str, reply->len, &c->robot, &err) < 0) {
        snprintf(j->error, sizeof j->error, "robot '%s' in Redis is not valid: %s", j->robot_name,
                 c ? err.msg : "out of memory");
        free(c);
        job_routed(j, "undefined");
        return;
    }
    if (mr_strmap_put(&w->robots, j->robot_name, strlen(j->robot_name), c, &old) < 0) {
        c->stale = 1; /* not cached: freed when this job lets go */
    } else if (old != NULL) {
        /* Two jobs fetched the same robot at once: the newer copy is cached,
         * the older one lives on only for the jobs that hold it. */
        cached_robot *previous = old;

        previous->stale = 1;
        if (previous->refs == 0)
            cached_free(previous);
    }
    use_robot(j, c);
}

static void find_robot(job *j)
{
    worker *w = j->w;
    cached_robot *c = mr_strmap_get(&w->robots, j->robot_name, strlen(j->robot_name));
    char key[256];
    const char *argv[2] = {"GET", key};

    if (c != NULL) {
        use_robot(j, c);
        return;
    }
    snprintf(key, sizeof key, "%s:%s%s", w->redis_prefix, MR_KEY_ROBOT, j->robot_name);
    wredis_command(w->redis, on_robot_reply, j, 2, argv, NULL);
}

/* --- routes ------------------------------------------------------------------------ */

static void on_routes_reply(void *arg, redisReply *reply, const char *error)
{
    route_query *q = arg;
    job *j = q->j;

    if (error != NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != (size_t)q->count + 1) {
        free(q);
        job_redis_trouble(j, error ? error : "redis: unexpected MGET reply");
        return;
    }
    check_version(j->w, reply->element[q->count]);
    if (j->forced_robot == NULL) {
        int i;

        for (i = 0; i < q->count; i++)
            if (reply->element[i]->type == REDIS_REPLY_STRING)
                break;
        if (i == q->count || reply->element[i]->len > MR_ROBOT_NAME_MAX) {
            free(q);
            job_routed(j, "no_route");
            return;
        }
        snprintf(j->route, sizeof j->route, "%s", q->candidates.address[i]);
        snprintf(j->robot_name, sizeof j->robot_name, "%s", reply->element[i]->str);
    }
    free(q);
    find_robot(j);
}

void router_route(job *j)
{
    worker *w = j->w;
    route_query *q = calloc(1, sizeof *q);
    char keys[MAX_CANDIDATES + 1][600];
    const char *argv[MAX_CANDIDATES + 2];
    int argc = 0;

    if (q == NULL) {
        job_redis_trouble(j, "out of memory");
        return;
    }
    q->j = j;
    if (j->forced_robot != NULL) {
        snprintf(j->robot_name, sizeof j->robot_name, "%s", j->forced_robot);
        snprintf(j->route, sizeof j->route, "mr.robot");
        q->count = 0;
    } else {
        mr_route_candidates_for(j->recipient, &q->candidates);
        q->count = (int)q->candidates.count;
        snprintf(j->extension, sizeof j->extension, "%s", q->candidates.extension);
    }
    argv[argc++] = "MGET";
    for (int i = 0; i < q->count; i++) {
        snprintf(keys[i], sizeof keys[i], "%s:%s%s", w->redis_prefix, MR_KEY_ROUTE,
                 q->candidates.address[i]);
        argv[argc++] = keys[i];
    }
    snprintf(keys[q->count], sizeof keys[q->count], "%s:%s", w->redis_prefix, MR_KEY_VERSION);
    argv[argc++] = keys[q->count];
    wredis_command(w->redis, on_routes_reply, q, argc, argv, NULL);
}

static void free_cached(mr_strmap *map, const char *key, size_t len, void *value, void *arg)
{
    cached_free(value);
}

void router_free(worker *w)
{
    mr_strmap_each(&w->robots, free_cached, NULL);
    mr_strmap_free(&w->robots);
}
