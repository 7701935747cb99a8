/*
 * units.c - sizes, durations and bounded integers from configuration text
 * (see units.h).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mailrobot/units.h"

/* Reads the leading decimal digits of text into *value; *end points after
 * them. Returns 0, or -1 when there are none or the value overflows. */
static int parse_digits(const char *text, uint64_t *value, const char **end)
{
    uint64_t v = 0;
    const char *p = text;

    if (!isdigit((unsigned char)*p))
        return -1;
    for (; isdigit((unsigned char)*p); p++) {
        unsigned digit = (unsigned)(*p - '0');

        if (v > (UINT64_MAX - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    *value = v;
    *end = p;
    return 0;
}

typedef struct unit {
    const char *suffix;
    uint64_t factor;
} unit;

static int apply_unit(const char *text, const char *suffix, const unit *units,
                      uint64_t number, uint64_t *result, const char *what,
                      mr_err *err)
{
    for (const unit *u = units; u->suffix != NULL; u++) {
        if (strcmp(suffix, u->suffix) != 0)
            continue;
        if (u->factor != 0 && number > UINT64_MAX / u->factor)
            return mr_err_set(err, "%s '%s' is too large", what, text);
        *result = number * u->factor;
        return 0;
    }
    return mr_err_set(err, "bad %s '%s': unknown unit '%s'", what, text, suffix);
}

int mr_parse_size(const char *text, uint64_t *bytes, mr_err *err)
{
    static const unit units[] = {
        {"", 1},          {"b", 1},         {"B", 1},
        {"k", 1ULL << 10}, {"K", 1ULL << 10}, {"KiB", 1ULL << 10}, {"KB", 1ULL << 10},
        {"m", 1ULL << 20}, {"M", 1ULL << 20}, {"MiB", 1ULL << 20}, {"MB", 1ULL << 20},
        {"g", 1ULL << 30}, {"G", 1ULL << 30}, {"GiB", 1ULL << 30}, {"GB", 1ULL << 30},
        {NULL, 0},
    };
    uint64_t number;
    const char *end;

    if (parse_digits(text, &number, &end) < 0)
        return mr_err_set(err, "bad size '%s': expected a number of bytes "
                               "with an optional unit (k, M, G)", text);
    return apply_unit(text, end, units, number, bytes, "size", err);
}

int mr_parse_duration(const char *text, int64_t *ms, mr_err *err)
{
    static const unit units[] = {
        {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000},
        {"h", 3600000}, {"d", 86400000}, {NULL, 0},
    };
    uint64_t number, result;
    const char *end;

    if (parse_digits(text, &number, &end) < 0)
        return mr_err_set(err, "bad duration '%s': expected a number with a "
                               "unit (ms, s, m, h, d)", text);
    if (apply_unit(text, end, units, number, &result, "duration", err) < 0)
        return -1;
    if (result > INT64_MAX)
        return mr_err_set(err, "duration '%s' is too large", text);
    *ms = (int64_t)result;
    return 0;
}

int mr_parse_int(const char *text, int64_t min, int64_t max, int64_t *value,
                 mr_err *err)
{
    uint64_t magnitude;
    const char *end;
    int negative = text[0] == '-';
    int64_t v;

    if (parse_digits(text + negative, &magnitude, &end) < 0 || *end != '\0'
        || magnitude > (uint64_t)INT64_MAX)
        return mr_err_set(err, "bad number '%s'", text);
    v = negative ? -(int64_t)magnitude : (int64_t)magnitude;
    if (v < min || v > max)
        return mr_err_set(err, "number %s is out of range [%" PRId64 ", %" PRId64 "]",
                          text, min, max);
    *value = v;
    return 0;
}

char *mr_format_duration(int64_t ms, char *out, size_t outsz)
{
    static const struct { const char *suffix; int64_t factor; } units[] = {
        {"d", 86400000}, {"h", 3600000}, {"m", 60000}, {"s", 1000},
    };

    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (ms != 0 && ms % units[i].factor == 0) {
            snprintf(out, outsz, "%" PRId64 "%s", ms / units[i].factor, units[i].suffix);
            return out;
        }
    }
    snprintf(out, outsz, "%" PRId64 "ms", ms);
    return out;
}
