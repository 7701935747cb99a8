/*
 * ingestd_server.h - mailrobot-ingestd's event loop: a Unix socket server
 * that publishes what ingest clients send with one shared producer.
 */
#ifndef INGEST_INGESTD_SERVER_H
#define INGEST_INGESTD_SERVER_H

#include <signal.h>

#include "mailrobot/config.h"
#include "mailrobot/err.h"
#include "mailrobot/kafka.h"
#include "mailrobot/log.h"

typedef struct ingestd ingestd;

/* Creates the producer and the listening socket (replacing a stale socket
 * file). cfg, log and kafka must outlive the server. */
ingestd *ingestd_new(const mr_config *cfg, const mr_logger *log, mr_kafka_context *kafka,
                     mr_err *err);

/* Serves until *stop becomes non-zero, then stops accepting, finishes the
 * connections in flight (bounded by ingest_time_limit) and returns 0. */
int ingestd_run(ingestd *server, volatile sig_atomic_t *stop);

/* Closes everything and removes the socket file. */
void ingestd_free(ingestd *server);

#endif
