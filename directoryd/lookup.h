/*
 * lookup.h - the four socketmap maps of the directory (docs/directory-layout.md),
 * answered from Redis with hiredis' async API on the daemon's libevent loop.
 *
 *   domains    a domain         OK <domain> if hosted
 *   mailboxes  an address       OK <domain>/<local>/ (account), OK <address>
 *              or @domain       (routes to a robot)
 *   aliases    an address       OK <targets,...>: the alias's (also for
 *              or @domain       local+ext@domain), else the domain's catch-all
 *                               unless the address is an account or a robot's
 *   transport  an address       OK mailrobot: (routes to a robot)
 *
 * Postfix asks a socketmap for the full address only, so the steps of the
 * worker's router (exact, without +extension, @domain) are made here.
 *
 * Every answer is one EVAL of one Lua script, so it reads one consistent
 * state of the directory in one round trip. Redis unreachable, slow (over
 * directoryd_time_limit) or failing: TEMP, never NOTFOUND.
 */
#ifndef DIRECTORYD_LOOKUP_H
#define DIRECTORYD_LOOKUP_H

#include <stddef.h>

#include <event2/event.h>

#include "mailrobot/config.h"
#include "mailrobot/err.h"
#include "mailrobot/log.h"

/* Keys longer than this are no address: NOTFOUND without asking Redis. */
#define LOOKUP_KEY_MAX 500

typedef struct directory directory;
typedef struct lookup lookup;

/* The answer of one lookup: status "OK", "NOTFOUND", "TEMP" or "PERM" and
 * its data ("" for none). Both are valid only during the call. */
typedef void lookup_cb(void *arg, const char *status, const char *data);

/* Connects to redis_url (in the background, retried with back-off).
 * Returns NULL with the reason in err if the URL is bad. */
directory *directory_new(struct event_base *base, const mr_config *cfg, const mr_logger *log,
                         mr_err *err);
void directory_free(directory *d);

/* Starts a lookup of key in map. cb is called exactly once - possibly
 * before lookup_start returns (unknown map, bad key, Redis not connected) -
 * unless the lookup is cancelled first. Returns the lookup (for
 * lookup_cancel) or NULL if cb has already been called. */
lookup *lookup_start(directory *d, const char *map, size_t map_len, const char *key,
                     size_t key_len, lookup_cb *cb, void *arg);

/* The caller is gone: cb will not be called. */
void lookup_cancel(lookup *q);

#endif
