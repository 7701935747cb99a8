/*
 * test_robot.c - robot definitions: good documents, defaults, redaction and
 * the exact message for each bad field (robot.h, schemas/robot-v1.json).
 * Whether robot.c and the schema agree is checked against a JSON Schema
 * validator in tests/integration/test_mailrobotctl_robots.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mailrobot/robot.h"

#define SECRET "whsec_0123456789abcdef"

static int parse(const char *json, mr_robot *robot, mr_err *err)
{
    return mr_robot_parse(json, strlen(json), robot, err);
}

static void full_document(void **state)
{
    const char *json =
        "{\n"
        "  \"name\": \"tickets\",\n"
        "  \"kind\": \"webhook\",\n"
        "  \"ordered\": \"strict\",\n"
        "  \"concurrency\": 8,\n"
        "  \"timeout\": \"10s\",\n"
        "  \"spam\": \"tag\",\n"
        "  \"webhook\": {\n"
        "    \"url\": \"https://app.example.com:8443/hooks/mail?team=a%20b\",\n"
        "    \"secret\": \"" SECRET "\",\n"
        "    \"format\": \"raw\",\n"
        "    \"allow_private\": true\n"
        "  }\n"
        "}\n";
    mr_robot robot;
    mr_err err;

    assert_int_equal(parse(json, &robot, &err), 0);
    assert_string_equal(robot.name, "tickets");
    assert_int_equal(robot.kind, MR_ROBOT_WEBHOOK);
    assert_int_equal(robot.ordered, MR_ORDER_STRICT);
    assert_int_equal(robot.concurrency, 8);
    assert_int_equal(robot.timeout_ms, 10000);
    assert_int_equal(robot.spam, MR_SPAM_TAG);
    assert_string_equal(robot.webhook.url, "https://app.example.com:8443/hooks/mail?team=a%20b");
    assert_string_equal(robot.webhook.secret, SECRET);
    assert_int_equal(robot.webhook.format, MR_WEBHOOK_RAW);
    assert_int_equal(robot.webhook.allow_private, 1);
    assert_string_equal(robot.json, json);
    mr_robot_free(&robot);
}

static void defaults(void **state)
{
    mr_robot robot;
    mr_err err;

    assert_int_equal(parse("{\"name\":\"a\",\"kind\":\"webhook\",\"webhook\":{"
                           "\"url\":\"http://h\",\"secret\":\"" SECRET "\"}}",
                           &robot, &err), 0);
    assert_string_equal(robot.name, "a");
    assert_int_equal(robot.ordered, MR_ORDER_KEY);
    assert_int_equal(robot.concurrency, 0);
    assert_int_equal(robot.timeout_ms, 0);
    assert_int_equal(robot.spam, MR_SPAM_DELIVER);
    assert_int_equal(robot.webhook.format, MR_WEBHOOK_JSON);
    assert_int_equal(robot.webhook.allow_private, 0);
    mr_robot_free(&robot);
}

/* A webhook robot named name with url and extra fields (",..." or ""). */
static const char *document(char *out, size_t outsz, const char *name, const char *url,
                            const char *extra)
{
    snprintf(out, outsz, "{\"name\":\"%s\",\"kind\":\"webhook\",\"webhook\":{"
             "\"url\":\"%s\",\"secret\":\"" SECRET "\"}%s}", name, url, extra);
    return out;
}

static void accept(const char *json)
{
    mr_robot robot;
    mr_err err;

    if (parse(json, &robot, &err) != 0)
        fail_msg("%s: %s", json, err.msg);
    mr_robot_free(&robot);
}

/* Values at the edges of what is allowed. */
static void edges_accepted(void **state)
{
    static const char *const fields[] = {
        ",\"ordered\": false",     ",\"ordered\": true",       ",\"concurrency\": 1",
        ",\"concurrency\": 10000", ",\"concurrency\": 8.0",    ",\"concurrency\": 1e3",
        ",\"timeout\": \"100ms\"", ",\"timeout\": \"1h\"",     ",\"timeout\": \"3600s\"",
        ",\"timeout\": \"60m\"",   ",\"timeout\": \"0030\"",
        ",\"spam\": \"deliver\"",  ",\"spam\": \"tag\"",      ",\"spam\": \"skip\"",
    };
    char json[512];

    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        accept(document(json, sizeof json, "a", "http://h", fields[i]));
    accept(document(json, sizeof json, "0.a_b-c", "http://h", ""));
    accept(document(json, sizeof json,
                    "a123456789012345678901234567890123456789012345678901234567890123",
                    "http://h", ""));
}

static void urls_accepted(void **state)
{
    static const char *const urls[] = {
        "http://localhost",
        "https://a.b-c.example/",
        "http://127.0.0.1:8080/x",
        "http://[::1]:65535/hook",
        "https://h/p/a/t/h?q=1&r=~x;y=(z)*,+!$'@:/?",
        "https://h?only=query",
        "http://h:1",
    };
    char json[512];

    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++)
        accept(document(json, sizeof json, "a", urls[i], ""));
}

static void urls_refused(void **state)
{
    static const char *const urls[] = {
        "ftp://h/",          "HTTP://h/",         "http:/h",           "http://",
        "http://h:0/",       "http://h:65536/",   "http://h:080/",     "http://h:/",
        "http://-h/",        "http://h-/",        "http://h./",        "http://a..b/",
        "http://u:p@h/",     "http://h/#frag",    "http://h/a b",      "http://h/%zz",
        "http://h_1/",       "http://[]/",        "http://[::1/",      "/relative",
        "http://h/\\\"q",    "http://h/\\u00e9",  "http://h\\n",
        "http://a234567890123456789012345678901234567890123456789012345678901234.x/",
    };
    char json[512];
    mr_robot robot;
    mr_err err;

    for (size_t i = 0; i < sizeof urls / sizeof urls[0]; i++) {
        if (parse(document(json, sizeof json, "a", urls[i], ""), &robot, &err) == 0)
            fail_msg("accepted %s", urls[i]);
        assert_string_equal(err.msg, "/webhook/url: must be an absolute http:// or https:// URL");
    }
}

/* Each bad document and the exact message it must produce. */
static void errors_name_the_field(void **state)
{
#define HOOK "\"webhook\":{\"url\":\"http://h\",\"secret\":\"" SECRET "\"}"
#define BASE "\"name\":\"a\",\"kind\":\"webhook\""
    static const struct {
        const char *json;
        const char *error;
    } cases[] = {
        {"[]", "/: not a JSON object"},
        {"\"robot\"", "/: not a JSON object (line 1, column 7: '[' or '{' expected near "
                      "'\"robot\"')"},
        {"{\n  \"name\": \"a\",\n  \"kind\" 5\n}",
         "/: not a JSON object (line 3, column 10: ':' expected near '5')"},
        {"{\"name\":\"a\",\"name\":\"b\"}",
         "/: not a JSON object (line 1, column 18: duplicate object key near '\"name\"')"},
        {"", "/: not a JSON object (line 1, column 0: '[' or '{' expected near end of file)"},
        {"{" BASE ",\"colour\":\"red\"," HOOK "}", "/colour: unknown field"},
        {"{" BASE ",\"a/b~c\":1," HOOK "}", "/a~1b~0c: unknown field"},
        {"{" BASE ",\"x\\ny\":1," HOOK "}", "/x\\x0ay: unknown field"},
        {"{\"kind\":\"webhook\"," HOOK "}", "/name: required"},
        {"{\"name\":\"Tickets\",\"kind\":\"webhook\"," HOOK "}",
         "/name: must match [a-z0-9][a-z0-9_.-]{0,63}"},
        {"{\"name\":\"_a\",\"kind\":\"webhook\"," HOOK "}",
         "/name: must match [a-z0-9][a-z0-9_.-]{0,63}"},
        {"{\"name\":\"a1234567890123456789012345678901234567890123456789012345678901234\","
         "\"kind\":\"webhook\"," HOOK "}",
         "/name: must match [a-z0-9][a-z0-9_.-]{0,63}"},
        {"{\"name\":7,\"kind\":\"webhook\"," HOOK "}",
         "/name: must match [a-z0-9][a-z0-9_.-]{0,63}"},
        {"{\"name\":\"a\"," HOOK "}", "/kind: required"},
        {"{\"name\":\"a\",\"kind\":\"exec\"," HOOK "}", "/webhook: only for kind webhook"},
        {"{\"name\":\"a\",\"kind\":\"lua\"," HOOK "}",
         "/kind: must be one of \"webhook\", \"exec\", \"drop\", \"autoreply\", \"forward\""},
        {"{\"name\":\"a\",\"kind\":\"autoreply\",\"autoreply\":{\"text\":\"x\",\"period\":\"30s\"}}",
         "/autoreply/period: must be minutes, hours or days (m, h, d) from 1m to 365d"},
        {"{\"name\":\"a\",\"kind\":\"autoreply\",\"autoreply\":{\"subject\":\"a\\tb\",\"text\":\"x\"}}",
         "/autoreply/subject: must not hold control characters (line breaks, tabs)"},
        {"{\"name\":\"a\",\"kind\":\"drop\",\"drop\":[]}", "/drop: must be an object"},
        {"{\"name\":\"a\",\"kind\":\"forward\"}", "/forward: required for kind forward"},
        {"{\"name\":\"a\",\"kind\":\"forward\",\"forward\":[]}", "/forward: must be an object"},
        {"{\"name\":\"a\",\"kind\":\"drop\",\"forward\":{}}", "/forward: only for kind forward"},
        {"{\"name\":\"a\",\"kind\":\"forward\",\"forward\":{}}", "/forward/to: required"},
        {"{\"name\":\"a\",\"kind\":\"forward\",\"forward\":{\"to\":[]}}",
         "/forward/to: must be a list of 1 to 50 addresses"},
        {"{\"name\":\"a\",\"kind\":\"forward\",\"forward\":{\"to\":\"b@x.test\"}}",
         "/forward/to: must be a list of 1 to 50 addresses"},
        {"{\"name\":\"a\",\"kind\":\"forward\",\"forward\":{\"to\":[\"b@x.test\",\"b\"]}}",
         "/forward/to/1: not an email address"},
        {"{\"name\":\"a\",\"kind\":\"forward\",\"forward\":{\"to\":[\"Bob <b@x.test>\"]}}",
         "/forward/to/0: not an email address"},
        {"{\"name\":\"a\",\"kind\":\"forward\",\"forward\":{\"to\":[7]}}",
         "/forward/to/0: not an email address"},
        {"{\"name\":\"a\",\"kind\":\"forward\",\"forward\":{\"to\":[\"b@x.test\"],"
         "\"envelope_sender\":\"original\"}}",
         "/forward/envelope_sender: must be one of \"srs\", \"keep\", \"fixed\""},
        {"{\"name\":\"a\",\"kind\":\"forward\",\"forward\":{\"to\":[\"b@x.test\"],"
         "\"envelope_sender\":\"fixed\"}}",
         "/forward/sender: required with envelope_sender \"fixed\""},
        {"{\"name\":\"a\",\"kind\":\"forward\",\"forward\":{\"to\":[\"b@x.test\"],"
         "\"sender\":\"c@x.test\"}}",
         "/forward/sender: only with envelope_sender \"fixed\""},
        {"{\"name\":\"a\",\"kind\":\"forward\",\"forward\":{\"to\":[\"b@x.test\"],"
         "\"envelope_sender\":\"keep\",\"sender\":\"c@x.test\"}}",
         "/forward/sender: only with envelope_sender \"fixed\""},
        {"{\"name\":\"a\",\"kind\":\"forward\",\"forward\":{\"to\":[\"b@x.test\"],"
         "\"envelope_sender\":\"fixed\",\"sender\":\"\"}}",
         "/forward/sender: not an email address"},
        {"{\"name\":\"a\",\"kind\":\"forward\",\"forward\":{\"to\":[\"b@x.test\"],"
         "\"hop_limit\":0}}",
         "/forward/hop_limit: must be an integer from 1 to 100"},
        {"{\"name\":\"a\",\"kind\":\"forward\",\"forward\":{\"to\":[\"b@x.test\"],"
         "\"hop_limit\":101}}",
         "/forward/hop_limit: must be an integer from 1 to 100"},
        {"{\"name\":\"a\",\"kind\":\"forward\",\"forward\":{\"to\":[\"b@x.test\"],"
         "\"hop_limit\":2.5}}",
         "/forward/hop_limit: must be an integer from 1 to 100"},
        {"{\"name\":\"a\",\"kind\":\"forward\",\"forward\":{\"to\":[\"b@x.test\"],"
         "\"hop_limit\":\"25\"}}",
         "/forward/hop_limit: must be an integer from 1 to 100"},
        {"{\"name\":\"a\",\"kind\":\"forward\",\"forward\":{\"to\":[\"b@x.test\"],"
         "\"cc\":[\"c@x.test\"]}}",
         "/forward/cc: unknown field"},
        {"{\"name\":\"a\",\"kind\":\"exec\"}", "/exec: required for kind exec"},
        {"{\"name\":\"a\",\"kind\":\"exec\",\"exec\":{}}", "/exec/command: required"},
        {"{\"name\":\"a\",\"kind\":\"exec\",\"exec\":{\"command\":\"a\\nb\"}}",
         "/exec/command: must be a command line of printable ASCII (at most 4096 bytes)"},
        {"{\"name\":\"a\",\"kind\":\"exec\",\"exec\":{\"command\":\"  \"}}",
         "/exec/command: must be a command line of printable ASCII (at most 4096 bytes)"},
        {"{\"name\":\"a\",\"kind\":\"exec\",\"exec\":{\"command\":\"x\",\"user\":\"Root\"}}",
         "/exec/user: must be a user name like mailrobot"},
        {"{\"name\":\"a\",\"kind\":\"exec\",\"exec\":{\"command\":\"x\",\"directory\":\"rel\"}}",
         "/exec/directory: must be an absolute path of printable ASCII without blanks"},
        {"{\"name\":\"a\",\"kind\":\"exec\",\"exec\":{\"command\":\"x\",\"output\":\"mail\"}}",
         "/exec/output: must be one of \"ignore\", \"reply\", \"actions\""},
        {"{\"name\":\"a\",\"kind\":\"exec\",\"exec\":{\"command\":\"x\",\"limits\":{\"files\":8}}}",
         "/exec/limits/files: must be an integer from 16 to 65536"},
        {"{\"name\":\"a\",\"kind\":\"exec\",\"exec\":{\"command\":\"x\",\"limits\":{\"swap\":8}}}",
         "/exec/limits/swap: unknown field"},
        {"{" BASE ",\"ordered\":\"yes\"," HOOK "}", "/ordered: must be true, false or \"strict\""},
        {"{" BASE ",\"ordered\":1," HOOK "}", "/ordered: must be true, false or \"strict\""},
        {"{" BASE ",\"spam\":\"drop\"," HOOK "}",
         "/spam: must be one of \"deliver\", \"tag\", \"skip\""},
        {"{" BASE ",\"spam\":true," HOOK "}",
         "/spam: must be one of \"deliver\", \"tag\", \"skip\""},
        {"{" BASE ",\"concurrency\":0," HOOK "}", "/concurrency: must be an integer from 1 to 10000"},
        {"{" BASE ",\"concurrency\":10001," HOOK "}",
         "/concurrency: must be an integer from 1 to 10000"},
        {"{" BASE ",\"concurrency\":2.5," HOOK "}",
         "/concurrency: must be an integer from 1 to 10000"},
        {"{" BASE ",\"concurrency\":\"8\"," HOOK "}",
         "/concurrency: must be an integer from 1 to 10000"},
        {"{" BASE ",\"timeout\":\"5x\"," HOOK "}", "/timeout: bad duration '5x': unknown unit 'x'"},
        {"{" BASE ",\"timeout\":\"-5s\"," HOOK "}",
         "/timeout: bad duration '-5s': expected a number with a unit (ms, s, m, h, d)"},
        {"{" BASE ",\"timeout\":\"99ms\"," HOOK "}",
         "/timeout: '99ms' is out of range: must be from 100ms to 1h"},
        {"{" BASE ",\"timeout\":\"61m\"," HOOK "}",
         "/timeout: '61m' is out of range: must be from 100ms to 1h"},
        {"{" BASE ",\"timeout\":10," HOOK "}",
         "/timeout: must be a duration from 100ms to 1h, like \"10s\""},
        {"{" BASE ",\"timeout\":\"1\\ns\"," HOOK "}",
         "/timeout: must be a duration from 100ms to 1h, like \"10s\""},
        {"{" BASE "}", "/webhook: required for kind webhook"},
        {"{" BASE ",\"webhook\":[]}", "/webhook: must be an object"},
        {"{" BASE ",\"webhook\":{\"secret\":\"" SECRET "\"}}", "/webhook/url: required"},
        {"{" BASE ",\"webhook\":{\"url\":\"http://h\"}}", "/webhook/secret: required"},
        {"{" BASE ",\"webhook\":{\"url\":\"http://h\",\"secret\":\"" SECRET "\",\"colour\":1}}",
         "/webhook/colour: unknown field"},
        {"{" BASE ",\"webhook\":{\"url\":\"mailto:x@y\",\"secret\":\"" SECRET "\"}}",
         "/webhook/url: must be an absolute http:// or https:// URL"},
        {"{" BASE ",\"webhook\":{\"url\":null,\"secret\":\"" SECRET "\"}}",
         "/webhook/url: must be an absolute http:// or https:// URL"},
        {"{" BASE ",\"webhook\":{\"url\":\"http://h\",\"secret\":\"short\"}}",
         "/webhook/secret: must be a string of at least 16 bytes"},
        {"{" BASE ",\"webhook\":{\"url\":\"http://h\",\"secret\":1234567890123456789}}",
         "/webhook/secret: must be a string of at least 16 bytes"},
        {"{" BASE ",\"webhook\":{\"url\":\"http://h\",\"secret\":\"0123456789abcde\\u00e9\"}}",
         "/webhook/secret: must be printable ASCII"},
        {"{" BASE ",\"webhook\":{\"url\":\"http://h\",\"secret\":\"" SECRET "\",\"format\":\"xml\"}}",
         "/webhook/format: must be \"json\" or \"raw\""},
        {"{" BASE ",\"webhook\":{\"url\":\"http://h\",\"secret\":\"" SECRET "\","
         "\"allow_private\":\"yes\"}}",
         "/webhook/allow_private: must be true or false"},
        /* Several errors: unknown fields come first, then fields in order. */
        {"{\"name\":\"A\",\"kind\":\"x\",\"colour\":1}", "/colour: unknown field"},
        {"{\"name\":\"A\",\"kind\":\"x\"}", "/name: must match [a-z0-9][a-z0-9_.-]{0,63}"},
    };
#undef HOOK
#undef BASE
    mr_robot robot;
    mr_err err;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&err, 0, sizeof err);
        if (parse(cases[i].json, &robot, &err) == 0)
            fail_msg("accepted %s", cases[i].json);
        if (strcmp(err.msg, cases[i].error) != 0)
            fail_msg("%s\n  got:  %s\n  want: %s", cases[i].json, err.msg, cases[i].error);
        assert_null(robot.json);
        assert_null(robot.webhook.url);
    }
}

static void long_values(void **state)
{
    char url[2100], secret[1100], json[4096];
    mr_robot robot;
    mr_err err;

    memset(url, 'a', sizeof url);
    memcpy(url, "http://h/", 9);
    url[2048] = '\0';
    memset(secret, 's', sizeof secret);
    secret[1024] = '\0';
    snprintf(json, sizeof json, "{\"name\":\"a\",\"kind\":\"webhook\",\"webhook\":{"
             "\"url\":\"%s\",\"secret\":\"%s\"}}", url, secret);
    assert_int_equal(parse(json, &robot, &err), 0);
    mr_robot_free(&robot);

    url[2048] = 'a';
    url[2049] = '\0';
    snprintf(json, sizeof json, "{\"name\":\"a\",\"kind\":\"webhook\",\"webhook\":{"
             "\"url\":\"%s\",\"secret\":\"%.1024s\"}}", url, secret);
    assert_int_equal(parse(json, &robot, &err), -1);
    assert_string_equal(err.msg, "/webhook/url: must be at most 2048 bytes");

    secret[1024] = 's';
    secret[1025] = '\0';
    snprintf(json, sizeof json, "{\"name\":\"a\",\"kind\":\"webhook\",\"webhook\":{"
             "\"url\":\"http://h\",\"secret\":\"%s\"}}", secret);
    assert_int_equal(parse(json, &robot, &err), -1);
    assert_string_equal(err.msg, "/webhook/secret: must be at most 1024 bytes");
}

static void redaction_hides_the_secret(void **state)
{
    const char *json = "{\"name\":\"t\",\"kind\":\"webhook\",\"webhook\":{"
                       "\"url\":\"http://h\",\"secret\":\"" SECRET "\",\"format\":\"json\"}}";
    mr_robot robot;
    mr_err err;
    char *shown;

    assert_int_equal(parse(json, &robot, &err), 0);
    shown = mr_robot_redacted_json(&robot);
    assert_non_null(shown);
    assert_null(strstr(shown, SECRET));
    assert_string_equal(shown, "{\n"
                               "  \"name\": \"t\",\n"
                               "  \"kind\": \"webhook\",\n"
                               "  \"webhook\": {\n"
                               "    \"url\": \"http://h\",\n"
                               "    \"secret\": \"(hidden)\",\n"
                               "    \"format\": \"json\"\n"
                               "  }\n"
                               "}");
    free(shown);
    assert_string_equal(robot.json, json);
    mr_robot_free(&robot);
}

static void forward_robots(void **state)
{
    mr_robot robot;
    mr_err err;
    char json[4096];
    size_t n;

    assert_int_equal(parse("{\"name\":\"alias\",\"kind\":\"forward\",\"forward\":{"
                           "\"to\":[\"bob@example.org\"]}}", &robot, &err), 0);
    assert_int_equal(robot.kind, MR_ROBOT_FORWARD);
    assert_string_equal(mr_robot_kind_name(robot.kind), "forward");
    assert_int_equal(robot.forward.to_count, 1);
    assert_string_equal(robot.forward.to[0], "bob@example.org");
    assert_int_equal(robot.forward.envelope_sender, MR_ENVELOPE_SENDER_SRS);
    assert_null(robot.forward.sender);
    assert_int_equal(robot.forward.hop_limit, MR_FORWARD_HOP_LIMIT);
    mr_robot_free(&robot);

    assert_int_equal(parse("{\"name\":\"alias\",\"kind\":\"forward\",\"forward\":{"
                           "\"to\":[\"a@x.test\",\"B.c+d@Y.example\"],"
                           "\"envelope_sender\":\"fixed\",\"sender\":\"bounces@x.test\","
                           "\"hop_limit\":1e2}}", &robot, &err), 0);
    assert_int_equal(robot.forward.to_count, 2);
    assert_string_equal(robot.forward.to[1], "B.c+d@Y.example");
    assert_int_equal(robot.forward.envelope_sender, MR_ENVELOPE_SENDER_FIXED);
    assert_string_equal(robot.forward.sender, "bounces@x.test");
    assert_int_equal(robot.forward.hop_limit, 100);
    mr_robot_free(&robot);

    assert_int_equal(parse("{\"name\":\"alias\",\"kind\":\"forward\",\"forward\":{"
                           "\"to\":[\"a@x.test\"],\"envelope_sender\":\"keep\",\"hop_limit\":1}}",
                           &robot, &err), 0);
    assert_int_equal(robot.forward.envelope_sender, MR_ENVELOPE_SENDER_KEEP);
    assert_int_equal(robot.forward.hop_limit, 1);
    mr_robot_free(&robot);

    /* 50 addresses, not 51; an error in the middle frees what was taken. */
    n = (size_t)snprintf(json, sizeof json, "{\"name\":\"a\",\"kind\":\"forward\",\"forward\":"
                         "{\"to\":[");
    for (int i = 0; i < 50; i++)
        n += (size_t)snprintf(json + n, sizeof json - n, "%s\"r%d@x.test\"", i ? "," : "", i);
    snprintf(json + n, sizeof json - n, "]}}");
    assert_int_equal(parse(json, &robot, &err), 0);
    assert_int_equal(robot.forward.to_count, 50);
    assert_string_equal(robot.forward.to[49], "r49@x.test");
    mr_robot_free(&robot);
    snprintf(json + n, sizeof json - n, ",\"r50@x.test\"]}}");
    assert_int_equal(parse(json, &robot, &err), -1);
    assert_string_equal(err.msg, "/forward/to: must be a list of 1 to 50 addresses");
    snprintf(json + n - 1, sizeof json - n + 1, "-\"]}}");   /* "r49@x.test-" */
    assert_int_equal(parse(json, &robot, &err), -1);
    assert_string_equal(err.msg, "/forward/to/49: not an email address");
    assert_null(robot.forward.to);
    assert_int_equal(robot.forward.to_count, 0);
}

static void names(void **state)
{
    assert_true(mr_robot_name_valid("tickets"));
    assert_true(mr_robot_name_valid("9"));
    assert_true(mr_robot_name_valid("a.b_c-d"));
    assert_false(mr_robot_name_valid(""));
    assert_false(mr_robot_name_valid("-a"));
    assert_false(mr_robot_name_valid(".a"));
    assert_false(mr_robot_name_valid("a b"));
    assert_false(mr_robot_name_valid("a:b"));
    assert_false(mr_robot_name_valid("aB"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(full_document),
        cmocka_unit_test(defaults),
        cmocka_unit_test(edges_accepted),
        cmocka_unit_test(urls_accepted),
        cmocka_unit_test(urls_refused),
        cmocka_unit_test(errors_name_the_field),
        cmocka_unit_test(long_values),
        cmocka_unit_test(redaction_hides_the_secret),
        cmocka_unit_test(forward_robots),
        cmocka_unit_test(names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
