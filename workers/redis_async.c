/*
 * redis_async.c - the worker's Redis connection: hiredis' async API on the
 * worker's libevent loop, with what hiredis 0.14 lacks added around it:
 *
 * - every command has a deadline (redis_time_limit); a command that misses
 *   it fails, and the connection, now suspect, is dropped;
 * - connecting has the same deadline, and a lost connection is re-made
 *   with a growing back-off (0.2 s .. 5 s);
 * - while there is no connection, commands fail at once ("not connected"),
 *   so the jobs hold their records and try again later (job.c): nothing is
 *   dropped and nothing blocks the loop.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "mailrobot/redis.h"

#include "worker.h"

#define RECONNECT_MIN_MS 200
#define RECONNECT_MAX_MS 5000

typedef struct pending {
    wredis *r;
    wredis_cb *cb;
    void *arg;
    struct event *timer;
    int answered;             /* cb has run (timeout or reply) */
    struct pending *next, *prev;
} pending;

struct wredis {
    worker *w;
    mr_redis_address addr;
    redisAsyncContext *ac;
    int connected;
    struct event *retry_timer;   /* reconnect, or connect deadline */
    int failures;
    char last_error[256];
    pending *pending;
};

static void wredis_connect(wredis *r);

static struct timeval tv_ms(int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};

    return tv;
}

static void answer(pending *p, redisReply *reply, const char *error)
{
    if (p->answered)
        return;
    p->answered = 1;
    evtimer_del(p->timer);
    p->cb(p->arg, reply, error);
}

static void pending_free(pending *p)
{
    wredis *r = p->r;

    if (p->prev)
        p->prev->next = p->next;
    else
        r->pending = p->next;
    if (p->next)
        p->next->prev = p->prev;
    event_free(p->timer);
    free(p);
}

/* --- connection ------------------------------------------------------------------- */

static void schedule_reconnect(wredis *r)
{
    int64_t delay = RECONNECT_MIN_MS << (r->failures < 5 ? r->failures : 5);
    struct timeval tv = tv_ms(delay > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : delay);

    r->failures++;
    evtimer_add(r->retry_timer, &tv);
}

/* Drops the connection; every command in flight fails. */
static void drop_connection(wredis *r, const char *why)
{
    redisAsyncContext *ac = r->ac;

    if (ac == NULL)
        return;
    snprintf(r->last_error, sizeof r->last_error, "%s", why);
    r->ac = NULL;
    r->connected = 0;
    /* Calls every pending callback with a NULL reply, then our disconnect
     * callback (which sees r->ac == NULL and does nothing more). */
    redisAsyncFree(ac);
    schedule_reconnect(r);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    wredis *r = ac->data;

    if (r == NULL || r->ac != ac)
        return;
    evtimer_del(r->retry_timer);
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        snprintf(r->last_error, sizeof r->last_error, "%s", ac->errstr);
        if (r->failures == 0)
            mr_log(r->w->log, MR_LOG_WARN, "redis connect failed", "url", r->w->cfg->redis_url,
                   "detail", ac->errstr, NULL);
        r->ac = NULL;
        schedule_reconnect(r);
        return;
    }
    r->connected = 1;
    if (r->failures > 0)
        mr_log(r->w->log, MR_LOG_INFO, "redis connected again", "url", r->w->cfg->redis_url,
               NULL);
    r->failures = 0;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    wredis *r = ac->data;

    if (r == NULL || r->ac != ac)
        return;
    /* hiredis frees the context after this callback. */
    r->ac = NULL;
    r->connected = 0;
    snprintf(r->last_error, sizeof r->last_error, "%s",
             status == REDIS_OK ? "disconnected" : ac->errstr);
    mr_log(r->w->log, MR_LOG_WARN, "redis connection lost", "detail", r->last_error, NULL);
    schedule_reconnect(r);
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    wredis *r = arg;

    if (r->ac != NULL && !r->connected) {
        drop_connection(r, "connect timed out");
        return;
    }
    if (r->ac == NULL)
        wredis_connect(r);
}

static void ignore_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
}

static void wredis_connect(wredis *r)
{
    struct timeval deadline = tv_ms(r->w->cfg->redis_time_limit);
    redisAsyncContext *ac = r->addr.path[0] ? redisAsyncConnectUnix(r->addr.path)
                                            : redisAsyncConnect(r->addr.host, r->addr.port);

    if (ac == NULL || ac->err) {
        snprintf(r->last_error, sizeof r->last_error, "%s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_reconnect(r);
        return;
    }
    ac->data = r;
    r->ac = ac;
    redisLibeventAttach(ac, r->w->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* Queued now, sent first once connected. */
    if (r->addr.password[0])
        redisAsyncCommand(ac, ignore_reply, NULL, "AUTH %s", r->addr.password);
    if (r->addr.db)
        redisAsyncCommand(ac, ignore_reply, NULL, "SELECT %d", r->addr.db);
    evtimer_add(r->retry_timer, &deadline);
}

/* --- commands --------------------------------------------------------------------- */

static void on_reply(redisAsyncContext *ac, void *reply_ptr, void *privdata)
{
    pending *p = privdata;
    redisReply *reply = reply_ptr;
    char error[300];

    if (reply == NULL) {
        snprintf(error, sizeof error, "redis: %s",
                 ac && ac->errstr[0] ? ac->errstr : p->r->last_error[0] ? p->r->last_error
                                                                         : "connection lost");
        answer(p, NULL, error);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(error, sizeof error, "redis: %s", reply->str);
        answer(p, NULL, error);
    } else {
        answer(p, reply, NULL);
    }
    pending_free(p);
}

static void on_command_timeout(evutil_socket_t fd, short what, void *arg)
{
    pending *p = arg;
    wredis *r = p->r;

    answer(p, NULL, "redis: no reply within redis_time_limit");
    /* The reply may still come (then it is ignored: answered is set), or
     * the connection is stuck: start over. */
    drop_connection(r, "a command timed out");
}

void wredis_command(wredis *r, wredis_cb *cb, void *arg, int argc, const char **argv,
                    const size_t *lens)
{
    struct timeval deadline = tv_ms(r->w->cfg->redis_time_limit);
    pending *p;

    if (!r->connected || r->ac == NULL) {
        char error[300];

        snprintf(error, sizeof error, "redis: not connected (%s)",
                 r->last_error[0] ? r->last_error : "connecting");
        cb(arg, NULL, error);
        return;
    }
    p = calloc(1, sizeof *p);
    if (p == NULL) {
        cb(arg, NULL, "out of memory");
        return;
    }
    p->r = r;
    p->cb = cb;
    p->arg = arg;
    p->timer = evtimer_new(r->w->base, on_command_timeout, p);
    p->next = r->pending;
    if (r->pending)
        r->pending->prev = p;
    r->pending = p;
    if (redisAsyncCommandArgv(r->ac, on_reply, p, argc, argv, lens) != REDIS_OK) {
        answer(p, NULL, "redis: cannot send the command");
        pending_free(p);
        return;
    }
    evtimer_add(p->timer, &deadline);
}

int wredis_connected(const wredis *r)
{
    return r->connected;
}

wredis *wredis_new(worker *w, mr_err *err)
{
    wredis *r = calloc(1, sizeof *r);

    if (r == NULL) {
        mr_err_set(err, "out of memory");
        return NULL;
    }
    r->w = w;
    if (mr_redis_address_parse(w->cfg->redis_url, &r->addr, err) < 0) {
        free(r);
        return NULL;
    }
    r->retry_timer = evtimer_new(w->base, on_retry_timer, r);
    wredis_connect(r);
    return r;
}

void wredis_free(wredis *r)
{
    if (r == NULL)
        return;
    /* Shutting down: no callback may reach a job any more. */
    for (pending *p = r->pending; p != NULL; p = p->next)
        p->answered = 1;
    if (r->ac != NULL) {
        redisAsyncContext *ac = r->ac;

        r->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    while (r->pending != NULL)
        pending_free(r->pending);
    event_free(r->retry_timer);
    free(r);
}
