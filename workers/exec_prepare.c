/*
 * exec_prepare.c - argv, environment, standard input and exit status of an
 * exec robot's command, as local(8) makes them (see exec_prepare.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>

#include "mailrobot/environ.h"

#include "exec_prepare.h"

/* Postfix's exec_command: these characters need no shell. */
static const char no_shell_chars[] = "1234567890!@%-_=+:,./"
                                     "abcdefghijklmnopqrstuvwxyz"
                                     "ABCDEFGHIJKLMNOPQRSTUVWXYZ \t";
/* Postfix's default command_expansion_filter. */
static const char censor_ok[] = "1234567890!@%-_=+:,./"
                                "abcdefghijklmnopqrstuvwxyz"
                                "ABCDEFGHIJKLMNOPQRSTUVWXYZ";

/* Packs n strings into one allocation: the pointer array, then the text. */
static exec_strings pack(const char **items, size_t n, mr_err *err)
{
    size_t text = 0;
    exec_strings out;
    char *p;

    for (size_t i = 0; i < n; i++)
        text += strlen(items[i]) + 1;
    out = malloc((n + 1) * sizeof *out + text);
    if (out == NULL) {
        mr_err_set(err, "out of memory");
        return NULL;
    }
    p = (char *)(out + n + 1);
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(items[i]) + 1;

        memcpy(p, items[i], len);
        out[i] = p;
        p += len;
    }
    out[n] = NULL;
    return out;
}

exec_strings exec_argv(const char *command, int shell, mr_err *err)
{
    const char *items[EXEC_ARGS_LIMIT];
    char copy[4097];
    size_t n = 0;
    char *save = NULL;

    if (strlen(command) >= sizeof copy) {
        mr_err_set(err, "command longer than %zu bytes", sizeof copy - 1);
        return NULL;
    }
    if (shell || command[strspn(command, no_shell_chars)] != '\0'
        || command[strspn(command, " \t")] == '\0') {
        items[0] = EXEC_SHELL;
        items[1] = "-c";
        items[2] = command;
        return pack(items, 3, err);
    }
    strcpy(copy, command);
    for (char *word = strtok_r(copy, " \t", &save); word != NULL;
         word = strtok_r(NULL, " \t", &save)) {
        if (n == EXEC_ARGS_LIMIT) {
            mr_err_set(err, "command has more than %d arguments", EXEC_ARGS_LIMIT);
            return NULL;
        }
        items[n++] = word;
    }
    return pack(items, n, err);
}

/* --- environment -------------------------------------------------------------- */

typedef struct env_builder {
    const char *items[64];
    char storage[8192];
    size_t used;
    size_t n;
} env_builder;

/* Adds NAME=value with value censored; skipped when value is NULL, or
 * empty and only_if_set. */
static void env_add(env_builder *b, const char *name, const char *value, int only_if_set)
{
    size_t start = b->used;
    int n;

    if (value == NULL || (only_if_set && value[0] == '\0') || b->n == 63)
        return;
    n = snprintf(b->storage + start, sizeof b->storage - start, "%s=%s", name, value);
    if (n < 0 || (size_t)n >= sizeof b->storage - start)
        return;
    for (char *p = b->storage + start + strlen(name) + 1; *p; p++)
        if (strchr(censor_ok, *p) == NULL)
            *p = '_';
    b->items[b->n++] = b->storage + start;
    b->used += (size_t)n + 1;
}

/* Splits recipient into local part (lower-cased) and domain, and the local
 * part into user and extension at the first '+' (not a leading one). */
static void split_recipient(const char *recipient, char *local, char *user, char *extension,
                            char *domain, size_t size)
{
    const char *at = strrchr(recipient, '@');
    size_t local_len = at ? (size_t)(at - recipient) : strlen(recipient);
    char *plus;

    snprintf(local, size, "%.*s", (int)local_len, recipient);
    for (char *p = local; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    snprintf(domain, size, "%s", at ? at + 1 : "");
    snprintf(user, size, "%s", local);
    extension[0] = '\0';
    plus = strchr(user, '+');
    if (plus != NULL && plus != user) {
        snprintf(extension, size, "%s", plus + 1);
        *plus = '\0';
    }
}

exec_strings exec_environment(const exec_envelope *e, const char *home, const char *shell,
                              const char *export, char *const *parent_env, mr_err *err)
{
    env_builder b = {.used = 0, .n = 0};
    char local[512], user[512], extension[512], domain[512], names[512];
    char *save = NULL;

    split_recipient(e->recipient, local, user, extension, domain, sizeof local);
    env_add(&b, "HOME", home, 0);
    env_add(&b, "LOGNAME", user, 0);
    env_add(&b, "USER", user, 0);
    env_add(&b, "SENDER", e->sender, 0);
    env_add(&b, "RECIPIENT", e->recipient, 0);
    env_add(&b, "LOCAL", local, 0);
    env_add(&b, "SHELL", shell, 0);
    env_add(&b, "DOMAIN", domain, 1);
    env_add(&b, "EXTENSION", extension, 1);
    env_add(&b, "ORIGINAL_RECIPIENT", e->original_recipient, 1);
    env_add(&b, "CLIENT_HOSTNAME", e->client_hostname, 1);
    env_add(&b, "CLIENT_ADDRESS", e->client_address, 1);
    env_add(&b, "CLIENT_HELO", e->client_helo, 1);
    env_add(&b, "CLIENT_PROTOCOL", e->client_protocol, 1);
    env_add(&b, "SASL_METHOD", e->sasl_method, 1);
    env_add(&b, "SASL_SENDER", e->sasl_sender, 1);
    env_add(&b, "SASL_USERNAME", e->sasl_username, 1);
    env_add(&b, "SPAM", e->spam, 1);
    env_add(&b, "PATH", EXEC_PATH, 0);
    snprintf(names, sizeof names, "%s", export ? export : "");
    for (char *name = strtok_r(names, " \t,", &save); name != NULL;
         name = strtok_r(NULL, " \t,", &save)) {
        const char *value = mr_env_get(parent_env, name);

        /* Exported as they are, like Postfix's export_environment. */
        if (value != NULL && b.n < 63) {
            int n = snprintf(b.storage + b.used, sizeof b.storage - b.used, "%s=%s", name,
                             value);

            if (n > 0 && (size_t)n < sizeof b.storage - b.used) {
                b.items[b.n++] = b.storage + b.used;
                b.used += (size_t)n + 1;
            }
        }
    }
    return pack(b.items, b.n, err);
}

/* --- standard input ----------------------------------------------------------- */

/* RFC 5322 quoting of a local part, as Postfix's quote_822_local does for
 * the usual cases: quoted when it holds specials or blanks. */
static int append_address(mr_buf *out, const char *address, mr_err *err)
{
    static const char specials[] = "()<>@,;:\\\".[] \t";
    const char *at = strrchr(address, '@');
    size_t local_len = at ? (size_t)(at - address) : strlen(address);
    int quote = 0;

    for (size_t i = 0; i < local_len; i++)
        if (strchr(specials, address[i]) != NULL && address[i] != '.')
            quote = 1;
    if (local_len > 0 && (address[0] == '.' || address[local_len - 1] == '.'
                          || memmem(address, local_len, "..", 2) != NULL))
        quote = 1;
    if (!quote)
        return mr_buf_append_str(out, address, err);
    if (mr_buf_append(out, "\"", 1, err) < 0)
        return -1;
    for (size_t i = 0; i < local_len; i++) {
        if ((address[i] == '"' || address[i] == '\\') && mr_buf_append(out, "\\", 1, err) < 0)
            return -1;
        if (mr_buf_append(out, &address[i], 1, err) < 0)
            return -1;
    }
    return mr_buf_append(out, "\"", 1, err) < 0 ? -1
                                                 : mr_buf_append_str(out, at ? at : "", err);
}

/* The message without a leading Return-Path header (and its folded
 * lines): the pipe(8) ingest's flags=R added one; local(8)'s goes first. */
static size_t skip_return_path(const unsigned char *msg, size_t len)
{
    size_t pos = 0;

    if (len < 12 || strncasecmp((const char *)msg, "Return-Path:", 12) != 0)
        return 0;
    do {
        const unsigned char *nl = memchr(msg + pos, '\n', len - pos);

        if (nl == NULL)
            return 0; /* not a header line: keep everything */
        pos = (size_t)(nl - msg) + 1;
    } while (pos < len && (msg[pos] == ' ' || msg[pos] == '\t'));
    return pos;
}

int exec_input(const exec_envelope *e, const unsigned char *message, size_t len, mr_buf *out,
               mr_err *err)
{
    time_t seconds = (time_t)(e->arrival_ms / 1000);
    struct tm tm;
    char date[32];
    size_t skip = skip_return_path(message, len);

    /* asctime() of local time, as mail_copy() writes it: 24 characters. */
    localtime_r(&seconds, &tm);
    strftime(date, sizeof date, "%a %b %e %H:%M:%S %Y", &tm);
    if (mr_buf_append_str(out, "From ", err) < 0
        || (e->sender[0] ? append_address(out, e->sender, err)
                         : mr_buf_append_str(out, "MAILER-DAEMON", err)) < 0
        || mr_buf_printf(out, err, "  %s\nReturn-Path: <", date) < 0
        || (e->sender[0] && append_address(out, e->sender, err) < 0)
        || mr_buf_append_str(out, ">\n", err) < 0)
        return -1;
    if (e->original_recipient && e->original_recipient[0]
        && (mr_buf_append_str(out, "X-Original-To: ", err) < 0
            || append_address(out, e->original_recipient, err) < 0
            || mr_buf_append_str(out, "\n", err) < 0))
        return -1;
    if (mr_buf_append_str(out, "Delivered-To: ", err) < 0
        || append_address(out, e->recipient, err) < 0 || mr_buf_append_str(out, "\n", err) < 0
        || mr_buf_append(out, message + skip, len - skip, err) < 0)
        return -1;
    if (len > skip && message[len - 1] != '\n')
        return mr_buf_append(out, "\n", 1, err);
    return 0;
}

/* --- exit status -------------------------------------------------------------- */

static const struct {
    int code;
    int later;
    const char *text;
} sysexits[] = {
    {EX_USAGE, 0, "command line usage error"},     {EX_DATAERR, 0, "data format error"},
    {EX_NOINPUT, 0, "cannot open input"},          {EX_NOUSER, 0, "user unknown"},
    {EX_NOHOST, 0, "host name unknown"},           {EX_UNAVAILABLE, 0, "service unavailable"},
    {EX_SOFTWARE, 0, "internal software error"},   {EX_OSERR, 1, "system resource problem"},
    {EX_OSFILE, 0, "critical OS file missing"},    {EX_CANTCREAT, 0, "can't create output file"},
    {EX_IOERR, 0, "input/output error"},           {EX_TEMPFAIL, 1, "temporary failure"},
    {EX_PROTOCOL, 0, "remote error in protocol"},  {EX_NOPERM, 0, "permission denied"},
    {EX_CONFIG, 0, "local configuration error"},
};

exec_verdict exec_classify(int status, char *out, size_t outsz)
{
    int code;

    if (WIFSIGNALED(status)) {
        snprintf(out, outsz, "killed by signal %d", WTERMSIG(status));
        return EXEC_LATER;
    }
    code = WEXITSTATUS(status);
    if (code == 0) {
        snprintf(out, outsz, "exit status 0");
        return EXEC_DONE;
    }
    if (code == EXEC_CANNOT_RUN || code == EXEC_NOT_FOUND) {
        snprintf(out, outsz, "exit status %d (the command could not be run)", code);
        return EXEC_LATER;
    }
    for (size_t i = 0; i < sizeof sysexits / sizeof sysexits[0]; i++) {
        if (sysexits[i].code == code) {
            snprintf(out, outsz, "exit status %d (%s)", code, sysexits[i].text);
            return sysexits[i].later ? EXEC_LATER : EXEC_PERMANENT;
        }
    }
    snprintf(out, outsz, "exit status %d", code);
    return EXEC_PERMANENT;
}
