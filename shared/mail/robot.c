/*
 * robot.c - parsing and validating robot definitions (see robot.h).
 *
 * The checks here and schemas/robot-v1.json say the same thing in two
 * languages; tests/integration/test_mailrobotctl_robots.py feeds both the
 * same table of documents. Every pattern below is written so that it can be
 * stated exactly as a JSON Schema pattern (no checks a schema cannot make):
 * that is why, for example, the secret is printable ASCII (bytes and
 * characters then count alike) and the URL grammar is a regular language.
 *
 * Adding a kind: an mr_robot_kind value, a row in `kinds` with the parser
 * of its section (the section has the kind's name: "webhook": {...}) and
 * the names of its secret fields, and a branch in the schema.
 */
#include <ctype.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "mailrobot/json_pointer.h"
#include "mailrobot/outbound.h"
#include "mailrobot/robot.h"
#include "mailrobot/units.h"

#define URL_LIMIT 2048
#define SECRET_MIN 16
#define SECRET_LIMIT 1024
#define TIMEOUT_MIN_MS 100
#define TIMEOUT_MAX_MS 3600000
#define CONCURRENCY_MAX 10000

typedef struct kind_def {
    const char *name;            /* the value of "kind" and the name of its section */
    mr_robot_kind kind;
    int (*parse)(json_t *section, mr_robot *robot, mr_err *err);
    const char *const *secrets;  /* fields of the section shown as "(hidden)" */
} kind_def;

static int parse_webhook(json_t *section, mr_robot *robot, mr_err *err);
static int parse_exec(json_t *section, mr_robot *robot, mr_err *err);
static int parse_drop(json_t *section, mr_robot *robot, mr_err *err);
static int parse_autoreply(json_t *section, mr_robot *robot, mr_err *err);
static int parse_forward(json_t *section, mr_robot *robot, mr_err *err);

static const char *const webhook_secrets[] = {"secret", NULL};
static const char *const no_secrets[] = {NULL};

static const kind_def kinds[] = {
    {"webhook", MR_ROBOT_WEBHOOK, parse_webhook, webhook_secrets},
    {"exec", MR_ROBOT_EXEC, parse_exec, no_secrets},
    {"drop", MR_ROBOT_DROP, parse_drop, no_secrets},
    {"autoreply", MR_ROBOT_AUTOREPLY, parse_autoreply, no_secrets},
    {"forward", MR_ROBOT_FORWARD, parse_forward, no_secrets},
};

#define KIND_COUNT (sizeof kinds / sizeof kinds[0])

/* Fields every robot may have, besides its kind's section. */
static const char *const common_fields[] = {"name", "kind", "ordered", "concurrency",
                                            "timeout", "spam", NULL};
static const char *const webhook_fields[] = {"url", "secret", "format", "allow_private",
                                             "actions", NULL};
static const char *const exec_fields[] = {"command", "shell", "user", "group", "directory",
                                          "output", "sandbox", "network", "limits", NULL};
static const char *const no_fields[] = {NULL};
static const char *const autoreply_fields[] = {"subject", "text", "period", NULL};
static const char *const forward_fields[] = {"to", "envelope_sender", "sender", "hop_limit",
                                             NULL};
static const char *const limit_fields[] = {"cpu_seconds", "memory_mb", "files", "processes",
                                           "file_size_mb", "output_kb", NULL};

static int listed(const char *const *names, const char *name)
{
    for (; *names != NULL; names++)
        if (strcmp(*names, name) == 0)
            return 1;
    return 0;
}

static const kind_def *kind_by_name(const char *name)
{
    for (size_t i = 0; i < KIND_COUNT; i++)
        if (strcmp(kinds[i].name, name) == 0)
            return &kinds[i];
    return NULL;
}

/* Fails on the first field of obj (in document order) that is not in
 * allowed (nor, with sections, the name of a kind's section). */
static int reject_unknown(json_t *obj, const char *parent, const char *const *allowed,
                          int sections, mr_err *err)
{
    const char *key;
    json_t *value;
    char pointer[MR_ERR_MAX / 2];

    json_object_foreach(obj, key, value) {
        if (listed(allowed, key) || (sections && kind_by_name(key) != NULL))
            continue;
        mr_json_pointer(pointer, sizeof pointer, parent, key);
        return mr_err_set(err, "%s: unknown field", pointer);
    }
    return 0;
}

int mr_robot_name_valid(const char *name)
{
    static const char first[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    size_t len = strlen(name);

    if (len == 0 || len > MR_ROBOT_NAME_MAX || !strchr(first, name[0]))
        return 0;
    return strspn(name + 1, "abcdefghijklmnopqrstuvwxyz0123456789_.-") == len - 1;
}

/* --- the webhook URL: a regular grammar, the same as the schema's pattern -- */

static int is_alnum(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Host names: labels of 1 to 63 letters, digits and inner hyphens, joined
 * by dots. Returns what follows the host, or NULL. */
static const char *skip_hostname(const char *p)
{
    for (;;) {
        size_t n = 0;

        while (is_alnum((unsigned char)p[n]) || p[n] == '-')
            n++;
        if (n == 0 || n > 63 || p[0] == '-' || p[n - 1] == '-')
            return NULL;
        p += n;
        if (*p != '.')
            return p;
        p++;
    }
}

/* An IPv6 literal, loosely: "[" hex digits, colons and dots "]". */
static const char *skip_ip_literal(const char *p)
{
    size_t n = strspn(p + 1, "0123456789abcdefABCDEF:.");

    return n > 0 && p[1 + n] == ']' ? p + n + 2 : NULL;
}

/* A port: 1 to 65535, no leading zero. */
static const char *skip_port(const char *p)
{
    size_t n = strspn(p, "0123456789");

    if (n == 0 || n > 5 || p[0] == '0' || strtol(p, NULL, 10) > 65535)
        return NULL;
    return p + n;
}

/* Path and query: RFC 3986 unreserved, sub-delims, ":@/?" and %HH. No
 * fragment (it is never sent). */
static int rest_valid(const char *p)
{
    static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                  "0123456789._~!$&'()*+,;=:@/?-";

    for (; *p != '\0'; p++) {
        if (*p == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2]))
            p += 2;
        else if (!strchr(allowed, *p))
            return 0;
    }
    return 1;
}

static int url_valid(const char *url)
{
    const char *p;

    if (strncmp(url, "http://", 7) == 0)
        p = url + 7;
    else if (strncmp(url, "https://", 8) == 0)
        p = url + 8;
    else
        return 0;
    p = *p == '[' ? skip_ip_literal(p) : skip_hostname(p);
    if (p != NULL && *p == ':')
        p = skip_port(p + 1);
    if (p == NULL)
        return 0;
    return *p == '\0' || ((*p == '/' || *p == '?') && rest_valid(p + 1));
}

/* --- fields ----------------------------------------------------------------- */

static int printable_ascii(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p < 0x20 || *p > 0x7e)
            return 0;
    return 1;
}

static int copy_string(char **out, const char *value, mr_err *err)
{
    *out = strdup(value);
    return *out ? 0 : mr_err_set(err, "out of memory");
}

/* A string field: its pointer, length bounds in bytes, what else it must
 * be, and what to say when it is not. */
typedef struct string_rule {
    const char *pointer;
    size_t min, max;
    int (*valid)(const char *value);
    const char *expected;   /* when not a string, too short, or not valid */
    const char *invalid;    /* when not valid, if it needs its own words */
} string_rule;

static const string_rule url_rule = {
    "/webhook/url", 1, URL_LIMIT, url_valid, "must be an absolute http:// or https:// URL", NULL,
};
static const string_rule secret_rule = {
    "/webhook/secret", SECRET_MIN, SECRET_LIMIT, printable_ascii,
    "must be a string of at least 16 bytes", "must be printable ASCII",
};

/* A required string field into *out (malloc'd). */
static int parse_string(json_t *value, const string_rule *rule, char **out, mr_err *err)
{
    const char *s = json_string_value(value);

    if (value == NULL)
        return mr_err_set(err, "%s: required", rule->pointer);
    if (s == NULL || strlen(s) < rule->min)
        return mr_err_set(err, "%s: %s", rule->pointer, rule->expected);
    if (strlen(s) > rule->max)
        return mr_err_set(err, "%s: must be at most %zu bytes", rule->pointer, rule->max);
    if (!rule->valid(s))
        return mr_err_set(err, "%s: %s", rule->pointer, rule->invalid ? rule->invalid
                                                                      : rule->expected);
    return copy_string(out, s, err);
}

static int parse_flag(json_t *value, const char *pointer, int *out, mr_err *err);

static int parse_webhook(json_t *section, mr_robot *robot, mr_err *err)
{
    json_t *url = json_object_get(section, "url");
    json_t *secret = json_object_get(section, "secret");
    json_t *format = json_object_get(section, "format");
    json_t *allow_private = json_object_get(section, "allow_private");

    if (!json_is_object(section))
        return mr_err_set(err, "/webhook: must be an object");
    if (reject_unknown(section, "/webhook", webhook_fields, 0, err) < 0
        || parse_string(url, &url_rule, &robot->webhook.url, err) < 0
        || parse_string(secret, &secret_rule, &robot->webhook.secret, err) < 0)
        return -1;
    if (format != NULL) {
        const char *f = json_string_value(format);

        if (f == NULL || (strcmp(f, "json") != 0 && strcmp(f, "raw") != 0))
            return mr_err_set(err, "/webhook/format: must be \"json\" or \"raw\"");
        robot->webhook.format = strcmp(f, "raw") == 0 ? MR_WEBHOOK_RAW : MR_WEBHOOK_JSON;
    }
    if (allow_private != NULL && !json_is_boolean(allow_private))
        return mr_err_set(err, "/webhook/allow_private: must be true or false");
    robot->webhook.allow_private = json_is_true(allow_private);
    return parse_flag(json_object_get(section, "actions"), "/webhook/actions",
                      &robot->webhook.actions, err);
}

/* --- exec ----------------------------------------------------------------- */

/* Printable ASCII and tabs, with at least one character that is not blank
 * (as in /etc/aliases: the part after '|'). */
static int command_valid(const char *s)
{
    int visible = 0;

    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p < 0x20 && *p != '\t') || *p > 0x7e)
            return 0;
        visible |= *p != ' ' && *p != '\t';
    }
    return visible;
}

static int account_valid(const char *s)
{
    return (s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z'))
           && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(s);
}

static int directory_valid(const char *s)
{
    if (s[0] != '/')
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p <= 0x20 || *p > 0x7e)
            return 0;
    return 1;
}

static const string_rule command_rule = {
    "/exec/command", 1, 4096, command_valid,
    "must be a command line of printable ASCII (at most 4096 bytes)", NULL,
};
static const string_rule user_rule = {
    "/exec/user", 1, 32, account_valid, "must be a user name like mailrobot", NULL,
};
static const string_rule group_rule = {
    "/exec/group", 1, 32, account_valid, "must be a group name like mailrobot", NULL,
};
static const string_rule directory_rule = {
    "/exec/directory", 1, 1024, directory_valid,
    "must be an absolute path of printable ASCII without blanks", NULL,
};

/* An optional string field into *out. */
static int parse_optional_string(json_t *value, const string_rule *rule, char **out,
                                 mr_err *err)
{
    return value == NULL ? 0 : parse_string(value, rule, out, err);
}

/* An optional choice: *out is the index of value in choices (NULL-terminated). */
static int parse_choice(json_t *value, const char *pointer, const char *const *choices,
                        int *out, mr_err *err)
{
    const char *s = json_string_value(value);
    char names[128];
    size_t n = 0;

    if (value == NULL)
        return 0;
    for (int i = 0; s != NULL && choices[i] != NULL; i++) {
        if (strcmp(s, choices[i]) == 0) {
            *out = i;
            return 0;
        }
    }
    names[0] = '\0';
    for (int i = 0; choices[i] != NULL && n < sizeof names; i++)
        n += (size_t)snprintf(names + n, sizeof names - n, "%s\"%s\"", i ? ", " : "", choices[i]);
    return mr_err_set(err, "%s: must be one of %s", pointer, names);
}

static int parse_flag(json_t *value, const char *pointer, int *out, mr_err *err)
{
    if (value == NULL)
        return 0;
    if (!json_is_boolean(value))
        return mr_err_set(err, "%s: must be true or false", pointer);
    *out = json_is_true(value);
    return 0;
}

/* An integer limit (JSON numbers, as in JSON Schema: 8.0 is 8). */
typedef struct limit_rule {
    const char *name;
    int64_t min, max;
    size_t offset;  /* within mr_robot */
} limit_rule;

static const limit_rule limit_rules[] = {
    {"cpu_seconds", 1, 86400, offsetof(mr_robot, exec.cpu_seconds)},
    {"memory_mb", 16, 65536, offsetof(mr_robot, exec.memory_mb)},
    {"files", 16, 65536, offsetof(mr_robot, exec.files)},
    {"processes", 1, 4096, offsetof(mr_robot, exec.processes)},
    {"file_size_mb", 1, 65536, offsetof(mr_robot, exec.file_size_mb)},
    {"output_kb", 1, 524288, offsetof(mr_robot, exec.output_kb)},
};

static int parse_limits(json_t *limits, mr_robot *robot, mr_err *err)
{
    if (limits == NULL)
        return 0;
    if (!json_is_object(limits))
        return mr_err_set(err, "/exec/limits: must be an object");
    if (reject_unknown(limits, "/exec/limits", limit_fields, 0, err) < 0)
        return -1;
    for (size_t i = 0; i < sizeof limit_rules / sizeof limit_rules[0]; i++) {
        const limit_rule *r = &limit_rules[i];
        json_t *value = json_object_get(limits, r->name);
        double v = json_is_number(value) ? json_number_value(value) : 0;

        if (value == NULL)
            continue;
        if (!json_is_number(value) || v != floor(v) || v < (double)r->min || v > (double)r->max)
            return mr_err_set(err, "/exec/limits/%s: must be an integer from %lld to %lld",
                              r->name, (long long)r->min, (long long)r->max);
        *(int64_t *)((char *)robot + r->offset) = (int64_t)v;
    }
    return 0;
}

static int parse_exec(json_t *section, mr_robot *robot, mr_err *err)
{
    static const char *const outputs[] = {"ignore", "reply", "actions", NULL};
    static const char *const sandboxes[] = {"none", "bwrap", NULL};
    int output = 0, sandbox = 0;

    if (!json_is_object(section))
        return mr_err_set(err, "/exec: must be an object");
    if (reject_unknown(section, "/exec", exec_fields, 0, err) < 0
        || parse_string(json_object_get(section, "command"), &command_rule,
                        &robot->exec.command, err) < 0
        || parse_flag(json_object_get(section, "shell"), "/exec/shell", &robot->exec.shell,
                      err) < 0
        || parse_optional_string(json_object_get(section, "user"), &user_rule,
                                 &robot->exec.user, err) < 0
        || parse_optional_string(json_object_get(section, "group"), &group_rule,
                                 &robot->exec.group, err) < 0
        || parse_optional_string(json_object_get(section, "directory"), &directory_rule,
                                 &robot->exec.directory, err) < 0
        || parse_choice(json_object_get(section, "output"), "/exec/output", outputs, &output,
                        err) < 0
        || parse_choice(json_object_get(section, "sandbox"), "/exec/sandbox", sandboxes,
                        &sandbox, err) < 0
        || parse_flag(json_object_get(section, "network"), "/exec/network",
                      &robot->exec.network, err) < 0
        || parse_limits(json_object_get(section, "limits"), robot, err) < 0)
        return -1;
    robot->exec.output = (mr_exec_output)output;
    robot->exec.sandbox = (mr_exec_sandbox)sandbox;
    return 0;
}

static int parse_name(json_t *value, mr_robot *robot, mr_err *err)
{
    const char *name = json_string_value(value);

    if (value == NULL)
        return mr_err_set(err, "/name: required");
    if (name == NULL || !mr_robot_name_valid(name))
        return mr_err_set(err, "/name: must match [a-z0-9][a-z0-9_.-]{0,63}");
    snprintf(robot->name, sizeof robot->name, "%s", name);
    return 0;
}

const char *mr_robot_kind_name(mr_robot_kind kind)
{
    for (size_t i = 0; i < KIND_COUNT; i++)
        if (kinds[i].kind == kind)
            return kinds[i].name;
    return "?";
}

/* Lists the known kinds into out, for the message about an unknown one. */
static void kind_names(char *out, size_t outsz)
{
    size_t n = 0;

    out[0] = '\0';
    for (size_t i = 0; i < KIND_COUNT && n < outsz; i++)
        n += (size_t)snprintf(out + n, outsz - n, "%s\"%s\"", i ? ", " : "", kinds[i].name);
}

static const kind_def *parse_kind(json_t *value, mr_robot *robot, mr_err *err)
{
    const kind_def *kind;
    char names[128];

    if (value == NULL) {
        mr_err_set(err, "/kind: required");
        return NULL;
    }
    kind = json_is_string(value) ? kind_by_name(json_string_value(value)) : NULL;
    if (kind == NULL) {
        kind_names(names, sizeof names);
        mr_err_set(err, "/kind: must be one of %s", names);
        return NULL;
    }
    robot->kind = kind->kind;
    return kind;
}

static int parse_ordered(json_t *value, mr_robot *robot, mr_err *err)
{
    if (value == NULL || json_is_true(value))
        robot->ordered = MR_ORDER_KEY;
    else if (json_is_false(value))
        robot->ordered = MR_ORDER_NONE;
    else if (json_is_string(value) && strcmp(json_string_value(value), "strict") == 0)
        robot->ordered = MR_ORDER_STRICT;
    else
        return mr_err_set(err, "/ordered: must be true, false or \"strict\"");
    return 0;
}

/* JSON has numbers, not integers: 8, 8.0 and 8e0 are the same integer (as
 * in JSON Schema). */
static int parse_concurrency(json_t *value, mr_robot *robot, mr_err *err)
{
    double v = json_is_number(value) ? json_number_value(value) : 0;

    if (value == NULL)
        return 0;
    if (!json_is_number(value) || v != floor(v) || v < 1 || v > CONCURRENCY_MAX)
        return mr_err_set(err, "/concurrency: must be an integer from 1 to %d",
                          CONCURRENCY_MAX);
    robot->concurrency = (int64_t)v;
    return 0;
}

static int parse_timeout(json_t *value, mr_robot *robot, mr_err *err)
{
    const char *text = json_string_value(value);
    mr_err why;

    if (value == NULL)
        return 0;
    if (text == NULL || strlen(text) > 32 || !printable_ascii(text))
        return mr_err_set(err, "/timeout: must be a duration from 100ms to 1h, like \"10s\"");
    if (mr_parse_duration(text, &robot->timeout_ms, &why) < 0)
        return mr_err_set(err, "/timeout: %s", why.msg);
    if (robot->timeout_ms < TIMEOUT_MIN_MS || robot->timeout_ms > TIMEOUT_MAX_MS)
        return mr_err_set(err, "/timeout: '%s' is out of range: must be from 100ms to 1h",
                          text);
    return 0;
}

/* --- drop, autoreply ------------------------------------------------------ */

static int parse_drop(json_t *section, mr_robot *robot, mr_err *err)
{
    if (section == NULL)
        return 0;   /* optional */
    if (!json_is_object(section))
        return mr_err_set(err, "/drop: must be an object");
    return reject_unknown(section, "/drop", no_fields, 0, err);
}

/* Characters (code points) of valid UTF-8, as JSON Schema counts them. */
static size_t utf8_chars(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

static int template_string(json_t *value, const char *pointer, size_t max, int one_line,
                           char **out, mr_err *err)
{
    const char *s = json_string_value(value);

    if (value == NULL)
        return 0;
    if (s == NULL || s[0] == '\0' || utf8_chars(s) > max)
        return mr_err_set(err, "%s: must be a string of 1 to %zu characters", pointer, max);
    for (const unsigned char *p = (const unsigned char *)s; one_line && *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return mr_err_set(err, "%s: must not hold control characters (line breaks, tabs)",
                              pointer);
    return copy_string(out, s, err);
}

/* 1m to 365d in minutes, hours or days. */
static int parse_period(json_t *value, int64_t *out, mr_err *err)
{
    const char *text = json_string_value(value);
    size_t len;
    mr_err why;

    *out = 7LL * 86400000;
    if (value == NULL)
        return 0;
    len = text ? strlen(text) : 0;
    if (text == NULL || len < 2 || len > 32 || strchr("mhd", text[len - 1]) == NULL
        || mr_parse_duration(text, out, &why) < 0 || *out < 60000LL
        || *out > 365LL * 86400000)
        return mr_err_set(err, "/autoreply/period: must be minutes, hours or days "
                          "(m, h, d) from 1m to 365d");
    return 0;
}

static int parse_autoreply(json_t *section, mr_robot *robot, mr_err *err)
{
    if (!json_is_object(section))
        return mr_err_set(err, "/autoreply: must be an object");
    if (reject_unknown(section, "/autoreply", autoreply_fields, 0, err) < 0
        || template_string(json_object_get(section, "subject"), "/autoreply/subject", 900, 1,
                           &robot->autoreply.subject, err) < 0)
        return -1;
    if (json_object_get(section, "text") == NULL)
        return mr_err_set(err, "/autoreply/text: required");
    if (template_string(json_object_get(section, "text"), "/autoreply/text", 65536, 0,
                        &robot->autoreply.text, err) < 0)
        return -1;
    return parse_period(json_object_get(section, "period"), &robot->autoreply.period_ms, err);
}

/* --- forward -------------------------------------------------------------- */

_Static_assert(MR_FORWARD_TO_LIMIT <= MR_RCPT_LIMIT, "a forward is one outbound mail");

static int parse_forward_to(json_t *to, mr_robot *robot, mr_err *err)
{
    size_t count = json_array_size(to);

    if (to == NULL)
        return mr_err_set(err, "/forward/to: required");
    if (!json_is_array(to) || count == 0 || count > MR_FORWARD_TO_LIMIT)
        return mr_err_set(err, "/forward/to: must be a list of 1 to %d addresses",
                          MR_FORWARD_TO_LIMIT);
    if ((robot->forward.to = calloc(count, sizeof *robot->forward.to)) == NULL)
        return mr_err_set(err, "out of memory");
    for (size_t i = 0; i < count; i++) {
        const char *address = json_string_value(json_array_get(to, i));

        if (address == NULL || !mr_address_valid(address))
            return mr_err_set(err, "/forward/to/%zu: not an email address", i);
        if (copy_string(&robot->forward.to[i], address, err) < 0)
            return -1;
        robot->forward.to_count++;
    }
    return 0;
}

/* "sender": required with envelope_sender "fixed", an error without. */
static int parse_forward_sender(json_t *value, mr_robot *robot, mr_err *err)
{
    const char *address = json_string_value(value);
    int fixed = robot->forward.envelope_sender == MR_ENVELOPE_SENDER_FIXED;

    if (value == NULL)
        return fixed ? mr_err_set(err, "/forward/sender: required with envelope_sender "
                                  "\"fixed\"") : 0;
    if (!fixed)
        return mr_err_set(err, "/forward/sender: only with envelope_sender \"fixed\"");
    if (address == NULL || !mr_address_valid(address))
        return mr_err_set(err, "/forward/sender: not an email address");
    return copy_string(&robot->forward.sender, address, err);
}

static int parse_hop_limit(json_t *value, mr_robot *robot, mr_err *err)
{
    double v = json_is_number(value) ? json_number_value(value) : 0;

    robot->forward.hop_limit = MR_FORWARD_HOP_LIMIT;
    if (value == NULL)
        return 0;
    if (!json_is_number(value) || v != floor(v) || v < 1 || v > MR_FORWARD_HOP_LIMIT_MAX)
        return mr_err_set(err, "/forward/hop_limit: must be an integer from 1 to %d",
                          MR_FORWARD_HOP_LIMIT_MAX);
    robot->forward.hop_limit = (int64_t)v;
    return 0;
}

static int parse_forward(json_t *section, mr_robot *robot, mr_err *err)
{
    static const char *const modes[] = {"srs", "keep", "fixed", NULL};
    int mode = MR_ENVELOPE_SENDER_SRS;

    if (!json_is_object(section))
        return mr_err_set(err, "/forward: must be an object");
    if (reject_unknown(section, "/forward", forward_fields, 0, err) < 0
        || parse_forward_to(json_object_get(section, "to"), robot, err) < 0
        || parse_choice(json_object_get(section, "envelope_sender"), "/forward/envelope_sender",
                        modes, &mode, err) < 0)
        return -1;
    robot->forward.envelope_sender = (mr_envelope_sender)mode;
    if (parse_forward_sender(json_object_get(section, "sender"), robot, err) < 0)
        return -1;
    return parse_hop_limit(json_object_get(section, "hop_limit"), robot, err);
}

/* The kind's own section is required; another kind's section is an error. */
static int parse_sections(json_t *root, const kind_def *kind, mr_robot *robot, mr_err *err)
{
    json_t *section = json_object_get(root, kind->name);

    for (size_t i = 0; i < KIND_COUNT; i++)
        if (&kinds[i] != kind && json_object_get(root, kinds[i].name) != NULL)
            return mr_err_set(err, "/%s: only for kind %s", kinds[i].name, kinds[i].name);
    if (section == NULL && kind->kind != MR_ROBOT_DROP)
        return mr_err_set(err, "/%s: required for kind %s", kind->name, kind->name);
    return kind->parse(section, robot, err);
}

static int parse_spam(json_t *value, mr_robot *robot, mr_err *err)
{
    static const char *const policies[] = {"deliver", "tag", "skip", NULL};
    int policy = MR_SPAM_DELIVER;

    if (parse_choice(value, "/spam", policies, &policy, err) < 0)
        return -1;
    robot->spam = (mr_spam_policy)policy;
    return 0;
}

static int parse_root(json_t *root, mr_robot *robot, mr_err *err)
{
    const kind_def *kind;

    if (!json_is_object(root))
        return mr_err_set(err, "/: not a JSON object");
    if (reject_unknown(root, "", common_fields, 1, err) < 0
        || parse_name(json_object_get(root, "name"), robot, err) < 0)
        return -1;
    kind = parse_kind(json_object_get(root, "kind"), robot, err);
    if (kind == NULL || parse_ordered(json_object_get(root, "ordered"), robot, err) < 0
        || parse_concurrency(json_object_get(root, "concurrency"), robot, err) < 0
        || parse_timeout(json_object_get(root, "timeout"), robot, err) < 0
        || parse_spam(json_object_get(root, "spam"), robot, err) < 0)
        return -1;
    return parse_sections(root, kind, robot, err);
}

int mr_robot_parse(const char *json, size_t len, mr_robot *robot, mr_err *err)
{
    json_error_t jerr;
    json_t *root;
    int rc;

    memset(robot, 0, sizeof *robot);
    root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return mr_err_set(err, "/: not a JSON object (line %d, column %d: %s)", jerr.line,
                          jerr.column, jerr.text);
    rc = parse_root(root, robot, err);
    json_decref(root);
    if (rc == 0 && (robot->json = malloc(len + 1)) == NULL)
        rc = mr_err_set(err, "out of memory");
    if (rc < 0) {
        mr_robot_free(robot);
        return -1;
    }
    memcpy(robot->json, json, len);
    robot->json[len] = '\0';
    return 0;
}

char *mr_robot_redacted_json(const mr_robot *robot)
{
    json_t *root = json_loads(robot->json, 0, NULL);
    char *out;

    if (root == NULL)
        return NULL;
    for (size_t i = 0; i < KIND_COUNT; i++) {
        json_t *section = json_object_get(root, kinds[i].name);

        for (const char *const *s = kinds[i].secrets; json_is_object(section) && *s; s++)
            if (json_object_get(section, *s) != NULL)
                json_object_set_new(section, *s, json_string("(hidden)"));
    }
    out = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    return out;
}

void mr_robot_free(mr_robot *robot)
{
    free(robot->webhook.url);
    free(robot->webhook.secret);
    free(robot->exec.command);
    free(robot->exec.user);
    free(robot->exec.group);
    free(robot->exec.directory);
    free(robot->autoreply.subject);
    free(robot->autoreply.text);
    for (size_t i = 0; i < robot->forward.to_count; i++)
        free(robot->forward.to[i]);
    free(robot->forward.to);
    free(robot->forward.sender);
    free(robot->json);
    memset(robot, 0, sizeof *robot);
}
