/*
 * test_exec_prepare.c - what an exec robot's command gets (exec_prepare.h),
 * case by case against what Postfix's local(8) does for "|command" in
 * /etc/aliases (the integration test compares with the real local(8)).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <cmocka.h>

#include "exec_prepare.h"

static size_t count(exec_strings s)
{
    size_t n = 0;

    while (s[n])
        n++;
    return n;
}

static const char *find(exec_strings env, const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; env[i]; i++)
        if (strncmp(env[i], name, len) == 0 && env[i][len] == '=')
            return env[i] + len + 1;
    return NULL;
}

static void argv_without_meta_characters_is_split(void **state)
{
    mr_err err;
    exec_strings argv = exec_argv("/usr/local/bin/robot.py  --queue support\t-v", 0, &err);

    assert_non_null(argv);
    assert_int_equal(count(argv), 4);
    assert_string_equal(argv[0], "/usr/local/bin/robot.py");
    assert_string_equal(argv[1], "--queue");
    assert_string_equal(argv[2], "support");
    assert_string_equal(argv[3], "-v");
    free(argv);
}

static void argv_with_meta_characters_uses_the_shell(void **state)
{
    const char *commands[] = {"robot.py > /tmp/x", "a | b", "echo $HOME", "a; b", "echo 'q'",
                              "echo \"q\"", "a && b", "echo ~", "a*"};
    mr_err err;

    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        exec_strings argv = exec_argv(commands[i], 0, &err);

        assert_non_null(argv);
        assert_int_equal(count(argv), 3);
        assert_string_equal(argv[0], "/bin/sh");
        assert_string_equal(argv[1], "-c");
        assert_string_equal(argv[2], commands[i]);
        free(argv);
    }
}

static void argv_shell_on_request(void **state)
{
    mr_err err;
    exec_strings argv = exec_argv("robot.py --fast", 1, &err);

    assert_int_equal(count(argv), 3);
    assert_string_equal(argv[2], "robot.py --fast");
    free(argv);
}

static void argv_too_long_is_an_error(void **state)
{
    char *command = malloc(5000);
    mr_err err;

    memset(command, 'a', 4999);
    command[4999] = '\0';
    assert_null(exec_argv(command, 0, &err));
    assert_non_null(strstr(err.msg, "longer than"));
    free(command);
}

static void environment_as_local8(void **state)
{
    exec_envelope e = {.sender = "alice@example.org", .recipient = "Bot+Tag@Robots.Example",
                       .original_recipient = "bot+tag@robots.example",
                       .client_address = "192.0.2.7", .client_helo = "mx.example.org",
                       .client_hostname = "", .client_protocol = "ESMTP"};
    char *parent[] = {"TZ=UTC", "SECRET=x", "MAILROBOT_CONFIG=/etc/m.conf", NULL};
    mr_err err;
    exec_strings env = exec_environment(&e, "/var/lib/r/bot", "/bin/sh", "TZ LANG", parent,
                                        &err);

    assert_non_null(env);
    assert_string_equal(find(env, "LOCAL"), "bot+tag");
    assert_string_equal(find(env, "USER"), "bot");
    assert_string_equal(find(env, "LOGNAME"), "bot");
    assert_string_equal(find(env, "EXTENSION"), "tag");
    assert_string_equal(find(env, "DOMAIN"), "Robots.Example");
    assert_string_equal(find(env, "RECIPIENT"), "Bot+Tag@Robots.Example");
    assert_string_equal(find(env, "ORIGINAL_RECIPIENT"), "bot+tag@robots.example");
    assert_string_equal(find(env, "SENDER"), "alice@example.org");
    assert_string_equal(find(env, "CLIENT_ADDRESS"), "192.0.2.7");
    assert_string_equal(find(env, "CLIENT_HELO"), "mx.example.org");
    assert_string_equal(find(env, "CLIENT_PROTOCOL"), "ESMTP");
    assert_string_equal(find(env, "PATH"), "/usr/bin:/bin");
    assert_string_equal(find(env, "HOME"), "/var/lib/r/bot");
    assert_string_equal(find(env, "SHELL"), "/bin/sh");
    assert_string_equal(find(env, "TZ"), "UTC");
    /* Empty values are left out, as local(8) does; nothing else leaks. */
    assert_null(find(env, "CLIENT_HOSTNAME"));
    assert_null(find(env, "SASL_METHOD"));
    assert_null(find(env, "SECRET"));
    assert_null(find(env, "MAILROBOT_CONFIG"));
    assert_null(find(env, "LANG"));
    assert_int_equal(count(env), 15);
    free(env);
}

static void environment_values_are_censored(void **state)
{
    /* command_expansion_filter: anything else becomes '_'. */
    exec_envelope e = {.sender = "a;rm -rf $HOME`x`@example.org", .recipient = "bot@r.example",
                       .client_helo = "evil\nhelo"};
    mr_err err;
    exec_strings env = exec_environment(&e, NULL, NULL, "", NULL, &err);

    assert_string_equal(find(env, "SENDER"), "a_rm_-rf__HOME_x_@example.org");
    assert_string_equal(find(env, "CLIENT_HELO"), "evil_helo");
    assert_null(find(env, "HOME"));
    free(env);
}

static void input_is_local8s_framing_then_the_message(void **state)
{
    exec_envelope e = {.sender = "alice@example.org", .recipient = "bot+x@r.example",
                       .original_recipient = "Bot+X@R.example", .arrival_ms = 0};
    const char *msg = "Return-Path: <alice@example.org>\n\tfolded\nSubject: hi\n\nbody";
    mr_buf out;
    mr_err err;

    setenv("TZ", "UTC", 1);
    mr_buf_init(&out, 1 << 20);
    assert_int_equal(exec_input(&e, (const unsigned char *)msg, strlen(msg), &out, &err), 0);
    assert_string_equal((char *)out.data,
                        "From alice@example.org  Thu Jan  1 00:00:00 1970\n"
                        "Return-Path: <alice@example.org>\n"
                        "X-Original-To: Bot+X@R.example\n"
                        "Delivered-To: bot+x@r.example\n"
                        "Subject: hi\n\nbody\n");
    mr_buf_free(&out);
}

static void input_null_sender_and_quoted_local_part(void **state)
{
    exec_envelope e = {.sender = "", .recipient = "odd user@r.example", .arrival_ms = 0};
    const char *msg = "Subject: x\n\n";
    mr_buf out;
    mr_err err;

    setenv("TZ", "UTC", 1);
    mr_buf_init(&out, 1 << 20);
    assert_int_equal(exec_input(&e, (const unsigned char *)msg, strlen(msg), &out, &err), 0);
    assert_string_equal((char *)out.data, "From MAILER-DAEMON  Thu Jan  1 00:00:00 1970\n"
                                          "Return-Path: <>\n"
                                          "Delivered-To: \"odd user\"@r.example\n"
                                          "Subject: x\n\n");
    mr_buf_free(&out);
}

static void input_respects_the_buffer_limit(void **state)
{
    exec_envelope e = {.sender = "a@b", .recipient = "c@d"};
    mr_buf out;
    mr_err err;

    mr_buf_init(&out, 40);
    assert_int_equal(exec_input(&e, (const unsigned char *)"Subject: x\n\nbody\n", 17, &out,
                                &err), -1);
    mr_buf_free(&out);
}

static void exit_statuses_mean_what_they_mean_to_postfix(void **state)
{
    char text[128];

    assert_int_equal(exec_classify(0, text, sizeof text), EXEC_DONE);
    assert_int_equal(exec_classify(75 << 8, text, sizeof text), EXEC_LATER);
    assert_string_equal(text, "exit status 75 (temporary failure)");
    assert_int_equal(exec_classify(71 << 8, text, sizeof text), EXEC_LATER);
    assert_int_equal(exec_classify(65 << 8, text, sizeof text), EXEC_PERMANENT);
    assert_string_equal(text, "exit status 65 (data format error)");
    assert_int_equal(exec_classify(67 << 8, text, sizeof text), EXEC_PERMANENT);
    assert_int_equal(exec_classify(1 << 8, text, sizeof text), EXEC_PERMANENT);
    assert_string_equal(text, "exit status 1");
    /* Cannot run: an operator's mistake, deferred. */
    assert_int_equal(exec_classify(127 << 8, text, sizeof text), EXEC_LATER);
    assert_int_equal(exec_classify(126 << 8, text, sizeof text), EXEC_LATER);
    /* Killed (timeout, CPU, file size): later. */
    assert_int_equal(exec_classify(9, text, sizeof text), EXEC_LATER);
    assert_string_equal(text, "killed by signal 9");
    assert_int_equal(exec_classify(24, text, sizeof text), EXEC_LATER);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(argv_without_meta_characters_is_split),
        cmocka_unit_test(argv_with_meta_characters_uses_the_shell),
        cmocka_unit_test(argv_shell_on_request),
        cmocka_unit_test(argv_too_long_is_an_error),
        cmocka_unit_test(environment_as_local8),
        cmocka_unit_test(environment_values_are_censored),
        cmocka_unit_test(input_is_local8s_framing_then_the_message),
        cmocka_unit_test(input_null_sender_and_quoted_local_part),
        cmocka_unit_test(input_respects_the_buffer_limit),
        cmocka_unit_test(exit_statuses_mean_what_they_mean_to_postfix),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
