/*
 * NAME
 *      mailrobotctl - manage a mailrobot installation
 *
 * SYNOPSIS
 *      mailrobotctl [-C FILE] COMMAND [ARGS...]
 *
 *      mailrobotctl config check        validate the configuration
 *      mailrobotctl config show         print every key's effective value
 *      mailrobotctl config doc          print docs/configuration.md
 *      mailrobotctl kafka init          create the topics (safe to repeat)
 *      mailrobotctl kafka topics        list the topics this config uses
 *      mailrobotctl kafka read [OPTIONS]  print records of a topic
 *      mailrobotctl robot apply|validate|list|show|delete ...   robots (Redis)
 *      mailrobotctl route add|del|list|show ...                  routes (Redis)
 *      mailrobotctl dlq list|show ID|replay ID|--all            dead letters
 *      mailrobotctl replay --from TIME [--to TIME] [--robot R]   re-run the log
 *      mailrobotctl tail [--json]         follow delivery events
 *      mailrobotctl mime FILE             the JSON a webhook robot would post
 *      mailrobotctl domain|account|alias ...   the hosted-mail directory (Redis)
 *      mailrobotctl backup [--account A]  the directory as JSON; restore FILE|-
 *
 * DESCRIPTION
 *      One tool for operators, in the spirit of kcat: -h fits a screen,
 *      settings come from the same configuration as the daemons (-C FILE,
 *      $MAILROBOT_CONFIG or /etc/mailrobot/mailrobot.conf, environment
 *      overrides), and kafka.* settings pass through to librdkafka.
 *
 * DIAGNOSTICS
 *      Exit 0 on success, 1 when the operation failed (one line on stderr
 *      says what and where), 2 for a bad command line. Log lines (JSON) go
 *      to stderr, or to log_file if set.
 *
 * SEE ALSO
 *      docs/configuration.md, docs/operations.md, docs/redis.md, docs/accounts.md,
 *      docs/robots/webhook.md, SPEC §4-§7.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ctl.h"

extern char **environ;

static const char usage_text[] =
    "usage: mailrobotctl [-C FILE] COMMAND [ARGS...]\n"
    "\n"
    "  config check               validate the configuration and kafka.* settings\n"
    "  config show                print the effective value of every key\n"
    "  config doc                 print the configuration reference (Markdown)\n"
    "  kafka init [--timeout D]   create the topics of SPEC §4; safe to repeat\n"
    "  kafka topics               list the topic names this configuration uses\n"
    "  kafka read [--topic T] [--from beginning|end] [--tail N] [--count N]\n"
    "             [--header NAME=VALUE] [--timeout D] [--value]\n"
    "                             print records (key, headers, value) of a topic;\n"
    "                             T is a suffix (inbound, dead, ...) or a full name;\n"
    "                             --header keeps records with that header value\n"
    "\n"
    "  robot apply FILE.json|-    validate a robot and store it (schemas/robot-v1.json)\n"
    "  robot validate FILE.json|- check a robot document only (no Redis)\n"
    "  robot list                 one line per robot: name, kind, url, ordering\n"
    "  robot show NAME            the robot's document, secrets hidden\n"
    "  robot delete NAME [--force]  refused while routes point to it, unless --force\n"
    "  route add ADDRESS ROBOT    ADDRESS: local@domain, local+ext@domain, @domain, *\n"
    "  route del ADDRESS          remove a route\n"
    "  route list                 every route (address -> robot), sorted\n"
    "  route show RECIPIENT       the route and robot a recipient gets (SPEC §6)\n"
    "\n"
    "  dlq list [--limit N]       the newest N dead letters (default 100)\n"
    "  dlq show ID                the newest dead letter with that mr.id, in full\n"
    "  dlq replay ID|--all        put dead letters back on inbound (dedupe applies)\n"
    "  replay --from TIME [--to TIME] [--topic T] [--robot R]\n"
    "                             deliver again the records of T (default inbound)\n"
    "                             with timestamps in [from, to); TIME is RFC 3339,\n"
    "                             -DURATION (-2h) or now; R skips routing\n"
    "                             (dlq and replay also take --timeout D)\n"
    "  tail [--from beginning|end] [--json] [--count N]\n"
    "                             follow the delivery events until ^C\n"
    "  mime [--recipient A] [--robot R] ... FILE|-\n"
    "                             the JSON a webhook robot would post for a message\n"
    "\n"
    "  domain add|remove DOMAIN   hosted domains; domain list; domain catch-all\n"
    "             DOMAIN [TARGET|--none]\n"
    "  account create|remove|list|show|passwd|recovery|own|check|reset-start|\n"
    "          reset-finish ...   accounts (passwords on stdin, never in argv);\n"
    "                             'mailrobotctl account' for the details\n"
    "  alias set ADDRESS TARGET...|remove ADDRESS|list [DOMAIN]|show ADDRESS\n"
    "  backup [--account A]       the directory as JSON (schemas/backup-v1.json)\n"
    "  restore FILE|-             validate a backup, then write all of it\n"
    "\n"
    "  -C FILE    configuration file (default $MAILROBOT_CONFIG, then\n"
    "             /etc/mailrobot/mailrobot.conf)\n"
    "  -h         this help;  -V  version\n";

void ctl_error(const char *fmt, ...)
{
    va_list ap;

    fputs("mailrobotctl: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static int usage(void)
{
    fputs(usage_text, stderr);
    return CTL_USAGE;
}

static void open_log(ctl_context *ctx)
{
    int fd = STDERR_FILENO;

    if (ctx->cfg.log_file[0] != '\0') {
        fd = open(ctx->cfg.log_file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (fd < 0)
            fd = STDERR_FILENO;
    }
    mr_logger_init(&ctx->log, "mailrobotctl", (mr_log_level)ctx->cfg.log_level, fd);
    ctx->kafka.log = &ctx->log;
}

static const struct {
    const char *name;
    int (*run)(ctl_context *ctx, int argc, char **argv);
} commands[] = {
    {"config", ctl_config}, {"kafka", ctl_kafka}, {"robot", ctl_robot},
    {"route", ctl_route},   {"dlq", ctl_dlq},     {"replay", ctl_replay},
    {"tail", ctl_tail},     {"mime", ctl_mime},     {"domain", ctl_domain},
    {"account", ctl_account}, {"alias", ctl_alias}, {"backup", ctl_backup},
    {"restore", ctl_restore},
};

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    ctl_context ctx;
    mr_err err;
    int i = 1, status;

    memset(&ctx, 0, sizeof ctx);
    while (i < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "-C") == 0 && i + 1 < argc) {
            config_path = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "-V") == 0) {
            puts("mailrobotctl " MAILROBOT_VERSION);
            return CTL_OK;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            fputs(usage_text, stdout);
            return CTL_OK;
        } else {
            ctl_error("unknown option '%s'", argv[i]);
            return usage();
        }
    }
    if (i >= argc || (i + 1 >= argc && strcmp(argv[i], "tail") != 0
                      && strcmp(argv[i], "backup") != 0))
        return usage();
    if (mr_config_load(&ctx.cfg, config_path, environ, &err) < 0) {
        ctl_error("configuration error: %s", err.msg);
        return CTL_FAILED;
    }
    open_log(&ctx);
    status = -1;
    for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++)
        if (strcmp(argv[i], commands[c].name) == 0)
            status = commands[c].run(&ctx, argc - i - 1, argv + i + 1);
    if (status < 0) {
        ctl_error("unknown command '%s'", argv[i]);
        status = usage();
    }
    mr_audit_free(ctx.audit);
    mr_config_free(&ctx.cfg);
    return status;
}
