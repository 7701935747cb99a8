/*
 * server.c - listeners and connections of mailrobot-directoryd (server.h).
 *
 * A connection reads one socketmap request, stops reading, looks it up,
 * writes the reply and reads again once the reply has left its buffer. So
 * each connection holds at most one request (SOCKMAP_REQUEST_LIMIT) and one
 * reply, however fast a client writes or however slowly it reads. A
 * request that is not a netstring, or longer than the limit, gets a PERM
 * reply and the connection is closed: the stream cannot be trusted past
 * it. A well-formed request that is not "<name> <key>" gets PERM and the
 * connection goes on.
 *
 * At directoryd_connection_limit connections the listeners stop accepting
 * (new clients wait in the backlog) until one closes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "lookup.h"
#include "netstring.h"
#include "server.h"

#define LISTEN_BACKLOG 128

typedef struct connection {
    struct directoryd *server;
    struct bufferevent *bev;
    lookup *pending;          /* the lookup in flight, or NULL */
    int waiting;              /* a request is being answered */
    int closing;              /* close once the output is written */
    char map[32];
    char key[LOOKUP_KEY_MAX + 1];
    struct connection *next, *prev;
} connection;

struct directoryd {
    const mr_config *cfg;
    const mr_logger *log;
    struct event_base *base;
    directory *dir;
    struct evconnlistener *unix_listener, *tcp_listener;
    struct event *sigterm, *sigint;
    int listening;            /* the listeners accept */
    int64_t connections;
    connection *head;
    char reply[SOCKMAP_REPLY_LIMIT + 32];
};

static void process_input(connection *c);

/* --- connections --------------------------------------------------------------------- */

static void set_accepting(directoryd *s, int on)
{
    if (s->listening == on)
        return;
    s->listening = on;
    if (s->unix_listener)
        (on ? evconnlistener_enable : evconnlistener_disable)(s->unix_listener);
    if (s->tcp_listener)
        (on ? evconnlistener_enable : evconnlistener_disable)(s->tcp_listener);
}

static void connection_free(connection *c)
{
    directoryd *s = c->server;

    lookup_cancel(c->pending);
    bufferevent_free(c->bev);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c);
    s->connections--;
    if (s->connections < s->cfg->directoryd_connection_limit)
        set_accepting(s, 1);
}

static void send_reply(connection *c, const char *status, const char *data)
{
    directoryd *s = c->server;
    size_t n;

    if (strlen(status) + 1 + strlen(data) > SOCKMAP_REPLY_LIMIT) {
        /* A cut alias list would deliver to some targets only. */
        mr_log(s->log, MR_LOG_WARN, "answer too long", "map", c->map, "key", c->key, NULL);
        status = "TEMP";
        data = "directory: answer too long";
    }
    n = sockmap_reply_format(s->reply, sizeof s->reply, SOCKMAP_REPLY_LIMIT, status, data);
    bufferevent_write(c->bev, s->reply, n);
}

/* Bad input: answer PERM, then close (after the reply is written). */
static void refuse(connection *c, const char *why)
{
    mr_log(c->server->log, MR_LOG_WARN, "bad request", "reason", why, NULL);
    c->closing = 1;
    bufferevent_disable(c->bev, EV_READ);
    send_reply(c, "PERM", why);
}

static void on_answer(void *arg, const char *status, const char *data)
{
    connection *c = arg;

    c->pending = NULL;
    mr_log(c->server->log, MR_LOG_DEBUG, "lookup", "map", c->map, "key", c->key, "status",
           status, "data", data, NULL);
    send_reply(c, status, data);
}

/* Takes the next complete request off the input, if there is one. */
static void process_input(connection *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t len = evbuffer_get_length(in), avail, plen, consumed, nlen, klen;
    const char *payload, *name, *key;
    unsigned char *data;

    if (c->waiting || c->closing || len == 0)
        return;
    avail = len < SOCKMAP_REQUEST_LIMIT + NETSTRING_DIGITS_MAX + 2
                ? len : SOCKMAP_REQUEST_LIMIT + NETSTRING_DIGITS_MAX + 2;
    data = evbuffer_pullup(in, (ev_ssize_t)avail);
    switch (netstring_parse((const char *)data, avail, SOCKMAP_REQUEST_LIMIT, &payload, &plen,
                            &consumed)) {
    case NETSTRING_INCOMPLETE:
        return;
    case NETSTRING_BAD:
        refuse(c, "not a netstring");
        return;
    case NETSTRING_TOO_LONG:
        refuse(c, "request too long");
        return;
    case NETSTRING_OK:
        break;
    }
    if (sockmap_request_split(payload, plen, &name, &nlen, &key, &klen) < 0
        || nlen >= sizeof c->map) {
        evbuffer_drain(in, consumed);
        mr_log(c->server->log, MR_LOG_WARN, "bad request", "reason",
               "not \"<name> <key>\"", NULL);
        c->waiting = 1;
        snprintf(c->map, sizeof c->map, "?");
        c->key[0] = '\0';
        send_reply(c, "PERM", "bad request: expected \"<map name> <key>\"");
        return;
    }
    memcpy(c->map, name, nlen);
    c->map[nlen] = '\0';
    snprintf(c->key, sizeof c->key, "%.*s", (int)klen, key);
    evbuffer_drain(in, consumed);
    c->waiting = 1;
    bufferevent_disable(c->bev, EV_READ);
    /* May answer (on_answer) before it returns. */
    c->pending = lookup_start(c->server->dir, c->map, nlen, c->key,
                              klen > LOOKUP_KEY_MAX ? LOOKUP_KEY_MAX + 1 : klen, on_answer, c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    process_input(arg);
}

/* The output has been written: read the next request. */
static void on_written(struct bufferevent *bev, void *arg)
{
    connection *c = arg;

    if (c->closing) {
        connection_free(c);
        return;
    }
    if (c->waiting && c->pending == NULL) {
        c->waiting = 0;
        bufferevent_enable(c->bev, EV_READ);
        process_input(c);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    connection *c = arg;

    if (what & BEV_EVENT_TIMEOUT)
        mr_log(c->server->log, MR_LOG_DEBUG, "idle connection closed", NULL);
    connection_free(c);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    directoryd *s = arg;
    struct timeval idle = {SOCKMAP_IDLE_LIMIT_S, 0};
    connection *c = calloc(1, sizeof *c);

    if (c == NULL) {
        evutil_closesocket(fd);
        return;
    }
    c->server = s;
    c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        evutil_closesocket(fd);
        free(c);
        return;
    }
    bufferevent_setcb(c->bev, on_read, on_written, on_event, c);
    /* Reading stops at a full request; the parser never needs more. */
    bufferevent_setwatermark(c->bev, EV_READ, 0,
                             SOCKMAP_REQUEST_LIMIT + NETSTRING_DIGITS_MAX + 2);
    bufferevent_set_timeouts(c->bev, &idle, &idle);
    bufferevent_enable(c->bev, EV_READ);
    c->next = s->head;
    if (s->head)
        s->head->prev = c;
    s->head = c;
    if (++s->connections >= s->cfg->directoryd_connection_limit)
        set_accepting(s, 0);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    directoryd *s = arg;
    char why[128];

    snprintf(why, sizeof why, "%s", strerror(errno));
    mr_log(s->log, MR_LOG_WARN, "accept failed", "reason", why, NULL);
}

/* --- listeners ----------------------------------------------------------------------- */

static int listen_unix(directoryd *s, mr_err *err)
{
    const char *path = s->cfg->directoryd_socket;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int fd;

    if (strlen(path) >= sizeof addr.sun_path) {
        mr_err_set(err, "directoryd_socket %s: path too long", path);
        return -1;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        mr_err_set(err, "socket: %s", strerror(errno));
        return -1;
    }
    /* A socket file that no one answers on was left by a crash; one that
     * answers belongs to a running daemon, which must not lose it. */
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) {
        close(fd);
        mr_err_set(err, "%s: another daemon is listening there", path);
        return -1;
    }
    close(fd);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    unlink(path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0
        || chmod(path, (mode_t)s->cfg->directoryd_socket_mode) < 0) {
        mr_err_set(err, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    evutil_make_socket_nonblocking(fd);
    s->unix_listener = evconnlistener_new(s->base, on_accept, s,
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                          LISTEN_BACKLOG, fd);
    if (s->unix_listener == NULL) {
        mr_err_set(err, "%s: cannot listen: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    evconnlistener_set_error_cb(s->unix_listener, on_accept_error);
    return 0;
}

static int is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)sa)->sin6_addr);
    return 0;
}

/* directoryd_listen "host:port" or "[v6]:port"; loopback only. */
static int listen_tcp(directoryd *s, char *bound, size_t boundsz, mr_err *err)
{
    const char *spec = s->cfg->directoryd_listen;
    char host[256], port[16], numeric[INET6_ADDRSTRLEN];
    const char *colon = strrchr(spec, ':');
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    size_t hlen;
    int rc;

    if (colon == NULL || colon == spec || colon[1] == '\0' || strlen(colon + 1) >= sizeof port) {
        mr_err_set(err, "directoryd_listen %s: expected host:port", spec);
        return -1;
    }
    hlen = (size_t)(colon - spec);
    if (spec[0] == '[' && hlen >= 2 && spec[hlen - 1] == ']')
        snprintf(host, sizeof host, "%.*s", (int)(hlen - 2), spec + 1);
    else
        snprintf(host, sizeof host, "%.*s", (int)hlen, spec);
    snprintf(port, sizeof port, "%s", colon + 1);
    rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        mr_err_set(err, "directoryd_listen %s: %s", spec, gai_strerror(rc));
        return -1;
    }
    if (!is_loopback(res->ai_addr)) {
        mr_err_set(err, "directoryd_listen %s: not a loopback address (the socketmap "
                   "protocol has no authentication)", spec);
        freeaddrinfo(res);
        return -1;
    }
    s->tcp_listener = evconnlistener_new_bind(s->base, on_accept, s,
                                              LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC
                                                  | LEV_OPT_REUSEABLE,
                                              LISTEN_BACKLOG, res->ai_addr,
                                              (int)res->ai_addrlen);
    freeaddrinfo(res);
    if (s->tcp_listener == NULL) {
        mr_err_set(err, "directoryd_listen %s: %s", spec, strerror(errno));
        return -1;
    }
    evconnlistener_set_error_cb(s->tcp_listener, on_accept_error);
    getsockname(evconnlistener_get_fd(s->tcp_listener), (struct sockaddr *)&ss, &sslen);
    if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, numeric, sizeof numeric);
        snprintf(bound, boundsz, "[%s]:%u", numeric,
                 ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
    } else {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, numeric, sizeof numeric);
        snprintf(bound, boundsz, "%s:%u", numeric, ntohs(((struct sockaddr_in *)&ss)->sin_port));
    }
    return 0;
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
    directoryd *s = arg;

    mr_log(s->log, MR_LOG_INFO, "stopping", "signal", sig == SIGTERM ? "TERM" : "INT", NULL);
    event_base_loopbreak(s->base);
}

directoryd *directoryd_new(const mr_config *cfg, const mr_logger *log, mr_err *err)
{
    directoryd *s = calloc(1, sizeof *s);
    char bound[128] = "";

    if (s == NULL) {
        mr_err_set(err, "out of memory");
        return NULL;
    }
    s->cfg = cfg;
    s->log = log;
    s->base = event_base_new();
    if (s->base == NULL) {
        mr_err_set(err, "cannot create the event loop");
        free(s);
        return NULL;
    }
    s->listening = 1;
    s->dir = directory_new(s->base, cfg, log, err);
    if (s->dir == NULL || listen_unix(s, err) < 0
        || (cfg->directoryd_listen[0] != '\0' && listen_tcp(s, bound, sizeof bound, err) < 0)) {
        directoryd_free(s);
        return NULL;
    }
    s->sigterm = evsignal_new(s->base, SIGTERM, on_stop_signal, s);
    s->sigint = evsignal_new(s->base, SIGINT, on_stop_signal, s);
    evsignal_add(s->sigterm, NULL);
    evsignal_add(s->sigint, NULL);
    mr_log(log, MR_LOG_INFO, "listening", "socket", cfg->directoryd_socket, "tcp",
           bound[0] ? bound : NULL, NULL);
    return s;
}

int directoryd_run(directoryd *s)
{
    event_base_dispatch(s->base);
    return 0;
}

void directoryd_free(directoryd *s)
{
    if (s == NULL)
        return;
    while (s->head != NULL)
        connection_free(s->head);
    if (s->unix_listener) {
        evconnlistener_free(s->unix_listener);
        unlink(s->cfg->directoryd_socket);
    }
    if (s->tcp_listener)
        evconnlistener_free(s->tcp_listener);
    if (s->sigterm)
        event_free(s->sigterm);
    if (s->sigint)
        event_free(s->sigint);
    directory_free(s->dir);
    event_base_free(s->base);
    free(s);
}
