/*
 * strmap.h - a hash map from byte-string keys to pointers.
 *
 * Keys are copied (and may hold any bytes); values are the caller's. Chained
 * buckets, doubled when the load passes 1. Not thread-safe. Iteration order
 * is unspecified; a map must not change while it is iterated, except that
 * mr_strmap_each's callback may delete the entry it is given.
 */
#ifndef MAILROBOT_STRMAP_H
#define MAILROBOT_STRMAP_H

#include <stddef.h>

typedef struct mr_strmap_entry {
    struct mr_strmap_entry *next;
    void *value;
    size_t key_len;
    unsigned hash;
    char key[]; /* key_len bytes and a NUL */
} mr_strmap_entry;

typedef struct mr_strmap {
    mr_strmap_entry **buckets;
    size_t bucket_count;
    size_t count;
} mr_strmap;

void mr_strmap_init(mr_strmap *map);

/* The value for key, or NULL. */
void *mr_strmap_get(const mr_strmap *map, const void *key, size_t key_len);

/* Sets key to value (replacing an old value, which is returned through
 * *old if old is not NULL). Returns 0, or -1 when out of memory. */
int mr_strmap_put(mr_strmap *map, const void *key, size_t key_len, void *value, void **old);

/* Removes key; returns its value, or NULL if it was not there. */
void *mr_strmap_del(mr_strmap *map, const void *key, size_t key_len);

/* Calls fn for every entry; fn may delete that entry (and only that). */
void mr_strmap_each(mr_strmap *map, void (*fn)(mr_strmap *map, const char *key, size_t key_len,
                                               void *value, void *arg), void *arg);

/* Frees the map's memory (not the values). */
void mr_strmap_free(mr_strmap *map);

#endif
