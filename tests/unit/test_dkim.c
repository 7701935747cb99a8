/*
 * test_dkim.c - DKIM signing (dkim.h): the errors of every kind of bad
 * dkim_keys entry, which From address picks the key (the last field,
 * its exact domain in any case, quoted strings and comments skipped), no
 * signature without a matching key, and the tags and shape of the
 * DKIM-Signature field. The keys are made by OpenSSL when the tests
 * start. tests/mime/test_dkim.py verifies the signatures with dkimpy.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "mailrobot/dkim.h"

#define MESSAGE(from)                                                              \
    "From: " from "\r\n"                                                          \
    "To: Bob <bob@example.net>\r\n"                                               \
    "Subject: Hello\r\n"                                                          \
    "Date: Tue, 5 Mar 2024 13:03:22 +0100\r\n"                                    \
    "Message-ID: <m1@example.org>\r\n"                                            \
    "X-Unsigned: yes\r\n"                                                         \
    "\r\n"                                                                        \
    "Body\r\n"

static char dir[] = "/tmp/test_dkim.XXXXXX";
static char rsa_path[64], ed_path[64], small_path[64], ec_path[64], public_path[64],
    encrypted_path[64], text_path[64], bagged_path[64];

/* --- keys -------------------------------------------------------------------------- */

static void write_key(const char *path, EVP_PKEY *pkey, int how)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    if (how == 'b')
        fputs("Bag Attributes\n    friendlyName: dkim\n", f);
    if (how == 'p')
        assert_int_equal(PEM_write_PUBKEY(f, pkey), 1);
    else if (how == 'e')
        assert_int_equal(PEM_write_PrivateKey(f, pkey, EVP_aes_256_cbc(),
                                              (unsigned char *)"secret", 6, NULL, NULL), 1);
    else
        assert_int_equal(PEM_write_PrivateKey(f, pkey, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
}

static void make_key(char *path, const char *name, EVP_PKEY *pkey, int how)
{
    assert_non_null(pkey);
    snprintf(path, 64, "%s/%s", dir, name);
    write_key(path, pkey, how);
    EVP_PKEY_free(pkey);
}

static int keys_setup(void **state)
{
    FILE *f;

    if (mkdtemp(dir) == NULL)
        return -1;
    make_key(rsa_path, "rsa.pem", EVP_RSA_gen(2048), 'k');
    make_key(ed_path, "ed25519.pem", EVP_PKEY_Q_keygen(NULL, NULL, "ED25519"), 'k');
    make_key(small_path, "small.pem", EVP_RSA_gen(512), 'k');
    make_key(ec_path, "ec.pem", EVP_EC_gen("P-256"), 'k');
    make_key(public_path, "public.pem", EVP_RSA_gen(1024), 'p');
    make_key(encrypted_path, "encrypted.pem", EVP_RSA_gen(1024), 'e');
    make_key(bagged_path, "bagged.pem", EVP_RSA_gen(1024), 'b');
    snprintf(text_path, sizeof text_path, "%s/text.pem", dir);
    if ((f = fopen(text_path, "w")) == NULL)
        return -1;
    fputs("not a key\n", f);
    fclose(f);
    return 0;
}

static int keys_teardown(void **state)
{
    const char *paths[] = {rsa_path, ed_path, small_path, ec_path, public_path, encrypted_path,
                           text_path, bagged_path};

    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        unlink(paths[i]);
    return rmdir(dir);
}

/* --- helpers ----------------------------------------------------------------------- */

static mr_dkim *load(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static mr_dkim *load(const char *fmt, ...)
{
    char spec[1024];
    mr_dkim *d = NULL;
    mr_err err = {{0}};
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(spec, sizeof spec, fmt, ap);
    va_end(ap);
    if (mr_dkim_load(spec, &d, &err) < 0)
        fail_msg("%s: %s", spec, err.msg);
    return d;
}

/* The error of loading spec (which must fail). */
static const char *load_error(const char *spec)
{
    static mr_err err;
    mr_dkim *d = NULL;

    memset(&err, 0, sizeof err);
    assert_int_equal(mr_dkim_load(spec, &d, &err), -1);
    assert_null(d);
    return err.msg;
}

static void assert_load_error(const char *spec, const char *expected)
{
    assert_string_equal(load_error(spec), expected);
}

static char *sign(const mr_dkim *d, const char *message)
{
    char *header = (char *)"unset";
    mr_err err = {{0}};

    if (mr_dkim_sign(d, (const unsigned char *)message, strlen(message), &header, &err) < 0)
        fail_msg("%s", err.msg);
    return header;
}

/* The value of tag name in a DKIM-Signature field, blanks and folding
 * removed (into a static buffer; "" if the tag is missing). */
static const char *tag(const char *header, const char *name)
{
    static char value[1024];
    char flat[4096];
    size_t n = 0, len = strlen(name);
    const char *p;

    for (p = strchr(header, ':') + 1; *p != '\0' && n + 1 < sizeof flat; p++)
        if (strchr(" \t\r\n", *p) == NULL)
            flat[n++] = *p;
    flat[n] = '\0';
    value[0] = '\0';
    for (p = flat; p != NULL && *p != '\0'; p = strchr(p, ';') != NULL ? strchr(p, ';') + 1 : NULL)
        if (strncmp(p, name, len) == 0 && p[len] == '=') {
            snprintf(value, sizeof value, "%.*s", (int)strcspn(p + len + 1, ";"), p + len + 1);
            break;
        }
    return value;
}

static void assert_crlf_field(const char *header)
{
    size_t len = strlen(header);

    assert_true(strncmp(header, "DKIM-Signature: ", 16) == 0);
    assert_true(len > 2 && strcmp(header + len - 2, "\r\n") == 0);
    for (size_t i = 0; i < len; i++) {
        if (header[i] == '\n')
            assert_true(i > 0 && header[i - 1] == '\r');
        if (header[i] == '\r') {
            assert_int_equal(header[i + 1], '\n');
            /* every line but the last is continued */
            assert_true(header[i + 2] == '\0' || header[i + 2] == '\t' || header[i + 2] == ' ');
        }
    }
}

/* --- spec parsing ------------------------------------------------------------------ */

static void test_empty_spec_has_no_keys(void **state)
{
    const char *specs[] = {"", "  \t \n "};

    for (size_t i = 0; i < 2; i++) {
        mr_dkim *d = load("%s", specs[i]);

        assert_int_equal(mr_dkim_key_count(d), 0);
        assert_null(sign(d, MESSAGE("alice@example.org")));
        mr_dkim_free(d);
    }
}

static void test_several_keys(void **state)
{
    mr_dkim *d = load("  example.org:s1:%s\texample.net:s2:%s\n", rsa_path, bagged_path);

    assert_int_equal(mr_dkim_key_count(d), 2);
    mr_dkim_free(d);
    mr_dkim_free(NULL);
}

static void test_bad_entries(void **state)
{
    char spec[512], expected[512];

    assert_load_error("example.org:s1",
                      "dkim_keys entry 1 (example.org:s1): not domain:selector:/path/key.pem");
    assert_load_error("example.org", "dkim_keys entry 1 (example.org): not "
                                     "domain:selector:/path/key.pem");
    assert_load_error("exa_mple.org:s1:/k.pem",
                      "dkim_keys entry 1 (exa_mple.org:s1:/k.pem): 'exa_mple.org' is not a "
                      "domain name");
    assert_load_error(":s1:/k.pem", "dkim_keys entry 1 (:s1:/k.pem): '' is not a domain name");
    assert_load_error("example.org.:s1:/k.pem",
                      "dkim_keys entry 1 (example.org.:s1:/k.pem): 'example.org.' is not a "
                      "domain name");
    assert_load_error("example.org:-s1:/k.pem",
                      "dkim_keys entry 1 (example.org:-s1:/k.pem): '-s1' is not a selector "
                      "(letters, digits, hyphens, dots)");
    assert_load_error("example.org:s1:keys/k.pem",
                      "dkim_keys entry 1 (example.org:s1:keys/k.pem): the key file "
                      "'keys/k.pem' is not an absolute path");
    assert_load_error("example.org:s1:",
                      "dkim_keys entry 1 (example.org:s1:): the key file '' is not an "
                      "absolute path");
    /* the entry number counts entries, not blanks */
    snprintf(spec, sizeof spec, " example.net:s:%s   Example.NET:s2:%s", rsa_path, rsa_path);
    snprintf(expected, sizeof expected,
             "dkim_keys entry 2 (Example.NET:s2:%s): a second key for Example.NET", rsa_path);
    assert_load_error(spec, expected);
}

static void test_missing_file(void **state)
{
    char spec[512], expected[512];

    snprintf(spec, sizeof spec, "example.net:s:%s example.org:s1:%s/x.pem", rsa_path, dir);
    snprintf(expected, sizeof expected,
             "dkim_keys entry 2 (example.org:s1:%s/x.pem): cannot read %s/x.pem: No such file "
             "or directory", dir, dir);
    assert_load_error(spec, expected);
    snprintf(spec, sizeof spec, "example.org:s1:%s", dir);
    assert_non_null(strstr(load_error(spec), ": cannot read "));
}

static void test_not_a_key(void **state)
{
    struct {
        const char *path, *why;
    } cases[] = {
        {text_path, "not a PEM private key (or an encrypted one)"},
        {public_path, "not a PEM private key (or an encrypted one)"},
        {encrypted_path, "not a PEM private key (or an encrypted one)"},
        {"/dev/null", "not a PEM private key (or an encrypted one)"},
        {ec_path, "not an RSA key"},
        {ed_path, "an Ed25519 key; libopendkim leaks memory with every Ed25519 signature, "
                  "so only RSA keys are used"},
        {small_path, "an RSA key of 512 bits; at least 1024 are needed"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char spec[512], expected[1024];

        snprintf(spec, sizeof spec, "example.org:s1:%s", cases[i].path);
        snprintf(expected, sizeof expected, "dkim_keys entry 1 (%s): %s: %s", spec,
                 cases[i].path, cases[i].why);
        assert_load_error(spec, expected);
    }
}

/* --- signing ----------------------------------------------------------------------- */

static void test_signature_field(void **state)
{
    mr_dkim *d = load("example.net:other:%s example.org:s2024:%s", bagged_path, rsa_path);
    char *header = sign(d, MESSAGE("Alice <alice@Example.ORG>"));

    assert_non_null(header);
    assert_crlf_field(header);
    assert_string_equal(tag(header, "v"), "1");
    assert_string_equal(tag(header, "a"), "rsa-sha256");
    assert_string_equal(tag(header, "c"), "relaxed/relaxed");
    assert_string_equal(tag(header, "d"), "example.org");
    assert_string_equal(tag(header, "s"), "s2024");
    assert_string_equal(tag(header, "h"), "From:To:Subject:Date:Message-ID");
    assert_true(strlen(tag(header, "b")) > 300);     /* 2048 bits in base64 */
    assert_true(strlen(tag(header, "bh")) == 44);    /* SHA-256 in base64 */
    assert_string_equal(tag(header, "l"), "");
    assert_string_equal(tag(header, "x"), "");
    free(header);
    mr_dkim_free(d);
}

/* Text before the PEM block is no obstacle (the key is rewritten). */
static void test_bag_attributes(void **state)
{
    mr_dkim *d = load("example.org:s1:%s", bagged_path);
    char *header = sign(d, MESSAGE("alice@example.org"));

    assert_non_null(header);
    assert_string_equal(tag(header, "d"), "example.org");
    free(header);
    mr_dkim_free(d);
}

static void test_no_key_no_signature(void **state)
{
    const char *messages[] = {
        MESSAGE("alice@example.com"),
        MESSAGE("alice@lists.example.org"),        /* a parent's key is not used */
        MESSAGE("alice@org"),
        MESSAGE("alice@example.org.evil"),
        MESSAGE("\"alice@example.org\" <alice@evil.example>"),
        MESSAGE("alice@evil.example (alice@example.org)"),
        MESSAGE("undisclosed-recipients:;"),
        MESSAGE(""),
        MESSAGE("example.org"),
        "To: bob@example.org\r\nSubject: no From\r\n\r\nBody\r\n",
        "",
    };
    mr_dkim *d = load("example.org:s1:%s", rsa_path);

    for (size_t i = 0; i < sizeof messages / sizeof messages[0]; i++) {
        char *header = sign(d, messages[i]);

        if (header != NULL)
            fail_msg("message %zu signed: %s", i, header);
    }
    mr_dkim_free(d);
}

static void test_from_forms(void **state)
{
    const char *messages[] = {
        MESSAGE("alice@example.org"),
        MESSAGE("ALICE@EXAMPLE.ORG"),
        MESSAGE("Alice <alice@example.org>"),
        MESSAGE("\"Alice <alice@evil.example>\" <alice@example.org>"),
        MESSAGE("\"a@evil.example\"@example.org"),
        MESSAGE("(alice@evil.example) alice@example.org (Alice)"),
        MESSAGE("=?utf-8?q?J=C3=B6rg?=\r\n <joerg@example.org>"),
        MESSAGE("alice@example.org, bob@evil.example"),
        MESSAGE("Team: alice@example.org, bob@evil.example;"),
        /* the last From field counts */
        "From: mallory@evil.example\r\n" MESSAGE("alice@example.org"),
    };
    mr_dkim *d = load("example.org:s1:%s", rsa_path);

    for (size_t i = 0; i < sizeof messages / sizeof messages[0]; i++) {
        char *header = sign(d, messages[i]);

        if (header == NULL)
            fail_msg("message %zu not signed", i);
        assert_string_equal(tag(header, "d"), "example.org");
        free(header);
    }
    assert_null(sign(d, "From: alice@example.org\r\n" MESSAGE("mallory@evil.example")));
    mr_dkim_free(d);
}

/* Each header field on the list is signed once per instance; others not. */
static void test_signed_fields(void **state)
{
    static const char message[] =
        "Received: from x by y\r\n"
        "From: alice@example.org\r\nTo: a@example.net\r\nCc: b@example.net\r\n"
        "cc: c@example.net\r\nSubject: s\r\nDate: Tue, 5 Mar 2024 13:03:22 +0100\r\n"
        "Message-ID: <m@x>\r\nIn-Reply-To: <p@x>\r\nReferences: <o@x> <p@x>\r\n"
        "Reply-To: r@example.org\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
        "Auto-Submitted: auto-replied\r\nSender: s@example.org\r\nList-Id: <l.x>\r\n"
        "\r\nBody\r\n";
    mr_dkim *d = load("example.org:s1:%s", rsa_path);
    char *header = sign(d, message);

    assert_non_null(header);
    assert_string_equal(tag(header, "h"),
                        "From:To:Cc:cc:Subject:Date:Message-ID:In-Reply-To:References:"
                        "Reply-To:MIME-Version:Content-Type:Content-Transfer-Encoding:"
                        "Auto-Submitted");
    free(header);
    mr_dkim_free(d);
}

/* One mr_dkim signs many messages; the message is left as it was. */
static void test_repeated_signing(void **state)
{
    static const char original[] = MESSAGE("alice@example.org");
    char *message = strdup(original);
    mr_dkim *d = load("example.org:s1:%s", rsa_path);
    char *first = NULL;

    for (int i = 0; i < 20; i++) {
        char *header = NULL;
        mr_err err;

        assert_int_equal(mr_dkim_sign(d, (unsigned char *)message, strlen(message), &header,
                                      &err), 0);
        assert_non_null(header);
        assert_string_equal(message, original);
        if (first == NULL)
            first = strdup(tag(header, "bh"));
        assert_string_equal(tag(header, "bh"), first);
        free(header);
    }
    free(first);
    free(message);
    mr_dkim_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_spec_has_no_keys),
        cmocka_unit_test(test_several_keys),
        cmocka_unit_test(test_bad_entries),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_not_a_key),
        cmocka_unit_test(test_signature_field),
        cmocka_unit_test(test_bag_attributes),
        cmocka_unit_test(test_no_key_no_signature),
        cmocka_unit_test(test_from_forms),
        cmocka_unit_test(test_signed_fields),
        cmocka_unit_test(test_repeated_signing),
    };

    return cmocka_run_group_tests(tests, keys_setup, keys_teardown);
}
