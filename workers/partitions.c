/*
 * partitions.c - what may be committed (SPEC §6): per assigned partition,
 * the offsets in flight in consumption order, each marked done when its
 * job finishes. The committable position is the first offset not done;
 * it is stored with rd_kafka_offsets_store() and librdkafka commits it
 * (auto-commit of stored offsets, and on close). So a commit never covers
 * a record that is not finished.
 *
 * Holding a partition (a retry topic whose next record is not due yet, or
 * the in-flight limit) pauses it; records it still returns are dropped,
 * and releasing it seeks back to the first of them, so nothing fetched
 * ahead is skipped. Offsets are stored only for records taken as jobs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker.h"

partition *partition_find(worker *w, const char *topic, int32_t id)
{
    for (partition *p = w->partitions; p != NULL; p = p->next)
        if (p->id == id && strcmp(p->topic, topic) == 0)
            return p;
    return NULL;
}

partition *partition_add(worker *w, const char *topic, int32_t id)
{
    partition *p = calloc(1, sizeof *p);

    if (p == NULL)
        return NULL;
    snprintf(p->topic, sizeof p->topic, "%s", topic);
    p->id = id;
    p->generation = ++w->generation;
    p->next_offset = -1;
    p->stored = -1;
    p->refetch_from = -1;
    p->next = w->partitions;
    w->partitions = p;
    return p;
}

/* Forgets one partition (revoked). */
void partition_forget(worker *w, const char *topic, int32_t id)
{
    for (partition **link = &w->partitions; *link != NULL; link = &(*link)->next) {
        partition *p = *link;

        if (p->id != id || strcmp(p->topic, topic) != 0)
            continue;
        *link = p->next;
        offset_ring_free(&p->in_flight);
        free(p);
        return;
    }
}

void partition_remove_all(worker *w)
{
    while (w->partitions != NULL) {
        partition *p = w->partitions;

        w->partitions = p->next;
        offset_ring_free(&p->in_flight);
        free(p);
    }
}

/* Records an offset as in flight (offsets arrive in increasing order). */
int partition_track(partition *p, int64_t offset)
{
    if (offset_ring_push(&p->in_flight, offset) < 0)
        return -1;
    p->next_offset = offset + 1;
    return 0;
}

/* Stores the committable position: the first offset not done, or (nothing
 * in flight) the next offset to consume. */
void partition_store(worker *w, partition *p)
{
    int64_t first = offset_ring_first(&p->in_flight);
    int64_t position = first >= 0 ? first : p->next_offset;
    rd_kafka_topic_partition_list_t *list;

    if (position < 0 || position == p->stored)
        return;
    list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, p->topic, p->id)->offset = position;
    if (rd_kafka_offsets_store(w->consumer, list) == RD_KAFKA_RESP_ERR_NO_ERROR)
        p->stored = position;
    rd_kafka_topic_partition_list_destroy(list);
}

/* A job finished: mark its offset done, if its partition is still the
 * same assignment (after a revoke the record belongs to another worker,
 * which consumes it again; its outcome is deduplicated there). */
void partition_finish(worker *w, const char *topic, int32_t id, uint64_t generation,
                      int64_t offset)
{
    partition *p = partition_find(w, topic, id);

    if (p == NULL || p->generation != generation)
        return;
    offset_ring_finish(&p->in_flight, offset);
    partition_store(w, p);
}

/* Pauses the partition. Records it returns while held are dropped
 * (partition_drop) and fetched again when it is released. */
void partition_hold(worker *w, partition *p)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);

    rd_kafka_topic_partition_list_add(list, p->topic, p->id);
    rd_kafka_pause_partitions(w->consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
    p->held = 1;
}

void partition_drop(partition *p, int64_t offset)
{
    if (p->refetch_from < 0 || offset < p->refetch_from)
        p->refetch_from = offset;
}

/* Resumes the partition, first seeking back to the first record dropped
 * while it was held. */
void partition_release(worker *w, partition *p)
{
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_error_t *error;

    rd_kafka_topic_partition_list_add(list, p->topic, p->id)->offset = p->refetch_from;
    if (p->refetch_from >= 0) {
        error = rd_kafka_seek_partitions(w->consumer, list, 5000);
        if (error != NULL) {
            /* Keep it held: resuming without the seek would skip records. */
            mr_log(w->log, MR_LOG_WARN, "seek failed; partition stays paused", "topic",
                   p->topic, "detail", rd_kafka_error_string(error), NULL);
            rd_kafka_error_destroy(error);
            rd_kafka_topic_partition_list_destroy(list);
            return;
        }
        p->refetch_from = -1;
    }
    rd_kafka_resume_partitions(w->consumer, list);
    rd_kafka_topic_partition_list_destroy(list);
    p->held = 0;
}
