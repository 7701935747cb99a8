/*
 * smtp_pool.c - SMTP transactions on a pool of threads (smtp_pool.h).
 *
 * The loop and the threads share two lists under one mutex: tasks to do
 * (the threads wait on a condition variable) and tasks done (the loop is
 * woken by a byte on a pipe). Everything else is the threads' own: each
 * has one curl easy handle, set up once, whose connection to the relay
 * curl keeps between transactions. Signals are blocked in the threads, so
 * that SIGTERM and SIGCHLD reach the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "smtp_pool.h"

#define THREAD_STACK_BYTES (512 * 1024)

struct smtp_pool {
    const mr_config *cfg;
    char *url;
    pthread_t *threads;
    size_t thread_count;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    smtp_task *todo, **todo_tail;
    smtp_task *done, **done_tail;
    atomic_int stopping;
    int notify[2];                /* done -> loop */
    struct event *notify_event;
    void (*on_done)(smtp_task *task, void *arg);
    void *arg;
};

/* --- the threads ------------------------------------------------------------------- */

/* curl reads the message: the DKIM signature (if any), then the mail. */
static size_t read_message(char *buf, size_t size, size_t n, void *arg)
{
    smtp_task *t = arg;
    size_t room = size * n, total = t->signature_len + t->message_len, done = 0;

    while (done < room && t->offset < total) {
        const char *from;
        size_t avail;

        if (t->offset < t->signature_len) {
            from = t->signature + t->offset;
            avail = t->signature_len - t->offset;
        } else {
            from = (const char *)t->message + (t->offset - t->signature_len);
            avail = total - t->offset;
        }
        if (avail > room - done)
            avail = room - done;
        memcpy(buf + done, from, avail);
        done += avail;
        t->offset += avail;
    }
    return done;
}

/* Keeps the relay's last failure reply (4xx, 5xx): verbose mode hands
 * every line here, and only what the relay said is looked at, never what
 * we sent (e.g. AUTH). A later "221 Bye" to curl's QUIT does not count. */
static int watch_replies(CURL *easy, curl_infotype type, char *data, size_t len, void *arg)
{
    smtp_task *t = arg;
    size_t n = 0;

    (void)easy;
    if (type != CURLINFO_HEADER_IN || len == 0 || (data[0] != '4' && data[0] != '5'))
        return 0;
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    for (size_t i = 0; i < len && n + 1 < sizeof t->reply; i++)
        t->reply[n++] = (unsigned char)data[i] < 0x20 || data[i] == 0x7f ? '?' : data[i];
    t->reply[n] = '\0';
    return 0;
}

/* Non-zero aborts the transaction: the pool is stopping. */
static int check_stop(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                      curl_off_t ulnow)
{
    smtp_pool *p = arg;

    return atomic_load(&p->stopping);
}

static void set_tls(CURL *easy, const mr_config *cfg)
{
    static const long starttls[] = {CURLUSESSL_ALL, CURLUSESSL_TRY, CURLUSESSL_NONE};

    if (strncmp(cfg->smtp_relay, "smtp://", 7) == 0)
        curl_easy_setopt(easy, CURLOPT_USE_SSL, starttls[cfg->smtp_starttls]);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, cfg->smtp_tls_verify ? 1L : 0L);
    curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, cfg->smtp_tls_verify ? 2L : 0L);
    if (cfg->smtp_ca_file[0])
        curl_easy_setopt(easy, CURLOPT_CAINFO, cfg->smtp_ca_file);
}

static void set_auth(CURL *easy, const mr_config *cfg)
{
    static const char *const mechanisms[] = {"AUTH=*", "AUTH=PLAIN", "AUTH=LOGIN"};

    if (cfg->smtp_username[0] == '\0')
        return;
    curl_easy_setopt(easy, CURLOPT_USERNAME, cfg->smtp_username);
    curl_easy_setopt(easy, CURLOPT_PASSWORD, cfg->smtp_password);
    curl_easy_setopt(easy, CURLOPT_LOGIN_OPTIONS, mechanisms[cfg->smtp_auth]);
}

/* What stays the same for every transaction of a thread. */
static CURL *easy_new(smtp_pool *p)
{
    const mr_config *cfg = p->cfg;
    CURL *easy = curl_easy_init();

    if (easy == NULL)
        return NULL;
    curl_easy_setopt(easy, CURLOPT_URL, p->url);
    curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(easy, CURLOPT_READFUNCTION, read_message);
    curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)cfg->smtp_timeout);
    curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->smtp_connect_timeout);
    curl_easy_setopt(easy, CURLOPT_MAXAGE_CONN, (long)(cfg->smtp_idle_time / 1000));
    curl_easy_setopt(easy, CURLOPT_FORBID_REUSE, cfg->smtp_reuse_connections ? 0L : 1L);
    curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(easy, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(easy, CURLOPT_VERBOSE, 1L);
    curl_easy_setopt(easy, CURLOPT_DEBUGFUNCTION, watch_replies);
    curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, check_stop);
    curl_easy_setopt(easy, CURLOPT_XFERINFODATA, p);
    set_tls(easy, cfg);
    set_auth(easy, cfg);
    return easy;
}

static void perform(CURL *easy, smtp_task *t)
{
    if (easy == NULL) {
        t->curl_code = CURLE_OUT_OF_MEMORY;
        return;
    }
    t->offset = 0;
    curl_easy_setopt(easy, CURLOPT_MAIL_FROM, t->mail_from);   /* "" -> MAIL FROM:<> */
    curl_easy_setopt(easy, CURLOPT_MAIL_RCPT, t->rcpts);
    curl_easy_setopt(easy, CURLOPT_READDATA, t);
    curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE,
                     (curl_off_t)(t->signature_len + t->message_len));
    curl_easy_setopt(easy, CURLOPT_DEBUGDATA, t);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->curl_error);
    t->curl_code = curl_easy_perform(easy);
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &t->smtp_status);
    curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
}

static smtp_task *next_task(smtp_pool *p)
{
    smtp_task *t;

    pthread_mutex_lock(&p->lock);
    while (p->todo == NULL && !atomic_load(&p->stopping))
        pthread_cond_wait(&p->wake, &p->lock);
    t = atomic_load(&p->stopping) ? NULL : p->todo;
    if (t != NULL) {
        p->todo = t->next;
        if (p->todo == NULL)
            p->todo_tail = &p->todo;
    }
    pthread_mutex_unlock(&p->lock);
    return t;
}

static void hand_back(smtp_pool *p, smtp_task *t)
{
    t->next = NULL;
    pthread_mutex_lock(&p->lock);
    *p->done_tail = t;
    p->done_tail = &t->next;
    pthread_mutex_unlock(&p->lock);
    /* Full pipe: the loop has a wake-up pending and takes every task then. */
    while (write(p->notify[1], "", 1) < 0 && errno == EINTR)
        ;
}

static void *thread_main(void *arg)
{
    smtp_pool *p = arg;
    CURL *easy = easy_new(p);
    smtp_task *t;

    while ((t = next_task(p)) != NULL) {
        perform(easy, t);
        hand_back(p, t);
    }
    curl_easy_cleanup(easy);
    return NULL;
}

/* --- the loop's side ---------------------------------------------------------------- */

static smtp_task *take_done(smtp_pool *p)
{
    smtp_task *list;

    pthread_mutex_lock(&p->lock);
    list = p->done;
    p->done = NULL;
    p->done_tail = &p->done;
    pthread_mutex_unlock(&p->lock);
    return list;
}

static void on_notify(evutil_socket_t fd, short what, void *arg)
{
    smtp_pool *p = arg;
    char drain[256];
    smtp_task *t, *next;

    while (read(fd, drain, sizeof drain) > 0)
        ;
    for (t = take_done(p); t != NULL; t = next) {
        next = t->next;
        t->next = NULL;
        if (t->owner == NULL)
            smtp_task_free(t);
        else
            p->on_done(t, p->arg);
    }
}

static int start_threads(smtp_pool *p, mr_err *err)
{
    pthread_attr_t attr;
    sigset_t all, old;
    int rc = 0;

    sigfillset(&all);
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, THREAD_STACK_BYTES);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (; p->thread_count < (size_t)p->cfg->smtp_concurrency && rc == 0; p->thread_count++)
        if ((rc = pthread_create(&p->threads[p->thread_count], &attr, thread_main, p)) != 0)
            break;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return mr_err_set(err, "cannot start the SMTP threads (%zu of %lld): %s",
                          p->thread_count, (long long)p->cfg->smtp_concurrency, strerror(rc));
    return 0;
}

smtp_pool *smtp_pool_new(const mr_config *cfg, const char *url, struct event_base *base,
                         void (*done)(smtp_task *task, void *arg), void *arg, mr_err *err)
{
    smtp_pool *p = calloc(1, sizeof *p);

    if (p == NULL || (p->url = strdup(url)) == NULL
        || (p->threads = calloc((size_t)cfg->smtp_concurrency, sizeof *p->threads)) == NULL) {
        if (p)
            free(p->url);
        free(p);
        mr_err_set(err, "out of memory");
        return NULL;
    }
    p->cfg = cfg;
    p->on_done = done;
    p->arg = arg;
    p->todo_tail = &p->todo;
    p->done_tail = &p->done;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    p->notify[0] = p->notify[1] = -1;
    if (pipe2(p->notify, O_NONBLOCK | O_CLOEXEC) < 0
        || (p->notify_event = event_new(base, p->notify[0], EV_READ | EV_PERSIST, on_notify,
                                        p)) == NULL) {
        mr_err_set(err, "cannot set up the SMTP threads' pipe: %s", strerror(errno));
        smtp_pool_free(p);
        return NULL;
    }
    event_add(p->notify_event, NULL);
    if (start_threads(p, err) < 0) {
        smtp_pool_free(p);
        return NULL;
    }
    return p;
}

void smtp_pool_submit(smtp_pool *p, smtp_task *task)
{
    task->next = NULL;
    pthread_mutex_lock(&p->lock);
    *p->todo_tail = task;
    p->todo_tail = &task->next;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
}

void smtp_pool_stop(smtp_pool *p)
{
    if (p == NULL || p->thread_count == 0)
        return;
    pthread_mutex_lock(&p->lock);
    atomic_store(&p->stopping, 1);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->lock);
    for (size_t i = 0; i < p->thread_count; i++)
        pthread_join(p->threads[i], NULL);
    p->thread_count = 0;
    if (p->notify_event)
        event_del(p->notify_event);
}

static void free_list(smtp_task *t)
{
    while (t != NULL) {
        smtp_task *next = t->next;

        smtp_task_free(t);
        t = next;
    }
}

void smtp_pool_free(smtp_pool *p)
{
    if (p == NULL)
        return;
    smtp_pool_stop(p);
    free_list(p->todo);
    free_list(p->done);
    if (p->notify_event)
        event_free(p->notify_event);
    for (int i = 0; i < 2; i++)
        if (p->notify[i] >= 0)
            close(p->notify[i]);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->lock);
    free(p->threads);
    free(p->url);
    free(p);
}

void smtp_task_free(smtp_task *task)
{
    if (task == NULL)
        return;
    curl_slist_free_all(task->rcpts);
    free(task->signature);
    free(task);
}
