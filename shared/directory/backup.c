/*
 * backup.c - the directory as a JSON document and back
 * (schemas/backup-v1.json; directory.h; docs/accounts.md).
 *
 * A backup is read as one consistent snapshot: the reads run under the
 * change machinery's WATCH and an empty transaction ends them, so a
 * concurrent change makes the backup start over rather than mix two
 * states. A restore validates the whole document first (structure and
 * every field, then against the directory) and writes it in one
 * MULTI/EXEC: all of it or nothing.
 *
 * Password hashes travel as hashes; pending reset tokens, robot state and
 * delivery markers are not part of a backup.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailrobot/keys.h"
#include "mailrobot/robot.h"

#include "directory_internal.h"

#define BACKUP_VERSION 1
#define ARGON2ID_PREFIX "$argon2id$"
#define TIME_MAX 39

/* --- writing a backup -------------------------------------------------------------- */

typedef struct backup_plan {
    const char *account;      /* NULL: everything */
    json_t *doc;
} backup_plan;

/* HGETALL key into a new JSON object of strings. */
static json_t *hash_object(mr_dir *d, const char *key, mr_err *err)
{
    redisReply *reply = mr_dir_command(d, err, "HGETALL %s", key);
    json_t *o;

    if (reply == NULL)
        return NULL;
    o = json_object();
    for (size_t i = 0; o != NULL && i + 1 < reply->elements; i += 2)
        json_object_set_new(o, reply->element[i]->str, json_string(reply->element[i + 1]->str));
    freeReplyObject(reply);
    return o;
}

static json_t *names_array(char *const *names, size_t count)
{
    json_t *a = json_array();

    for (size_t i = 0; a != NULL && i < count; i++)
        json_array_append_new(a, json_string(names[i]));
    return a;
}

static mr_dir_status add_domain(mr_dir *d, json_t *domains, const char *domain, int full,
                                mr_err *err)
{
    char key[MR_DIR_KEY_MAX];
    json_t *entry, *fields;
    mr_dir_status st = DIR_KEY(d, MR_KEY_DOMAIN, domain, key, err);

    if (st != MR_DIR_OK)
        return st;
    entry = json_pack("{s:s}", "domain", domain);
    if (full) {
        if ((fields = hash_object(d, key, err)) == NULL) {
            json_decref(entry);
            return MR_DIR_UNAVAILABLE;
        }
        json_object_update(entry, fields);
        json_decref(fields);
    }
    json_array_append_new(domains, entry);
    return MR_DIR_OK;
}

static mr_dir_status add_account(mr_dir *d, json_t *accounts, const char *address, mr_err *err)
{
    char key[MR_DIR_KEY_MAX], **owns;
    size_t count;
    json_t *entry;
    mr_dir_status st = DIR_KEY(d, MR_KEY_ACCOUNT, address, key, err);

    if (st != MR_DIR_OK)
        return st;
    if ((entry = hash_object(d, key, err)) == NULL)
        return MR_DIR_UNAVAILABLE;
    json_object_del(entry, "reset");
    json_object_set_new(entry, "address", json_string(address));
    if ((st = mr_dir_members(d, MR_KEY_OWNED, address, &owns, &count, err)) == MR_DIR_OK)
        json_object_set_new(entry, "owns", names_array(owns, count));
    mr_dir_names_free(owns, count);
    json_array_append_new(accounts, entry);
    return st;
}

static mr_dir_status add_alias(mr_dir *d, json_t *aliases, const char *address, mr_err *err)
{
    char **targets;
    size_t count;
    mr_dir_status st = mr_dir_members(d, MR_KEY_ALIAS, address, &targets, &count, err);

    if (st == MR_DIR_OK && count > 0)
        json_array_append_new(aliases, json_pack("{s:s,s:o}", "address", address, "targets",
                                                 names_array(targets, count)));
    mr_dir_names_free(targets, count);
    return st;
}

/* A robot or route (string keys): {"name"|"address": name, value_field: value}. */
static mr_dir_status add_string(mr_dir *d, json_t *list, const char *kind, const char *name_field,
                                const char *name, const char *value_field, mr_err *err)
{
    char *value = NULL;
    mr_dir_status st = mr_dir_get(d, kind, name, &value, NULL, err);

    if (st == MR_DIR_OK)
        json_array_append_new(list, json_pack("{s:s,s:s}", name_field, name, value_field, value));
    free(value);
    return st == MR_DIR_NOT_FOUND ? MR_DIR_OK : st;   /* a set entry without its key */
}

static mr_dir_status backup_everything(mr_dir *d, json_t *doc, mr_err *err)
{
    static const struct {
        const char *set, *array;
    } sets[] = {{MR_KEY_DOMAINS, "domains"}, {MR_KEY_ACCOUNTS, "accounts"},
                {MR_KEY_ALIASES, "aliases"}, {MR_KEY_ROBOTS, "robots"},
                {MR_KEY_ROUTES, "routes"}};
    mr_dir_status st = MR_DIR_OK;

    for (size_t s = 0; s < sizeof sets / sizeof sets[0] && st == MR_DIR_OK; s++) {
        json_t *array = json_object_get(doc, sets[s].array);
        char **names;
        size_t count;

        if ((st = mr_dir_members(d, sets[s].set, "", &names, &count, err)) != MR_DIR_OK)
            break;
        for (size_t i = 0; i < count && st == MR_DIR_OK; i++) {
            if (s == 0)
                st = add_domain(d, array, names[i], 1, err);
            else if (s == 1)
                st = add_account(d, array, names[i], err);
            else if (s == 2)
                st = add_alias(d, array, names[i], err);
            else if (s == 3)
                st = add_string(d, array, MR_KEY_ROBOT, "name", names[i], "document", err);
            else
                st = add_string(d, array, MR_KEY_ROUTE, "address", names[i], "robot", err);
        }
        mr_dir_names_free(names, count);
    }
    return st;
}

static mr_dir_status backup_account(mr_dir *d, const char *address, json_t *doc, mr_err *err)
{
    char **owns = NULL;
    size_t count = 0;
    mr_dir_status st;

    if ((st = dir_require(d, address, DIR_ACCOUNT, err)) != MR_DIR_OK)
        return st;
    json_object_set_new(doc, "account", json_string(address));
    if ((st = add_domain(d, json_object_get(doc, "domains"), dir_domain_of(address), 0, err))
        != MR_DIR_OK
        || (st = add_account(d, json_object_get(doc, "accounts"), address, err)) != MR_DIR_OK
        || (st = mr_dir_members(d, MR_KEY_OWNED, address, &owns, &count, err)) != MR_DIR_OK)
        return st;
    for (size_t i = 0; i < count && st == MR_DIR_OK; i++) {
        const char *name = strchr(owns[i], ':') + 1;

        if (strncmp(owns[i], "alias:", 6) == 0)
            st = add_alias(d, json_object_get(doc, "aliases"), name, err);
        else if (strncmp(owns[i], "robot:", 6) == 0)
            st = add_string(d, json_object_get(doc, "robots"), MR_KEY_ROBOT, "name", name,
                            "document", err);
        else if (strncmp(owns[i], "route:", 6) == 0)
            st = add_string(d, json_object_get(doc, "routes"), MR_KEY_ROUTE, "address", name,
                            "robot", err);
    }
    mr_dir_names_free(owns, count);
    return st;
}

static mr_dir_status plan_backup(mr_dir *d, void *opaque, mr_dir_txn *t, mr_err *err)
{
    backup_plan *bp = opaque;
    char now[40];

    json_decref(bp->doc);
    dir_now(now);
    bp->doc = json_pack("{s:i,s:s,s:[],s:[],s:[],s:[],s:[]}", "version", BACKUP_VERSION,
                        "created", now, "domains", "accounts", "aliases", "robots", "routes");
    if (bp->doc == NULL)
        return mr_err_set(err, "out of memory"), MR_DIR_UNAVAILABLE;
    mr_dir_txn_skip_directory(t);   /* an empty transaction: only the WATCH matters */
    return bp->account ? backup_account(d, bp->account, bp->doc, err)
                       : backup_everything(d, bp->doc, err);
}

mr_dir_status mr_dir_backup(mr_dir *d, const char *account, char **json, size_t *len,
                            mr_err *err)
{
    char address[MR_DIR_ADDRESS_MAX + 1];
    backup_plan bp = {NULL, NULL};
    mr_dir_status st = MR_DIR_OK;

    *json = NULL;
    *len = 0;
    if (account != NULL && (st = mr_dir_address_parse("account", account, address, err)))
        return st;
    bp.account = account ? address : NULL;
    st = mr_dir_change(d, plan_backup, &bp, err);
    if (st == MR_DIR_OK
        && (*json = json_dumps(bp.doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER)) == NULL)
        st = (mr_err_set(err, "out of memory"), MR_DIR_UNAVAILABLE);
    if (st == MR_DIR_OK && (*len = strlen(*json)) > d->cfg->directory_backup_limit) {
        free(*json);
        *json = NULL;
        st = (mr_err_set(err, "the backup is larger than directory_backup_limit (%llu bytes)",
                        (unsigned long long)d->cfg->directory_backup_limit), MR_DIR_INVALID);
    }
    json_decref(bp.doc);
    return st;
}

/* --- checking a backup ---------------------------------------------------------- */

/* Every check names its place in the document as a JSON pointer. */
typedef struct checker {
    char where[128];
    mr_err *err;
} checker;

static mr_dir_status bad(checker *c, const char *what)
{
    mr_err_set(c->err, "%s: %s", c->where[0] ? c->where : "/", what);
    return MR_DIR_INVALID;
}

static void at(checker *c, const char *array, size_t i, const char *field)
{
    if (field != NULL)
        snprintf(c->where, sizeof c->where, "/%s/%zu/%s", array, i, field);
    else
        snprintf(c->where, sizeof c->where, "/%s/%zu", array, i);
}

/* The object has only the allowed members and the required ones. */
static mr_dir_status members_ok(checker *c, json_t *o, const char *const *allowed,
                                const char *const *required)
{
    const char *key;
    json_t *value;
    char where[128];

    if (!json_is_object(o))
        return bad(c, "not an object");
    snprintf(where, sizeof where, "%s", c->where);
    json_object_foreach(o, key, value) {
        size_t i = 0;

        while (allowed[i] != NULL && strcmp(allowed[i], key) != 0)
            i++;
        if (allowed[i] == NULL) {
            snprintf(c->where, sizeof c->where, "%s/%.60s", where, key);
            return bad(c, "unknown member");
        }
    }
    for (size_t i = 0; required[i] != NULL; i++)
        if (json_object_get(o, required[i]) == NULL) {
            snprintf(c->where, sizeof c->where, "%s/%s", where, required[i]);
            return bad(c, "missing");
        }
    return MR_DIR_OK;
}

static mr_dir_status string_ok(checker *c, json_t *v, size_t max, const char **s)
{
    if (!json_is_string(v))
        return bad(c, "not a string");
    *s = json_string_value(v);
    if (json_string_length(v) > max || strlen(*s) != json_string_length(v))
        return bad(c, "too long or contains NUL");
    for (const char *p = *s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            return bad(c, "contains a control character");
    return MR_DIR_OK;
}

/* An address that is stored lower-cased as given. */
static mr_dir_status address_ok(checker *c, json_t *v)
{
    char parsed[MR_DIR_ADDRESS_MAX + 1];
    const char *s;
    mr_err ignored;

    if (string_ok(c, v, MR_DIR_ADDRESS_MAX, &s) != MR_DIR_OK)
        return MR_DIR_INVALID;
    if (mr_dir_address_parse("", s, parsed, &ignored) != MR_DIR_OK || strcmp(parsed, s) != 0)
        return bad(c, "not a lower-case address (local@domain)");
    return MR_DIR_OK;
}

static mr_dir_status target_ok(checker *c, json_t *v)
{
    const char *s;

    if (json_is_string(v) && strncmp(json_string_value(v), "robot:", 6) == 0)
        return string_ok(c, v, MR_DIR_ADDRESS_MAX, &s) != MR_DIR_OK ? MR_DIR_INVALID
               : mr_robot_name_valid(s + 6) ? MR_DIR_OK : bad(c, "not a robot name");
    return address_ok(c, v);
}

static mr_dir_status time_ok(checker *c, json_t *v)
{
    const char *s;

    return v == NULL ? MR_DIR_OK : string_ok(c, v, TIME_MAX, &s);
}

static mr_dir_status check_domains(checker *c, json_t *list)
{
    static const char *const allowed[] = {"domain", "created", "catch_all", NULL};
    static const char *const required[] = {"domain", NULL};
    char parsed[MR_DIR_DOMAIN_MAX + 1];
    const char *s;
    size_t i;
    json_t *e;
    mr_err ignored;

    json_array_foreach(list, i, e) {
        at(c, "domains", i, NULL);
        if (members_ok(c, e, allowed, required) != MR_DIR_OK)
            return MR_DIR_INVALID;
        at(c, "domains", i, "domain");
        if (string_ok(c, json_object_get(e, "domain"), MR_DIR_DOMAIN_MAX, &s) != MR_DIR_OK)
            return MR_DIR_INVALID;
        if (mr_dir_domain_parse("", s, parsed, &ignored) != MR_DIR_OK || strcmp(parsed, s) != 0)
            return bad(c, "not a lower-case domain name");
        at(c, "domains", i, "created");
        if (time_ok(c, json_object_get(e, "created")) != MR_DIR_OK)
            return MR_DIR_INVALID;
        at(c, "domains", i, "catch_all");
        if (json_object_get(e, "catch_all") && target_ok(c, json_object_get(e, "catch_all")))
            return MR_DIR_INVALID;
    }
    return MR_DIR_OK;
}

static mr_dir_status check_accounts(checker *c, json_t *list)
{
    static const char *const allowed[] = {"address", "password", "recovery", "created",
                                          "updated", "owns", NULL};
    static const char *const required[] = {"address", "password", NULL};
    const char *s;
    size_t i, k;
    json_t *e, *item;

    json_array_foreach(list, i, e) {
        at(c, "accounts", i, NULL);
        if (members_ok(c, e, allowed, required) != MR_DIR_OK)
            return MR_DIR_INVALID;
        at(c, "accounts", i, "address");
        if (address_ok(c, json_object_get(e, "address")) != MR_DIR_OK)
            return MR_DIR_INVALID;
        at(c, "accounts", i, "password");
        if (string_ok(c, json_object_get(e, "password"), DIR_HASH_SIZE - 1, &s) != MR_DIR_OK)
            return MR_DIR_INVALID;
        if (strncmp(s, ARGON2ID_PREFIX, strlen(ARGON2ID_PREFIX)) != 0)
            return bad(c, "not an argon2id hash ($argon2id$...); backups never hold clear "
                          "text passwords");
        at(c, "accounts", i, "recovery");
        if (json_object_get(e, "recovery") && address_ok(c, json_object_get(e, "recovery")))
            return MR_DIR_INVALID;
        at(c, "accounts", i, "created");
        if (time_ok(c, json_object_get(e, "created")) != MR_DIR_OK)
            return MR_DIR_INVALID;
        at(c, "accounts", i, "updated");
        if (time_ok(c, json_object_get(e, "updated")) != MR_DIR_OK)
            return MR_DIR_INVALID;
        at(c, "accounts", i, "owns");
        item = json_object_get(e, "owns");
        if (item != NULL && !json_is_array(item))
            return bad(c, "not an array");
        json_array_foreach(json_object_get(e, "owns"), k, item) {
            snprintf(c->where, sizeof c->where, "/accounts/%zu/owns/%zu", i, k);
            if (string_ok(c, item, MR_DIR_ADDRESS_MAX + 6, &s) != MR_DIR_OK)
                return MR_DIR_INVALID;
            if (strncmp(s, "robot:", 6) && strncmp(s, "route:", 6) && strncmp(s, "alias:", 6))
                return bad(c, "expected robot:<name>, route:<address> or alias:<address>");
        }
    }
    return MR_DIR_OK;
}

static mr_dir_status check_aliases(checker *c, json_t *list)
{
    static const char *const allowed[] = {"address", "targets", NULL};
    size_t i, k;
    json_t *e, *targets, *t;

    json_array_foreach(list, i, e) {
        at(c, "aliases", i, NULL);
        if (members_ok(c, e, allowed, allowed) != MR_DIR_OK)
            return MR_DIR_INVALID;
        at(c, "aliases", i, "address");
        if (address_ok(c, json_object_get(e, "address")) != MR_DIR_OK)
            return MR_DIR_INVALID;
        at(c, "aliases", i, "targets");
        targets = json_object_get(e, "targets");
        if (!json_is_array(targets) || json_array_size(targets) == 0
            || json_array_size(targets) > MR_DIR_TARGETS_MAX)
            return bad(c, "expected an array of 1 to 50 targets");
        json_array_foreach(targets, k, t) {
            snprintf(c->where, sizeof c->where, "/aliases/%zu/targets/%zu", i, k);
            if (target_ok(c, t) != MR_DIR_OK)
                return MR_DIR_INVALID;
        }
    }
    return MR_DIR_OK;
}

static mr_dir_status check_robots(checker *c, json_t *list)
{
    static const char *const allowed[] = {"name", "document", NULL};
    const char *name, *document;
    mr_robot robot;
    mr_err why;
    size_t i;
    json_t *e;

    json_array_foreach(list, i, e) {
        at(c, "robots", i, NULL);
        if (members_ok(c, e, allowed, allowed) != MR_DIR_OK)
            return MR_DIR_INVALID;
        at(c, "robots", i, "name");
        if (string_ok(c, json_object_get(e, "name"), 64, &name) != MR_DIR_OK)
            return MR_DIR_INVALID;
        if (!mr_robot_name_valid(name))
            return bad(c, "not a robot name");
        at(c, "robots", i, "document");
        if (!json_is_string(json_object_get(e, "document")))
            return bad(c, "not a string");
        document = json_string_value(json_object_get(e, "document"));
        if (mr_robot_parse(document, json_string_length(json_object_get(e, "document")), &robot,
                           &why) < 0) {
            mr_err_set(c->err, "%s: not a valid robot: %s", c->where, why.msg);
            return MR_DIR_INVALID;
        }
        if (strcmp(robot.name, name) != 0) {
            mr_robot_free(&robot);
            return bad(c, "the robot's name differs from /name");
        }
        mr_robot_free(&robot);
    }
    return MR_DIR_OK;
}

static mr_dir_status check_routes(checker *c, json_t *list)
{
    static const char *const allowed[] = {"address", "robot", NULL};
    char parsed[MR_DIR_DOMAIN_MAX + 1];
    const char *s;
    size_t i;
    json_t *e, *address;
    mr_err ignored;

    json_array_foreach(list, i, e) {
        at(c, "routes", i, NULL);
        if (members_ok(c, e, allowed, allowed) != MR_DIR_OK)
            return MR_DIR_INVALID;
        at(c, "routes", i, "address");
        address = json_object_get(e, "address");
        if (json_is_string(address) && strcmp(json_string_value(address), MR_ROUTE_DEFAULT) == 0)
            ;
        else if (json_is_string(address) && json_string_value(address)[0] == '@') {
            s = json_string_value(address) + 1;
            if (strlen(s) > MR_DIR_DOMAIN_MAX
                || mr_dir_domain_parse("", s, parsed, &ignored) != MR_DIR_OK
                || strcmp(parsed, s) != 0)
                return bad(c, "not @domain (lower-case)");
        } else if (address_ok(c, address) != MR_DIR_OK)
            return MR_DIR_INVALID;
        at(c, "routes", i, "robot");
        if (string_ok(c, json_object_get(e, "robot"), 64, &s) != MR_DIR_OK)
            return MR_DIR_INVALID;
        if (!mr_robot_name_valid(s))
            return bad(c, "not a robot name");
    }
    return MR_DIR_OK;
}

/* No address twice in accounts and aliases together. */
static mr_dir_status check_unique(checker *c, json_t *doc)
{
    const char *const lists[] = {"accounts", "aliases"};
    json_t *seen = json_object();
    mr_dir_status st = MR_DIR_OK;

    for (size_t l = 0; l < 2 && st == MR_DIR_OK; l++) {
        size_t i;
        json_t *e;

        json_array_foreach(json_object_get(doc, lists[l]), i, e) {
            const char *address = json_string_value(json_object_get(e, "address"));

            if (json_object_get(seen, address) != NULL) {
                at(c, lists[l], i, "address");
                st = bad(c, "this address is already in the backup");
                break;
            }
            json_object_set_new(seen, address, json_true());
        }
    }
    json_decref(seen);
    return st;
}

mr_dir_status mr_dir_backup_check(const mr_config *cfg, const char *json, size_t len,
                                  json_t **doc_out, mr_err *err)
{
    static const char *const allowed[] = {"version", "created", "account", "domains",
                                          "accounts", "aliases", "robots", "routes", NULL};
    static const char *const required[] = {"version", NULL};
    static const char *const arrays[] = {"domains", "accounts", "aliases", "robots", "routes"};
    static mr_dir_status (*const checks[])(checker *, json_t *) = {
        check_domains, check_accounts, check_aliases, check_robots, check_routes};
    checker c = {"", err};
    json_error_t jerr;
    json_t *doc, *v;
    mr_dir_status st = MR_DIR_OK;

    *doc_out = NULL;
    if (len > cfg->directory_backup_limit)
        return mr_err_set(err, "the backup is larger than directory_backup_limit (%llu bytes)",
                          (unsigned long long)cfg->directory_backup_limit), MR_DIR_INVALID;
    if ((doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
        return mr_err_set(err, "not JSON: line %d column %d: %s", jerr.line, jerr.column,
                          jerr.text), MR_DIR_INVALID;
    if (members_ok(&c, doc, allowed, required) != MR_DIR_OK)
        st = MR_DIR_INVALID;
    v = json_object_get(doc, "version");
    if (st == MR_DIR_OK && (!json_is_integer(v) || json_integer_value(v) != BACKUP_VERSION)) {
        snprintf(c.where, sizeof c.where, "/version");
        st = bad(&c, "expected 1 (this program reads backup-v1)");
    }
    if (st == MR_DIR_OK && (v = json_object_get(doc, "account")) != NULL) {
        snprintf(c.where, sizeof c.where, "/account");
        st = address_ok(&c, v);
    }
    if (st == MR_DIR_OK && json_object_get(doc, "created") != NULL) {
        snprintf(c.where, sizeof c.where, "/created");
        st = time_ok(&c, json_object_get(doc, "created"));
    }
    for (size_t a = 0; st == MR_DIR_OK && a < sizeof arrays / sizeof arrays[0]; a++) {
        v = json_object_get(doc, arrays[a]);
        snprintf(c.where, sizeof c.where, "/%s", arrays[a]);
        if (v == NULL)
            json_object_set_new(doc, arrays[a], json_array());
        else if (!json_is_array(v))
            st = bad(&c, "not an array");
        else
            st = checks[a](&c, v);
    }
    if (st == MR_DIR_OK)
        st = check_unique(&c, doc);
    if (st != MR_DIR_OK) {
        json_decref(doc);
        return st;
    }
    *doc_out = doc;
    return MR_DIR_OK;
}

/* --- restore ------------------------------------------------------------------- */

typedef struct restore_plan {
    json_t *doc;
} restore_plan;

/* 1 if domain is one of the document's domains. */
static int doc_has_domain(json_t *doc, const char *domain)
{
    size_t i;
    json_t *e;

    json_array_foreach(json_object_get(doc, "domains"), i, e)
        if (strcmp(json_string_value(json_object_get(e, "domain")), domain) == 0)
            return 1;
    return 0;
}

/* Domains hosted or restored; accounts not aliases in Redis, and back. */
static mr_dir_status restore_check(mr_dir *d, json_t *doc, mr_err *err)
{
    const char *const lists[] = {"accounts", "aliases"};

    for (size_t l = 0; l < 2; l++) {
        size_t i;
        json_t *e;

        json_array_foreach(json_object_get(doc, lists[l]), i, e) {
            const char *address = json_string_value(json_object_get(e, "address"));
            const char *domain = dir_domain_of(address);
            int hosted = doc_has_domain(doc, domain) ? 1 : dir_domain_hosted(d, domain, err);
            int kind = hosted < 0 ? -1 : dir_kind_of(d, address, err);

            if (hosted < 0 || kind < 0)
                return MR_DIR_UNAVAILABLE;
            if (!hosted)
                return mr_err_set(err, "/%s/%zu/address: domain %s is neither hosted nor in the "
                                  "backup", lists[l], i, domain), MR_DIR_INVALID;
            if (kind == (l == 0 ? DIR_ALIAS : DIR_ACCOUNT))
                return mr_err_set(err, "/%s/%zu/address: %s is %s in the directory", lists[l], i,
                                  address, l == 0 ? "an alias" : "an account"), MR_DIR_CONFLICT;
        }
    }
    return MR_DIR_OK;
}

/* HSET key with every string member of e but those named in skip. */
static mr_dir_status hset_members(mr_dir_txn *t, const char *key, json_t *e,
                                  const char *const *skip, mr_err *err)
{
    const char *field;
    json_t *value;
    mr_dir_status st = MR_DIR_OK;

    json_object_foreach(e, field, value) {
        size_t i = 0;

        while (skip[i] != NULL && strcmp(skip[i], field) != 0)
            i++;
        if (skip[i] == NULL && json_is_string(value) && st == MR_DIR_OK)
            st = mr_dir_txn_add(t, err, "HSET", key, field, json_string_value(value), NULL);
    }
    return st;
}

static mr_dir_status restore_writes(mr_dir *d, json_t *doc, mr_dir_txn *t, mr_err *err)
{
    static const char *const domain_skip[] = {"domain", NULL};
    static const char *const account_skip[] = {"address", "owns", NULL};
    char key[MR_DIR_KEY_MAX], set[MR_DIR_KEY_MAX], now[40];
    mr_dir_status st = MR_DIR_OK;
    size_t i, k;
    json_t *e, *v;

    dir_now(now);
    json_array_foreach(json_object_get(doc, "domains"), i, e) {
        const char *domain = json_string_value(json_object_get(e, "domain"));

        if (st != MR_DIR_OK || (st = DIR_KEY(d, MR_KEY_DOMAIN, domain, key, err)) != MR_DIR_OK
            || (st = DIR_KEY(d, MR_KEY_DOMAINS, "", set, err)) != MR_DIR_OK)
            break;
        if (json_object_get(e, "created") != NULL) {   /* a full entry replaces */
            if ((st = mr_dir_txn_add(t, err, "DEL", key, NULL)) == MR_DIR_OK)
                st = hset_members(t, key, e, domain_skip, err);
        } else {
            st = mr_dir_txn_add(t, err, "HSETNX", key, "created", now, NULL);
        }
        if (st == MR_DIR_OK)
            st = mr_dir_txn_add(t, err, "SADD", set, domain, NULL);
    }
    json_array_foreach(json_object_get(doc, "accounts"), i, e) {
        const char *address = json_string_value(json_object_get(e, "address"));

        if (st != MR_DIR_OK || (st = DIR_KEY(d, MR_KEY_ACCOUNT, address, key, err)) != MR_DIR_OK
            || (st = mr_dir_txn_add(t, err, "DEL", key, NULL)) != MR_DIR_OK
            || (st = hset_members(t, key, e, account_skip, err)) != MR_DIR_OK
            || (st = DIR_KEY(d, MR_KEY_ACCOUNTS, "", set, err)) != MR_DIR_OK
            || (st = mr_dir_txn_add(t, err, "SADD", set, address, NULL)) != MR_DIR_OK
            || (st = DIR_KEY(d, MR_KEY_OWNED, address, key, err)) != MR_DIR_OK
            || (st = mr_dir_txn_add(t, err, "DEL", key, NULL)) != MR_DIR_OK)
            break;
        json_array_foreach(json_object_get(e, "owns"), k, v)
            if (st == MR_DIR_OK)
                st = mr_dir_txn_add(t, err, "SADD", key, json_string_value(v), NULL);
    }
    json_array_foreach(json_object_get(doc, "aliases"), i, e) {
        const char *address = json_string_value(json_object_get(e, "address"));

        if (st != MR_DIR_OK || (st = DIR_KEY(d, MR_KEY_ALIAS, address, key, err)) != MR_DIR_OK
            || (st = mr_dir_txn_add(t, err, "DEL", key, NULL)) != MR_DIR_OK
            || (st = DIR_KEY(d, MR_KEY_ALIASES, "", set, err)) != MR_DIR_OK
            || (st = mr_dir_txn_add(t, err, "SADD", set, address, NULL)) != MR_DIR_OK)
            break;
        json_array_foreach(json_object_get(e, "targets"), k, v)
            if (st == MR_DIR_OK)
                st = mr_dir_txn_add(t, err, "SADD", key, json_string_value(v), NULL);
    }
    json_array_foreach(json_object_get(doc, "robots"), i, e) {
        const char *name = json_string_value(json_object_get(e, "name"));

        mr_dir_txn_touch_robots(t);
        if (st != MR_DIR_OK || (st = DIR_KEY(d, MR_KEY_ROBOT, name, key, err)) != MR_DIR_OK
            || (st = mr_dir_txn_add(t, err, "SET", key,
                                    json_string_value(json_object_get(e, "document")), NULL))
                   != MR_DIR_OK
            || (st = DIR_KEY(d, MR_KEY_ROBOTS, "", set, err)) != MR_DIR_OK
            || (st = mr_dir_txn_add(t, err, "SADD", set, name, NULL)) != MR_DIR_OK)
            break;
    }
    json_array_foreach(json_object_get(doc, "routes"), i, e) {
        const char *address = json_string_value(json_object_get(e, "address"));

        mr_dir_txn_touch_robots(t);
        if (st != MR_DIR_OK || (st = DIR_KEY(d, MR_KEY_ROUTE, address, key, err)) != MR_DIR_OK
            || (st = mr_dir_txn_add(t, err, "SET", key,
                                    json_string_value(json_object_get(e, "robot")), NULL))
                   != MR_DIR_OK
            || (st = DIR_KEY(d, MR_KEY_ROUTES, "", set, err)) != MR_DIR_OK
            || (st = mr_dir_txn_add(t, err, "SADD", set, address, NULL)) != MR_DIR_OK)
            break;
    }
    return st;
}

static mr_dir_status plan_restore(mr_dir *d, void *opaque, mr_dir_txn *t, mr_err *err)
{
    restore_plan *rp = opaque;
    mr_dir_status st = restore_check(d, rp->doc, err);

    return st != MR_DIR_OK ? st : restore_writes(d, rp->doc, t, err);
}

mr_dir_status mr_dir_restore(mr_dir *d, const char *json, size_t len, mr_err *err)
{
    restore_plan rp = {NULL};
    mr_dir_status st = mr_dir_backup_check(d->cfg, json, len, &rp.doc, err);

    if (st == MR_DIR_OK)
        st = mr_dir_change(d, plan_restore, &rp, err);
    json_decref(rp.doc);
    return st;
}
