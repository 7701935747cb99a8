/*
 * config.c - loading and validating the mailrobot configuration (config.h).
 *
 * The table below is the single source of truth for every key: its type,
 * default, bounds and documentation. Parsing a value is one setter per
 * type that writes through the row's offset, so a new key is one row.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailrobot/environ.h"
#include "mailrobot/config.h"
#include "mailrobot/units.h"

static const char *const partition_by_choices[] = {"thread", "recipient", "none", NULL};
static const char *const log_level_choices[] = {"debug", "info", "warn", "error", "off", NULL};
static const char *const bool_choices[] = {"no", "yes", NULL};
static const char *const starttls_choices[] = {"required", "optional", "no", NULL};
static const char *const smtp_auth_choices[] = {"any", "plain", "login", NULL};

#define KEY(name_, type_, field_, def_, min_, max_, choices_, desc_) \
    {name_, type_, offsetof(mr_config, field_), def_, min_, max_, choices_, desc_}

static const mr_config_key config_keys[] = {
    KEY("kafka_brokers", MR_CONFIG_STRING, kafka_brokers, "127.0.0.1:9092", 1, 0, NULL,
        "Kafka bootstrap servers, `host:port[,host:port...]` (librdkafka "
        "`bootstrap.servers`)."),
    KEY("topic_prefix", MR_CONFIG_STRING, topic_prefix, "mailrobot", 1, 0, NULL,
        "Prefix of every Kafka topic: `<prefix>.inbound`, `<prefix>.retry.<delay>`, "
        "`<prefix>.dead`, `<prefix>.outbound`, `<prefix>.events`, `<prefix>.audit`. "
        "Letters, digits, "
        "`.`, `_` and `-` only."),
    KEY("redis_url", MR_CONFIG_STRING, redis_url, "redis://127.0.0.1:6379/0", 1, 0, NULL,
        "Redis holding routes, robots, state and the directory: "
        "`redis://[:password@]host:port[/db]` or `unix:/path/to/socket`."),
    KEY("max_message_bytes", MR_CONFIG_SIZE, max_message_bytes, "25MiB", 1024, 512LL << 20, NULL,
        "Largest message the ingest accepts. A larger one is refused with "
        "`5.3.4 message too big` (exit 65, Postfix bounces it); the ingest never "
        "holds more than this in memory. Topics are created to fit it."),
    KEY("partition_by", MR_CONFIG_ENUM, partition_by, "thread", 0, 0, partition_by_choices,
        "Record key of inbound mail, i.e. what order Kafka keeps: `thread` = "
        "lower-cased recipient + the conversation's root Message-ID (one "
        "conversation in order, a busy address spread over all partitions); "
        "`recipient` = strict order per address; `none` = `mr.id`, maximum spread."),
    KEY("ingest_time_limit", MR_CONFIG_DURATION, ingest_time_limit, "30s", 100, 3600000, NULL,
        "Longest time the ingest waits for Kafka to acknowledge a message before it "
        "gives up with exit 75 (Postfix keeps the mail and retries). Keep it well "
        "under Postfix's `command_time_limit` for the transport (default 1000s)."),
    KEY("ingestd_socket", MR_CONFIG_STRING, ingestd_socket, "/run/mailrobot/ingestd.sock", 0, 0, NULL,
        "Unix socket of `mailrobot-ingestd`, the daemon that keeps one warm Kafka "
        "producer for all ingest processes. `mailrobot-ingest` hands each message to "
        "it and exits with its answer; if nothing listens there, it publishes by "
        "itself (`mailrobot-ingestd --direct`), which costs a Kafka connection per "
        "message. Empty: always publish directly."),
    KEY("ingestd_socket_mode", MR_CONFIG_MODE, ingestd_socket_mode, "0660", 0, 0777, NULL,
        "Permissions of the daemon's socket (octal). Only the user Postfix runs the "
        "pipe as (`user=` in master.cf) needs to connect: run the daemon as that "
        "user, or give both a group."),
    KEY("ingestd_connection_limit", MR_CONFIG_INT, ingestd_connection_limit, "512", 1, 65536, NULL,
        "Most ingest processes the daemon serves at once; more wait in the socket's "
        "backlog."),
    KEY("ingestd_memory_limit", MR_CONFIG_SIZE, ingestd_memory_limit, "256MiB", 1LL << 20, 64LL << 30, NULL,
        "Most message bytes the daemon holds at once (read, or waiting for Kafka). "
        "Beyond it, new messages wait to be read; one message is always admitted, "
        "however large."),
    KEY("directoryd_socket", MR_CONFIG_STRING, directoryd_socket, "/run/mailrobot/directoryd.sock", 1, 0,
        NULL, "Unix socket of `mailrobot-directoryd`, the Postfix socketmap server that "
        "answers from the directory in Redis (docs/postfix.md): name it in main.cf as "
        "`socketmap:unix:<path>:<map>`."),
    KEY("directoryd_socket_mode", MR_CONFIG_MODE, directoryd_socket_mode, "0660", 0, 0777, NULL,
        "Permissions of `mailrobot-directoryd`'s socket (octal). Its answers name "
        "accounts and alias targets (offsite addresses too), so only Postfix should "
        "connect: the socket gets the daemon's group; run the daemon with the group "
        "of Postfix's `mail_owner` (`postfix`)."),
    KEY("directoryd_listen", MR_CONFIG_STRING, directoryd_listen, "", 0, 0, NULL,
        "Also serve the socketmap on TCP, `host:port` (Postfix: "
        "`socketmap:inet:host:port:<map>`). Loopback addresses only: the protocol has "
        "no authentication. Empty: no TCP listener."),
    KEY("directoryd_connection_limit", MR_CONFIG_INT, directoryd_connection_limit, "256", 1, 65536,
        NULL, "Most connections `mailrobot-directoryd` serves at once (each Postfix "
        "smtpd, cleanup and trivial-rewrite process keeps one); more wait in the "
        "listen backlog."),
    KEY("directoryd_time_limit", MR_CONFIG_DURATION, directoryd_time_limit, "1s", 10, 60000, NULL,
        "Longest wait of `mailrobot-directoryd` for Redis to answer a lookup (and to "
        "connect). Without an answer in time it answers `TEMP`, which Postfix turns "
        "into a 4xx at RCPT time: never a 5xx because the directory is slow or down."),
    KEY("topic_partitions", MR_CONFIG_INT, topic_partitions, "12", 1, 100000, NULL,
        "Partitions of each topic created by `mailrobotctl kafka init`; the most "
        "worker processes that can share the inbound topic."),
    KEY("topic_replication_factor", MR_CONFIG_INT, topic_replication_factor, "-1", -1, 32, NULL,
        "Replication factor of created topics; `-1` uses the broker's "
        "`default.replication.factor`. Use 3 on a production cluster."),
    KEY("topic_retention", MR_CONFIG_DURATION, topic_retention, "7d", 60000, 3650LL * 86400000, NULL,
        "How long created topics keep records (`retention.ms`): the window "
        "that `mailrobotctl replay` can re-run and that dead letters wait to "
        "be replayed. Retry topics keep at least twice their delay."),
    KEY("retry_delays", MR_CONFIG_DURATION_LIST, retry_delays, "1m,10m,1h,6h", 1000, 7LL * 86400000, NULL,
        "Comma-separated delays of the retry topics `<prefix>.retry.<delay>`, "
        "one per attempt after the first; when they are used up the message is "
        "dead-lettered. At most 16, all different."),
    KEY("redis_prefix", MR_CONFIG_STRING, redis_prefix, "mailrobot", 1, 0, NULL,
        "Prefix of every Redis key mailrobot uses (layout: docs/redis.md), so "
        "several installations can share one Redis."),
    KEY("redis_time_limit", MR_CONFIG_DURATION, redis_time_limit, "2s", 10, 60000, NULL,
        "Longest wait for a Redis connection or command. A worker that cannot "
        "reach Redis holds its messages and tries again; it never drops them."),
    KEY("worker_group", MR_CONFIG_STRING, worker_group, "mailrobot-workers", 1, 0, NULL,
        "Kafka consumer group of the workers (`group.id`). Every worker process "
        "of one installation uses the same group; start more to scale."),
    KEY("worker_in_flight_limit", MR_CONFIG_INT, worker_in_flight_limit, "256", 1, 100000, NULL,
        "Most records a worker process holds at once (consumed and not yet "
        "finished). Consumption pauses at the limit."),
    KEY("worker_robot_concurrency", MR_CONFIG_INT, worker_robot_concurrency, "16", 1, 10000, NULL,
        "Deliveries in flight per robot per worker process, for robots whose "
        "definition does not set `concurrency`."),
    KEY("worker_robot_backlog", MR_CONFIG_INT, worker_robot_backlog, "64", 1, 100000, NULL,
        "Records one worker process holds waiting for one robot's `concurrency`. When "
        "that many wait and the oldest has waited worker_robot_wait_limit, further records "
        "for the robot are postponed to the first retry topic (no attempt is counted), so a "
        "slow robot cannot fill worker_in_flight_limit and stall other robots' mail. Robots "
        "with `\"ordered\": \"strict\"` are never postponed."),
    KEY("worker_robot_wait_limit", MR_CONFIG_DURATION, worker_robot_wait_limit, "5s", 0,
        3600000, NULL,
        "How long the oldest record waiting for a robot must have waited before the robot "
        "counts as slow and worker_robot_backlog applies. A fast robot's burst is held and "
        "drained at full speed instead of being postponed."),
    KEY("worker_http_listen", MR_CONFIG_STRING, worker_http_listen, "127.0.0.1:9464", 0, 0, NULL,
        "Address of the worker's `/metrics` (Prometheus) and `/healthz` "
        "endpoint, `host:port`; port 0 picks a free port (logged); empty turns "
        "it off."),
    KEY("worker_drain_time_limit", MR_CONFIG_DURATION, worker_drain_time_limit, "30s", 0, 3600000, NULL,
        "On SIGTERM, how long a worker waits for deliveries in flight before it "
        "stops anyway (what is unfinished is not committed and is processed "
        "again by another worker)."),
    KEY("dedupe_ttl", MR_CONFIG_DURATION, dedupe_ttl, "30d", 60000, 3650LL * 86400000, NULL,
        "How long a confirmed delivery of (message, robot) is remembered in Redis, "
        "so that a record processed again is not delivered twice."),
    KEY("webhook_timeout", MR_CONFIG_DURATION, webhook_timeout, "30s", 100, 3600000, NULL,
        "Longest time of one webhook delivery attempt, for robots whose "
        "definition does not set `timeout`. A timeout is retried."),
    KEY("webhook_connect_timeout", MR_CONFIG_DURATION, webhook_connect_timeout, "10s", 100, 600000, NULL,
        "Longest time to connect to a webhook endpoint (DNS, TCP and TLS)."),
    KEY("webhook_allow_private", MR_CONFIG_ENUM, webhook_allow_private, "no", 0, 0, bool_choices,
        "`yes` lets every webhook robot post to private, loopback and link-local "
        "addresses (by default only robots with `allow_private` may)."),
    KEY("webhook_response_limit", MR_CONFIG_SIZE, webhook_response_limit, "64KiB", 0, 16LL << 20, NULL,
        "How much of a webhook response body the worker reads (the rest is "
        "discarded); enough for error messages in events."),
    KEY("exec_user", MR_CONFIG_STRING, exec_user, "mailrobot-exec", 1, 0, NULL,
        "Unprivileged user exec robots run as, unless their definition names one. "
        "The worker must run as root to switch users; otherwise robots run as the "
        "worker's own user and naming another one is an error."),
    KEY("exec_directory", MR_CONFIG_STRING, exec_directory, "/var/lib/mailrobot/robots", 1, 0,
        NULL, "Parent of the exec robots' working directories: `<exec_directory>/<name>`, "
        "created (mode 0750, owned by the robot's user) when missing. It is also the "
        "robot's HOME."),
    KEY("exec_time_limit", MR_CONFIG_DURATION, exec_time_limit, "5m", 100, 3600000, NULL,
        "Wall-clock limit of one exec robot run, unless the robot sets `timeout`. "
        "Then the whole process group is killed and the message is retried."),
    KEY("exec_process_limit", MR_CONFIG_INT, exec_process_limit, "64", 1, 10000, NULL,
        "Exec robot commands running at once in one worker process, all robots "
        "together (each robot is also held to its `concurrency`)."),
    KEY("exec_cpu_seconds", MR_CONFIG_INT, exec_cpu_seconds, "60", 1, 86400, NULL,
        "Default RLIMIT_CPU of exec robots, in seconds."),
    KEY("exec_memory_mb", MR_CONFIG_INT, exec_memory_mb, "512", 16, 65536, NULL,
        "Default RLIMIT_AS (address space) of exec robots, in MiB."),
    KEY("exec_files", MR_CONFIG_INT, exec_files, "256", 16, 65536, NULL,
        "Default RLIMIT_NOFILE (open files) of exec robots."),
    KEY("exec_processes", MR_CONFIG_INT, exec_processes, "64", 1, 4096, NULL,
        "Default RLIMIT_NPROC of exec robots. The kernel counts every process of "
        "the user, so robots sharing a user share this."),
    KEY("exec_file_size_mb", MR_CONFIG_INT, exec_file_size_mb, "64", 1, 65536, NULL,
        "Default RLIMIT_FSIZE (largest file written) of exec robots, in MiB."),
    KEY("exec_output_kb", MR_CONFIG_INT, exec_output_kb, "64", 1, 524288, NULL,
        "Standard output and standard error kept from an exec robot, in KiB each; "
        "the rest is read and discarded (and reported). With output `reply` or "
        "`actions`, standard output may be up to max_message_bytes."),
    KEY("exec_export_environment", MR_CONFIG_STRING, exec_export_environment, "TZ LANG", 0, 0,
        NULL, "Variables of the worker's own environment passed on to exec robots, "
        "blank-separated (Postfix's export_environment). Everything else in their "
        "environment is what local(8) would set."),
    KEY("exec_bwrap", MR_CONFIG_STRING, exec_bwrap, "/usr/bin/bwrap", 1, 0, NULL,
        "The bubblewrap program, for robots with `\"sandbox\": \"bwrap\"`."),
    KEY("smtp_relay", MR_CONFIG_STRING, smtp_relay, "", 0, 0, NULL,
        "The relay that mail robots send (`<prefix>.outbound`) is delivered to: "
        "`smtp://host[:port]` (STARTTLS as `smtp_starttls` says) or "
        "`smtps://host[:port]` (TLS from the start). Empty: this worker does not "
        "send; the mail waits in Kafka for a worker that does."),
    KEY("smtp_starttls", MR_CONFIG_ENUM, smtp_starttls, "required", 0, 0, starttls_choices,
        "For an `smtp://` relay: `required` (no TLS, no mail: retried), "
        "`optional` (TLS when the relay offers STARTTLS) or `no`."),
    KEY("smtp_tls_verify", MR_CONFIG_ENUM, smtp_tls_verify, "yes", 0, 0, bool_choices,
        "Verify the relay's certificate and host name. `no` only for tests."),
    KEY("smtp_ca_file", MR_CONFIG_STRING, smtp_ca_file, "", 0, 0, NULL,
        "PEM file of the certificate authorities the relay's certificate is "
        "checked against. Empty: the system's."),
    KEY("smtp_username", MR_CONFIG_STRING, smtp_username, "", 0, 0, NULL,
        "User name for SMTP AUTH at the relay. Empty: no AUTH."),
    KEY("smtp_password", MR_CONFIG_STRING, smtp_password, "", 0, 0, NULL,
        "Password for SMTP AUTH (better set as MAILROBOT_SMTP_PASSWORD). Never "
        "logged."),
    KEY("smtp_auth", MR_CONFIG_ENUM, smtp_auth, "any", 0, 0, smtp_auth_choices,
        "AUTH mechanism: `any` (the best the relay offers), `plain` or `login`."),
    KEY("smtp_helo", MR_CONFIG_STRING, smtp_helo, "", 0, 0, NULL,
        "Name the sender gives in EHLO. Empty: the host name."),
    KEY("smtp_timeout", MR_CONFIG_DURATION, smtp_timeout, "2m", 100, 3600000, NULL,
        "Longest time of one message's SMTP transaction (connect to the 250 "
        "after DATA). A timeout is retried."),
    KEY("smtp_connect_timeout", MR_CONFIG_DURATION, smtp_connect_timeout, "30s", 100, 600000,
        NULL, "Longest time to connect to the relay (TCP, greeting, EHLO, TLS)."),
    KEY("smtp_concurrency", MR_CONFIG_INT, smtp_concurrency, "8", 1, 1000, NULL,
        "Messages one worker process sends to the relay at once (each on its "
        "own connection)."),
    KEY("smtp_rate_limit", MR_CONFIG_INT, smtp_rate_limit, "0", 0, 1000000, NULL,
        "Most messages per second one worker process sends to the relay. 0: no "
        "limit."),
    KEY("smtp_reuse_connections", MR_CONFIG_ENUM, smtp_reuse_connections, "yes", 0, 0,
        bool_choices, "Keep connections to the relay open between messages. `no` "
        "opens one per message (bench/outbound compares the two)."),
    KEY("smtp_idle_time", MR_CONFIG_DURATION, smtp_idle_time, "30s", 1000, 3600000, NULL,
        "An idle connection to the relay older than this is closed rather than "
        "reused (keep it below the relay's own idle timeout, 300 s in Postfix)."),
    KEY("dkim_keys", MR_CONFIG_STRING, dkim_keys, "", 0, 0, NULL,
        "DKIM signing keys, blank-separated `domain:selector:/path/key.pem` "
        "entries. Mail whose From domain has a key is signed before it is sent. "
        "Empty: no signing."),
    KEY("srs_domain", MR_CONFIG_STRING, srs_domain, "", 0, 0, NULL,
        "Domain of SRS envelope senders (forward robots with "
        "`\"envelope_sender\": \"srs\"`). Mail to it must reach the worker, so "
        "that bounces find their way back."),
    KEY("srs_secret", MR_CONFIG_STRING, srs_secret, "", 0, 0, NULL,
        "Secret of the SRS hashes (better set as MAILROBOT_SRS_SECRET); at least "
        "16 characters when srs_domain is set."),
    KEY("directory_reset_ttl", MR_CONFIG_DURATION, directory_reset_ttl, "1h", 1000,
        7LL * 86400000, NULL,
        "How long a password reset token (`mailrobotctl account reset-start`) stays "
        "valid; it is also invalidated by its use, a newer token or a password change "
        "(docs/accounts.md)."),
    KEY("directory_password_min", MR_CONFIG_INT, directory_password_min, "10", 8, 128, NULL,
        "Fewest characters (UTF-8 code points) of an account password; at most 1024 "
        "bytes are accepted."),
    KEY("directory_backup_limit", MR_CONFIG_SIZE, directory_backup_limit, "64MiB", 1024,
        1LL << 30, NULL,
        "Largest backup document `mailrobotctl restore` reads (and `backup` writes)."),
    KEY("admind_listen", MR_CONFIG_STRING, admind_listen, "127.0.0.1:8025", 1, 0, NULL,
        "Address of `mailrobot-admind`, the admin HTTP JSON API "
        "(schemas/admin-api.yaml), `IPv4:port`; port 0 picks a free port (logged). "
        "Without TLS keep it on loopback: the bearer token travels in clear."),
    KEY("admind_token_file", MR_CONFIG_STRING, admind_token_file, "", 0, 0, NULL,
        "File holding the API's bearer token (one line, at least 16 characters). "
        "`mailrobot-admind` refuses to start without it and warns when the file is "
        "readable by its group or others (make it mode 0600)."),
    KEY("admind_tls_cert", MR_CONFIG_STRING, admind_tls_cert, "", 0, 0, NULL,
        "PEM certificate chain of the admin API. Set with `admind_tls_key` to serve "
        "HTTPS only; empty: plain HTTP."),
    KEY("admind_tls_key", MR_CONFIG_STRING, admind_tls_key, "", 0, 0, NULL,
        "PEM private key of `admind_tls_cert`."),
    KEY("admind_body_limit", MR_CONFIG_SIZE, admind_body_limit, "1MiB", 1024, 1LL << 30, NULL,
        "Largest request body the admin API reads; a larger one is answered 413. "
        "`POST /restore` takes a whole backup: raise it (up to "
        "`directory_backup_limit`) to restore through the API a directory whose "
        "backup is larger than this."),
    KEY("admind_connection_limit", MR_CONFIG_INT, admind_connection_limit, "64", 1, 65536, NULL,
        "Most connections `mailrobot-admind` serves at once; more are refused."),
    KEY("admind_time_limit", MR_CONFIG_DURATION, admind_time_limit, "30s", 1000, 3600000, NULL,
        "An admin API connection idle (no request, no bytes of one) for this long "
        "is closed."),
    KEY("log_level", MR_CONFIG_ENUM, log_level, "info", 0, 0, log_level_choices,
        "Least severe log level written: `debug`, `info`, `warn`, `error` or `off`."),
    KEY("log_file", MR_CONFIG_STRING, log_file, "", 0, 0, NULL,
        "File that JSON log lines are appended to. Empty: standard error for "
        "daemons and `mailrobotctl`; the ingest then logs nothing, because "
        "Postfix turns its output into the delivery status."),
    {NULL, 0, 0, NULL, 0, 0, NULL, NULL},
};

const mr_config_key *mr_config_keys(void)
{
    return config_keys;
}

static const mr_config_key *find_key(const char *name)
{
    for (const mr_config_key *k = config_keys; k->name != NULL; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

void mr_config_env_name(const char *key, char *out, size_t outsz)
{
    size_t n = (size_t)snprintf(out, outsz, "%s", MR_CONFIG_ENV_PREFIX);

    for (const char *p = key; *p && n + 1 < outsz; p++)
        out[n++] = (char)toupper((unsigned char)*p);
    if (n < outsz)
        out[n] = '\0';
}

/* --- setters, one per type ------------------------------------------------ */

static int set_string(mr_config *cfg, const mr_config_key *key, const char *text, mr_err *err)
{
    char **field = (char **)((char *)cfg + key->offset);
    char *copy;

    if (key->min > 0 && text[0] == '\0')
        return mr_err_set(err, "must not be empty");
    copy = strdup(text);
    if (copy == NULL)
        return mr_err_set(err, "out of memory");
    free(*field);
    *field = copy;
    return 0;
}

static int set_size(mr_config *cfg, const mr_config_key *key, const char *text, mr_err *err)
{
    uint64_t *field = (uint64_t *)((char *)cfg + key->offset);
    uint64_t bytes;

    if (mr_parse_size(text, &bytes, err) < 0)
        return -1;
    if (bytes < (uint64_t)key->min || bytes > (uint64_t)key->max)
        return mr_err_set(err, "size %s is out of range [%" PRId64 ", %" PRId64 "] bytes",
                          text, key->min, key->max);
    *field = bytes;
    return 0;
}

static int set_duration(mr_config *cfg, const mr_config_key *key, const char *text, mr_err *err)
{
    int64_t *field = (int64_t *)((char *)cfg + key->offset);
    int64_t ms;
    char lo[32], hi[32];

    if (mr_parse_duration(text, &ms, err) < 0)
        return -1;
    if (ms < key->min || ms > key->max)
        return mr_err_set(err, "duration %s is out of range [%s, %s]", text,
                          mr_format_duration(key->min, lo, sizeof lo),
                          mr_format_duration(key->max, hi, sizeof hi));
    *field = ms;
    return 0;
}

static int set_int(mr_config *cfg, const mr_config_key *key, const char *text, mr_err *err)
{
    int64_t *field = (int64_t *)((char *)cfg + key->offset);

    return mr_parse_int(text, key->min, key->max, field, err);
}

static int set_enum(mr_config *cfg, const mr_config_key *key, const char *text, mr_err *err)
{
    int *field = (int *)((char *)cfg + key->offset);
    char allowed[256] = "";

    for (int i = 0; key->choices[i] != NULL; i++) {
        if (strcmp(text, key->choices[i]) == 0) {
            *field = i;
            return 0;
        }
        snprintf(allowed + strlen(allowed), sizeof allowed - strlen(allowed), "%s%s",
                 i ? ", " : "", key->choices[i]);
    }
    return mr_err_set(err, "bad value '%s' (one of: %s)", text, allowed);
}

static int set_duration_list(mr_config *cfg, const mr_config_key *key, const char *text,
                             mr_err *err)
{
    mr_duration_list *field = (mr_duration_list *)((char *)cfg + key->offset);
    mr_duration_list list = {.count = 0};
    char item[64];
    const char *p = text;

    while (*p) {
        size_t n = strcspn(p, ",");
        int64_t ms;

        while (n > 0 && isspace((unsigned char)*p))
            p++, n--;
        if (n == 0 || n >= sizeof item)
            return mr_err_set(err, "bad list '%s': empty or overlong item", text);
        memcpy(item, p, n);
        item[n] = '\0';
        for (size_t e = n; e > 0 && isspace((unsigned char)item[e - 1]); e--)
            item[e - 1] = '\0';
        if (list.count == MR_MAX_RETRY_DELAYS)
            return mr_err_set(err, "more than %d items", MR_MAX_RETRY_DELAYS);
        if (mr_parse_duration(item, &ms, err) < 0)
            return -1;
        if (ms < key->min || ms > key->max)
            return mr_err_set(err, "delay %s is out of range [1s, 7d]", item);
        list.ms[list.count++] = ms;
        p += n;
        if (*p == ',')
            p++;
        if (*p == '\0' && p[-1] == ',')
            return mr_err_set(err, "bad list '%s': trailing comma", text);
    }
    if (list.count == 0)
        return mr_err_set(err, "must name at least one delay");
    *field = list;
    return 0;
}

static int set_mode(mr_config *cfg, const mr_config_key *key, const char *text, mr_err *err)
{
    int64_t *field = (int64_t *)((char *)cfg + key->offset);
    char *end;
    long v = strtol(text, &end, 8);

    if (text[0] == '\0' || *end != '\0' || v < key->min || v > key->max)
        return mr_err_set(err, "bad permissions '%s': expected octal like 0660", text);
    *field = v;
    return 0;
}

static int set_value(mr_config *cfg, const mr_config_key *key, const char *text, mr_err *err)
{
    switch (key->type) {
    case MR_CONFIG_STRING:
        return set_string(cfg, key, text, err);
    case MR_CONFIG_SIZE:
        return set_size(cfg, key, text, err);
    case MR_CONFIG_DURATION:
        return set_duration(cfg, key, text, err);
    case MR_CONFIG_INT:
        return set_int(cfg, key, text, err);
    case MR_CONFIG_ENUM:
        return set_enum(cfg, key, text, err);
    case MR_CONFIG_DURATION_LIST:
        return set_duration_list(cfg, key, text, err);
    case MR_CONFIG_MODE:
        return set_mode(cfg, key, text, err);
    }
    return mr_err_set(err, "internal error: unknown key type");
}

void mr_config_format_value(const mr_config *cfg, const mr_config_key *key, char *out,
                            size_t outsz)
{
    const char *base = (const char *)cfg + key->offset;

    switch (key->type) {
    case MR_CONFIG_STRING:
        snprintf(out, outsz, "%s", *(char *const *)base ? *(char *const *)base : "");
        return;
    case MR_CONFIG_SIZE:
        snprintf(out, outsz, "%" PRIu64, *(const uint64_t *)base);
        return;
    case MR_CONFIG_DURATION:
        mr_format_duration(*(const int64_t *)base, out, outsz);
        return;
    case MR_CONFIG_INT:
        snprintf(out, outsz, "%" PRId64, *(const int64_t *)base);
        return;
    case MR_CONFIG_ENUM:
        snprintf(out, outsz, "%s", key->choices[*(const int *)base]);
        return;
    case MR_CONFIG_MODE:
        snprintf(out, outsz, "%04" PRIo64, (uint64_t)*(const int64_t *)base);
        return;
    case MR_CONFIG_DURATION_LIST: {
        const mr_duration_list *list = (const mr_duration_list *)base;
        size_t n = 0;

        out[0] = '\0';
        for (size_t i = 0; i < list->count && n < outsz; i++) {
            char item[32];

            mr_format_duration(list->ms[i], item, sizeof item);
            n += (size_t)snprintf(out + n, outsz - n, "%s%s", i ? "," : "", item);
        }
        return;
    }
    }
}

/* --- kafka.* pass-through --------------------------------------------------- */

static int add_kafka_setting(mr_config *cfg, const char *name, const char *value,
                             const char *origin, mr_err *err)
{
    mr_kafka_setting *grown;
    mr_kafka_setting *s;

    if (name[0] == '\0')
        return mr_err_set(err, "empty kafka property name");
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        if (strcmp(cfg->kafka[i].name, name) == 0) {
            /* The environment overrides the file. */
            char *copy = strdup(value);
            char *where = strdup(origin);

            if (copy == NULL || where == NULL) {
                free(copy);
                free(where);
                return mr_err_set(err, "out of memory");
            }
            free(cfg->kafka[i].value);
            free(cfg->kafka[i].origin);
            cfg->kafka[i].value = copy;
            cfg->kafka[i].origin = where;
            return 0;
        }
    }
    grown = realloc(cfg->kafka, (cfg->kafka_count + 1) * sizeof *grown);
    if (grown == NULL)
        return mr_err_set(err, "out of memory");
    cfg->kafka = grown;
    s = &cfg->kafka[cfg->kafka_count];
    s->name = strdup(name);
    s->value = strdup(value);
    s->origin = strdup(origin);
    if (s->name == NULL || s->value == NULL || s->origin == NULL) {
        free(s->name);
        free(s->value);
        free(s->origin);
        return mr_err_set(err, "out of memory");
    }
    cfg->kafka_count++;
    return 0;
}

/* --- the file --------------------------------------------------------------- */

static char *trim(char *s)
{
    char *end;

    while (isspace((unsigned char)*s))
        s++;
    end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static int valid_key_name(const char *name)
{
    if (*name == '\0')
        return 0;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '.' && *p != '-')
            return 0;
    return 1;
}

/* Parses one line (NUL-terminated, no newline). seen[] records the line
 * where each table key was set, to refuse duplicates. */
static int parse_line(mr_config *cfg, const char *name, int lineno, char *line,
                      int *seen, mr_err *err)
{
    char *text = trim(line);
    char *eq, *key, *value;
    const mr_config_key *k;

    if (*text == '\0' || *text == '#')
        return 0;
    eq = strchr(text, '=');
    if (eq == NULL)
        return mr_err_set(err, "%s:%d: expected 'key = value', got '%.60s'", name, lineno, text);
    *eq = '\0';
    key = trim(text);
    value = trim(eq + 1);
    if (!valid_key_name(key))
        return mr_err_set(err, "%s:%d: bad key name '%.60s'", name, lineno, key);
    if (strncmp(key, "kafka.", 6) == 0) {
        char origin[300];

        snprintf(origin, sizeof origin, "%s:%d", name, lineno);
        if (add_kafka_setting(cfg, key + 6, value, origin, err) < 0)
            return mr_err_prefix(err, "%s:%d: key '%s'", name, lineno, key);
        return 0;
    }
    k = find_key(key);
    if (k == NULL)
        return mr_err_set(err, "%s:%d: unknown key '%s'", name, lineno, key);
    if (seen[k - config_keys])
        return mr_err_set(err, "%s:%d: key '%s' is already set on line %d", name, lineno,
                          key, seen[k - config_keys]);
    seen[k - config_keys] = lineno;
    if (set_value(cfg, k, value, err) < 0)
        return mr_err_prefix(err, "%s:%d: key '%s'", name, lineno, key);
    return 0;
}

static int parse_text(mr_config *cfg, const char *name, const char *text, size_t len,
                      mr_err *err)
{
    int seen[sizeof config_keys / sizeof config_keys[0]] = {0};
    char line[MR_CONFIG_LINE_LIMIT + 1];
    size_t pos = 0;
    int lineno = 0;

    while (pos < len) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (text + pos)) : len - pos;

        lineno++;
        if (n > MR_CONFIG_LINE_LIMIT)
            return mr_err_set(err, "%s:%d: line longer than %d bytes", name, lineno,
                              MR_CONFIG_LINE_LIMIT);
        memcpy(line, text + pos, n);
        line[n] = '\0';
        if (memchr(line, '\0', n) != NULL)
            return mr_err_set(err, "%s:%d: NUL byte in line", name, lineno);
        if (parse_line(cfg, name, lineno, line, seen, err) < 0)
            return -1;
        pos += n + (nl != NULL);
    }
    return 0;
}

/* --- the environment -------------------------------------------------------- */

/* MAILROBOT_KAFKA__SASL_PASSWORD -> sasl.password */
static void kafka_env_property(const char *suffix, char *out, size_t outsz)
{
    size_t n = 0;

    for (const char *p = suffix; *p && n + 1 < outsz; p++)
        out[n++] = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
    out[n] = '\0';
}

static int apply_env_entry(mr_config *cfg, const char *entry, mr_err *err)
{
    const char *eq = strchr(entry, '=');
    char var[256];
    size_t n;

    if (eq == NULL || strncmp(entry, MR_CONFIG_ENV_PREFIX, strlen(MR_CONFIG_ENV_PREFIX)) != 0)
        return 0;
    n = (size_t)(eq - entry);
    if (n >= sizeof var)
        return mr_err_set(err, "environment %.60s...: name too long", entry);
    memcpy(var, entry, n);
    var[n] = '\0';
    if (strcmp(var, MR_CONFIG_PATH_ENV) == 0)
        return 0;
    if (strncmp(var, MR_CONFIG_KAFKA_ENV_PREFIX, strlen(MR_CONFIG_KAFKA_ENV_PREFIX)) == 0) {
        char property[256], origin[300];

        kafka_env_property(var + strlen(MR_CONFIG_KAFKA_ENV_PREFIX), property, sizeof property);
        snprintf(origin, sizeof origin, "environment %s", var);
        if (add_kafka_setting(cfg, property, eq + 1, origin, err) < 0)
            return mr_err_prefix(err, "environment %s", var);
        return 0;
    }
    for (const mr_config_key *k = config_keys; k->name != NULL; k++) {
        char expected[256];

        mr_config_env_name(k->name, expected, sizeof expected);
        if (strcmp(var, expected) != 0)
            continue;
        if (set_value(cfg, k, eq + 1, err) < 0)
            return mr_err_prefix(err, "environment %s", var);
        return 0;
    }
    return mr_err_set(err, "environment %s: unknown setting (see docs/configuration.md)", var);
}

static int apply_env(mr_config *cfg, char *const *envp, mr_err *err)
{
    if (envp == NULL)
        return 0;
    for (char *const *e = envp; *e != NULL; e++)
        if (apply_env_entry(cfg, *e, err) < 0)
            return -1;
    return 0;
}

/* --- validation across keys ------------------------------------------------- */

static int validate(const mr_config *cfg, mr_err *err)
{
    for (const char *p = cfg->topic_prefix; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-')
            return mr_err_set(err, "key 'topic_prefix': '%s' may hold only letters, "
                                   "digits, '.', '_' and '-'", cfg->topic_prefix);
    if (strlen(cfg->topic_prefix) > 200)
        return mr_err_set(err, "key 'topic_prefix': longer than 200 characters");
    for (size_t i = 0; i < cfg->retry_delays.count; i++)
        for (size_t k = 0; k < i; k++)
            if (cfg->retry_delays.ms[i] == cfg->retry_delays.ms[k])
                return mr_err_set(err, "key 'retry_delays': delay %zu is the same as delay "
                                  "%zu (each delay names its own topic)", i + 1, k + 1);
    return 0;
}

/* --- loading ---------------------------------------------------------------- */

static int apply_defaults(mr_config *cfg, mr_err *err)
{
    memset(cfg, 0, sizeof *cfg);
    for (const mr_config_key *k = config_keys; k->name != NULL; k++)
        if (set_value(cfg, k, k->default_value, err) < 0)
            return mr_err_prefix(err, "internal error: default of '%s'", k->name);
    return 0;
}

static int finish_load(mr_config *cfg, char *const *envp, mr_err *err)
{
    if (apply_env(cfg, envp, err) < 0 || validate(cfg, err) < 0) {
        mr_config_free(cfg);
        return -1;
    }
    return 0;
}

int mr_config_load_text(mr_config *cfg, const char *name, const char *text, size_t len,
                        char *const *envp, mr_err *err)
{
    if (apply_defaults(cfg, err) < 0 || parse_text(cfg, name, text, len, err) < 0) {
        mr_config_free(cfg);
        return -1;
    }
    return finish_load(cfg, envp, err);
}

/* Reads a whole configuration file (bounded to 1 MiB). */
static char *read_file(const char *path, size_t *len, int *missing, mr_err *err)
{
    FILE *f = fopen(path, "r");
    char *text;

    *missing = 0;
    if (f == NULL) {
        *missing = errno == ENOENT;
        mr_err_set(err, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    text = malloc((1 << 20) + 1);
    if (text == NULL) {
        fclose(f);
        mr_err_set(err, "%s: out of memory", path);
        return NULL;
    }
    *len = fread(text, 1, 1 << 20, f);
    if (ferror(f) || !feof(f)) {
        int too_big = !ferror(f);

        fclose(f);
        free(text);
        mr_err_set(err, "%s: %s", path, too_big ? "larger than 1 MiB" : "read error");
        return NULL;
    }
    fclose(f);
    text[*len] = '\0';
    return text;
}

int mr_config_load(mr_config *cfg, const char *path, char *const *envp, mr_err *err)
{
    int explicit = 1;
    int missing;
    size_t len = 0;
    char *text;

    if (path == NULL)
        path = mr_env_get(envp, MR_CONFIG_PATH_ENV);
    if (path == NULL) {
        path = MR_CONFIG_DEFAULT_PATH;
        explicit = 0;
    }
    text = read_file(path, &len, &missing, err);
    if (text == NULL && (explicit || !missing)) {
        memset(cfg, 0, sizeof *cfg);
        return -1;
    }
    if (text == NULL) {
        if (apply_defaults(cfg, err) < 0) {
            mr_config_free(cfg);
            return -1;
        }
        return finish_load(cfg, envp, err);
    }
    if (mr_config_load_text(cfg, path, text, len, envp, err) < 0) {
        free(text);
        return -1;
    }
    free(text);
    cfg->path = strdup(path);
    return 0;
}

void mr_config_free(mr_config *cfg)
{
    for (const mr_config_key *k = config_keys; k->name != NULL; k++) {
        if (k->type == MR_CONFIG_STRING) {
            char **field = (char **)((char *)cfg + k->offset);

            free(*field);
            *field = NULL;
        }
    }
    for (size_t i = 0; i < cfg->kafka_count; i++) {
        free(cfg->kafka[i].name);
        free(cfg->kafka[i].value);
        free(cfg->kafka[i].origin);
    }
    free(cfg->kafka);
    cfg->kafka = NULL;
    cfg->kafka_count = 0;
    free(cfg->path);
    cfg->path = NULL;
}

uint64_t mr_config_record_limit(const mr_config *cfg)
{
    /* Headers and framing are small; an incompressible body grows by less
     * than 1/64 under lz4/zstd/gzip framing. */
    return cfg->max_message_bytes + cfg->max_message_bytes / 64 + (256u << 10);
}
