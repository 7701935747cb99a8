/*
 * test_directory.c - the directory's checks that need no Redis
 * (mailrobot/directory.h): addresses, domains, passwords, reset token
 * hashes and backup documents.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mailrobot/config.h"
#include "mailrobot/directory.h"

static mr_config cfg;

static int setup(void **state)
{
    char *envp[] = {NULL};
    mr_err err;
    static const char text[] = "directory_backup_limit = 4KiB\n";

    (void)state;
    if (mr_config_load_text(&cfg, "test.conf", text, strlen(text), envp, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    mr_config_free(&cfg);
    return 0;
}

static void test_address(void **state)
{
    char out[MR_DIR_ADDRESS_MAX + 1], long_local[300];
    mr_err err;

    (void)state;
    assert_int_equal(mr_dir_address_parse("address", "Bob.Smith@Example.COM", out, &err),
                     MR_DIR_OK);
    assert_string_equal(out, "bob.smith@example.com");
    assert_int_equal(mr_dir_address_parse("address", "no-at-sign", out, &err), MR_DIR_INVALID);
    assert_string_equal(err.msg, "address: 'no-at-sign' is not an address (local@domain)");
    assert_int_equal(mr_dir_address_parse("recovery", "", out, &err), MR_DIR_INVALID);
    assert_string_equal(err.msg, "recovery: missing");
    memset(long_local, 'a', 251);
    strcpy(long_local + 251, "@b.c");
    assert_int_equal(mr_dir_address_parse("address", long_local, out, &err), MR_DIR_INVALID);
    assert_string_equal(err.msg, "address: longer than 254 bytes");
    assert_int_equal(mr_dir_address_parse("address", "a b@c.d", out, &err), MR_DIR_INVALID);
    assert_int_equal(mr_dir_domain_parse("domain", "Mail.Example.org", out, &err), MR_DIR_OK);
    assert_string_equal(out, "mail.example.org");
    assert_int_equal(mr_dir_domain_parse("domain", "a..b", out, &err), MR_DIR_INVALID);
    assert_int_equal(mr_dir_domain_parse("domain", "-a.b", out, &err), MR_DIR_INVALID);
}

static void test_password(void **state)
{
    char big[MR_DIR_PASSWORD_MAX + 2];
    mr_err err;

    (void)state;
    assert_int_equal(mr_dir_password_check(&cfg, "0123456789", &err), MR_DIR_OK);
    assert_int_equal(mr_dir_password_check(&cfg, "secret-123", &err), MR_DIR_OK);
    assert_int_equal(mr_dir_password_check(&cfg, "secret123", &err), MR_DIR_INVALID);
    assert_string_equal(err.msg, "password: shorter than 10 characters");
    /* characters, not bytes: 9 two-byte characters are too short */
    assert_int_equal(mr_dir_password_check(&cfg, "ééééééééé", &err), MR_DIR_INVALID);
    assert_int_equal(mr_dir_password_check(&cfg, "éééééééééé", &err), MR_DIR_OK);
    assert_int_equal(mr_dir_password_check(&cfg, "tab\there-1234", &err), MR_DIR_INVALID);
    assert_string_equal(err.msg, "password: contains a control character");
    assert_null(strstr(err.msg, "here-1234"));
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(mr_dir_password_check(&cfg, big, &err), MR_DIR_INVALID);
    assert_string_equal(err.msg, "password: longer than 1024 bytes");
    big[MR_DIR_PASSWORD_MAX] = '\0';
    assert_int_equal(mr_dir_password_check(&cfg, big, &err), MR_DIR_OK);
    assert_int_equal(mr_dir_password_check(&cfg, NULL, &err), MR_DIR_INVALID);
}

static void test_token_hash(void **state)
{
    char hex[MR_DIR_TOKEN_HASH_SIZE];

    (void)state;
    mr_dir_token_hash("abc", hex);   /* FIPS 180-2 test vector */
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    mr_dir_token_hash("", hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

static const char good[] =
    "{\"version\": 1, \"created\": \"2026-01-01T00:00:00Z\","
    " \"domains\": [{\"domain\": \"example.com\", \"created\": \"2026-01-01T00:00:00Z\","
    "                \"catch_all\": \"robot:helpdesk\"}],"
    " \"accounts\": [{\"address\": \"ann@example.com\","
    "                 \"password\": \"$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA\","
    "                 \"recovery\": \"ann@home.example\", \"owns\": [\"robot:helpdesk\"]}],"
    " \"aliases\": [{\"address\": \"info@example.com\","
    "                \"targets\": [\"ann@example.com\", \"robot:helpdesk\"]}],"
    " \"robots\": [{\"name\": \"helpdesk\","
    "               \"document\": \"{\\\"name\\\": \\\"helpdesk\\\", \\\"kind\\\": \\\"drop\\\"}\"}],"
    " \"routes\": [{\"address\": \"@example.com\", \"robot\": \"helpdesk\"},"
    "              {\"address\": \"*\", \"robot\": \"helpdesk\"}]}";

/* good with the first occurrence of from replaced by to. */
static mr_dir_status check_variant(const char *from, const char *to, mr_err *err)
{
    char doc[sizeof good + 4096];
    const char *at = strstr(good, from);
    json_t *parsed = NULL;
    mr_dir_status st;

    assert_non_null(at);
    snprintf(doc, sizeof doc, "%.*s%s%s", (int)(at - good), good, to, at + strlen(from));
    st = mr_dir_backup_check(&cfg, doc, strlen(doc), &parsed, err);
    json_decref(parsed);
    return st;
}

static void test_backup_check(void **state)
{
    char targets[4096] = "[", *p = targets + 1;
    json_t *doc = NULL;
    mr_err err;

    (void)state;
    assert_int_equal(mr_dir_backup_check(&cfg, good, strlen(good), &doc, &err), MR_DIR_OK);
    assert_int_equal(json_array_size(json_object_get(doc, "routes")), 2);
    json_decref(doc);

    assert_int_equal(check_variant("$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA",
                                   "correct horse battery", &err), MR_DIR_INVALID);
    assert_non_null(strstr(err.msg, "/accounts/0/password: not an argon2id hash"));
    assert_null(strstr(err.msg, "correct horse"));
    assert_int_equal(check_variant("\"version\": 1", "\"version\": 2", &err), MR_DIR_INVALID);
    assert_string_equal(err.msg, "/version: expected 1 (this program reads backup-v1)");
    assert_int_equal(check_variant("\"recovery\"", "\"nickname\"", &err), MR_DIR_INVALID);
    assert_string_equal(err.msg, "/accounts/0/nickname: unknown member");
    assert_int_equal(check_variant("info@example.com", "Info@example.com", &err),
                     MR_DIR_INVALID);
    assert_non_null(strstr(err.msg, "/aliases/0/address: not a lower-case address"));
    assert_int_equal(check_variant("info@example.com", "ann@example.com", &err),
                     MR_DIR_INVALID);
    assert_non_null(strstr(err.msg, "/aliases/0/address: this address is already"));
    assert_int_equal(check_variant("robot:helpdesk\"]}], \"robots", "robot:Bad Name\"]}], \"robots",
                                   &err),
                     MR_DIR_INVALID);
    assert_non_null(strstr(err.msg, "/aliases/0/targets/1: not a robot name"));
    assert_int_equal(check_variant("\\\"kind\\\": \\\"drop\\\"", "\\\"kind\\\": \\\"x\\\"",
                                   &err), MR_DIR_INVALID);
    assert_non_null(strstr(err.msg, "/robots/0/document: not a valid robot"));
    assert_int_equal(check_variant("\"@example.com\"", "\"@Example.com\"", &err),
                     MR_DIR_INVALID);
    assert_non_null(strstr(err.msg, "/routes/0/address"));
    assert_int_equal(check_variant("\"version\": 1,", "\"version\": 1, \"version\": 1,", &err),
                     MR_DIR_INVALID);
    assert_non_null(strstr(err.msg, "not JSON"));
    for (int i = 0; i < 51; i++)
        p += sprintf(p, "%s\"t%d@x.org\"", i ? "," : "", i);
    strcpy(p, "]");
    assert_int_equal(check_variant("[\"ann@example.com\", \"robot:helpdesk\"]", targets, &err),
                     MR_DIR_INVALID);
    assert_non_null(strstr(err.msg, "/aliases/0/targets: expected an array of 1 to 50"));
    assert_int_equal(mr_dir_backup_check(&cfg, "[]", 2, &doc, &err), MR_DIR_INVALID);
    assert_int_equal(mr_dir_backup_check(&cfg, "{}", 2, &doc, &err), MR_DIR_INVALID);
    assert_string_equal(err.msg, "/version: missing");
    assert_int_equal(mr_dir_backup_check(&cfg, good, 4097, &doc, &err), MR_DIR_INVALID);
    assert_non_null(strstr(err.msg, "larger than directory_backup_limit"));
    assert_null(doc);
}

static void test_status_names(void **state)
{
    (void)state;
    assert_string_equal(mr_dir_status_name(MR_DIR_OK), "ok");
    assert_string_equal(mr_dir_status_name(MR_DIR_NOT_FOUND), "not_found");
    assert_string_equal(mr_dir_status_name(MR_DIR_UNAVAILABLE), "unavailable");
    assert_string_equal(mr_dir_status_name((mr_dir_status)42), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_address),      cmocka_unit_test(test_password),
        cmocka_unit_test(test_token_hash),   cmocka_unit_test(test_backup_check),
        cmocka_unit_test(test_status_names),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
