/*
 * offset_ring.h - the offsets of one partition that are in flight, in the
 * order they were consumed, and which of them are finished. The first
 * unfinished offset is how far the partition may be committed: the core
 * of "offsets committed only up to the last completed record".
 */
#ifndef WORKERS_OFFSET_RING_H
#define WORKERS_OFFSET_RING_H

#include <stddef.h>
#include <stdint.h>

typedef struct offset_ring {
    int64_t *offsets;
    unsigned char *done;
    size_t head, count, cap;
} offset_ring;

/* Adds an offset (larger than every one before). Returns 0, or -1 when
 * out of memory. */
int offset_ring_push(offset_ring *ring, int64_t offset);

/* Marks an offset finished and drops the finished ones at the front.
 * Unknown offsets are ignored. */
void offset_ring_finish(offset_ring *ring, int64_t offset);

/* The first unfinished offset, or -1 when nothing is in flight. */
int64_t offset_ring_first(const offset_ring *ring);

void offset_ring_free(offset_ring *ring);

#endif
