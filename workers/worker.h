/*
 * worker.h - the state of one mailrobot-worker process and the interfaces
 * between its parts. One thread runs one libevent loop; every part below
 * is driven by it:
 *
 *   consumer.c   Kafka consumer: subscription, rebalances, fetching within
 *                the in-flight limit, retry-topic delays (pause + seek)
 *   partitions.c per-partition offsets in flight; stores the highest offset
 *                below which every record is finished
 *   job.c        one consumed record's life: order -> route -> dedupe ->
 *                deliver -> outcome -> finished
 *   ordering.c   one record of a key at a time (unless the robot opts out)
 *   redis.c      hiredis async on the loop; reconnects; commands time out
 *   router.c     SPEC §6 routing from Redis, robot definitions cached by
 *                version
 *   http.c       libcurl multi on the loop
 *   webhook.c    the webhook robot: request, signature, status handling
 *   exec.c       the exec robot: the /etc/aliases command in a sandbox
 *                (exec_prepare.c computes what local(8) would give it,
 *                exec_plan.c the rest of what it needs, exec_spawn.c
 *                starts it)
 *   effects.c    what exec robots ask for on stdout (and webhook
 *                robots in their answer): mail to send on the outbound
 *                topic, webhooks, state, defer, reject; and the
 *                autoreply robot
 *   sender.c     the outbound sender: mail robots send (<prefix>.outbound)
 *                delivered by SMTP to the relay (smtp_pool.c: the SMTP
 *                transactions, on threads)
 *   outcome.c    retry topics, dead letters, events
 *   metrics.c    /metrics and /healthz (libmicrohttpd, its own thread;
 *                counters are atomics)
 */
#ifndef WORKERS_WORKER_H
#define WORKERS_WORKER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>

#include "mailrobot/config.h"
#include "mailrobot/kafka.h"
#include "mailrobot/log.h"
#include "mailrobot/record.h"
#include "mailrobot/robot.h"
#include "mailrobot/strmap.h"
#include "mailrobot/topics.h"

#include "offset_ring.h"

typedef struct worker worker;
typedef struct job job;
typedef struct partition partition;
typedef struct wredis wredis;
typedef struct http_client http_client;
typedef struct metrics metrics;
typedef struct effects effects;
typedef struct sender sender;

/* --- outcome of one delivery attempt ----------------------------------------- */

typedef enum attempt_result {
    ATTEMPT_DONE,       /* delivered */
    ATTEMPT_TEMPORARY,  /* retry later */
    ATTEMPT_PERMANENT   /* dead-letter */
} attempt_result;

/* --- a record being processed ------------------------------------------------- */

typedef enum job_state {
    JOB_WAITING_KEY,     /* an earlier record of its key is in progress */
    JOB_ROUTING,         /* Redis: route and robot */
    JOB_DEDUPE,          /* Redis: delivered before? */
    JOB_WAITING_ROBOT,   /* the robot's concurrency limit is reached */
    JOB_DELIVERING,      /* the robot is working */
    JOB_MARKING,         /* Redis: remember the confirmed delivery */
    JOB_STRICT_WAIT,     /* strict order: waiting to try again in-process */
    JOB_PUBLISHING,      /* waiting for Kafka to take a retry or dead letter */
    JOB_FINISHED
} job_state;

struct job {
    worker *w;
    rd_kafka_message_t *msg;  /* owned until the job finishes */
    uint64_t part_generation; /* the assignment of its partition it belongs to */
    job_state state;
    /* From the record's headers (pointers into owned strings). */
    char id[MR_ID_SIZE];
    char *recipient, *sender, *original_recipient, *queue_id, *client_address, *helo,
         *received_at, *forced_robot, *replay, *client_hostname, *client_protocol,
         *sasl_method, *sasl_sender, *sasl_username;
    int attempt;              /* attempts made before this consumption */
    /* Outbound records (mail robots send, sender.c): the effect id; j->id
     * is then the message the mail is a consequence of, j->sender the
     * envelope sender and robot_name the robot that sent it. */
    int outbound;
    char effect_id[33];
    struct smtp_task *smtp;   /* the SMTP transaction in progress (smtp_pool.c) */
    int smtp_status;          /* the relay's last reply code */
    char source[MR_TOPIC_NAME_MAX + 48];
    /* Routing. */
    char robot_name[MR_ROBOT_NAME_MAX + 1];
    mr_robot *robot;          /* borrowed from the router's cache (refcounted) */
    char route[512];
    char extension[256];
    int spam_tagged;          /* robot "spam": "tag" and the message is spam: say so */
    int spam_skipped;         /* robot "spam": "skip" and the message is spam: done */
    /* Ordering. */
    char *order_key;          /* topic + record key */
    size_t order_key_len;
    int holds_key;
    job *next_key_waiter;     /* the next job of the same key (ordering.c) */
    job *next_robot_waiter;   /* the next job waiting for a robot slot */
    int64_t waiting_since_ms; /* when it began waiting for a robot slot */
    struct exec_run *exec;    /* exec robots: the running command (exec.c) */
    job *next_exec_waiter;    /* the next job waiting for exec_process_limit */
    int exec_ran;             /* the last attempt's command ran: */
    int exec_wait_status;     /*   its wait(2) status */
    char exec_stderr[320];    /*   the start of its stderr */
    size_t exec_stdout_dropped, exec_stderr_dropped;
    effects *effects;         /* what the robot asked for, being carried out (effects.c) */
    /* The current attempt. */
    int64_t started_ms;
    int64_t attempt_started_ms;
    int http_status;
    char error[MR_ERR_MAX];
    attempt_result result;
    char outcome_kind[16];    /* "retry", or the dead letter's error kind */
    const char *permanent_kind; /* a permanent failure's error kind (NULL: "permanent") */
    struct event *timer;      /* Redis back-off, strict-order retry */
    int redis_failures;
    job *next, *prev;         /* the worker's list of jobs */
};

/* --- the worker ---------------------------------------------------------------- */

struct worker {
    const mr_config *cfg;
    const mr_logger *log;
    struct event_base *base;
    mr_kafka_context kafka;
    char hostname[128];           /* Message-IDs of the mails robots send */
    char name[160];               /* host:pid, in events */
    char redis_prefix[128];

    /* Kafka */
    rd_kafka_t *consumer;
    mr_producer *producer;
    struct event *consumer_event; /* the consumer queue's fd is readable */
    int consumer_pipe[2];
    struct event *producer_event;
    struct event *tick;           /* periodic: poll, resume, expire */
    char inbound_topic[MR_TOPIC_NAME_MAX];
    char dead_topic[MR_TOPIC_NAME_MAX];
    char events_topic[MR_TOPIC_NAME_MAX];
    mr_topic retry_topics[MR_MAX_RETRY_DELAYS];
    size_t retry_topic_count;
    partition *partitions;        /* assigned partitions */
    uint64_t generation;          /* source of partition generations */
    int all_paused;               /* paused for the in-flight limit */

    /* Records in flight. */
    job *jobs;
    size_t in_flight;
    mr_strmap order_keys;         /* order key -> job holding it */
    mr_strmap robot_slots;        /* robot name -> deliveries in flight (as uintptr) */
    job *waiting_robot;           /* FIFO of jobs waiting for a robot slot */

    wredis *redis;
    mr_strmap robots;             /* name -> cached robot */
    long long robots_version;
    http_client *http;
    struct evp_mac_st *hmac;      /* OpenSSL's HMAC, fetched once (webhook.c) */
    struct exec_state *exec;      /* exec robots: children, global limit (exec.c) */
    char outbound_topic[MR_TOPIC_NAME_MAX];
    sender *sender;               /* NULL: smtp_relay is empty (sender.c) */
    metrics *metrics;

    struct event *signals[2];     /* SIGTERM, SIGINT */
    int stopping;                 /* SIGTERM: finish what is in flight, take nothing new */
    int64_t stop_deadline;
};

/* worker.c */
int worker_init(worker *w, const mr_config *cfg, const mr_logger *log, mr_err *err);
int worker_run(worker *w);
void worker_free(worker *w);
void worker_log_job(const job *j, mr_log_level level, const char *msg, const char *detail);

/* consumer.c */
int consumer_start(worker *w, mr_err *err);
void consumer_drain(worker *w);          /* take records while below the limit */
void consumer_tick(worker *w);           /* resume delayed partitions, poll */
void consumer_stop(worker *w);           /* pause everything (SIGTERM) */
void consumer_close(worker *w);

/* partitions.c */
struct partition {
    char topic[MR_TOPIC_NAME_MAX];
    int32_t id;
    uint64_t generation;          /* unique per assignment of this partition */
    offset_ring in_flight;        /* offsets taken as jobs, in consumption order */
    int64_t next_offset;          /* the offset the consumer will fetch next */
    int64_t stored;               /* last offset stored for commit, or -1 */
    int64_t delayed_until_ms;     /* retry topic: paused until then (0: not) */
    int held;                     /* paused (delay or in-flight limit) */
    int64_t refetch_from;         /* first record dropped while held, or -1 */
    partition *next;
};
partition *partition_find(worker *w, const char *topic, int32_t id);
partition *partition_add(worker *w, const char *topic, int32_t id);
void partition_forget(worker *w, const char *topic, int32_t id);
void partition_remove_all(worker *w);
int partition_track(partition *p, int64_t offset);
void partition_finish(worker *w, const char *topic, int32_t id, uint64_t generation,
                      int64_t offset);
void partition_store(worker *w, partition *p);
void partition_hold(worker *w, partition *p);
void partition_drop(partition *p, int64_t offset);
void partition_release(worker *w, partition *p);

/* job.c */
void job_start(worker *w, rd_kafka_message_t *msg, partition *p);
void job_key_acquired(job *j);           /* ordering: its key's turn came */
void job_slot_acquired(job *j);          /* ordering: a robot slot came free */
void job_routed(job *j, const char *failure_kind); /* router: NULL, "no_route", "undefined" */
void job_redis_trouble(job *j, const char *error); /* hold the job, retry the step */
void job_attempt_finished(job *j);       /* a robot calls this when it is done */
void job_published(job *j, const char *error);  /* Kafka took (or refused) a retry/dead record */
void job_free(job *j);
const char *job_header(const job *j, const char *name);

/* ordering.c */
int ordering_acquire(worker *w, job *j);    /* 1: go; 0: queued behind another */
void ordering_release(worker *w, job *j);   /* starts the next waiting job */
int robot_slot_acquire(worker *w, job *j);  /* 1: go; 0: queued; -1: backlog full */
void robot_slot_release(worker *w, job *j);

/* redis.c */
typedef void wredis_cb(void *arg, redisReply *reply, const char *error);
wredis *wredis_new(worker *w, mr_err *err);
/* Sends a command (argv form); cb runs once with the reply or an error
 * (connection down, timeout). */
void wredis_command(wredis *r, wredis_cb *cb, void *arg, int argc, const char **argv,
                    const size_t *lens);
int wredis_connected(const wredis *r);
void wredis_free(wredis *r);

/* router.c */
void router_route(job *j);               /* -> job_routed() */
void router_robot_release(worker *w, mr_robot *robot);
void router_free(worker *w);

/* http.c */
typedef struct http_transfer http_transfer;
struct http_transfer {
    void *easy;                                   /* CURL *, set up by the caller */
    void (*done)(http_transfer *t, int curl_code); /* called once, from the loop */
};
http_client *http_client_new(worker *w, mr_err *err);
void http_start(http_client *h, http_transfer *t);
void http_client_free(http_client *h);

/* sender.c */
int sender_init(worker *w, mr_err *err);
void sender_deliver(job *j);             /* -> job_attempt_finished() */
void sender_abandon(job *j);
void sender_stop(worker *w);             /* aborts and joins the SMTP threads */
void sender_free(worker *w);
attempt_result sender_classify(int curl_code, long smtp_status);

/* webhook.c */
void webhook_deliver(job *j);            /* -> job_attempt_finished() */
struct curl_sockaddr;
/* CURLOPT_OPENSOCKETFUNCTION's work for every request a robot causes: a
 * socket, unless the address is not public (private, loopback,
 * link-local, ...) and allow_private is 0: then CURL_SOCKET_BAD, and the
 * address in refused. */
int webhook_guarded_socket(int allow_private, char *refused, size_t refused_size,
                           const struct curl_sockaddr *addr);
attempt_result webhook_classify_curl(int curl_code);
attempt_result webhook_classify_status(long http_status);

/* exec.c */
typedef struct exec_state exec_state;
int exec_init(worker *w, mr_err *err);   /* SIGCHLD handling, the global limit */
void exec_deliver(job *j);               /* -> job_attempt_finished() */
void exec_abandon(job *j);               /* job_free: kill its command, leave the queue */
void exec_free(worker *w);

/* effects.c: carries out a robot's output (reply or actions mode), then
 * sets j->result and calls job_attempt_finished(). */
void effects_run_reply(job *j, const unsigned char *output, size_t len);
void effects_run_actions(job *j, const unsigned char *output, size_t len);
void effects_run_autoreply(job *j);      /* the autoreply robot (RFC 3834) */
void effects_run_forward(job *j);        /* the forward robot (loops, SRS) */
void effects_free(job *j);
void effects_published(job *j, const char *error);  /* Kafka took (or refused) a mail */

/* outcome.c */
void outcome_retry_or_dead(job *j);      /* -> job_published() */
void outcome_postpone(job *j);           /* backlog full: first retry topic, same attempt */
void outcome_publish(job *j);            /* (again) -> job_published() */
void outcome_dead(job *j, const char *kind);
void outcome_event(worker *w, const job *j, const char *type, const char *extra_key,
                   const char *extra_value);
void outcome_delivered(void *opaque, const char *error);  /* the producer's callback */
/* "exit 65", "signal 9": mr.exit_status. */
const char *exec_status_text(int wait_status, char *out, size_t outsz);
/* Publishes a record the job's robot produced (effects.c); Kafka's answer
 * goes to effects_published(). */
int outcome_send_effect(job *j, const char *topic, const char *key, const void *value,
                        size_t len, const mr_header *headers, size_t n, mr_err *err);

/* metrics.c */
metrics *metrics_start(worker *w, mr_err *err);
void metrics_stop(metrics *m);
void metrics_count(worker *w, const char *what, const char *robot);
void metrics_observe_latency(worker *w, double seconds);
void metrics_set_in_flight(worker *w, size_t n);
void metrics_set_lag(worker *w, int64_t lag);
void metrics_heartbeat(worker *w);

#endif
