/*
 * strmap.c - hash map from byte strings to pointers (see strmap.h).
 * FNV-1a hashing; chained buckets; the table doubles at load 1.
 */
#include <stdlib.h>
#include <string.h>

#include "mailrobot/strmap.h"

#define INITIAL_BUCKETS 16

static unsigned hash_bytes(const void *key, size_t len)
{
    const unsigned char *p = key;
    unsigned h = 2166136261u;

    for (size_t i = 0; i < len; i++)
        h = (h ^ p[i]) * 16777619u;
    return h;
}

void mr_strmap_init(mr_strmap *map)
{
    map->buckets = NULL;
    map->bucket_count = 0;
    map->count = 0;
}

static mr_strmap_entry **find(const mr_strmap *map, const void *key, size_t len, unsigned h)
{
    mr_strmap_entry **link;

    if (map->bucket_count == 0)
        return NULL;
    for (link = &map->buckets[h & (map->bucket_count - 1)]; *link; link = &(*link)->next)
        if ((*link)->hash == h && (*link)->key_len == len && memcmp((*link)->key, key, len) == 0)
            return link;
    return NULL;
}

void *mr_strmap_get(const mr_strmap *map, const void *key, size_t key_len)
{
    mr_strmap_entry **link = find(map, key, key_len, hash_bytes(key, key_len));

    return link ? (*link)->value : NULL;
}

static int grow(mr_strmap *map)
{
    size_t n = map->bucket_count ? map->bucket_count * 2 : INITIAL_BUCKETS;
    mr_strmap_entry **buckets = calloc(n, sizeof *buckets);

    if (buckets == NULL)
        return -1;
    for (size_t i = 0; i < map->bucket_count; i++) {
        mr_strmap_entry *e = map->buckets[i];

        while (e != NULL) {
            mr_strmap_entry *next = e->next;

            e->next = buckets[e->hash & (n - 1)];
            buckets[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(map->buckets);
    map->buckets = buckets;
    map->bucket_count = n;
    return 0;
}

int mr_strmap_put(mr_strmap *map, const void *key, size_t key_len, void *value, void **old)
{
    unsigned h = hash_bytes(key, key_len);
    mr_strmap_entry **link = find(map, key, key_len, h);
    mr_strmap_entry *e;

    if (old != NULL)
        *old = NULL;
    if (link != NULL) {
        if (old != NULL)
            *old = (*link)->value;
        (*link)->value = value;
        return 0;
    }
    if (map->count >= map->bucket_count && grow(map) < 0)
        return -1;
    e = malloc(sizeof *e + key_len + 1);
    if (e == NULL)
        return -1;
    e->value = value;
    e->key_len = key_len;
    e->hash = h;
    memcpy(e->key, key, key_len);
    e->key[key_len] = '\0';
    e->next = map->buckets[h & (map->bucket_count - 1)];
    map->buckets[h & (map->bucket_count - 1)] = e;
    map->count++;
    return 0;
}

void *mr_strmap_del(mr_strmap *map, const void *key, size_t key_len)
{
    mr_strmap_entry **link = find(map, key, key_len, hash_bytes(key, key_len));
    mr_strmap_entry *e;
    void *value;

    if (link == NULL)
        return NULL;
    e = *link;
    *link = e->next;
    value = e->value;
    free(e);
    map->count--;
    return value;
}

void mr_strmap_each(mr_strmap *map, void (*fn)(mr_strmap *map, const char *key, size_t key_len,
                                               void *value, void *arg), void *arg)
{
    for (size_t i = 0; i < map->bucket_count; i++) {
        mr_strmap_entry *e = map->buckets[i];

        while (e != NULL) {
            mr_strmap_entry *next = e->next;

            fn(map, e->key, e->key_len, e->value, arg);
            e = next;
        }
    }
}

void mr_strmap_free(mr_strmap *map)
{
    for (size_t i = 0; i < map->bucket_count; i++) {
        mr_strmap_entry *e = map->buckets[i];

        while (e != NULL) {
            mr_strmap_entry *next = e->next;

            free(e);
            e = next;
        }
    }
    free(map->buckets);
    mr_strmap_init(map);
}
