# shellcheck shell=bash
# deploy/local/env.sh — settings of the local mailrobot stack (Kafka, Redis,
# a private Postfix instance on loopback).
#
# Sourced by the other deploy/local scripts; a developer may also source it
# (`. deploy/local/env.sh`) to get the same variables in a shell. Every
# variable keeps a value already set in the environment, so tests run their
# own copy of the stack with e.g.
#   MR_STATE_DIR=/tmp/mr-test MR_KAFKA_PORT=19092 MR_KAFKA_CONTROLLER_PORT=19093 \
#   MR_REDIS_PORT=16379 MR_SMTP_PORT=12525 deploy/local/kafka start
#
#   MR_STATE_DIR             all state: config, data, logs, pid files
#                            (default: <repo>/.local-stack)
#   MR_KAFKA_PORT            Kafka PLAINTEXT listener on 127.0.0.1 (9092)
#   MR_KAFKA_CONTROLLER_PORT Kafka KRaft controller listener (9093)
#   MR_REDIS_PORT            redis-server on 127.0.0.1 (6379)
#   MR_SMTP_PORT             the private Postfix's smtpd on 127.0.0.1 (2525)
#   MR_RECEIVER_PORT         the demo webhook receiver (8090)
#   MR_WORKER_HTTP_PORT      the worker's /metrics and /healthz (9464)
#   MR_DEMO_DOMAIN           domain Postfix relays to the mailrobot pipe
#                            (robots.example.test)
#   MR_BUILD_DIR             CMake build dir; the ingest is $MR_BUILD_DIR/bin/
#                            mailrobot-ingest (<repo>/build)
#   MR_CONFIG                mailrobot.conf given to the ingest with -C
#                            ($MR_STATE_DIR/mailrobot.conf)
#   MR_CACHE          download cache (~/.cache/mailrobot)
#   MR_KAFKA_JARS            the Kafka broker's jars, fetched by install-deps
#                            ($MR_CACHE/kafka-3.9.1/jars)
#   MR_KAFKA_HEAP            the broker's maximum Java heap (512m)
#   MR_PIPE_USER             user the Postfix pipe runs as (mailrobot)
#   MR_PIPE_ARGV             if set, replaces the pipe's argv= (pipe(8) syntax)
#   MR_QUIET                 1: the scripts print only errors and warnings
#
# Bash only (uses BASH_SOURCE). This file only sets variables: it must stay
# safe to source in an interactive shell (no `set -e`, no exit).

MR_REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P)"
MR_KAFKA_VERSION=3.9.1

: "${MR_STATE_DIR:=$MR_REPO/.local-stack}"
: "${MR_KAFKA_PORT:=9092}"
: "${MR_KAFKA_CONTROLLER_PORT:=9093}"
: "${MR_REDIS_PORT:=6379}"
: "${MR_SMTP_PORT:=2525}"
: "${MR_RECEIVER_PORT:=8090}"
: "${MR_WORKER_HTTP_PORT:=9464}"
: "${MR_DEMO_DOMAIN:=robots.example.test}"
: "${MR_BUILD_DIR:=$MR_REPO/build}"
: "${MR_CACHE:=${HOME:-/root}/.cache/mailrobot}"
: "${MR_KAFKA_JARS:=$MR_CACHE/kafka-$MR_KAFKA_VERSION/jars}"
: "${MR_KAFKA_HEAP:=512m}"
: "${MR_CONFIG:=$MR_STATE_DIR/mailrobot.conf}"
: "${MR_PIPE_USER:=mailrobot}"

export MR_REPO MR_KAFKA_VERSION MR_STATE_DIR MR_KAFKA_PORT \
    MR_KAFKA_CONTROLLER_PORT MR_REDIS_PORT MR_SMTP_PORT MR_RECEIVER_PORT \
    MR_WORKER_HTTP_PORT MR_DEMO_DOMAIN \
    MR_BUILD_DIR MR_CACHE MR_KAFKA_JARS MR_KAFKA_HEAP MR_CONFIG \
    MR_PIPE_USER
