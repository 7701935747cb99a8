/*
 * test_offset_ring.c - the in-flight offsets of a partition
 * (workers/offset_ring.h): the committable position never passes an
 * unfinished record, whatever order records finish in.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "offset_ring.h"

static void finishing_out_of_order(void **state)
{
    offset_ring r = {0};

    assert_int_equal(offset_ring_first(&r), -1);
    for (int64_t o = 10; o < 15; o++)
        assert_int_equal(offset_ring_push(&r, o), 0);
    offset_ring_finish(&r, 12);
    offset_ring_finish(&r, 11);
    assert_int_equal(offset_ring_first(&r), 10);
    offset_ring_finish(&r, 10);
    assert_int_equal(offset_ring_first(&r), 13);
    offset_ring_finish(&r, 99); /* unknown: ignored */
    offset_ring_finish(&r, 14);
    assert_int_equal(offset_ring_first(&r), 13);
    offset_ring_finish(&r, 13);
    assert_int_equal(offset_ring_first(&r), -1);
    offset_ring_free(&r);
}

/* Many offsets (growing the ring while it wraps), finished in a shuffled
 * order: after each finish the first unfinished offset is exactly the
 * smallest one not finished yet. */
static void random_order_against_a_model(void **state)
{
    enum { N = 3000 };
    offset_ring r = {0};
    unsigned char finished[N] = {0};
    int order[N];
    int64_t expected = 0;

    srand(7);
    for (int i = 0; i < N; i++)
        order[i] = i;
    for (int i = N - 1; i > 0; i--) {
        int k = rand() % (i + 1), t = order[i];

        order[i] = order[k];
        order[k] = t;
    }
    for (int i = 0; i < 100; i++)
        assert_int_equal(offset_ring_push(&r, i), 0);
    for (int i = 0, pushed = 100; i < N; i++) {
        /* Keep pushing ahead of the finishes, as a consumer does. */
        while (pushed < N && pushed < i + 200)
            assert_int_equal(offset_ring_push(&r, pushed++), 0);
        if (order[i] >= pushed) {
            while (pushed <= order[i])
                assert_int_equal(offset_ring_push(&r, pushed++), 0);
        }
        offset_ring_finish(&r, order[i]);
        finished[order[i]] = 1;
        while (expected < N && finished[expected])
            expected++;
        if (expected < pushed)
            assert_int_equal(offset_ring_first(&r), expected);
        else
            assert_int_equal(offset_ring_first(&r), -1);
    }
    assert_int_equal(offset_ring_first(&r), -1);
    offset_ring_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finishing_out_of_order),
        cmocka_unit_test(random_order_against_a_model),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
