/*
 * server.h - mailrobot-directoryd's listeners and connections: socketmap
 * requests in, lookups (lookup.h) out, on one libevent loop.
 */
#ifndef DIRECTORYD_SERVER_H
#define DIRECTORYD_SERVER_H

#include <signal.h>

#include "mailrobot/config.h"
#include "mailrobot/err.h"
#include "mailrobot/log.h"

/* Postfix's socketmap client reads replies of at most 100000 bytes
 * (socketmap_max_reply_size); requests are a map name and an address. */
#define SOCKMAP_REQUEST_LIMIT 1024
#define SOCKMAP_REPLY_LIMIT 65536
/* A connection that sends nothing for this long is closed. Postfix closes
 * its own idle socketmap connections after 10 s, so this only frees
 * connections of clients that went quiet. */
#define SOCKMAP_IDLE_LIMIT_S 300

typedef struct directoryd directoryd;

/* Binds directoryd_socket (and directoryd_listen) and connects to Redis in
 * the background. Returns NULL with the reason in err. */
directoryd *directoryd_new(const mr_config *cfg, const mr_logger *log, mr_err *err);

/* Serves until SIGTERM or SIGINT. Returns 0. */
int directoryd_run(directoryd *s);

/* Closes every connection, removes the socket file. */
void directoryd_free(directoryd *s);

#endif
