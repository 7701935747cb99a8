/*
 * offset_ring.c - in-flight offsets of a partition (see offset_ring.h): a
 * ring buffer that doubles when full. Offsets finish out of order; only
 * the finished prefix is dropped.
 */
#include <stdlib.h>
#include <string.h>

#include "offset_ring.h"

static int grow(offset_ring *r)
{
    size_t cap = r->cap ? r->cap * 2 : 64;
    int64_t *offsets = malloc(cap * sizeof *offsets);
    unsigned char *done = malloc(cap);

    if (offsets == NULL || done == NULL) {
        free(offsets);
        free(done);
        return -1;
    }
    for (size_t i = 0; i < r->count; i++) {
        offsets[i] = r->offsets[(r->head + i) % r->cap];
        done[i] = r->done[(r->head + i) % r->cap];
    }
    free(r->offsets);
    free(r->done);
    r->offsets = offsets;
    r->done = done;
    r->head = 0;
    r->cap = cap;
    return 0;
}

int offset_ring_push(offset_ring *r, int64_t offset)
{
    size_t slot;

    if (r->count == r->cap && grow(r) < 0)
        return -1;
    slot = (r->head + r->count) % r->cap;
    r->offsets[slot] = offset;
    r->done[slot] = 0;
    r->count++;
    return 0;
}

void offset_ring_finish(offset_ring *r, int64_t offset)
{
    for (size_t i = 0; i < r->count; i++) {
        size_t slot = (r->head + i) % r->cap;

        if (r->offsets[slot] == offset) {
            r->done[slot] = 1;
            break;
        }
    }
    while (r->count > 0 && r->done[r->head]) {
        r->head = (r->head + 1) % r->cap;
        r->count--;
    }
}

int64_t offset_ring_first(const offset_ring *r)
{
    return r->count ? r->offsets[r->head] : -1;
}

void offset_ring_free(offset_ring *r)
{
    free(r->offsets);
    free(r->done);
    memset(r, 0, sizeof *r);
}
