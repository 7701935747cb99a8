/*
 * log.c - JSON-lines logging (see log.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailrobot/buf.h"
#include "mailrobot/clock.h"
#include "mailrobot/log.h"

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void mr_logger_init(mr_logger *log, const char *program, mr_log_level min_level,
                    int fd)
{
    log->program = program;
    log->min_level = min_level;
    log->fd = fd;
}

int mr_log_level_parse(const char *name, mr_log_level *level, mr_err *err)
{
    for (int i = MR_LOG_DEBUG; i <= MR_LOG_OFF; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            *level = (mr_log_level)i;
            return 0;
        }
    }
    return mr_err_set(err, "bad log level '%s' (debug, info, warn, error or off)", name);
}

const char *mr_log_level_name(mr_log_level level)
{
    return level >= MR_LOG_DEBUG && level <= MR_LOG_OFF ? level_names[level] : "?";
}

/* Length of the valid UTF-8 sequence of 2-4 bytes at p, or 0. */
static size_t utf8_sequence(const unsigned char *p)
{
    size_t n = p[0] >= 0xc2 && p[0] <= 0xdf ? 2 : p[0] >= 0xe0 && p[0] <= 0xef ? 3
             : p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : 0;

    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    if ((n == 3 && p[0] == 0xe0 && p[1] < 0xa0) || (n == 3 && p[0] == 0xed && p[1] >= 0xa0)
        || (n == 4 && p[0] == 0xf0 && p[1] < 0x90) || (n == 4 && p[0] == 0xf4 && p[1] >= 0x90))
        return 0; /* overlong, surrogate or beyond U+10FFFF */
    return n;
}

/* Appends text to out as a JSON string, at most MR_LOG_VALUE_LIMIT bytes
 * of it (then "..."). Valid UTF-8 passes through; control characters and
 * bytes that are not valid UTF-8 are escaped as \u00XX, so hostile input
 * (8-bit header fields, control characters) can break neither the line
 * nor the JSON. */
static void json_quote(mr_buf *out, const char *text)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    mr_buf_append(out, "\"", 1, NULL);
    for (const unsigned char *p = (const unsigned char *)text; *p; p++, n++) {
        if (n == MR_LOG_VALUE_LIMIT) {
            mr_buf_append(out, "...", 3, NULL);
            break;
        }
        if (*p == '"' || *p == '\\') {
            char pair[2] = {'\\', (char)*p};

            mr_buf_append(out, pair, 2, NULL);
        } else if (*p >= 0x20 && *p < 0x7f) {
            mr_buf_append(out, p, 1, NULL);
        } else if (*p >= 0x80 && utf8_sequence(p) > 0) {
            size_t k = utf8_sequence(p);

            mr_buf_append(out, p, k, NULL);
            p += k - 1;
            n += k - 1;
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};

            mr_buf_append(out, esc, 6, NULL);
        }
    }
    mr_buf_append(out, "\"", 1, NULL);
}

static void json_field(mr_buf *out, const char *name, const char *value)
{
    mr_buf_append(out, ",", 1, NULL);
    json_quote(out, name);
    mr_buf_append(out, ":", 1, NULL);
    if (value == NULL)
        mr_buf_append_str(out, "null", NULL);
    else
        json_quote(out, value);
}

void mr_log(const mr_logger *log, mr_log_level level, const char *msg, ...)
{
    char ts[40], pid[24];
    mr_buf line;
    va_list ap;
    const char *name;

    if (log == NULL || log->fd < 0 || level < log->min_level || log->min_level == MR_LOG_OFF)
        return;
    /* Each value is capped, so a line stays far below this; the limit is a
     * backstop against a caller passing hundreds of fields. */
    mr_buf_init(&line, 1 << 20);
    mr_format_rfc3339(mr_wall_ms(), ts, sizeof ts);
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    mr_buf_append_str(&line, "{\"ts\":", NULL);
    json_quote(&line, ts);
    json_field(&line, "level", mr_log_level_name(level));
    json_field(&line, "prog", log->program ? log->program : "mailrobot");
    json_field(&line, "pid", pid);
    json_field(&line, "msg", msg);
    va_start(ap, msg);
    while ((name = va_arg(ap, const char *)) != NULL)
        json_field(&line, name, va_arg(ap, const char *));
    va_end(ap);
    mr_buf_append_str(&line, "}\n", NULL);
    if (line.data != NULL) {
        /* Best effort: a logger has nowhere to report its own failure. */
        ssize_t written = write(log->fd, line.data, line.len);

        (void)written;
    }
    mr_buf_free(&line);
}
