/*
 * test_log.c - JSON-lines logging (log.h): escaping of hostile values,
 * UTF-8 passed through, long values cut, levels filtered.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "mailrobot/log.h"

/* Logs one line through a pipe and returns it (static buffer). */
static const char *logged(mr_log_level min, mr_log_level level, const char *value)
{
    static char line[3 * MR_LOG_VALUE_LIMIT * 6];
    int fds[2];
    mr_logger log;
    ssize_t n;

    assert_int_equal(pipe(fds), 0);
    mr_logger_init(&log, "test", min, fds[1]);
    mr_log(&log, level, "event", "value", value, "none", NULL, NULL);
    close(fds[1]);
    n = read(fds[0], line, sizeof line - 1);
    close(fds[0]);
    line[n < 0 ? 0 : n] = '\0';
    return line;
}

static void fields_and_escaping(void **state)
{
    const char *line = logged(MR_LOG_DEBUG, MR_LOG_WARN, "a\"b\\c\n\x01\xff caf\xc3\xa9 \xed\xa0\x80");

    assert_non_null(strstr(line, "\"level\":\"warn\",\"prog\":\"test\",\"pid\":\""));
    assert_non_null(strstr(line, "\"msg\":\"event\""));
    assert_non_null(strstr(line, "\"value\":\"a\\\"b\\\\c\\u000a\\u0001\\u00ff caf\xc3\xa9 "
                                 "\\u00ed\\u00a0\\u0080\""));
    assert_non_null(strstr(line, "\"none\":null}\n"));
    assert_int_equal(strncmp(line, "{\"ts\":\"", 7), 0);
    assert_int_equal(strchr(line, '\n') - line, (long)strlen(line) - 1);
}

static void long_values_are_cut(void **state)
{
    char *value = malloc(MR_LOG_VALUE_LIMIT * 3);
    const char *line;

    memset(value, 'v', MR_LOG_VALUE_LIMIT * 3 - 1);
    value[MR_LOG_VALUE_LIMIT * 3 - 1] = '\0';
    line = logged(MR_LOG_DEBUG, MR_LOG_INFO, value);
    assert_non_null(strstr(line, "vvv...\""));
    assert_true(strlen(line) < MR_LOG_VALUE_LIMIT + 300);
    free(value);
}

static void levels_below_the_minimum_are_dropped(void **state)
{
    assert_string_equal(logged(MR_LOG_WARN, MR_LOG_INFO, "x"), "");
    assert_string_equal(logged(MR_LOG_OFF, MR_LOG_ERROR, "x"), "");
    assert_true(strlen(logged(MR_LOG_WARN, MR_LOG_ERROR, "x")) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fields_and_escaping),
        cmocka_unit_test(long_values_are_cut),
        cmocka_unit_test(levels_below_the_minimum_are_dropped),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
