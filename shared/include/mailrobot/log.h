/*
 * log.h - structured logging: one JSON object per line.
 *
 *   {"ts":"2026-11-29T10:00:00.123Z","level":"info","prog":"mailrobot-worker",
 *    "pid":"1234","msg":"delivered","robot":"tickets","id":"9f2c..."}
 *
 * Each line is written with a single write(2), so lines of concurrent
 * processes sharing a file or pipe do not interleave. Field values are
 * strings; names and values are JSON-escaped (non-ASCII bytes as \u00XX)
 * and each is cut at MR_LOG_VALUE_LIMIT bytes. No dependencies beyond libc,
 * so the small ingest client can log too. A logger is a small value
 * owned by the program's context (no global state); copying it is fine.
 */
#ifndef MAILROBOT_LOG_H
#define MAILROBOT_LOG_H

#include "mailrobot/err.h"

#define MR_LOG_VALUE_LIMIT 4096

typedef enum mr_log_level {
    MR_LOG_DEBUG = 0,
    MR_LOG_INFO = 1,
    MR_LOG_WARN = 2,
    MR_LOG_ERROR = 3,
    MR_LOG_OFF = 4 /* as a minimum level: log nothing */
} mr_log_level;

typedef struct mr_logger {
    const char *program; /* not owned; usually a string literal */
    mr_log_level min_level;
    int fd; /* -1: discard */
} mr_logger;

/* Sets up a logger writing lines of at least min_level to fd. */
void mr_logger_init(mr_logger *log, const char *program, mr_log_level min_level,
                    int fd);

/* "debug", "info", "warn", "error" or "off" to a level. Returns 0 or -1. */
int mr_log_level_parse(const char *name, mr_log_level *level, mr_err *err);

/* Name of a level, e.g. "warn". */
const char *mr_log_level_name(mr_log_level level);

/* Logs msg with extra fields given as name, value pairs of strings, ended
 * by NULL: mr_log(log, MR_LOG_INFO, "published", "id", id, NULL).
 * A NULL value is logged as JSON null. Never fails visibly. */
void mr_log(const mr_logger *log, mr_log_level level, const char *msg, ...)
    __attribute__((sentinel));

#endif
