/*
 * envelope.c - the envelope of an inbound delivery from pipe(8)'s command
 * line or local(8)'s environment (see envelope.h).
 */
#include <stdlib.h>
#include <string.h>

#include "mailrobot/environ.h"
#include "mailrobot/envelope.h"

/* The options that take one argument, and where it goes. */
static const char **option_slot(mr_ingest_args *args, char letter)
{
    mr_envelope *env = &args->envelope;

    switch (letter) {
    case 'C':
        return &args->config_path;
    case 'f':
        return &env->sender;
    case 'q':
        return &env->queue_id;
    case 'c':
        return &env->client_address;
    case 'h':
        return &env->helo;
    case 's':
        return &env->sasl_username;
    case 'n':
        return &env->client_hostname;
    case 'p':
        return &env->client_protocol;
    case 'm':
        return &env->sasl_method;
    case 'a':
        return &env->sasl_sender;
    default:
        return NULL;
    }
}

static int is_option(const char *arg)
{
    return arg[0] == '-' && arg[1] != '\0';
}

/* Fills the fields that the command line left unset from local(8)'s
 * environment, and the recipient. */
static int envelope_from_local_env(mr_envelope *env, char *const *envp, mr_err *err)
{
    const char *recipient = mr_env_get(envp, "RECIPIENT");
    const char *original = mr_env_get(envp, "ORIGINAL_RECIPIENT");

    if (recipient == NULL || recipient[0] == '\0')
        return mr_err_set(err, "no recipient: expected '-- RECIPIENT...' (pipe(8) argv) "
                               "or RECIPIENT in the environment (local(8) alias)");
    env->recipients = malloc(sizeof *env->recipients);
    env->original_recipients = malloc(sizeof *env->original_recipients);
    if (env->recipients == NULL || env->original_recipients == NULL)
        return mr_err_set(err, "out of memory");
    env->recipients[0] = recipient;
    env->original_recipients[0] = original ? original : "";
    env->recipient_count = 1;
    env->from_local_env = 1;
    if (env->sender == NULL)
        env->sender = mr_env_get(envp, "SENDER");
    if (env->client_address == NULL)
        env->client_address = mr_env_get(envp, "CLIENT_ADDRESS");
    if (env->helo == NULL)
        env->helo = mr_env_get(envp, "CLIENT_HELO");
    if (env->sasl_username == NULL)
        env->sasl_username = mr_env_get(envp, "SASL_USERNAME");
    if (env->client_hostname == NULL)
        env->client_hostname = mr_env_get(envp, "CLIENT_HOSTNAME");
    if (env->client_protocol == NULL)
        env->client_protocol = mr_env_get(envp, "CLIENT_PROTOCOL");
    if (env->sasl_method == NULL)
        env->sasl_method = mr_env_get(envp, "SASL_METHOD");
    if (env->sasl_sender == NULL)
        env->sasl_sender = mr_env_get(envp, "SASL_SENDER");
    if (env->sender == NULL)
        return mr_err_set(err, "no sender: expected -f SENDER or SENDER in the environment");
    return 0;
}

static void default_empty(const char **field)
{
    if (*field == NULL)
        *field = "";
}

int mr_ingest_args_parse(mr_ingest_args *args, int argc, char *const *argv,
                         char *const *envp, mr_err *err)
{
    mr_envelope *env = &args->envelope;
    size_t originals = 0, original_first = 0;
    int i = 1;

    memset(args, 0, sizeof *args);
    while (i < argc && is_option(argv[i])) {
        const char *arg = argv[i];
        const char **slot;

        if (strcmp(arg, "--") == 0) {
            i++;
            break;
        }
        if (arg[2] != '\0')
            return mr_err_set(err, "bad argument '%s': options are single letters "
                                   "followed by a separate value", arg);
        if (arg[1] == 'o') {
            /* One value per recipient: up to the next option or "--". */
            original_first = (size_t)++i;
            while (i < argc && !is_option(argv[i]))
                i++;
            originals = (size_t)i - original_first;
            if (originals == 0)
                return mr_err_set(err, "option -o needs a value");
            continue;
        }
        slot = option_slot(args, arg[1]);
        if (slot == NULL)
            return mr_err_set(err, "unknown option '%s'", arg);
        if (i + 1 >= argc)
            return mr_err_set(err, "option %s needs a value", arg);
        *slot = argv[i + 1];
        i += 2;
    }

    if (i < argc) {
        size_t count = (size_t)(argc - i);

        if (count > MR_MAX_RECIPIENTS)
            return mr_err_set(err, "%zu recipients: more than %d", count, MR_MAX_RECIPIENTS);
        if (originals != 0 && originals != count)
            return mr_err_set(err, "%zu original recipients (-o) for %zu recipients",
                              originals, count);
        env->recipients = calloc(count, sizeof *env->recipients);
        env->original_recipients = calloc(count, sizeof *env->original_recipients);
        if (env->recipients == NULL || env->original_recipients == NULL)
            return mr_err_set(err, "out of memory");
        for (size_t r = 0; r < count; r++) {
            env->recipients[r] = argv[i + (int)r];
            if (env->recipients[r][0] == '\0')
                return mr_err_set(err, "recipient %zu is empty", r + 1);
            env->original_recipients[r] = originals ? argv[original_first + r] : "";
        }
        env->recipient_count = count;
        if (env->sender == NULL)
            return mr_err_set(err, "no sender: expected -f SENDER");
    } else if (envelope_from_local_env(env, envp, err) < 0) {
        return -1;
    } else if (originals > 1) {
        return mr_err_set(err, "%zu original recipients (-o) for 1 recipient", originals);
    } else if (originals == 1) {
        env->original_recipients[0] = argv[original_first];
    }
    default_empty(&env->queue_id);
    default_empty(&env->client_address);
    default_empty(&env->helo);
    default_empty(&env->sasl_username);
    default_empty(&env->client_hostname);
    default_empty(&env->client_protocol);
    default_empty(&env->sasl_method);
    default_empty(&env->sasl_sender);
    return 0;
}

void mr_ingest_args_free(mr_ingest_args *args)
{
    free(args->envelope.recipients);
    free(args->envelope.original_recipients);
    args->envelope.recipients = NULL;
    args->envelope.original_recipients = NULL;
    args->envelope.recipient_count = 0;
}
