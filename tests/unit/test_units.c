/*
 * test_units.c - sizes, durations and bounded integers (units.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "mailrobot/units.h"

static void sizes_with_units(void **state)
{
    uint64_t v;
    mr_err err;

    assert_int_equal(mr_parse_size("0", &v, &err), 0);
    assert_int_equal(v, 0);
    assert_int_equal(mr_parse_size("1048576", &v, &err), 0);
    assert_int_equal(v, 1048576);
    assert_int_equal(mr_parse_size("25MiB", &v, &err), 0);
    assert_int_equal(v, 25u << 20);
    assert_int_equal(mr_parse_size("512k", &v, &err), 0);
    assert_int_equal(v, 512u << 10);
    assert_int_equal(mr_parse_size("2G", &v, &err), 0);
    assert_int_equal(v, 2ULL << 30);
}

static void sizes_rejected(void **state)
{
    uint64_t v;
    mr_err err;

    assert_int_equal(mr_parse_size("", &v, &err), -1);
    assert_int_equal(mr_parse_size("-1", &v, &err), -1);
    assert_int_equal(mr_parse_size("10 MB", &v, &err), -1);
    assert_string_equal(err.msg, "bad size '10 MB': unknown unit ' MB'");
    assert_int_equal(mr_parse_size("5X", &v, &err), -1);
    assert_int_equal(mr_parse_size("99999999999999999999", &v, &err), -1);
    assert_int_equal(mr_parse_size("18446744073709551615G", &v, &err), -1);
}

static void durations(void **state)
{
    int64_t ms;
    mr_err err;
    char text[32];

    assert_int_equal(mr_parse_duration("30", &ms, &err), 0);
    assert_int_equal(ms, 30000);
    assert_int_equal(mr_parse_duration("500ms", &ms, &err), 0);
    assert_int_equal(ms, 500);
    assert_int_equal(mr_parse_duration("10m", &ms, &err), 0);
    assert_int_equal(ms, 600000);
    assert_int_equal(mr_parse_duration("6h", &ms, &err), 0);
    assert_int_equal(ms, 21600000);
    assert_int_equal(mr_parse_duration("7d", &ms, &err), 0);
    assert_int_equal(ms, 604800000);
    assert_int_equal(mr_parse_duration("1w", &ms, &err), -1);
    assert_int_equal(mr_parse_duration("s", &ms, &err), -1);
    assert_string_equal(mr_format_duration(600000, text, sizeof text), "10m");
    assert_string_equal(mr_format_duration(90000, text, sizeof text), "90s");
    assert_string_equal(mr_format_duration(1500, text, sizeof text), "1500ms");
    assert_string_equal(mr_format_duration(0, text, sizeof text), "0ms");
}

static void integers(void **state)
{
    int64_t v;
    mr_err err;

    assert_int_equal(mr_parse_int("-1", -1, 32, &v, &err), 0);
    assert_int_equal(v, -1);
    assert_int_equal(mr_parse_int("33", -1, 32, &v, &err), -1);
    assert_string_equal(err.msg, "number 33 is out of range [-1, 32]");
    assert_int_equal(mr_parse_int("3x", 0, 10, &v, &err), -1);
    assert_int_equal(mr_parse_int("", 0, 10, &v, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sizes_with_units),
        cmocka_unit_test(sizes_rejected),
        cmocka_unit_test(durations),
        cmocka_unit_test(integers),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
