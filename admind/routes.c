/*
 * routes.c - the admin API's operations (schemas/admin-api.yaml), one
 * handler each, every one a thin call into the directory library
 * (mailrobot/directory.h) plus its audit event (mailrobot/audit.h).
 *
 * Request bodies are JSON objects; a field the operation does not know,
 * a field of the wrong type or a missing one is a 400 naming the field.
 * The library's refusals keep its status (invalid 400, not_found 404,
 * conflict 409, denied 403, unavailable 503) and its message, whose first
 * word names the field.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admind.h"

/* --- replies ---------------------------------------------------------------------- */

void admind_error(admind_reply *r, unsigned status, const char *field, const char *fmt, ...)
{
    char message[MR_ERR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof message, fmt, ap);
    va_end(ap);
    json_decref(r->json);
    free(r->raw);
    r->raw = NULL;
    r->status = status;
    r->json = json_pack("{s:{s:i, s:s?, s:s}}", "error", "status", (int)status, "field", field,
                        "message", message);
}

static unsigned http_status(mr_dir_status st)
{
    switch (st) {
    case MR_DIR_OK:
        return 200;
    case MR_DIR_INVALID:
        return 400;
    case MR_DIR_NOT_FOUND:
        return 404;
    case MR_DIR_CONFLICT:
        return 409;
    case MR_DIR_DENIED:
        return 403;
    case MR_DIR_UNAVAILABLE:
        break;
    }
    return 503;
}

/* A library refusal: the field is the message's first word when a colon
 * follows it ("password: ...", "/accounts/0/address: ..."), or what
 * "domain X: ...", "account X: ...", "alias X: ..." are about. */
static void dir_error(admind_reply *r, mr_dir_status st, const mr_err *err)
{
    char field[64];
    size_t n = strcspn(err->msg, ": ");

    field[0] = '\0';
    if (n > 0 && n < sizeof field && err->msg[n] == ':')
        snprintf(field, sizeof field, "%.*s", (int)n, err->msg);
    else if (n > 0 && err->msg[n] == ' ' && !strncmp(err->msg, "domain", n))
        snprintf(field, sizeof field, "domain");
    else if (n > 0 && err->msg[n] == ' '
             && (!strncmp(err->msg, "account", n) || !strncmp(err->msg, "alias", n)))
        snprintf(field, sizeof field, "address");
    if (!strcmp(field, "redis"))
        field[0] = '\0';
    admind_error(r, http_status(st), field[0] ? field : NULL, "%s", err->msg);
}

static void ok(admind_reply *r, unsigned status, json_t *body)
{
    r->status = status;
    r->json = body;
}

/* --- request bodies --------------------------------------------------------------- */

/* Parses the body as a JSON object whose keys are all in allowed
 * (NULL-terminated). NULL with r set on failure. */
static json_t *body_object(const admind_request *req, const char *const *allowed,
                           admind_reply *r)
{
    json_error_t jerr;
    json_t *o;
    const char *key;
    json_t *value;

    if (req->len == 0) {
        admind_error(r, 400, "body", "missing: expected a JSON object");
        return NULL;
    }
    o = json_loadb(req->body, req->len, JSON_REJECT_DUPLICATES, &jerr);
    if (o == NULL) {
        admind_error(r, 400, "body", "not JSON: line %d column %d: %s", jerr.line,
                     jerr.column, jerr.text);
        return NULL;
    }
    if (!json_is_object(o)) {
        json_decref(o);
        admind_error(r, 400, "body", "expected a JSON object");
        return NULL;
    }
    json_object_foreach(o, key, value) {
        size_t i;

        for (i = 0; allowed[i] != NULL && strcmp(allowed[i], key) != 0; i++)
            ;
        if (allowed[i] == NULL) {
            admind_error(r, 400, key, "%s: unknown field", key);
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* The string field name of o: 0 with *out (NULL if absent or null and not
 * required), or -1 with r set. */
static int string_field(json_t *o, const char *name, int required, const char **out,
                        admind_reply *r)
{
    json_t *v = json_object_get(o, name);

    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (!required)
            return 0;
        admind_error(r, 400, name, "%s: missing", name);
        return -1;
    }
    if (!json_is_string(v)) {
        admind_error(r, 400, name, "%s: expected a string", name);
        return -1;
    }
    if (strlen(json_string_value(v)) != json_string_length(v)) {
        admind_error(r, 400, name, "%s: contains a NUL character", name);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static json_t *names_array(char **names, size_t count)
{
    json_t *a = json_array();

    for (size_t i = 0; i < count; i++)
        json_array_append_new(a, json_string(names[i]));
    return a;
}

static const char *query(const admind_request *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* --- domains ---------------------------------------------------------------------- */

static void domain_list(admind *a, mr_dir *d, admind_reply *r)
{
    char **names;
    size_t count;
    mr_err err;
    mr_dir_status st = mr_dir_domain_list(d, &names, &count, &err);
    json_t *list;

    if (st != MR_DIR_OK)
        return dir_error(r, st, &err);
    list = json_array();
    for (size_t i = 0; st == MR_DIR_OK && i < count; i++) {
        char *catch_all = NULL;

        if ((st = mr_dir_domain_get(d, names[i], &catch_all, &err)) == MR_DIR_OK)
            json_array_append_new(list, json_pack("{s:s, s:s?}", "domain", names[i],
                                                  "catch_all", catch_all));
        free(catch_all);
    }
    mr_dir_names_free(names, count);
    if (st != MR_DIR_OK) {
        json_decref(list);
        return dir_error(r, st, &err);
    }
    ok(r, 200, json_pack("{s:o}", "domains", list));
}

static void domain_show(admind *a, mr_dir *d, const char *domain, admind_reply *r)
{
    char *catch_all = NULL;
    mr_err err;
    mr_dir_status st = mr_dir_domain_get(d, domain, &catch_all, &err);

    if (st != MR_DIR_OK)
        return dir_error(r, st, &err);
    ok(r, 200, json_pack("{s:s, s:s?}", "domain", domain, "catch_all", catch_all));
    free(catch_all);
}

static void domain_add(admind *a, mr_dir *d, const char *domain, admind_reply *r)
{
    mr_err err;
    mr_dir_status st = mr_dir_domain_add(d, domain, &err);

    mr_audit_record(a->audit, "domain.add", domain, st);
    if (st != MR_DIR_OK)
        return dir_error(r, st, &err);
    ok(r, 201, json_pack("{s:s, s:n}", "domain", domain, "catch_all"));
}

static void domain_remove(admind *a, mr_dir *d, const char *domain, admind_reply *r)
{
    mr_err err;
    mr_dir_status st = mr_dir_domain_remove(d, domain, &err);

    mr_audit_record(a->audit, "domain.remove", domain, st);
    if (st != MR_DIR_OK)
        return dir_error(r, st, &err);
    ok(r, 200, json_pack("{s:s}", "removed", domain));
}

static void domain_catch_all(admind *a, mr_dir *d, const admind_request *req,
                             const char *domain, admind_reply *r)
{
    static const char *const fields[] = {"target", NULL};
    json_t *o = body_object(req, fields, r);
    const char *target;
    mr_err err;
    mr_dir_status st;

    if (o == NULL)
        return;
    if (json_object_get(o, "target") == NULL) {
        json_decref(o);
        return admind_error(r, 400, "target", "target: missing (null removes the catch-all)");
    }
    if (string_field(o, "target", 0, &target, r) == 0) {
        st = mr_dir_domain_catch_all(d, domain, target, &err);
        mr_audit_record(a->audit, "domain.catch_all", domain, st);
        if (st != MR_DIR_OK && !strncmp(err.msg, "catch_all:", 10))
            admind_error(r, http_status(st), "target", "target%s", err.msg + 9);
        else if (st != MR_DIR_OK)
            dir_error(r, st, &err);
        else
            ok(r, 200, json_pack("{s:s, s:s?}", "domain", domain, "catch_all", target));
    }
    json_decref(o);
}

/* --- accounts --------------------------------------------------------------------- */

static void account_list(admind *a, mr_dir *d, const admind_request *req, admind_reply *r)
{
    char **names;
    size_t count;
    mr_err err;
    mr_dir_status st = mr_dir_account_list(d, query(req, "domain"), &names, &count, &err);

    if (st != MR_DIR_OK)
        return dir_error(r, st, &err);
    ok(r, 200, json_pack("{s:o}", "accounts", names_array(names, count)));
    mr_dir_names_free(names, count);
}

static void account_show(admind *a, mr_dir *d, const char *address, admind_reply *r,
                         unsigned status)
{
    mr_dir_account acc;
    mr_err err;
    mr_dir_status st = mr_dir_account_show(d, address, &acc, &err);

    if (st != MR_DIR_OK)
        return dir_error(r, st, &err);
    ok(r, status, json_pack("{s:s, s:s?, s:s, s:s, s:b, s:o}", "address", acc.address,
                            "recovery", acc.recovery[0] ? acc.recovery : NULL, "created",
                            acc.created, "updated", acc.updated, "reset_pending",
                            acc.reset_pending, "owns", names_array(acc.owns, acc.owns_count)));
    mr_dir_account_free(&acc);
}

static void account_create(admind *a, mr_dir *d, const admind_request *req, admind_reply *r)
{
    static const char *const fields[] = {"address", "password", "recovery", NULL};
    json_t *o = body_object(req, fields, r);
    const char *address, *password, *recovery;
    char parsed[MR_DIR_ADDRESS_MAX + 1];
    mr_err err;
    mr_dir_status st;

    if (o == NULL)
        return;
    if (string_field(o, "address", 1, &address, r) == 0
        && string_field(o, "password", 1, &password, r) == 0
        && string_field(o, "recovery", 0, &recovery, r) == 0) {
        st = mr_dir_account_create(d, address, password, recovery, &err);
        mr_audit_record(a->audit, "account.create", address, st);
        if (st != MR_DIR_OK)
            dir_error(r, st, &err);
        else if (mr_dir_address_parse("address", address, parsed, &err) == MR_DIR_OK)
            account_show(a, d, parsed, r, 201);
        else
            dir_error(r, MR_DIR_INVALID, &err);
    }
    json_decref(o);
}

static void account_remove(admind *a, mr_dir *d, const char *address, admind_reply *r)
{
    mr_err err;
    mr_dir_status st = mr_dir_account_remove(d, address, &err);

    mr_audit_record(a->audit, "account.remove", address, st);
    if (st != MR_DIR_OK)
        return dir_error(r, st, &err);
    ok(r, 200, json_pack("{s:s}", "removed", address));
}

/* POST /accounts/{address}/password: the admin token may leave out the
 * old password (mr_dir_account_passwd with NULL). */
static void account_password(admind *a, mr_dir *d, const admind_request *req,
                             const char *address, admind_reply *r)
{
    static const char *const fields[] = {"old_password", "new_password", NULL};
    json_t *o = body_object(req, fields, r);
    const char *old, *new_password;
    mr_err err;
    mr_dir_status st;

    if (o == NULL)
        return;
    if (string_field(o, "old_password", 0, &old, r) == 0
        && string_field(o, "new_password", 1, &new_password, r) == 0) {
        st = mr_dir_account_passwd(d, address, old, new_password, &err);
        mr_audit_record(a->audit, "account.password", address, st);
        if (st != MR_DIR_OK && !strncmp(err.msg, "password:", 9))
            admind_error(r, 400, "new_password", "new_%s", err.msg);
        else if (st != MR_DIR_OK && st == MR_DIR_DENIED)
            admind_error(r, 403, "old_password", "%s", err.msg);
        else if (st != MR_DIR_OK)
            dir_error(r, st, &err);
        else
            ok(r, 200, json_pack("{s:s}", "changed", address));
    }
    json_decref(o);
}

static void account_reset(admind *a, mr_dir *d, const admind_request *req, const char *address,
                          admind_reply *r)
{
    char token[MR_DIR_TOKEN_SIZE], recovery[MR_DIR_ADDRESS_MAX + 1];
    mr_err err;
    mr_dir_status st;

    if (req->len > 0 && strspn(req->body, " \t\r\n") != req->len) {
        static const char *const none[] = {NULL};
        json_t *o = body_object(req, none, r);

        if (o == NULL)
            return;
        json_decref(o);
    }
    st = mr_dir_reset_send(d, &a->kafka, address, token, recovery, &err);
    sodium_memzero(token, sizeof token);
    mr_audit_record(a->audit, "account.reset_start", address, st);
    if (st != MR_DIR_OK)
        return dir_error(r, st, &err);
    ok(r, 202, json_pack("{s:s, s:s}", "address", address, "sent_to", recovery));
}

static void reset_finish(admind *a, mr_dir *d, const admind_request *req, admind_reply *r)
{
    static const char *const fields[] = {"token", "new_password", NULL};
    json_t *o = body_object(req, fields, r);
    const char *token, *new_password;
    char address[MR_DIR_ADDRESS_MAX + 1] = "";
    mr_err err;
    mr_dir_status st;

    if (o == NULL)
        return;
    if (string_field(o, "token", 1, &token, r) == 0
        && string_field(o, "new_password", 1, &new_password, r) == 0) {
        st = mr_dir_reset_finish(d, token, new_password, address, &err);
        mr_audit_record(a->audit, "account.reset_finish", address[0] ? address : NULL, st);
        if (st != MR_DIR_OK && !strncmp(err.msg, "password:", 9))
            admind_error(r, 400, "new_password", "new_%s", err.msg);
        else if (st != MR_DIR_OK)
            dir_error(r, st, &err);
        else
            ok(r, 200, json_pack("{s:s}", "changed", address));
    }
    json_decref(o);
}

/* --- aliases ---------------------------------------------------------------------- */

static void alias_list(admind *a, mr_dir *d, const admind_request *req, admind_reply *r)
{
    char **names;
    size_t count;
    mr_err err;
    mr_dir_status st = mr_dir_alias_list(d, query(req, "domain"), &names, &count, &err);

    if (st != MR_DIR_OK)
        return dir_error(r, st, &err);
    ok(r, 200, json_pack("{s:o}", "aliases", names_array(names, count)));
    mr_dir_names_free(names, count);
}

static void alias_show(admind *a, mr_dir *d, const char *address, admind_reply *r,
                       unsigned status)
{
    char **targets, parsed[MR_DIR_ADDRESS_MAX + 1];
    size_t count;
    mr_err err;
    mr_dir_status st = mr_dir_address_parse("address", address, parsed, &err);

    if (st == MR_DIR_OK)
        st = mr_dir_alias_get(d, parsed, &targets, &count, &err);
    if (st != MR_DIR_OK)
        return dir_error(r, st, &err);
    ok(r, status, json_pack("{s:s, s:o}", "address", parsed, "targets",
                            names_array(targets, count)));
    mr_dir_names_free(targets, count);
}

static void alias_set(admind *a, mr_dir *d, const admind_request *req, const char *address,
                      admind_reply *r)
{
    static const char *const fields[] = {"targets", NULL};
    json_t *o = body_object(req, fields, r), *list;
    const char **targets;
    size_t count;
    mr_err err;
    mr_dir_status st;

    if (o == NULL)
        return;
    list = json_object_get(o, "targets");
    if (!json_is_array(list) || json_array_size(list) > MR_DIR_TARGETS_MAX) {
        json_decref(o);
        return admind_error(r, 400, "targets", "targets: expected an array of 1 to %d "
                            "strings", MR_DIR_TARGETS_MAX);
    }
    count = json_array_size(list);
    targets = calloc(count + 1, sizeof *targets);
    for (size_t i = 0; targets != NULL && i < count; i++) {
        json_t *t = json_array_get(list, i);

        if (!json_is_string(t)) {
            char field[32];

            snprintf(field, sizeof field, "targets/%zu", i);
            admind_error(r, 400, field, "%s: expected a string", field);
            free(targets);
            json_decref(o);
            return;
        }
        targets[i] = json_string_value(t);
    }
    if (targets == NULL) {
        json_decref(o);
        return admind_error(r, 503, NULL, "out of memory");
    }
    st = mr_dir_alias_set(d, address, targets, count, &err);
    mr_audit_record(a->audit, "alias.set", address, st);
    if (st != MR_DIR_OK)
        dir_error(r, st, &err);
    else
        alias_show(a, d, address, r, 200);
    free(targets);
    json_decref(o);
}

static void alias_remove(admind *a, mr_dir *d, const char *address, admind_reply *r)
{
    mr_err err;
    mr_dir_status st = mr_dir_alias_remove(d, address, &err);

    mr_audit_record(a->audit, "alias.remove", address, st);
    if (st != MR_DIR_OK)
        return dir_error(r, st, &err);
    ok(r, 200, json_pack("{s:s}", "removed", address));
}

/* --- backup and restore ----------------------------------------------------------- */

static void backup(admind *a, mr_dir *d, const admind_request *req, admind_reply *r)
{
    char *json = NULL;
    size_t len = 0;
    mr_err err;
    mr_dir_status st = mr_dir_backup(d, query(req, "account"), &json, &len, &err);

    if (st != MR_DIR_OK)
        return dir_error(r, st, &err);
    r->status = 200;
    r->raw = json;
    r->raw_len = len;
}

static void restore(admind *a, mr_dir *d, const admind_request *req, admind_reply *r)
{
    mr_err err;
    mr_dir_status st = mr_dir_restore(d, req->body, req->len, &err);

    mr_audit_record(a->audit, "restore", NULL, st);
    if (st == MR_DIR_INVALID && err.msg[0] != '/')      /* about the whole document */
        return admind_error(r, 400, "body", "%s", err.msg);
    if (st != MR_DIR_OK)
        return dir_error(r, st, &err);
    ok(r, 200, json_pack("{s:b}", "restored", 1));
}

/* --- the table of routes ---------------------------------------------------------- */

/* The path split at '/': up to 3 segments; -1 if there are more or one is
 * empty. */
static int split_path(const char *path, char seg[3][MR_DIR_ADDRESS_MAX + 2])
{
    int n = 0;

    if (*path != '/')
        return -1;
    while (*path == '/') {
        size_t len = strcspn(++path, "/");

        if (len == 0 || len > MR_DIR_ADDRESS_MAX || n == 3)
            return -1;
        memcpy(seg[n], path, len);
        seg[n][len] = '\0';
        n++;
        path += len;
    }
    return *path ? -1 : n;
}

static int is(const admind_request *req, const char *method)
{
    return strcmp(req->method, method) == 0;
}

static void not_allowed(admind_reply *r, const admind_request *req, const char *allow)
{
    admind_error(r, 405, NULL, "%s is not allowed here (allowed: %s)", req->method, allow);
    r->allow = allow;
}

void admind_route(admind *a, const admind_request *req, admind_reply *r)
{
    char seg[3][MR_DIR_ADDRESS_MAX + 2], name[MR_DIR_ADDRESS_MAX + 1];
    int n = split_path(req->path, seg);
    mr_dir *d;
    mr_err err;

    if (n < 1 || (strcmp(seg[0], "domains") && strcmp(seg[0], "accounts")
                  && strcmp(seg[0], "aliases") && strcmp(seg[0], "backup")
                  && strcmp(seg[0], "restore") && strcmp(seg[0], "reset")))
        return admind_error(r, 404, NULL, "no such resource: %s (see schemas/admin-api.yaml)",
                            req->path);
    /* The name in the path, lower-cased and checked as the library does,
     * so that replies and audit events carry it the way it is stored. */
    if (n >= 2 && !strcmp(seg[0], "domains")
        && mr_dir_domain_parse("domain", seg[1], name, &err) != MR_DIR_OK)
        return dir_error(r, MR_DIR_INVALID, &err);
    if (n >= 2 && (!strcmp(seg[0], "accounts") || !strcmp(seg[0], "aliases"))
        && mr_dir_address_parse("address", seg[1], name, &err) != MR_DIR_OK)
        return dir_error(r, MR_DIR_INVALID, &err);
    if (n >= 2)
        snprintf(seg[1], sizeof seg[1], "%s", name);
    if ((d = admind_dir(a, &err)) == NULL)
        return admind_error(r, 503, NULL, "the directory is unavailable: %s", err.msg);

    if (!strcmp(seg[0], "domains")) {
        if (n == 1)
            return is(req, "GET") ? domain_list(a, d, r) : not_allowed(r, req, "GET");
        if (n == 2 && is(req, "GET"))
            return domain_show(a, d, seg[1], r);
        if (n == 2 && is(req, "PUT"))
            return domain_add(a, d, seg[1], r);
        if (n == 2 && is(req, "DELETE"))
            return domain_remove(a, d, seg[1], r);
        if (n == 2)
            return not_allowed(r, req, "GET, PUT, DELETE");
        if (n == 3 && !strcmp(seg[2], "catch-all"))
            return is(req, "PUT") ? domain_catch_all(a, d, req, seg[1], r)
                                  : not_allowed(r, req, "PUT");
    } else if (!strcmp(seg[0], "accounts")) {
        if (n == 1 && is(req, "GET"))
            return account_list(a, d, req, r);
        if (n == 1)
            return is(req, "POST") ? account_create(a, d, req, r)
                                   : not_allowed(r, req, "GET, POST");
        if (n == 2 && is(req, "GET"))
            return account_show(a, d, seg[1], r, 200);
        if (n == 2)
            return is(req, "DELETE") ? account_remove(a, d, seg[1], r)
                                     : not_allowed(r, req, "GET, DELETE");
        if (n == 3 && !strcmp(seg[2], "password"))
            return is(req, "POST") ? account_password(a, d, req, seg[1], r)
                                   : not_allowed(r, req, "POST");
        if (n == 3 && !strcmp(seg[2], "reset"))
            return is(req, "POST") ? account_reset(a, d, req, seg[1], r)
                                   : not_allowed(r, req, "POST");
    } else if (!strcmp(seg[0], "aliases")) {
        if (n == 1)
            return is(req, "GET") ? alias_list(a, d, req, r) : not_allowed(r, req, "GET");
        if (n == 2 && is(req, "GET"))
            return alias_show(a, d, seg[1], r, 200);
        if (n == 2 && is(req, "PUT"))
            return alias_set(a, d, req, seg[1], r);
        if (n == 2)
            return is(req, "DELETE") ? alias_remove(a, d, seg[1], r)
                                     : not_allowed(r, req, "GET, PUT, DELETE");
    } else if (n == 1 && !strcmp(seg[0], "backup")) {
        return is(req, "GET") ? backup(a, d, req, r) : not_allowed(r, req, "GET");
    } else if (n == 1 && !strcmp(seg[0], "restore")) {
        return is(req, "POST") ? restore(a, d, req, r) : not_allowed(r, req, "POST");
    } else if (n == 1 && !strcmp(seg[0], "reset")) {
        return is(req, "POST") ? reset_finish(a, d, req, r) : not_allowed(r, req, "POST");
    }
    admind_error(r, 404, NULL, "no such resource: %s (see schemas/admin-api.yaml)", req->path);
}
