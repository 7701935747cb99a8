/*
 * cmd_mime.c - `mailrobotctl mime`: the JSON a webhook robot would receive
 * for a message file (SPEC §7, docs/robots/webhook-payload.md).
 *
 * SYNOPSIS
 *      mailrobotctl mime [--id ID] [--robot NAME] [--received-at TIME]
 *                        [--sender ADDR] [--recipient ADDR]
 *                        [--original-recipient ADDR] [--extension EXT]
 *                        [--client-address IP] [--helo NAME] [--compact]
 *                        FILE|-
 *      mailrobotctl mime --repeat N FILE...
 *
 * DESCRIPTION
 *      Converts one message (a file, or standard input for "-") exactly as
 *      the worker does and prints the JSON to standard output, indented
 *      (one line with --compact). The envelope options fill in what the
 *      worker takes from the Kafka record; what is not given is null,
 *      except received_at, which defaults to now. The message is read up
 *      to max_message_bytes, the ingest's limit.
 *
 *      --repeat N (for bench/mime) converts every FILE N times, prints
 *      nothing to standard output, and prints the time per conversion to
 *      standard error: "mime: M conversions in S s, U us/message".
 *
 * DIAGNOSTICS
 *      Exit 0; 1 when a file cannot be read or is larger than
 *      max_message_bytes (one line on stderr says which); 2 for a bad
 *      command line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mailrobot/buf.h"
#include "mailrobot/clock.h"
#include "mailrobot/mime_json.h"

#include "ctl.h"

#define MIME_USAGE                                                                          \
    "usage: mailrobotctl mime [--id ID] [--robot NAME] [--received-at TIME] [--sender ADDR]\n" \
    "           [--recipient ADDR] [--original-recipient ADDR] [--extension EXT]\n"           \
    "           [--client-address IP] [--helo NAME] [--compact] FILE|-"
#define MIME_MAX_FILES 4096

/* The envelope options: each sets one field of mr_mime_envelope. */
static const struct {
    const char *option;
    size_t field;
} envelope_options[] = {
    {"--id", offsetof(mr_mime_envelope, id)},
    {"--robot", offsetof(mr_mime_envelope, robot)},
    {"--received-at", offsetof(mr_mime_envelope, received_at)},
    {"--sender", offsetof(mr_mime_envelope, sender)},
    {"--recipient", offsetof(mr_mime_envelope, recipient)},
    {"--original-recipient", offsetof(mr_mime_envelope, original_recipient)},
    {"--extension", offsetof(mr_mime_envelope, extension)},
    {"--client-address", offsetof(mr_mime_envelope, client_address)},
    {"--helo", offsetof(mr_mime_envelope, helo)},
};

typedef struct mime_options {
    mr_mime_envelope envelope;
    char received_at[32];
    int compact;
    long repeat;        /* 0: print the JSON of one file */
    char **files;
    int file_count;
} mime_options;

static int set_envelope_option(mime_options *o, const char *option, const char *value)
{
    for (size_t i = 0; i < sizeof envelope_options / sizeof envelope_options[0]; i++) {
        if (strcmp(option, envelope_options[i].option) == 0) {
            *(const char **)((char *)&o->envelope + envelope_options[i].field) = value;
            return 0;
        }
    }
    return -1;
}

static int parse_repeat(const char *text, long *repeat)
{
    char *end;

    errno = 0;
    *repeat = strtol(text, &end, 10);
    return errno == 0 && *end == '\0' && *repeat > 0 ? 0 : -1;
}

static int parse_mime_options(int argc, char **argv, mime_options *o)
{
    int i;

    memset(o, 0, sizeof *o);
    o->envelope.received_at = mr_format_rfc3339(mr_wall_ms(), o->received_at, sizeof o->received_at);
    for (i = 0; i < argc && argv[i][0] == '-' && argv[i][1] != '\0'; i++) {
        const char *option = argv[i], *value;

        if (strcmp(option, "--compact") == 0) {
            o->compact = 1;
            continue;
        }
        if (i + 1 >= argc)
            return -1;
        value = argv[++i];
        if (strcmp(option, "--repeat") == 0 ? parse_repeat(value, &o->repeat) < 0
                                             : set_envelope_option(o, option, value) < 0)
            return -1;
    }
    o->files = argv + i;
    o->file_count = argc - i;
    if (o->file_count < 1 || o->file_count > MIME_MAX_FILES)
        return -1;
    return o->repeat == 0 && o->file_count != 1 ? -1 : 0;
}

/* Reads a message file ("-": standard input) of at most limit bytes. */
static int read_message(const char *path, size_t limit, mr_buf *msg)
{
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    mr_read_status status;
    mr_err err;

    if (fd < 0) {
        ctl_error("mime: cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    mr_buf_init(msg, limit);
    status = mr_buf_read_fd(msg, fd, &err);
    if (fd != STDIN_FILENO)
        close(fd);
    if (status == MR_READ_TOO_BIG)
        ctl_error("mime: %s is larger than max_message_bytes (%zu bytes)", path, limit);
    else if (status == MR_READ_ERROR)
        ctl_error("mime: cannot read %s: %s", path, err.msg);
    if (status != MR_READ_OK) {
        mr_buf_free(msg);
        return -1;
    }
    return 0;
}

static int print_json(const mime_options *o, const mr_buf *msg)
{
    char *json;
    size_t len;
    mr_err err;
    int rc = o->compact
                 ? mr_mime_to_json(msg->data, msg->len, &o->envelope, &json, &len, &err)
                 : mr_mime_to_json_indented(msg->data, msg->len, &o->envelope, &json, &len, &err);

    if (rc < 0) {
        ctl_error("mime: %s: %s", o->files[0], err.msg);
        return CTL_FAILED;
    }
    fwrite(json, 1, len, stdout);
    putchar('\n');
    free(json);
    return fflush(stdout) == 0 ? CTL_OK : CTL_FAILED;
}

static double seconds_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* --repeat: converts every message o->repeat times; the cost per message
 * goes to stderr. */
static int time_conversions(const mime_options *o, const mr_buf *msgs)
{
    double start = seconds_now(), elapsed;
    long conversions = 0;

    for (long r = 0; r < o->repeat; r++) {
        for (int f = 0; f < o->file_count; f++, conversions++) {
            char *json;
            size_t len;
            mr_err err;

            if (mr_mime_to_json(msgs[f].data, msgs[f].len, &o->envelope, &json, &len, &err) < 0) {
                ctl_error("mime: %s: %s", o->files[f], err.msg);
                return CTL_FAILED;
            }
            free(json);
        }
    }
    elapsed = seconds_now() - start;
    fprintf(stderr, "mime: %ld conversions in %.6f s, %.2f us/message\n", conversions, elapsed,
            elapsed * 1e6 / (double)conversions);
    return CTL_OK;
}

int ctl_mime(ctl_context *ctx, int argc, char **argv)
{
    mime_options o;
    mr_buf *msgs;
    int status = CTL_OK, read = 0;

    if (parse_mime_options(argc, argv, &o) < 0) {
        ctl_error(MIME_USAGE);
        return CTL_USAGE;
    }
    mr_mime_init();
    msgs = calloc((size_t)o.file_count, sizeof *msgs);
    if (msgs == NULL) {
        ctl_error("mime: out of memory");
        return CTL_FAILED;
    }
    for (; read < o.file_count && status == CTL_OK; read++)
        if (read_message(o.files[read], (size_t)ctx->cfg.max_message_bytes, &msgs[read]) < 0)
            status = CTL_FAILED;
    if (status == CTL_OK)
        status = o.repeat > 0 ? time_conversions(&o, msgs) : print_json(&o, &msgs[0]);
    for (int f = 0; f < read; f++)
        mr_buf_free(&msgs[f]);
    free(msgs);
    return status;
}
