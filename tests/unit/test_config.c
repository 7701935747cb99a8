/*
 * test_config.c - the configuration file, environment overrides and the
 * errors that name file, line and key (config.h, SPEC §5).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mailrobot/config.h"

static int load(mr_config *cfg, const char *text, char **envp, mr_err *err)
{
    return mr_config_load_text(cfg, "test.conf", text, strlen(text), envp, err);
}

static void defaults(void **state)
{
    mr_config cfg;
    mr_err err;

    assert_int_equal(load(&cfg, "", NULL, &err), 0);
    assert_string_equal(cfg.kafka_brokers, "127.0.0.1:9092");
    assert_string_equal(cfg.topic_prefix, "mailrobot");
    assert_int_equal(cfg.max_message_bytes, 25u << 20);
    assert_int_equal(cfg.partition_by, MR_PARTITION_THREAD);
    assert_int_equal(cfg.ingest_time_limit, 30000);
    assert_int_equal(cfg.topic_replication_factor, -1);
    assert_int_equal(cfg.retry_delays.count, 4);
    assert_int_equal(cfg.retry_delays.ms[0], 60000);
    assert_int_equal(cfg.retry_delays.ms[3], 6 * 3600000);
    assert_int_equal(cfg.log_level, MR_LOG_INFO);
    assert_string_equal(cfg.log_file, "");
    assert_int_equal(cfg.kafka_count, 0);
    mr_config_free(&cfg);
}

static void file_values_comments_and_blanks(void **state)
{
    mr_config cfg;
    mr_err err;
    const char *text =
        "# a comment\n"
        "\n"
        "   kafka_brokers =  k1:9092,k2:9092  \r\n"
        "topic_prefix=acme.mail\n"
        "max_message_bytes = 10M\n"
        "partition_by = recipient\n"
        "ingest_time_limit = 2500ms\n"
        "retry_delays = 30s, 5m ,1h\n"
        "kafka.client.id = ingest-7\n"
        "kafka.compression.codec = zstd";

    assert_int_equal(load(&cfg, text, NULL, &err), 0);
    assert_string_equal(cfg.kafka_brokers, "k1:9092,k2:9092");
    assert_string_equal(cfg.topic_prefix, "acme.mail");
    assert_int_equal(cfg.max_message_bytes, 10u << 20);
    assert_int_equal(cfg.partition_by, MR_PARTITION_RECIPIENT);
    assert_int_equal(cfg.ingest_time_limit, 2500);
    assert_int_equal(cfg.retry_delays.count, 3);
    assert_int_equal(cfg.retry_delays.ms[1], 300000);
    assert_int_equal(cfg.kafka_count, 2);
    assert_string_equal(cfg.kafka[0].name, "client.id");
    assert_string_equal(cfg.kafka[0].value, "ingest-7");
    assert_string_equal(cfg.kafka[0].origin, "test.conf:9");
    assert_string_equal(cfg.kafka[1].value, "zstd");
    mr_config_free(&cfg);
}

/* Each bad input and the exact message it must produce. */
static void errors_name_file_line_and_key(void **state)
{
    static const struct {
        const char *text;
        const char *message;
    } cases[] = {
        {"kafka_brokers = a:1\nfoo = 1\n", "test.conf:2: unknown key 'foo'"},
        {"\n\npartition_by = tread\n",
         "test.conf:3: key 'partition_by': bad value 'tread' (one of: thread, recipient, none)"},
        {"max_message_bytes = lots\n",
         "test.conf:1: key 'max_message_bytes': bad size 'lots': expected a number of bytes "
         "with an optional unit (k, M, G)"},
        {"max_message_bytes = 100\n",
         "test.conf:1: key 'max_message_bytes': size 100 is out of range [1024, 536870912] bytes"},
        {"ingest_time_limit = 10\ningest_time_limit = 20\n",
         "test.conf:2: key 'ingest_time_limit' is already set on line 1"},
        {"ingest_time_limit = 5h\n",
         "test.conf:1: key 'ingest_time_limit': duration 5h is out of range [100ms, 1h]"},
        {"just some words\n", "test.conf:1: expected 'key = value', got 'just some words'"},
        {"kafka_brokers =\n", "test.conf:1: key 'kafka_brokers': must not be empty"},
        {"topic_prefix = a/b\n",
         "key 'topic_prefix': 'a/b' may hold only letters, digits, '.', '_' and '-'"},
        {"retry_delays = 1m,,2m\n", "test.conf:1: key 'retry_delays': bad list '1m,,2m': "
                                    "empty or overlong item"},
        {"retry_delays = 1m,\n", "test.conf:1: key 'retry_delays': bad list '1m,': trailing comma"},
        {"retry_delays = 1m,2m,60s\n", "key 'retry_delays': delay 3 is the same as delay 1 "
                                      "(each delay names its own topic)"},
        {"topic_replication_factor = 0.5\n",
         "test.conf:1: key 'topic_replication_factor': bad number '0.5'"},
        {"bad key = 1\n", "test.conf:1: bad key name 'bad key'"},
        {"kafka. = x\n", "test.conf:1: key 'kafka.': empty kafka property name"},
    };
    mr_config cfg;
    mr_err err;

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        assert_int_equal(load(&cfg, cases[i].text, NULL, &err), -1);
        assert_string_equal(err.msg, cases[i].message);
    }
}

static void line_too_long_and_nul(void **state)
{
    mr_config cfg;
    mr_err err;
    size_t n = MR_CONFIG_LINE_LIMIT + 100;
    char *text = malloc(n + 1);

    memset(text, 'a', n);
    text[n] = '\0';
    assert_int_equal(load(&cfg, text, NULL, &err), -1);
    assert_string_equal(err.msg, "test.conf:1: line longer than 4096 bytes");
    free(text);
    assert_int_equal(mr_config_load_text(&cfg, "test.conf", "a = 1\0x", 7, NULL, &err), -1);
    assert_string_equal(err.msg, "test.conf:1: NUL byte in line");
}

static void environment_overrides_file(void **state)
{
    char *envp[] = {
        "PATH=/bin",
        "MAILROBOT_KAFKA_BROKERS=env:9092",
        "MAILROBOT_PARTITION_BY=none",
        "MAILROBOT_KAFKA__SASL_PASSWORD=s3cret",
        "MAILROBOT_KAFKA__CLIENT_ID=from-env",
        "MAILROBOT_CONFIG=/ignored/here",
        NULL,
    };
    mr_config cfg;
    mr_err err;

    assert_int_equal(load(&cfg, "kafka_brokers = file:9092\nkafka.client.id = file\n", envp,
                          &err), 0);
    assert_string_equal(cfg.kafka_brokers, "env:9092");
    assert_int_equal(cfg.partition_by, MR_PARTITION_NONE);
    assert_int_equal(cfg.kafka_count, 2);
    assert_string_equal(cfg.kafka[0].name, "client.id");
    assert_string_equal(cfg.kafka[0].value, "from-env");
    assert_string_equal(cfg.kafka[0].origin, "environment MAILROBOT_KAFKA__CLIENT_ID");
    assert_string_equal(cfg.kafka[1].name, "sasl.password");
    assert_string_equal(cfg.kafka[1].value, "s3cret");
    mr_config_free(&cfg);
}

static void environment_errors(void **state)
{
    char *unknown[] = {"MAILROBOT_KAFKA_BROKER=x:1", NULL};
    char *bad[] = {"MAILROBOT_MAX_MESSAGE_BYTES=huge", NULL};
    mr_config cfg;
    mr_err err;

    assert_int_equal(load(&cfg, "", unknown, &err), -1);
    assert_string_equal(err.msg, "environment MAILROBOT_KAFKA_BROKER: unknown setting "
                                 "(see docs/configuration.md)");
    assert_int_equal(load(&cfg, "", bad, &err), -1);
    assert_string_equal(err.msg, "environment MAILROBOT_MAX_MESSAGE_BYTES: bad size 'huge': "
                                 "expected a number of bytes with an optional unit (k, M, G)");
}

static void files_on_disk(void **state)
{
    char path[] = "/tmp/mailrobot-test-config-XXXXXX";
    int fd = mkstemp(path);
    char *envp[] = {NULL, NULL};
    char env_path[128];
    mr_config cfg;
    mr_err err;

    assert_true(fd >= 0);
    assert_int_equal(write(fd, "topic_prefix = disk\n", 20), 20);
    close(fd);
    assert_int_equal(mr_config_load(&cfg, path, NULL, &err), 0);
    assert_string_equal(cfg.topic_prefix, "disk");
    assert_string_equal(cfg.path, path);
    mr_config_free(&cfg);

    snprintf(env_path, sizeof env_path, "MAILROBOT_CONFIG=%s", path);
    envp[0] = env_path;
    assert_int_equal(mr_config_load(&cfg, NULL, envp, &err), 0);
    assert_string_equal(cfg.topic_prefix, "disk");
    mr_config_free(&cfg);
    unlink(path);

    assert_int_equal(mr_config_load(&cfg, path, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "cannot open: No such file or directory"));
    assert_int_equal(strncmp(err.msg, path, strlen(path)), 0);
}

static void env_names_and_formatting(void **state)
{
    char name[64], value[128];
    mr_config cfg;
    mr_err err;

    mr_config_env_name("ingest_time_limit", name, sizeof name);
    assert_string_equal(name, "MAILROBOT_INGEST_TIME_LIMIT");
    assert_int_equal(load(&cfg, "retry_delays = 90s,10m\n", NULL, &err), 0);
    for (const mr_config_key *k = mr_config_keys(); k->name; k++) {
        mr_config_format_value(&cfg, k, value, sizeof value);
        if (strcmp(k->name, "retry_delays") == 0)
            assert_string_equal(value, "90s,10m");
        if (strcmp(k->name, "partition_by") == 0)
            assert_string_equal(value, "thread");
    }
    assert_true(mr_config_record_limit(&cfg) > cfg.max_message_bytes);
    mr_config_free(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),
        cmocka_unit_test(file_values_comments_and_blanks),
        cmocka_unit_test(errors_name_file_line_and_key),
        cmocka_unit_test(line_too_long_and_nul),
        cmocka_unit_test(environment_overrides_file),
        cmocka_unit_test(environment_errors),
        cmocka_unit_test(files_on_disk),
        cmocka_unit_test(env_names_and_formatting),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
