/*
 * log.c - JSON-lines logging (see log.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

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

static void write_line(int fd, const char *text)
{
    size_t len = strlen(text);
    char *line = malloc(len + 2);

    if (line == NULL)
        return;
    memcpy(line, text, len);
    line[len] = '\n';
    line[len + 1] = '\0';
    /* Best effort: a logger has nowhere to report its own failure. */
    ssize_t written = write(fd, line, len + 1);

    (void)written;
    free(line);
}

/* A JSON string for text that may not be valid UTF-8 (it can come from a
 * hostile message): invalid text has its non-ASCII bytes replaced by '?'
 * rather than the whole line being lost. */
static json_t *json_string_lossy(const char *text)
{
    json_t *s = json_string(text);
    char *copy;

    if (s != NULL)
        return s;
    copy = strdup(text);
    if (copy == NULL)
        return json_null();
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    s = json_string(copy);
    free(copy);
    return s ? s : json_null();
}

void mr_log(const mr_logger *log, mr_log_level level, const char *msg, ...)
{
    char ts[40];
    json_t *obj;
    char *text;
    va_list ap;
    const char *name;

    if (log == NULL || log->fd < 0 || level < log->min_level || log->min_level == MR_LOG_OFF)
        return;
    mr_format_rfc3339(mr_wall_ms(), ts, sizeof ts);
    obj = json_object();
    if (obj == NULL)
        return;
    json_object_set_new(obj, "ts", json_string(ts));
    json_object_set_new(obj, "level", json_string(mr_log_level_name(level)));
    json_object_set_new(obj, "prog", json_string(log->program ? log->program : "mailrobot"));
    json_object_set_new(obj, "pid", json_integer(getpid()));
    json_object_set_new(obj, "msg", json_string(msg));
    va_start(ap, msg);
    while ((name = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        json_object_set_new(obj, name, value ? json_string_lossy(value) : json_null());
    }
    va_end(ap);
    text = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (text == NULL)
        return;
    write_line(log->fd, text);
    free(text);
}
