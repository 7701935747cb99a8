/*
 * kafka_conf.c - building librdkafka configurations (see kafka.h).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mailrobot/kafka.h"

static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value,
                    const char *origin, mr_err *err)
{
    char errstr[512];

    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
        return mr_err_set(err, "%s: kafka.%s: %s", origin, name, errstr);
    return 0;
}

/* librdkafka spells some values in several ways. */
static int same_value(const char *a, const char *b)
{
    static const char *const all[] = {"all", "-1"};
    int a_all = 0, b_all = 0;

    for (size_t i = 0; i < 2; i++) {
        a_all |= strcasecmp(a, all[i]) == 0;
        b_all |= strcasecmp(b, all[i]) == 0;
    }
    return (a_all && b_all) || strcasecmp(a, b) == 0;
}

/* Refuses a kafka.* setting that would weaken what mailrobot promises. */
static int check_required(const mr_config *cfg, const mr_kafka_property *required, mr_err *err)
{
    for (const mr_kafka_property *r = required; r && r->name; r++)
        for (size_t i = 0; i < cfg->kafka_count; i++)
            if (strcmp(cfg->kafka[i].name, r->name) == 0
                && !same_value(cfg->kafka[i].value, r->value))
                return mr_err_set(err, "%s: kafka.%s = %s: mailrobot requires %s = %s",
                                  cfg->kafka[i].origin, r->name, cfg->kafka[i].value,
                                  r->name, r->value);
    return 0;
}

static const char *severity_level_name(int level)
{
    return level <= 3 ? "error" : level <= 4 ? "warn" : level <= 6 ? "info" : "debug";
}

static void log_cb(const rd_kafka_t *rk, int level, const char *facility, const char *text)
{
    mr_kafka_context *ctx = rd_kafka_opaque(rk);
    mr_log_level ours = level <= 3 ? MR_LOG_ERROR : level <= 5 ? MR_LOG_WARN
                      : level <= 6 ? MR_LOG_INFO : MR_LOG_DEBUG;

    if (ctx == NULL || ctx->log == NULL)
        return;
    /* Shared kafka.* settings meant for the other kind of client. */
    if (strcmp(facility, "CONFWARN") == 0)
        ours = MR_LOG_INFO;
    mr_log(ctx->log, ours, "librdkafka", "facility", facility, "severity",
           severity_level_name(level), "client", rd_kafka_name(rk), "detail", text, NULL);
}

static void error_cb(rd_kafka_t *rk, int code, const char *reason, void *opaque)
{
    mr_kafka_context *ctx = opaque;

    if (ctx == NULL)
        return;
    /* "all brokers down" says less than the connection error before it. */
    if (code != RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN || ctx->last_error[0] == '\0')
        snprintf(ctx->last_error, sizeof ctx->last_error, "%s", reason);
    if (ctx->log != NULL)
        mr_log(ctx->log, MR_LOG_WARN, "kafka error", "code",
               rd_kafka_err2name((rd_kafka_resp_err_t)code), "detail", reason, NULL);
}

rd_kafka_conf_t *mr_kafka_conf_new(const mr_config *cfg, const mr_kafka_property *defaults,
                                   const mr_kafka_property *required, mr_kafka_context *ctx,
                                   mr_err *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *where = cfg->path ? cfg->path : "configuration";

    if (check_required(cfg, required, err) < 0)
        goto fail;
    if (conf_set(conf, "bootstrap.servers", cfg->kafka_brokers, where, err) < 0)
        goto fail;
    for (const mr_kafka_property *d = defaults; d && d->name; d++)
        if (conf_set(conf, d->name, d->value, "built-in default", err) < 0)
            goto fail;
    for (size_t i = 0; i < cfg->kafka_count; i++)
        if (conf_set(conf, cfg->kafka[i].name, cfg->kafka[i].value, cfg->kafka[i].origin,
                     err) < 0)
            goto fail;
    for (const mr_kafka_property *r = required; r && r->name; r++)
        if (conf_set(conf, r->name, r->value, "built-in requirement", err) < 0)
            goto fail;
    rd_kafka_conf_set_opaque(conf, ctx);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}
