/*
 * clock.h - time stamps and deadlines.
 */
#ifndef MAILROBOT_CLOCK_H
#define MAILROBOT_CLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC, for deadlines and durations. */
int64_t mr_monotonic_ms(void);

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
int64_t mr_wall_ms(void);

/* Formats a Unix time in milliseconds as RFC 3339 UTC with milliseconds,
 * "2026-11-29T10:00:00.123Z", into out (at least 25 bytes). Returns out. */
char *mr_format_rfc3339(int64_t wall_ms, char *out, size_t outsz);

#endif
