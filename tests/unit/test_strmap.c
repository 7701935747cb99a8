/*
 * test_strmap.c - the hash map (strmap.h): binary keys, replace, delete,
 * growth, deleting while iterating.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mailrobot/strmap.h"

static void put_get_replace_delete(void **state)
{
    mr_strmap m;
    void *old;
    int a = 1, b = 2;

    mr_strmap_init(&m);
    assert_null(mr_strmap_get(&m, "x", 1));
    assert_int_equal(mr_strmap_put(&m, "k\0y", 3, &a, &old), 0);
    assert_null(old);
    assert_ptr_equal(mr_strmap_get(&m, "k\0y", 3), &a);
    assert_null(mr_strmap_get(&m, "k", 1));
    assert_int_equal(mr_strmap_put(&m, "k\0y", 3, &b, &old), 0);
    assert_ptr_equal(old, &a);
    assert_int_equal(m.count, 1);
    assert_ptr_equal(mr_strmap_del(&m, "k\0y", 3), &b);
    assert_null(mr_strmap_del(&m, "k\0y", 3));
    assert_int_equal(m.count, 0);
    mr_strmap_free(&m);
}

static void delete_each(mr_strmap *m, const char *key, size_t len, void *value, void *arg)
{
    if ((uintptr_t)value % 2 == 0)
        mr_strmap_del(m, key, len);
    (*(int *)arg)++;
}

static void many_keys_and_deleting_while_iterating(void **state)
{
    mr_strmap m;
    char key[32];
    int visited = 0;

    mr_strmap_init(&m);
    for (uintptr_t i = 1; i <= 5000; i++) {
        snprintf(key, sizeof key, "key-%lu", (unsigned long)i);
        assert_int_equal(mr_strmap_put(&m, key, strlen(key), (void *)i, NULL), 0);
    }
    assert_int_equal(m.count, 5000);
    for (uintptr_t i = 1; i <= 5000; i += 499) {
        snprintf(key, sizeof key, "key-%lu", (unsigned long)i);
        assert_ptr_equal(mr_strmap_get(&m, key, strlen(key)), (void *)i);
    }
    mr_strmap_each(&m, delete_each, &visited);
    assert_int_equal(visited, 5000);
    assert_int_equal(m.count, 2500);
    assert_null(mr_strmap_get(&m, "key-2", 5));
    assert_ptr_equal(mr_strmap_get(&m, "key-3", 5), (void *)3);
    mr_strmap_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(put_get_replace_delete),
        cmocka_unit_test(many_keys_and_deleting_while_iterating),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
