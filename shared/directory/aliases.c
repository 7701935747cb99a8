/*
 * aliases.c - aliases and their targets (directory.h;
 * docs/directory-layout.md): <p>:aliases and <p>:alias:<address>, and
 * what removing an address means for the aliases that name it.
 *
 * Loops are rejected when an alias is written: under the change's WATCH,
 * the targets are followed through the aliases; reaching the alias being
 * written again means a loop. Every later change re-checks under WATCH, so
 * two concurrent writes cannot make a loop between them.
 *
 * Offsite targets are sent by a forward robot of the alias's own (SRS when
 * srs_domain is configured, so that SPF passes at the destination):
 * "alias.<BLAKE2b-128 of the address>", kind forward, to = the offsite
 * targets, routed from the alias's address. mailrobot-directoryd then
 * expands the alias to its local targets plus the alias's own address,
 * which Postfix delivers through the mailrobot transport to that robot.
 * The robot and its route are written and removed with the alias.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "mailrobot/keys.h"
#include "mailrobot/outbound.h"
#include "mailrobot/robot.h"

#include "directory_internal.h"

#define ROBOT_PREFIX "robot:"

int dir_kind_of(mr_dir *d, const char *address, mr_err *err)
{
    int account = mr_dir_is_member(d, MR_KEY_ACCOUNTS, "", address, err), alias;

    if (account != 0)
        return account < 0 ? -1 : DIR_ACCOUNT;
    alias = mr_dir_is_member(d, MR_KEY_ALIASES, "", address, err);
    return alias < 0 ? -1 : alias ? DIR_ALIAS : DIR_NONE;
}

mr_dir_status dir_require(mr_dir *d, const char *address, int kind, mr_err *err)
{
    int found = dir_kind_of(d, address, err);
    const char *what = kind == DIR_ACCOUNT ? "account" : "alias";

    if (found == kind)
        return MR_DIR_OK;
    return found < 0 ? MR_DIR_UNAVAILABLE
                     : (mr_err_set(err, "%s %s: no such %s", what, address, what),
                        MR_DIR_NOT_FOUND);
}

mr_dir_status mr_dir_target_check(mr_dir *d, const char *field, const char *target, char *out,
                                  mr_err *err)
{
    mr_dir_status st;
    int found;

    if (target != NULL && strncmp(target, ROBOT_PREFIX, strlen(ROBOT_PREFIX)) == 0) {
        const char *name = target + strlen(ROBOT_PREFIX);

        if (!mr_robot_name_valid(name))
            return mr_err_set(err, "%s: '%.80s' is not a robot name", field, name),
                   MR_DIR_INVALID;
        if ((found = mr_dir_exists(d, MR_KEY_ROBOT, name, err)) <= 0)
            return found < 0 ? MR_DIR_UNAVAILABLE
                             : (mr_err_set(err, "%s: no robot %s", field, name), MR_DIR_INVALID);
        snprintf(out, MR_DIR_ADDRESS_MAX + 1, "%s", target);
        return MR_DIR_OK;
    }
    if ((st = mr_dir_address_parse(field, target, out, err)) != MR_DIR_OK)
        return st;
    if ((found = dir_domain_hosted(d, dir_domain_of(out), err)) <= 0)
        return found < 0 ? MR_DIR_UNAVAILABLE : MR_DIR_OK;   /* offsite */
    if ((found = dir_kind_of(d, out, err)) == DIR_NONE)
        found = mr_dir_exists(d, MR_KEY_ROUTE, out, err);
    if (found <= 0)
        return found < 0 ? MR_DIR_UNAVAILABLE
                         : (mr_err_set(err, "%s: %s is in a hosted domain but is no account, "
                                       "alias or routed address", field, out), MR_DIR_INVALID);
    return MR_DIR_OK;
}

/* --- the alias map ------------------------------------------------------------- */

void dir_alias_map_free(dir_alias_map *map)
{
    for (size_t i = 0; i < map->count; i++)
        mr_dir_names_free(map->targets ? map->targets[i] : NULL,
                          map->counts ? map->counts[i] : 0);
    mr_dir_names_free(map->names, map->count);
    free(map->targets);
    free(map->counts);
    memset(map, 0, sizeof *map);
}

mr_dir_status dir_alias_map_load(mr_dir *d, dir_alias_map *map, mr_err *err)
{
    redisContext *c = d->redis;
    mr_dir_status st;

    memset(map, 0, sizeof *map);
    if ((st = mr_dir_members(d, MR_KEY_ALIASES, "", &map->names, &map->count, err)) != MR_DIR_OK)
        return st;
    map->targets = calloc(map->count + 1, sizeof *map->targets);
    map->counts = calloc(map->count + 1, sizeof *map->counts);
    if (map->targets == NULL || map->counts == NULL) {
        dir_alias_map_free(map);
        return mr_err_set(err, "out of memory"), MR_DIR_UNAVAILABLE;
    }
    for (size_t i = 0; i < map->count; i++)
        redisAppendCommand(c, "SMEMBERS %s:%s%s", d->cfg->redis_prefix, MR_KEY_ALIAS,
                           map->names[i]);
    for (size_t i = 0; i < map->count; i++) {
        redisReply *reply = NULL;

        if (redisGetReply(c, (void **)&reply) != REDIS_OK) {
            map->count = i;   /* the connection is unusable anyway */
            dir_alias_map_free(map);
            return mr_err_set(err, "redis: %s", c->errstr[0] ? c->errstr : "no reply"),
                   MR_DIR_UNAVAILABLE;
        }
        if (reply->type == REDIS_REPLY_ARRAY
            && st == MR_DIR_OK) {
            map->targets[i] = calloc(reply->elements + 1, sizeof **map->targets);
            for (size_t e = 0; map->targets[i] != NULL && e < reply->elements; e++)
                if ((map->targets[i][map->counts[i]++] = strdup(reply->element[e]->str)) == NULL)
                    st = MR_DIR_UNAVAILABLE;
            if (map->targets[i] == NULL)
                st = MR_DIR_UNAVAILABLE;
        }
        freeReplyObject(reply);
    }
    if (st != MR_DIR_OK) {
        dir_alias_map_free(map);
        mr_err_set(err, "out of memory");
    }
    return st;
}

/* The index of alias name in the map, or -1. */
static long map_find(const dir_alias_map *map, const char *name)
{
    for (size_t lo = 0, hi = map->count; lo < hi;) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(name, map->names[mid]);

        if (cmp == 0)
            return (long)mid;
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

/* A growing list of borrowed strings. */
typedef struct name_list {
    const char **items;
    size_t count, cap;
} name_list;

static int list_has(const name_list *l, const char *name)
{
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->items[i], name) == 0)
            return 1;
    return 0;
}

static int list_add(name_list *l, const char *name)
{
    if (l->count == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        const char **grown = realloc(l->items, cap * sizeof *grown);

        if (grown == NULL)
            return -1;
        l->items = grown;
        l->cap = cap;
    }
    l->items[l->count++] = name;
    return 0;
}

/*
 * Whether following targets through the aliases of map reaches alias
 * (which is being given these targets). Depth-first with a visited mark per
 * alias, so it ends in at most one visit per alias. On a loop, path gets
 * "the first hop -> ... -> alias".
 */
static mr_dir_status find_loop(const dir_alias_map *map, const char *alias,
                               char *const *targets, size_t count, mr_err *err)
{
    unsigned char *visited = calloc(map->count + 1, 1);
    name_list stack = {NULL, 0, 0};
    mr_dir_status st = MR_DIR_OK;

    if (visited == NULL)
        return mr_err_set(err, "out of memory"), MR_DIR_UNAVAILABLE;
    for (size_t i = 0; i < count && st == MR_DIR_OK; i++)
        if (list_add(&stack, targets[i]) < 0)
            st = MR_DIR_UNAVAILABLE;
    while (st == MR_DIR_OK && stack.count > 0) {
        const char *name = stack.items[--stack.count];
        long at;

        if (strcmp(name, alias) == 0) {
            mr_err_set(err, "targets: a loop: following them leads back to %s", alias);
            st = MR_DIR_CONFLICT;
            break;
        }
        if ((at = map_find(map, name)) < 0 || visited[at])
            continue;
        visited[at] = 1;
        for (size_t i = 0; i < map->counts[at] && st == MR_DIR_OK; i++)
            if (list_add(&stack, map->targets[at][i]) < 0)
                st = MR_DIR_UNAVAILABLE;
    }
    if (st == MR_DIR_UNAVAILABLE)
        mr_err_set(err, "out of memory");
    free(stack.items);
    free(visited);
    return st;
}

/* --- the forward robot of offsite targets -------------------------------------------- */

#define ALIAS_ROBOT_PREFIX "alias."

/* "alias.<32 hex>": the name of the forward robot of an alias. */
static void alias_robot_name(const char *address, char out[sizeof ALIAS_ROBOT_PREFIX + 32])
{
    unsigned char hash[16];
    char hex[33];

    crypto_generichash(hash, sizeof hash, (const unsigned char *)address, strlen(address), NULL,
                       0);
    sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
    snprintf(out, sizeof ALIAS_ROBOT_PREFIX + 32, "%s%s", ALIAS_ROBOT_PREFIX, hex);
}

/* The robot's document: forward to the offsite targets. */
static char *alias_robot_json(const mr_config *cfg, const char *name, char *const *offsite,
                              size_t count)
{
    json_t *to = json_array(), *doc;
    char *text;

    for (size_t i = 0; i < count; i++)
        json_array_append_new(to, json_string(offsite[i]));
    doc = json_pack("{s:s, s:s, s:{s:o, s:s}}", "name", name, "kind", "forward", "forward",
                    "to", to, "envelope_sender", cfg->srs_domain[0] ? "srs" : "keep");
    text = doc ? json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(doc);
    return text;
}

/* Writes (count > 0) or removes (count == 0) the forward robot of an alias
 * and its route. Refused when the address routes to another robot. */
static mr_dir_status alias_robot_write(mr_dir *d, mr_dir_txn *t, const char *address,
                                       char *const *offsite, size_t count, mr_err *err)
{
    char name[sizeof ALIAS_ROBOT_PREFIX + 32], robot[MR_DIR_KEY_MAX], robots[MR_DIR_KEY_MAX],
         route[MR_DIR_KEY_MAX], routes[MR_DIR_KEY_MAX];
    char *routed = NULL, *json;
    size_t len;
    mr_dir_status st;

    alias_robot_name(address, name);
    if ((st = DIR_KEY(d, MR_KEY_ROBOT, name, robot, err)) != MR_DIR_OK
        || (st = DIR_KEY(d, MR_KEY_ROBOTS, "", robots, err)) != MR_DIR_OK
        || (st = DIR_KEY(d, MR_KEY_ROUTE, address, route, err)) != MR_DIR_OK
        || (st = DIR_KEY(d, MR_KEY_ROUTES, "", routes, err)) != MR_DIR_OK
        || (st = mr_dir_get(d, MR_KEY_ROUTE, address, &routed, &len, err)) == MR_DIR_UNAVAILABLE)
        return st == MR_DIR_OK ? MR_DIR_UNAVAILABLE : st;
    if (routed != NULL && strcmp(routed, name) != 0) {
        mr_err_set(err, "address: %s routes to robot %s; remove that route before giving the "
                   "alias offsite targets", address, routed);
        free(routed);
        return count > 0 ? MR_DIR_CONFLICT : MR_DIR_OK;   /* not ours: leave it */
    }
    if (count == 0 && routed == NULL && mr_dir_exists(d, MR_KEY_ROBOT, name, err) == 0)
        return MR_DIR_OK;   /* nothing of ours to remove */
    free(routed);
    mr_dir_txn_touch_robots(t);
    if (count == 0)
        return (st = mr_dir_txn_add(t, err, "DEL", robot, NULL)) != MR_DIR_OK
                   || (st = mr_dir_txn_add(t, err, "SREM", robots, name, NULL)) != MR_DIR_OK
                   || (st = mr_dir_txn_add(t, err, "DEL", route, NULL)) != MR_DIR_OK
                   ? st : mr_dir_txn_add(t, err, "SREM", routes, address, NULL);
    if ((json = alias_robot_json(d->cfg, name, offsite, count)) == NULL)
        return mr_err_set(err, "out of memory"), MR_DIR_UNAVAILABLE;
    if ((st = mr_dir_txn_add(t, err, "SET", robot, json, NULL)) == MR_DIR_OK
        && (st = mr_dir_txn_add(t, err, "SADD", robots, name, NULL)) == MR_DIR_OK
        && (st = mr_dir_txn_add(t, err, "SET", route, name, NULL)) == MR_DIR_OK)
        st = mr_dir_txn_add(t, err, "SADD", routes, address, NULL);
    free(json);
    return st;
}

/* The targets of an alias that are offsite (not robot:, domain not hosted),
 * into offsite (room for count). Returns how many, or -1 (Redis). */
static long offsite_targets(mr_dir *d, char *const *targets, size_t count, char **offsite,
                            mr_err *err)
{
    long n = 0;

    for (size_t i = 0; i < count; i++) {
        int hosted;

        if (strncmp(targets[i], ROBOT_PREFIX, strlen(ROBOT_PREFIX)) == 0)
            continue;
        if ((hosted = dir_domain_hosted(d, dir_domain_of(targets[i]), err)) < 0)
            return -1;
        if (!hosted)
            offsite[n++] = targets[i];
    }
    return n;
}

/* --- set, remove --------------------------------------------------------------- */

typedef struct alias_change {
    char address[MR_DIR_ADDRESS_MAX + 1];
    const char *const *given;
    char **targets;          /* checked, lower-cased, without duplicates */
    size_t count;
} alias_change;

static mr_dir_status check_targets(mr_dir *d, alias_change *ac, mr_err *err)
{
    char checked[MR_DIR_ADDRESS_MAX + 1], field[32];
    mr_dir_status st;

    for (size_t i = 0; ac->given[i] != NULL; i++) {
        snprintf(field, sizeof field, "targets/%zu", i);
        if (mr_dir_address_parse(field, ac->given[i], checked, err) == MR_DIR_OK
            && strcmp(checked, ac->address) == 0)
            return mr_err_set(err, "%s: %s is the alias itself (a loop)", field, checked),
                   MR_DIR_CONFLICT;
        if ((st = mr_dir_target_check(d, field, ac->given[i], checked, err)) != MR_DIR_OK)
            return st;
        if (strcmp(checked, ac->address) == 0)
            return mr_err_set(err, "%s: %s is the alias itself (a loop)", field, checked),
                   MR_DIR_CONFLICT;
        for (size_t k = 0; k < ac->count; k++)
            if (strcmp(ac->targets[k], checked) == 0)
                goto next;
        if ((ac->targets[ac->count] = strdup(checked)) == NULL)
            return mr_err_set(err, "out of memory"), MR_DIR_UNAVAILABLE;
        ac->count++;
next:;
    }
    return MR_DIR_OK;
}

/* The alias's forward robot for its offsite targets (or none). */
static mr_dir_status plan_offsite(mr_dir *d, alias_change *ac, mr_dir_txn *t, mr_err *err)
{
    char **offsite = calloc(ac->count + 1, sizeof *offsite);
    long n = offsite ? offsite_targets(d, ac->targets, ac->count, offsite, err) : -1;
    mr_dir_status st = MR_DIR_OK;

    for (long i = 0; i < n && st == MR_DIR_OK; i++)
        if (!mr_address_valid(offsite[i]))
            st = (mr_err_set(err, "targets: %s: not an address a forward robot can send to",
                             offsite[i]), MR_DIR_INVALID);
    if (n < 0)
        st = offsite ? MR_DIR_UNAVAILABLE : (mr_err_set(err, "out of memory"), MR_DIR_UNAVAILABLE);
    if (st == MR_DIR_OK)
        st = alias_robot_write(d, t, ac->address, offsite, (size_t)n, err);
    free(offsite);
    return st;
}

static mr_dir_status plan_set(mr_dir *d, void *opaque, mr_dir_txn *t, mr_err *err)
{
    alias_change *ac = opaque;
    char key[MR_DIR_KEY_MAX], aliases[MR_DIR_KEY_MAX];
    dir_alias_map map;
    int hosted, kind;
    mr_dir_status st;

    for (size_t i = 0; i < ac->count; i++)
        free(ac->targets[i]);
    ac->count = 0;
    if ((hosted = dir_domain_hosted(d, dir_domain_of(ac->address), err)) <= 0)
        return hosted < 0 ? MR_DIR_UNAVAILABLE
                          : (mr_err_set(err, "address: domain %s is not hosted",
                                        dir_domain_of(ac->address)), MR_DIR_INVALID);
    if ((kind = dir_kind_of(d, ac->address, err)) == DIR_ACCOUNT)
        return mr_err_set(err, "address: %s is an account", ac->address), MR_DIR_CONFLICT;
    if (kind < 0 || (st = check_targets(d, ac, err)) != MR_DIR_OK)
        return kind < 0 ? MR_DIR_UNAVAILABLE : st;
    if ((st = dir_alias_map_load(d, &map, err)) != MR_DIR_OK)
        return st;
    st = find_loop(&map, ac->address, ac->targets, ac->count, err);
    dir_alias_map_free(&map);
    if (st != MR_DIR_OK || (st = DIR_KEY(d, MR_KEY_ALIAS, ac->address, key, err)) != MR_DIR_OK
        || (st = DIR_KEY(d, MR_KEY_ALIASES, "", aliases, err)) != MR_DIR_OK
        || (st = mr_dir_txn_add(t, err, "DEL", key, NULL)) != MR_DIR_OK)
        return st;
    for (size_t i = 0; i < ac->count && st == MR_DIR_OK; i++)
        st = mr_dir_txn_add(t, err, "SADD", key, ac->targets[i], NULL);
    if (st == MR_DIR_OK)
        st = mr_dir_txn_add(t, err, "SADD", aliases, ac->address, NULL);
    return st != MR_DIR_OK ? st : plan_offsite(d, ac, t, err);
}

mr_dir_status mr_dir_alias_set(mr_dir *d, const char *address, const char *const *targets,
                               size_t count, mr_err *err)
{
    alias_change ac = {.count = 0};
    const char **given;
    mr_dir_status st = mr_dir_address_parse("address", address, ac.address, err);

    if (st != MR_DIR_OK)
        return st;
    if (count == 0 || count > MR_DIR_TARGETS_MAX)
        return mr_err_set(err, "targets: %s (1 to %d)", count ? "too many" : "none given",
                          MR_DIR_TARGETS_MAX), MR_DIR_INVALID;
    given = calloc(count + 1, sizeof *given);
    ac.targets = calloc(count + 1, sizeof *ac.targets);
    if (given == NULL || ac.targets == NULL)
        st = (mr_err_set(err, "out of memory"), MR_DIR_UNAVAILABLE);
    for (size_t i = 0; st == MR_DIR_OK && i < count; i++)
        given[i] = targets[i] != NULL ? targets[i] : "";
    ac.given = given;
    if (st == MR_DIR_OK)
        st = mr_dir_change(d, plan_set, &ac, err);
    mr_dir_names_free(ac.targets, ac.count);
    free(given);
    return st;
}

static mr_dir_status plan_remove(mr_dir *d, void *opaque, mr_dir_txn *t, mr_err *err)
{
    alias_change *ac = opaque;
    char key[MR_DIR_KEY_MAX], aliases[MR_DIR_KEY_MAX];
    const char *gone[1] = {ac->address};
    mr_dir_status st;

    if ((st = dir_require(d, ac->address, DIR_ALIAS, err)) != MR_DIR_OK)
        return st;
    if ((st = DIR_KEY(d, MR_KEY_ALIAS, ac->address, key, err)) != MR_DIR_OK
        || (st = DIR_KEY(d, MR_KEY_ALIASES, "", aliases, err)) != MR_DIR_OK
        || (st = mr_dir_txn_add(t, err, "DEL", key, NULL)) != MR_DIR_OK
        || (st = mr_dir_txn_add(t, err, "SREM", aliases, ac->address, NULL)) != MR_DIR_OK)
        return st;
    return dir_forget(d, t, gone, 1, err);
}

mr_dir_status mr_dir_alias_remove(mr_dir *d, const char *address, mr_err *err)
{
    alias_change ac = {.count = 0};
    mr_dir_status st = mr_dir_address_parse("address", address, ac.address, err);

    return st != MR_DIR_OK ? st : mr_dir_change(d, plan_remove, &ac, err);
}

mr_dir_status mr_dir_alias_get(mr_dir *d, const char *address_arg, char ***targets,
                               size_t *count, mr_err *err)
{
    char address[MR_DIR_ADDRESS_MAX + 1];
    mr_dir_status st = mr_dir_address_parse("address", address_arg, address, err);

    *targets = NULL;
    *count = 0;
    if (st != MR_DIR_OK)
        return st;
    if ((st = dir_require(d, address, DIR_ALIAS, err)) != MR_DIR_OK)
        return st;
    return mr_dir_members(d, MR_KEY_ALIAS, address, targets, count, err);
}

/* The sorted members of set kind that are in domain (all if domain is NULL). */
static mr_dir_status list_in_domain(mr_dir *d, const char *kind, const char *domain_arg,
                                    char ***names, size_t *count, mr_err *err)
{
    char domain[MR_DIR_DOMAIN_MAX + 1];
    mr_dir_status st = MR_DIR_OK;
    size_t kept = 0;

    if (domain_arg != NULL && (st = mr_dir_domain_parse("domain", domain_arg, domain, err)))
        return st;
    if ((st = mr_dir_members(d, kind, "", names, count, err)) != MR_DIR_OK || domain_arg == NULL)
        return st;
    for (size_t i = 0; i < *count; i++) {
        if (strcmp(dir_domain_of((*names)[i]), domain) == 0)
            (*names)[kept++] = (*names)[i];
        else
            free((*names)[i]);
    }
    *count = kept;
    return MR_DIR_OK;
}

mr_dir_status mr_dir_alias_list(mr_dir *d, const char *domain, char ***names, size_t *count,
                                mr_err *err)
{
    return list_in_domain(d, MR_KEY_ALIASES, domain, names, count, err);
}

mr_dir_status mr_dir_account_list(mr_dir *d, const char *domain, char ***names, size_t *count,
                                  mr_err *err)
{
    return list_in_domain(d, MR_KEY_ACCOUNTS, domain, names, count, err);
}

/* --- forgetting removed addresses ---------------------------------------------- */

/* HDELs catch_all of every domain whose catch-all is gone. */
static mr_dir_status forget_catch_alls(mr_dir *d, mr_dir_txn *t, const name_list *gone,
                                       mr_err *err)
{
    char **domains, key[MR_DIR_KEY_MAX];
    size_t count;
    mr_dir_status st = mr_dir_members(d, MR_KEY_DOMAINS, "", &domains, &count, err);

    for (size_t i = 0; st == MR_DIR_OK && i < count; i++) {
        redisReply *reply;

        if ((st = DIR_KEY(d, MR_KEY_DOMAIN, domains[i], key, err)) != MR_DIR_OK)
            break;
        if ((reply = mr_dir_command(d, err, "HGET %s catch_all", key)) == NULL) {
            st = MR_DIR_UNAVAILABLE;
            break;
        }
        if (reply->type == REDIS_REPLY_STRING && list_has(gone, reply->str))
            st = mr_dir_txn_add(t, err, "HDEL", key, "catch_all", NULL);
        freeReplyObject(reply);
    }
    mr_dir_names_free(domains, count);
    return st;
}

/* SREMs "alias:<a>" of every gone alias from every account's owned set. */
static mr_dir_status forget_owned(mr_dir *d, mr_dir_txn *t, const name_list *gone,
                                  size_t first_alias, mr_err *err)
{
    char pattern[MR_DIR_KEY_MAX], cursor[32] = "0", item[MR_DIR_ADDRESS_MAX + 8];
    mr_dir_status st = DIR_KEY(d, MR_KEY_OWNED, "*", pattern, err);

    do {
        redisReply *reply = st == MR_DIR_OK ? mr_dir_command(d, err, "SCAN %s MATCH %s COUNT 1000",
                                                             cursor, pattern) : NULL;

        if (reply == NULL)
            return st != MR_DIR_OK ? st : MR_DIR_UNAVAILABLE;
        snprintf(cursor, sizeof cursor, "%s", reply->element[0]->str);
        for (size_t k = 0; k < reply->element[1]->elements && st == MR_DIR_OK; k++)
            for (size_t g = first_alias; g < gone->count && st == MR_DIR_OK; g++) {
                snprintf(item, sizeof item, "alias:%s", gone->items[g]);
                st = mr_dir_txn_add(t, err, "SREM", reply->element[1]->element[k]->str, item,
                                    NULL);
            }
        freeReplyObject(reply);
    } while (st == MR_DIR_OK && strcmp(cursor, "0") != 0);
    return st;
}

mr_dir_status dir_forget(mr_dir *d, mr_dir_txn *t, const char *const *gone_in, size_t count,
                         mr_err *err)
{
    char key[MR_DIR_KEY_MAX], aliases[MR_DIR_KEY_MAX];
    name_list gone = {NULL, 0, 0};
    dir_alias_map map;
    size_t emptied_from;
    int changed = 1;
    mr_dir_status st;

    if ((st = dir_alias_map_load(d, &map, err)) != MR_DIR_OK)
        return st;
    for (size_t i = 0; i < count && st == MR_DIR_OK; i++)
        if (list_add(&gone, gone_in[i]) < 0)
            st = MR_DIR_UNAVAILABLE;
    emptied_from = gone.count;
    /* Aliases whose every target is gone are gone too, until nothing changes. */
    while (st == MR_DIR_OK && changed) {
        changed = 0;
        for (size_t a = 0; a < map.count && st == MR_DIR_OK; a++) {
            size_t left = 0;

            if (list_has(&gone, map.names[a]))
                continue;
            for (size_t i = 0; i < map.counts[a]; i++)
                left += !list_has(&gone, map.targets[a][i]);
            if (left == 0 && map.counts[a] > 0) {
                if (list_add(&gone, map.names[a]) < 0)
                    st = MR_DIR_UNAVAILABLE;
                changed = 1;
            }
        }
    }
    if (st == MR_DIR_UNAVAILABLE)
        mr_err_set(err, "out of memory");
    if (st == MR_DIR_OK)
        st = DIR_KEY(d, MR_KEY_ALIASES, "", aliases, err);
    for (size_t g = emptied_from; g < gone.count && st == MR_DIR_OK; g++) {
        if ((st = DIR_KEY(d, MR_KEY_ALIAS, gone.items[g], key, err)) == MR_DIR_OK
            && (st = mr_dir_txn_add(t, err, "DEL", key, NULL)) == MR_DIR_OK)
            st = mr_dir_txn_add(t, err, "SREM", aliases, gone.items[g], NULL);
    }
    for (size_t g = 0; g < gone.count && st == MR_DIR_OK; g++)
        if (map_find(&map, gone.items[g]) >= 0)
            st = alias_robot_write(d, t, gone.items[g], NULL, 0, err);
    for (size_t a = 0; a < map.count && st == MR_DIR_OK; a++) {
        if (list_has(&gone, map.names[a]) || (st = DIR_KEY(d, MR_KEY_ALIAS, map.names[a], key,
                                                           err)) != MR_DIR_OK)
            continue;
        for (size_t i = 0; i < map.counts[a] && st == MR_DIR_OK; i++)
            if (list_has(&gone, map.targets[a][i]))
                st = mr_dir_txn_add(t, err, "SREM", key, map.targets[a][i], NULL);
    }
    if (st == MR_DIR_OK)
        st = forget_catch_alls(d, t, &gone, err);
    if (st == MR_DIR_OK)
        st = forget_owned(d, t, &gone, 0, err);
    free(gone.items);
    dir_alias_map_free(&map);
    return st;
}
