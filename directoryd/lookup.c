/*
 * lookup.c - the directory's answers to Postfix (lookup.h), and the Redis
 * connection they come from.
 *
 * Why one Lua script per lookup: an answer depends on several keys (an
 * account, up to three routes, an alias set, a domain's catch-all, and for
 * robot targets every route), and a Postfix process waits for it at SMTP
 * time. One EVAL reads them in one round trip and from one state of the
 * directory, so no answer mixes a write half seen. The script only reads.
 *
 * The connection, like the worker's (workers/redis_async.c): connecting
 * and every command have a deadline (directoryd_time_limit); a command
 * that misses it is answered TEMP and the connection, now suspect, is
 * dropped and re-made with a growing back-off (0.2 s .. 5 s). While there
 * is no connection every lookup is answered TEMP at once, so Postfix
 * answers 4xx and the sender retries: the directory being down never
 * rejects mail.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "mailrobot/keys.h"
#include "mailrobot/redis.h"
#include "mailrobot/route.h"

#include "lookup.h"

#define RECONNECT_MIN_MS 200
#define RECONNECT_MAX_MS 5000

/* The transport of addresses that route to a robot: the pipe(8) service of
 * master.cf (docs/postfix.md). */
#define ROBOT_TRANSPORT "mailrobot:"

/*
 * ARGV: prefix, map, key (lower-cased), then the key's route candidates
 * most specific first (route.c: exact, without +extension, @domain; the
 * default route "*" is left out: it would make every address valid).
 * Returns {status, data}. Precedence at each candidate, as in the worker's
 * router: an alias, an account, then a route; the domain's catch-all alias
 * last. Postfix asks a socketmap for the full address only (it treats it
 * like a regexp table: no user@ or @domain retries), so the +extension
 * and @domain steps are made here.
 *
 * An alias with offsite targets and a route of its own (the forward robot
 * the directory library made for them, docs/directory-layout.md) expands
 * to its other targets and itself instead: Postfix keeps an address found
 * in its own expansion, and delivers it through the mailrobot transport
 * to that robot, which forwards with SRS.
 */
static const char LOOKUP_SCRIPT[] =
    "local p, map, key = ARGV[1], ARGV[2], ARGV[3]\n"
    "local cands = {}\n"
    "for i = 4, #ARGV do cands[#cands + 1] = ARGV[i] end\n"
    "local function is_account(a) return redis.call('EXISTS', p .. ':account:' .. a) == 1 end\n"
    "local function route(a) return redis.call('GET', p .. ':route:' .. a) end\n"
    "local function robot_address(name)\n"
    "  local best = false\n"
    "  for _, a in ipairs(redis.call('SMEMBERS', p .. ':routes')) do\n"
    "    if a:find('@', 2, true) and (not best or a < best) and route(a) == name then best = a end\n"
    "  end\n"
    "  return best\n"
    "end\n"
    "local function hosted(a)\n"
    "  local d = a:match('@([^@]*)$')\n"
    "  return d ~= nil and redis.call('SISMEMBER', p .. ':domains', d) == 1\n"
    "end\n"
    "local function expand(targets, self)\n"
    "  local out, offsite = {}, false\n"
    "  for _, t in ipairs(targets) do\n"
    "    if t:sub(1, 6) == 'robot:' then\n"
    "      local a = robot_address(t:sub(7))\n"
    "      if not a then return {'TEMP', 'robot ' .. t:sub(7) .. ' has no exact route'} end\n"
    "      out[#out + 1] = a\n"
    "    elseif self and not hosted(t) and route(self) then\n"
    "      offsite = true\n"
    "    else\n"
    "      out[#out + 1] = t\n"
    "    end\n"
    "  end\n"
    "  if offsite then out[#out + 1] = self end\n"
    "  table.sort(out)\n"
    "  return {'OK', table.concat(out, ',')}\n"
    "end\n"
    "local is_address = key:find('@', 2, true) ~= nil\n"
    "if map == 'domains' then\n"
    "  if not key:find('@', 1, true) and redis.call('SISMEMBER', p .. ':domains', key) == 1 then\n"
    "    return {'OK', key}\n"
    "  end\n"
    "elseif map == 'mailboxes' then\n"
    "  if not is_address then\n"
    "    if key:sub(1, 1) == '@' and route(key) then return {'OK', key} end\n"
    "    return {'NOTFOUND', ''}\n"
    "  end\n"
    "  for _, c in ipairs(cands) do\n"
    "    if c:sub(1, 1) ~= '@' and is_account(c) then\n"
    "      local l, d = c:match('^(.*)@([^@]*)$')\n"
    "      return {'OK', d .. '/' .. l .. '/'}\n"
    "    end\n"
    "    if route(c) then return {'OK', key} end\n"
    "  end\n"
    "elseif map == 'transport' then\n"
    "  if not is_address then return {'NOTFOUND', ''} end\n"
    "  for _, c in ipairs(cands) do\n"
    "    if c:sub(1, 1) ~= '@' and is_account(c) then return {'NOTFOUND', ''} end\n"
    "    if route(c) then return {'OK', '" ROBOT_TRANSPORT "'} end\n"
    "  end\n"
    "elseif map == 'aliases' then\n"
    "  if key:sub(1, 1) == '@' then\n"
    "    local all = redis.call('HGET', p .. ':domain:' .. key:sub(2), 'catch_all')\n"
    "    if all then return expand({all}) end\n"
    "    return {'NOTFOUND', ''}\n"
    "  end\n"
    "  if not is_address then return {'NOTFOUND', ''} end\n"
    "  for _, c in ipairs(cands) do\n"
    "    if c:sub(1, 1) ~= '@' then\n"
    "      local targets = redis.call('SMEMBERS', p .. ':alias:' .. c)\n"
    "      if #targets > 0 then return expand(targets, c) end\n"
    "    end\n"
    /* An account or a robot address is a recipient of its own: the
     * domain's catch-all does not take it. */
    "    if (c:sub(1, 1) ~= '@' and is_account(c)) or route(c) then return {'NOTFOUND', ''} end\n"
    "  end\n"
    "  local all = redis.call('HGET', p .. ':domain:' .. key:match('@([^@]*)$'), 'catch_all')\n"
    "  if all then return expand({all}) end\n"
    "else\n"
    "  return {'PERM', 'unknown map'}\n"
    "end\n"
    "return {'NOTFOUND', ''}\n";

static const char *const MAPS[] = {"domains", "mailboxes", "aliases", "transport", NULL};

struct lookup {
    directory *d;
    lookup_cb *cb;
    void *arg;
    struct event *timer;
    int answered;             /* cb has run, or the lookup was cancelled */
    struct lookup *next, *prev;
};

struct directory {
    struct event_base *base;
    const mr_config *cfg;
    const mr_logger *log;
    mr_redis_address addr;
    redisAsyncContext *ac;
    int connected;
    struct event *retry_timer;   /* reconnect, or the connect deadline */
    int failures;
    char last_error[256];
    lookup *pending;
};

static void directory_connect(directory *d);

static struct timeval tv_ms(int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};

    return tv;
}

static void answer(lookup *q, const char *status, const char *data)
{
    if (q->answered)
        return;
    q->answered = 1;
    evtimer_del(q->timer);
    q->cb(q->arg, status, data);
}

static void lookup_free(lookup *q)
{
    directory *d = q->d;

    if (q->prev)
        q->prev->next = q->next;
    else
        d->pending = q->next;
    if (q->next)
        q->next->prev = q->prev;
    event_free(q->timer);
    free(q);
}

void lookup_cancel(lookup *q)
{
    if (q == NULL || q->answered)
        return;
    q->answered = 1;
    evtimer_del(q->timer);
}

/* --- the connection ---------------------------------------------------------------- */

static void schedule_reconnect(directory *d)
{
    int64_t delay = RECONNECT_MIN_MS << (d->failures < 5 ? d->failures : 5);
    struct timeval tv = tv_ms(delay > RECONNECT_MAX_MS ? RECONNECT_MAX_MS : delay);

    d->failures++;
    evtimer_add(d->retry_timer, &tv);
}

/* Drops the connection; every lookup in flight is answered TEMP. */
static void drop_connection(directory *d, const char *why)
{
    redisAsyncContext *ac = d->ac;

    if (ac == NULL)
        return;
    snprintf(d->last_error, sizeof d->last_error, "%s", why);
    mr_log(d->log, MR_LOG_WARN, "redis connection dropped", "reason", why, NULL);
    d->ac = NULL;
    d->connected = 0;
    /* Calls every pending reply callback with NULL, then on_disconnect
     * (which sees d->ac != ac and does nothing). */
    redisAsyncFree(ac);
    schedule_reconnect(d);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    directory *d = ac->data;

    if (d == NULL || d->ac != ac)
        return;
    evtimer_del(d->retry_timer);
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        snprintf(d->last_error, sizeof d->last_error, "%s", ac->errstr);
        if (d->failures == 0)
            mr_log(d->log, MR_LOG_WARN, "redis connect failed", "url", d->cfg->redis_url,
                   "detail", ac->errstr, NULL);
        d->ac = NULL;
        schedule_reconnect(d);
        return;
    }
    d->connected = 1;
    mr_log(d->log, d->failures > 0 ? MR_LOG_INFO : MR_LOG_DEBUG, "redis connected", "url",
           d->cfg->redis_url, NULL);
    d->failures = 0;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    directory *d = ac->data;

    if (d == NULL || d->ac != ac)
        return;
    /* hiredis frees the context after this callback. */
    d->ac = NULL;
    d->connected = 0;
    snprintf(d->last_error, sizeof d->last_error, "%s",
             status == REDIS_OK ? "disconnected" : ac->errstr);
    mr_log(d->log, MR_LOG_WARN, "redis connection lost", "detail", d->last_error, NULL);
    schedule_reconnect(d);
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    directory *d = arg;

    if (d->ac != NULL && !d->connected) {
        drop_connection(d, "connect timed out");
        return;
    }
    if (d->ac == NULL)
        directory_connect(d);
}

static void on_setup_reply(redisAsyncContext *ac, void *reply_ptr, void *privdata)
{
    directory *d = ac->data;
    redisReply *reply = reply_ptr;

    if (d != NULL && reply != NULL && reply->type == REDIS_REPLY_ERROR)
        mr_log(d->log, MR_LOG_ERROR, "redis refused AUTH or SELECT", "detail", reply->str, NULL);
}

static void directory_connect(directory *d)
{
    struct timeval deadline = tv_ms(d->cfg->directoryd_time_limit);
    redisAsyncContext *ac = d->addr.path[0] ? redisAsyncConnectUnix(d->addr.path)
                                            : redisAsyncConnect(d->addr.host, d->addr.port);

    if (ac == NULL || ac->err) {
        snprintf(d->last_error, sizeof d->last_error, "%s", ac ? ac->errstr : "out of memory");
        if (ac)
            redisAsyncFree(ac);
        schedule_reconnect(d);
        return;
    }
    ac->data = d;
    d->ac = ac;
    redisLibeventAttach(ac, d->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* Queued now, sent first once connected. */
    if (d->addr.password[0])
        redisAsyncCommand(ac, on_setup_reply, NULL, "AUTH %s", d->addr.password);
    if (d->addr.db)
        redisAsyncCommand(ac, on_setup_reply, NULL, "SELECT %d", d->addr.db);
    evtimer_add(d->retry_timer, &deadline);
}

directory *directory_new(struct event_base *base, const mr_config *cfg, const mr_logger *log,
                         mr_err *err)
{
    directory *d = calloc(1, sizeof *d);

    if (d == NULL) {
        mr_err_set(err, "out of memory");
        return NULL;
    }
    d->base = base;
    d->cfg = cfg;
    d->log = log;
    if (mr_redis_address_parse(cfg->redis_url, &d->addr, err) < 0) {
        free(d);
        return NULL;
    }
    d->retry_timer = evtimer_new(base, on_retry_timer, d);
    directory_connect(d);
    return d;
}

void directory_free(directory *d)
{
    if (d == NULL)
        return;
    for (lookup *q = d->pending; q != NULL; q = q->next)
        q->answered = 1;
    if (d->ac != NULL) {
        redisAsyncContext *ac = d->ac;

        d->ac = NULL;
        ac->data = NULL;
        redisAsyncFree(ac);
    }
    while (d->pending != NULL)
        lookup_free(d->pending);
    event_free(d->retry_timer);
    free(d);
}

/* --- lookups ----------------------------------------------------------------------- */

static void on_reply(redisAsyncContext *ac, void *reply_ptr, void *privdata)
{
    lookup *q = privdata;
    directory *d = q->d;
    redisReply *reply = reply_ptr;
    char reason[300];

    if (reply == NULL) {
        snprintf(reason, sizeof reason, "directory: redis: %s",
                 d->last_error[0] ? d->last_error : "connection lost");
        answer(q, "TEMP", reason);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        if (!q->answered)
            mr_log(d->log, MR_LOG_WARN, "redis error", "detail", reply->str, NULL);
        snprintf(reason, sizeof reason, "directory: redis: %s", reply->str);
        answer(q, "TEMP", reason);
    } else if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2
               && reply->element[0]->type == REDIS_REPLY_STRING
               && reply->element[1]->type == REDIS_REPLY_STRING) {
        answer(q, reply->element[0]->str, reply->element[1]->str);
    } else {
        answer(q, "TEMP", "directory: unexpected reply from redis");
    }
    lookup_free(q);
}

static void on_lookup_timeout(evutil_socket_t fd, short what, void *arg)
{
    lookup *q = arg;
    directory *d = q->d;

    answer(q, "TIMEOUT", "directory: no answer from redis within directoryd_time_limit");
    /* The reply may still come (then it is ignored: answered is set), or
     * the connection is stuck: start over. */
    drop_connection(d, "a lookup timed out");
}

static int known_map(const char *map, size_t len)
{
    for (size_t i = 0; MAPS[i] != NULL; i++)
        if (strlen(MAPS[i]) == len && memcmp(MAPS[i], map, len) == 0)
            return 1;
    return 0;
}

lookup *lookup_start(directory *d, const char *map, size_t map_len, const char *key,
                     size_t key_len, lookup_cb *cb, void *arg)
{
    struct timeval deadline = tv_ms(d->cfg->directoryd_time_limit);
    char name[16], lower[LOOKUP_KEY_MAX + 1], reason[300];
    mr_route_candidates rc;
    const char *argv[3 + 3 + MR_ROUTE_CANDIDATES];
    size_t lens[3 + 3 + MR_ROUTE_CANDIDATES];
    int argc = 0;
    lookup *q;

    if (!known_map(map, map_len)) {
        cb(arg, "PERM", "unknown map: the directory serves domains, mailboxes, aliases, "
                        "transport");
        return NULL;
    }
    if (key_len > LOOKUP_KEY_MAX) {
        cb(arg, "NOTFOUND", "");
        return NULL;
    }
    if (!d->connected || d->ac == NULL) {
        snprintf(reason, sizeof reason, "directory: redis not connected (%s)",
                 d->last_error[0] ? d->last_error : "connecting");
        cb(arg, "TEMP", reason);
        return NULL;
    }
    memcpy(name, map, map_len);
    name[map_len] = '\0';
    for (size_t i = 0; i < key_len; i++)
        lower[i] = key[i] >= 'A' && key[i] <= 'Z' ? (char)(key[i] - 'A' + 'a') : key[i];
    lower[key_len] = '\0';

    q = calloc(1, sizeof *q);
    if (q == NULL) {
        cb(arg, "TEMP", "directory: out of memory");
        return NULL;
    }
    q->d = d;
    q->cb = cb;
    q->arg = arg;
    q->timer = evtimer_new(d->base, on_lookup_timeout, q);
    q->next = d->pending;
    if (d->pending)
        d->pending->prev = q;
    d->pending = q;

    argv[argc] = "EVAL", lens[argc++] = 4;
    argv[argc] = LOOKUP_SCRIPT, lens[argc++] = sizeof LOOKUP_SCRIPT - 1;
    argv[argc] = "0", lens[argc++] = 1;
    argv[argc] = d->cfg->redis_prefix, lens[argc++] = strlen(d->cfg->redis_prefix);
    argv[argc] = name, lens[argc++] = map_len;
    argv[argc] = lower, lens[argc++] = key_len;
    mr_route_candidates_for(lower, &rc);
    for (size_t i = 0; i < rc.count; i++) {
        if (strcmp(rc.address[i], MR_ROUTE_DEFAULT) == 0)
            continue;
        argv[argc] = rc.address[i], lens[argc++] = strlen(rc.address[i]);
    }
    if (redisAsyncCommandArgv(d->ac, on_reply, q, argc, argv, lens) != REDIS_OK) {
        answer(q, "TEMP", "directory: cannot send the command to redis");
        lookup_free(q);
        return NULL;
    }
    evtimer_add(q->timer, &deadline);
    return q;
}
