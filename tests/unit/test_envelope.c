/*
 * test_envelope.c - the ingest's envelope from pipe(8)'s argv and from
 * local(8)'s environment (envelope.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mailrobot/envelope.h"

#define ARGC(a) ((int)(sizeof(a) / sizeof((a)[0])) - 1)

static void pipe_argv_as_in_spec(void **state)
{
    /* master.cf: argv=mailrobot-ingest -f ${sender} -q ${queue_id}
     * -c ${client_address} -h ${client_helo} -s ${sasl_username}
     * -o ${original_recipient} -- ${recipient} */
    char *argv[] = {"mailrobot-ingest", "-C", "/etc/m.conf", "-f", "alice@example.org",
                    "-q", "4XyZ1", "-c", "192.0.2.7", "-h", "mx.example.org", "-s", "",
                    "-n", "mx.example.org", "-p", "ESMTPS", "-m", "", "-a", "",
                    "-o", "Bot@Robots.Example", "--", "bot@robots.example", NULL};
    mr_ingest_args args;
    mr_err err;

    assert_int_equal(mr_ingest_args_parse(&args, ARGC(argv), argv, NULL, &err), 0);
    assert_string_equal(args.config_path, "/etc/m.conf");
    assert_string_equal(args.envelope.sender, "alice@example.org");
    assert_string_equal(args.envelope.queue_id, "4XyZ1");
    assert_string_equal(args.envelope.client_address, "192.0.2.7");
    assert_string_equal(args.envelope.helo, "mx.example.org");
    assert_string_equal(args.envelope.sasl_username, "");
    assert_string_equal(args.envelope.client_hostname, "mx.example.org");
    assert_string_equal(args.envelope.client_protocol, "ESMTPS");
    assert_string_equal(args.envelope.sasl_method, "");
    assert_int_equal(args.envelope.recipient_count, 1);
    assert_string_equal(args.envelope.recipients[0], "bot@robots.example");
    assert_string_equal(args.envelope.original_recipients[0], "Bot@Robots.Example");
    assert_false(args.envelope.from_local_env);
    mr_ingest_args_free(&args);
}

static void null_sender_and_several_recipients(void **state)
{
    /* ${original_recipient} expands into one argument per recipient. */
    char *argv[] = {"mailrobot-ingest", "-f", "", "-o", "a@x", "b@x", "--", "a@x", "b@x",
                    NULL};
    mr_ingest_args args;
    mr_err err;

    assert_int_equal(mr_ingest_args_parse(&args, ARGC(argv), argv, NULL, &err), 0);
    assert_string_equal(args.envelope.sender, "");
    assert_int_equal(args.envelope.recipient_count, 2);
    assert_string_equal(args.envelope.recipients[1], "b@x");
    assert_string_equal(args.envelope.original_recipients[1], "b@x");
    assert_string_equal(args.envelope.queue_id, "");
    mr_ingest_args_free(&args);
}

static void recipients_without_double_dash(void **state)
{
    char *argv[] = {"mailrobot-ingest", "-f", "s@x", "r1@x", "r2@x", NULL};
    mr_ingest_args args;
    mr_err err;

    assert_int_equal(mr_ingest_args_parse(&args, ARGC(argv), argv, NULL, &err), 0);
    assert_int_equal(args.envelope.recipient_count, 2);
    assert_string_equal(args.envelope.original_recipients[0], "");
    mr_ingest_args_free(&args);
}

static void local_environment(void **state)
{
    /* What local(8) exports to "|mailrobot-ingest" in /etc/aliases. */
    char *argv[] = {"mailrobot-ingest", "-q", "QID9", NULL};
    char *envp[] = {"SHELL=/bin/sh", "RECIPIENT=robot@host.example", "SENDER=bob@example.net",
                    "ORIGINAL_RECIPIENT=Robot@Host.Example", "CLIENT_ADDRESS=198.51.100.2",
                    "CLIENT_HELO=mail.example.net", "SASL_USERNAME=bob", "LOCAL=robot",
                    "CLIENT_HOSTNAME=mail.example.net", "CLIENT_PROTOCOL=ESMTPSA",
                    "SASL_METHOD=PLAIN", "SASL_SENDER=",
                    "DOMAIN=host.example", NULL};
    mr_ingest_args args;
    mr_err err;

    assert_int_equal(mr_ingest_args_parse(&args, ARGC(argv), argv, envp, &err), 0);
    assert_true(args.envelope.from_local_env);
    assert_int_equal(args.envelope.recipient_count, 1);
    assert_string_equal(args.envelope.recipients[0], "robot@host.example");
    assert_string_equal(args.envelope.original_recipients[0], "Robot@Host.Example");
    assert_string_equal(args.envelope.sender, "bob@example.net");
    assert_string_equal(args.envelope.client_address, "198.51.100.2");
    assert_string_equal(args.envelope.helo, "mail.example.net");
    assert_string_equal(args.envelope.sasl_username, "bob");
    assert_string_equal(args.envelope.client_hostname, "mail.example.net");
    assert_string_equal(args.envelope.client_protocol, "ESMTPSA");
    assert_string_equal(args.envelope.sasl_method, "PLAIN");
    assert_string_equal(args.envelope.sasl_sender, "");
    assert_string_equal(args.envelope.queue_id, "QID9");
    mr_ingest_args_free(&args);
}

static void local_environment_null_sender_and_explicit_override(void **state)
{
    char *argv[] = {"mailrobot-ingest", "-f", "override@x", NULL};
    char *envp[] = {"RECIPIENT=r@h", "SENDER=", NULL};
    mr_ingest_args args;
    mr_err err;

    assert_int_equal(mr_ingest_args_parse(&args, ARGC(argv), argv, envp, &err), 0);
    assert_string_equal(args.envelope.sender, "override@x");
    assert_string_equal(args.envelope.client_address, "");
    mr_ingest_args_free(&args);

    argv[1] = NULL;
    assert_int_equal(mr_ingest_args_parse(&args, 1, argv, envp, &err), 0);
    assert_string_equal(args.envelope.sender, "");
    mr_ingest_args_free(&args);
}

static void bad_arguments(void **state)
{
    static const struct {
        char *argv[10];
        const char *message;
    } cases[] = {
        {{"i", "-x", "1", "--", "r@x", NULL}, "unknown option '-x'"},
        {{"i", "-f", NULL}, "option -f needs a value"},
        {{"i", "-fsender", "r@x", NULL},
         "bad argument '-fsender': options are single letters followed by a separate value"},
        {{"i", "-f", "s@x", NULL},
         "no recipient: expected '-- RECIPIENT...' (pipe(8) argv) or RECIPIENT in the "
         "environment (local(8) alias)"},
        {{"i", "-f", "s@x", "--", NULL},
         "no recipient: expected '-- RECIPIENT...' (pipe(8) argv) or RECIPIENT in the "
         "environment (local(8) alias)"},
        {{"i", "--", "r@x", NULL}, "no sender: expected -f SENDER"},
        {{"i", "-f", "s", "-o", "a", "b", "--", "r@x", NULL},
         "2 original recipients (-o) for 1 recipients"},
        {{"i", "-f", "s", "--", "", NULL}, "recipient 1 is empty"},
    };
    mr_ingest_args args;
    mr_err err;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int argc = 0;

        while (cases[i].argv[argc] != NULL)
            argc++;
        assert_int_equal(mr_ingest_args_parse(&args, argc, cases[i].argv, NULL, &err), -1);
        assert_string_equal(err.msg, cases[i].message);
        mr_ingest_args_free(&args);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pipe_argv_as_in_spec),
        cmocka_unit_test(null_sender_and_several_recipients),
        cmocka_unit_test(recipients_without_double_dash),
        cmocka_unit_test(local_environment),
        cmocka_unit_test(local_environment_null_sender_and_explicit_override),
        cmocka_unit_test(bad_arguments),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
