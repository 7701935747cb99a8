/*
 * config.h - the mailrobot configuration: one file of `key = value` lines,
 * every key overridable by an environment variable (SPEC §5).
 *
 * One table of keys (mr_config_keys()) drives parsing, validation,
 * environment overrides and docs/configuration.md (`mailrobotctl config
 * doc` prints it). Loading applies, in order: built-in defaults, the file,
 * then the environment (MAILROBOT_<KEY IN UPPER CASE>). Every error names
 * where the bad value came from: "FILE:LINE: key 'x': ..." or
 * "environment MAILROBOT_X: ...". Unknown keys are errors, in the file and
 * in the environment, so a typo never silently falls back to a default.
 *
 * Kafka client settings pass through unchanged: `kafka.<librdkafka
 * property> = value` in the file, or MAILROBOT_KAFKA__<PROPERTY> in the
 * environment with dots written as single underscores
 * (MAILROBOT_KAFKA__SASL_PASSWORD sets kafka.sasl.password). They are
 * checked by librdkafka when a client is created (see kafka.h), and their
 * errors name the line they came from.
 *
 * A loaded mr_config is read-only for the life of the process; it is the
 * only global-ish state a mailrobot program has, and it is passed
 * explicitly. Not thread-safe to load; safe to read from any thread.
 */
#ifndef MAILROBOT_CONFIG_H
#define MAILROBOT_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "mailrobot/err.h"
#include "mailrobot/log.h"

#define MR_CONFIG_DEFAULT_PATH "/etc/mailrobot/mailrobot.conf"
#define MR_CONFIG_PATH_ENV "MAILROBOT_CONFIG"
#define MR_CONFIG_ENV_PREFIX "MAILROBOT_"
#define MR_CONFIG_KAFKA_ENV_PREFIX "MAILROBOT_KAFKA__"
#define MR_CONFIG_LINE_LIMIT 4096
#define MR_MAX_RETRY_DELAYS 16

/* How the ingest keys inbound records, i.e. which order Kafka keeps. */
typedef enum mr_partition_by {
    MR_PARTITION_THREAD = 0,    /* recipient + conversation root Message-ID */
    MR_PARTITION_RECIPIENT = 1, /* recipient: strict order per address */
    MR_PARTITION_NONE = 2       /* mr.id: maximum spread */
} mr_partition_by;

/* A `kafka.<property> = value` setting passed through to librdkafka. */
typedef struct mr_kafka_setting {
    char *name;   /* the librdkafka property, without "kafka." */
    char *value;
    char *origin; /* "FILE:LINE" or "environment NAME", for error messages */
} mr_kafka_setting;

typedef struct mr_duration_list {
    int64_t ms[MR_MAX_RETRY_DELAYS];
    size_t count;
} mr_duration_list;

typedef struct mr_config {
    char *kafka_brokers;
    char *topic_prefix;
    char *redis_url;
    uint64_t max_message_bytes;
    int partition_by;           /* mr_partition_by */
    int64_t ingest_time_limit;  /* ms */
    char *ingestd_socket;       /* "" = no daemon, always publish directly */
    int64_t ingestd_socket_mode;
    int64_t ingestd_connection_limit;
    uint64_t ingestd_memory_limit;
    char *directoryd_socket;
    int64_t directoryd_socket_mode;
    char *directoryd_listen;    /* "" = no TCP listener */
    int64_t directoryd_connection_limit;
    int64_t directoryd_time_limit; /* ms */
    int64_t topic_partitions;
    int64_t topic_replication_factor; /* -1: the broker's default */
    int64_t topic_retention;    /* ms */
    mr_duration_list retry_delays;
    char *redis_prefix;
    int64_t redis_time_limit;   /* ms */
    char *worker_group;
    int64_t worker_in_flight_limit;
    int64_t worker_robot_concurrency;
    int64_t worker_robot_backlog;
    int64_t worker_robot_wait_limit; /* ms */
    char *worker_http_listen;
    int64_t worker_drain_time_limit; /* ms */
    int64_t dedupe_ttl;         /* ms */
    int64_t webhook_timeout;    /* ms */
    int64_t webhook_connect_timeout; /* ms */
    int webhook_allow_private;  /* 0 no, 1 yes */
    uint64_t webhook_response_limit;
    char *exec_user;
    char *exec_directory;
    int64_t exec_time_limit;    /* ms */
    int64_t exec_process_limit;
    int64_t exec_cpu_seconds, exec_memory_mb, exec_files, exec_processes, exec_file_size_mb,
            exec_output_kb;
    char *exec_export_environment;
    char *exec_bwrap;
    char *smtp_relay;           /* "" = this worker does not send */
    int smtp_starttls;          /* 0 required, 1 optional, 2 no */
    int smtp_tls_verify;        /* 0 no, 1 yes */
    char *smtp_ca_file;
    char *smtp_username;
    char *smtp_password;
    int smtp_auth;              /* 0 any, 1 plain, 2 login */
    char *smtp_helo;
    int64_t smtp_timeout;       /* ms */
    int64_t smtp_connect_timeout; /* ms */
    int64_t smtp_concurrency;
    int64_t smtp_rate_limit;    /* messages per second, 0 = none */
    int smtp_reuse_connections; /* 0 no, 1 yes */
    int64_t smtp_idle_time;     /* ms */
    char *dkim_keys;
    char *srs_domain;
    char *srs_secret;
    int64_t directory_reset_ttl;    /* ms */
    int64_t directory_password_min;
    uint64_t directory_backup_limit;
    char *admind_listen;
    char *admind_token_file;
    char *admind_tls_cert;      /* "" = plain HTTP */
    char *admind_tls_key;
    uint64_t admind_body_limit;
    int64_t admind_connection_limit;
    int64_t admind_time_limit;  /* ms */
    int log_level;              /* mr_log_level */
    char *log_file;             /* "" = stderr (daemons) / nowhere (ingest) */

    mr_kafka_setting *kafka;    /* pass-through settings, in file order */
    size_t kafka_count;

    char *path;                 /* the file that was read, or NULL */
} mr_config;

/* Value types of configuration keys. */
typedef enum mr_config_type {
    MR_CONFIG_STRING,
    MR_CONFIG_SIZE,
    MR_CONFIG_DURATION,
    MR_CONFIG_INT,
    MR_CONFIG_ENUM,
    MR_CONFIG_DURATION_LIST,
    MR_CONFIG_MODE              /* file permissions, octal */
} mr_config_type;

/* One row of the table of keys. */
typedef struct mr_config_key {
    const char *name;
    mr_config_type type;
    size_t offset;               /* offsetof(mr_config, field) */
    const char *default_value;   /* as it would be written in the file */
    int64_t min, max;            /* bounds for sizes, durations, ints */
    const char *const *choices;  /* NULL-terminated, for enums */
    const char *description;     /* one paragraph of Markdown */
} mr_config_key;

/* The table of keys, ending with a row whose name is NULL. */
const mr_config_key *mr_config_keys(void);

/* Loads the configuration. path: the file to read; if NULL, the file named
 * by MAILROBOT_CONFIG in envp, else MR_CONFIG_DEFAULT_PATH, which may be
 * absent (then only defaults and environment apply). envp: the environment
 * (pass `environ`). On failure returns -1 with the reason in err and cfg
 * freed. Free a loaded cfg with mr_config_free(). */
int mr_config_load(mr_config *cfg, const char *path, char *const *envp, mr_err *err);

/* Loads from text, as if it were the contents of a file called name
 * (used by tests and fuzzing). Applies defaults, then the text, then envp
 * (may be NULL). */
int mr_config_load_text(mr_config *cfg, const char *name, const char *text,
                        size_t len, char *const *envp, mr_err *err);

void mr_config_free(mr_config *cfg);

/* The environment variable that overrides a key: "MAILROBOT_TOPIC_PREFIX". */
void mr_config_env_name(const char *key, char *out, size_t outsz);

/* Formats the current value of a key as it would be written in the file. */
void mr_config_format_value(const mr_config *cfg, const mr_config_key *key,
                            char *out, size_t outsz);

/* Derived limits: the largest Kafka record a mail of max_message_bytes
 * becomes (message + headers + batch framing + compression worst case).
 * Used for the producer's message.max.bytes and the topics'
 * max.message.bytes. */
uint64_t mr_config_record_limit(const mr_config *cfg);

#endif
