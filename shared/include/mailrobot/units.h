/*
 * units.h - parsing of the sizes and durations that configuration uses.
 *
 * Sizes: a whole number of bytes with an optional suffix, k/K/KiB (1024),
 * M/MiB, G/GiB ("25MiB", "512k", "1048576"). Durations: a whole number with
 * a unit, ms, s, m, h or d ("500ms", "30s", "10m", "6h"); a bare number is
 * seconds. Both reject signs, blanks inside, overflow and unknown suffixes.
 */
#ifndef MAILROBOT_UNITS_H
#define MAILROBOT_UNITS_H

#include <stddef.h>
#include <stdint.h>

#include "mailrobot/err.h"

/* Parses a size into *bytes. Returns 0 or -1 with a message in err. */
int mr_parse_size(const char *text, uint64_t *bytes, mr_err *err);

/* Parses a duration into *ms. Returns 0 or -1 with a message in err. */
int mr_parse_duration(const char *text, int64_t *ms, mr_err *err);

/* Parses a whole decimal number in [min, max]. Returns 0 or -1. */
int mr_parse_int(const char *text, int64_t min, int64_t max, int64_t *value,
                 mr_err *err);

/* Formats a duration in the largest unit that divides it ("10m", "500ms").
 * Returns out. */
char *mr_format_duration(int64_t ms, char *out, size_t outsz);

#endif
