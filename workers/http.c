/*
 * http.c - libcurl's multi interface on the worker's libevent loop: many
 * transfers in flight on one thread, connections kept and reused across
 * deliveries (curl's connection cache, bounded by CURLMOPT_MAXCONNECTS).
 *
 * The glue is curl's socket API: curl says which sockets to watch
 * (socket_cb) and when to call it back (timer_cb); libevent tells it when
 * they are ready (curl_multi_socket_action); finished transfers are handed
 * to the callback stored in each easy handle's CURLOPT_PRIVATE.
 */
#include <stdlib.h>

#include <curl/curl.h>

#include "worker.h"

#define MAX_CACHED_CONNECTIONS 256

struct http_client {
    worker *w;
    CURLM *multi;
    struct event *timer;
};

typedef struct watched_socket {
    struct event *ev;
} watched_socket;

static void check_finished(http_client *h)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
        http_transfer *t = NULL;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        curl_multi_remove_handle(h->multi, msg->easy_handle);
        t->done(t, msg->data.result);
    }
}

static void on_socket_ready(evutil_socket_t fd, short what, void *arg)
{
    http_client *h = arg;
    int running;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);

    curl_multi_socket_action(h->multi, fd, flags, &running);
    check_finished(h);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    http_client *h = arg;
    int running;

    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_finished(h);
}

static int socket_cb(CURL *easy, curl_socket_t s, int action, void *userp, void *socketp)
{
    http_client *h = userp;
    watched_socket *ws = socketp;
    short kind;

    if (action == CURL_POLL_REMOVE) {
        if (ws != NULL) {
            event_free(ws->ev);
            free(ws);
            curl_multi_assign(h->multi, s, NULL);
        }
        return 0;
    }
    kind = (short)((action & CURL_POLL_IN ? EV_READ : 0) | (action & CURL_POLL_OUT ? EV_WRITE : 0)
                   | EV_PERSIST);
    if (ws == NULL) {
        ws = calloc(1, sizeof *ws);
        if (ws == NULL)
            return -1;
        curl_multi_assign(h->multi, s, ws);
    } else {
        event_free(ws->ev);
    }
    ws->ev = event_new(h->w->base, s, kind, on_socket_ready, h);
    event_add(ws->ev, NULL);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    http_client *h = userp;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};

    if (timeout_ms < 0)
        evtimer_del(h->timer);
    else
        evtimer_add(h->timer, &tv);
    return 0;
}

http_client *http_client_new(worker *w, mr_err *err)
{
    http_client *h = calloc(1, sizeof *h);

    if (h == NULL || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(h);
        mr_err_set(err, "cannot initialise libcurl");
        return NULL;
    }
    h->w = w;
    h->multi = curl_multi_init();
    h->timer = evtimer_new(w->base, on_timer, h);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)MAX_CACHED_CONNECTIONS);
    return h;
}

void http_start(http_client *h, http_transfer *t)
{
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, t);
    if (curl_multi_add_handle(h->multi, t->easy) != CURLM_OK)
        t->done(t, CURLE_FAILED_INIT);
}

void http_client_free(http_client *h)
{
    if (h == NULL)
        return;
    curl_multi_cleanup(h->multi);
    event_free(h->timer);
    free(h);
    curl_global_cleanup();
}
