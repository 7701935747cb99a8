/*
 * smtp_pool.h - SMTP transactions on a pool of threads, for the outbound
 * sender (sender.c).
 *
 * Why threads in an event-loop worker: libcurl (7.88) waits for the
 * relay's answer to the end of DATA in a blocking loop, even under its
 * multi interface, so on the loop every mail would stall the whole worker
 * for as long as the relay takes to say 250 (measured: bench/outbound).
 * Here each thread owns one curl handle, hence one connection to the
 * relay, kept open between mails (unless smtp_reuse_connections = no);
 * there are smtp_concurrency threads. The loop hands a task over and gets
 * it back, finished, through a pipe it watches; a task's job is touched
 * only by the loop.
 */
#ifndef WORKERS_SMTP_POOL_H
#define WORKERS_SMTP_POOL_H

#include <stddef.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "mailrobot/config.h"
#include "mailrobot/err.h"

#define SMTP_REPLY_MAX 240

typedef struct smtp_task {
    void *owner;                      /* the loop's (a job); NULL: abandoned */
    /* In: set by the loop, read by the thread. */
    const unsigned char *message;     /* RFC 5322, CRLF */
    size_t message_len;
    char *signature;                  /* sent in front of message (DKIM), or NULL */
    size_t signature_len;
    const char *mail_from;            /* "" = <> */
    struct curl_slist *rcpts;         /* "<address>" each */
    /* Out: set by the thread. */
    int curl_code;
    long smtp_status;                 /* the relay's last reply code */
    char reply[SMTP_REPLY_MAX];       /* its last 4xx/5xx reply line */
    char curl_error[CURL_ERROR_SIZE];
    /* The thread's. */
    size_t offset;
    struct smtp_task *next;
} smtp_task;

typedef struct smtp_pool smtp_pool;

/* Starts cfg->smtp_concurrency threads sending to url (the relay with the
 * EHLO name as path); done() runs on base's loop for every finished task
 * that has an owner. Returns NULL with err on failure. */
smtp_pool *smtp_pool_new(const mr_config *cfg, const char *url, struct event_base *base,
                         void (*done)(smtp_task *task, void *arg), void *arg, mr_err *err);

/* Hands a task to the threads (at most smtp_concurrency should be out). */
void smtp_pool_submit(smtp_pool *p, smtp_task *task);

/* Aborts transactions in progress (curl's progress callback) and joins the
 * threads. Finished tasks are not handed back any more. */
void smtp_pool_stop(smtp_pool *p);

/* Stops the pool if needed; frees it and every task still in it. */
void smtp_pool_free(smtp_pool *p);

void smtp_task_free(smtp_task *task);

#endif
