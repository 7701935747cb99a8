/*
 * test_srs.c - the Sender Rewriting Scheme (srs.h): addresses byte for
 * byte as postsrsd (libsrs2) writes them for the same secret and day,
 * round trips, SRS0 -> SRS1 and the shortcut back, forged and expired
 * addresses, garbage and lengths. postsrsd itself is asked in
 * tests/integration/test_srs_oracle.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "mailrobot/srs.h"

#define SECRET "tH1s-is-a-test-secret-0123"
#define DOMAIN "srs.example.net"
#define DAY 86400LL
/* 2023-11-14T22:13:20Z: day 19675, slot 219 = "G3". */
#define NOW 1700000000LL

static char out[MR_SRS_ADDRESS_MAX + 64];

static const char *forward_ok(const char *sender, int64_t now)
{
    mr_err err;

    if (mr_srs_forward(SECRET, DOMAIN, sender, now, out, sizeof out, &err) != 0)
        fail_msg("forward %s: %s", sender, err.msg);
    return out;
}

static const char *reverse_ok(const char *address, int64_t now)
{
    mr_err err;

    if (mr_srs_reverse(SECRET, address, now, 0, out, sizeof out, &err) != 0)
        fail_msg("reverse %s: %s", address, err.msg);
    return out;
}

/* The error of a reverse that must fail. */
static const char *reverse_error(const char *secret, const char *address, int64_t now,
                                 int max_age)
{
    static mr_err err;

    memset(&err, 0, sizeof err);
    if (mr_srs_reverse(secret, address, now, max_age, out, sizeof out, &err) == 0)
        fail_msg("reversed %s to %s", address, out);
    assert_string_equal(out, "");
    return err.msg;
}

static const char *forward_error(const char *secret, const char *domain, const char *sender)
{
    static mr_err err;

    memset(&err, 0, sizeof err);
    if (mr_srs_forward(secret, domain, sender, NOW, out, sizeof out, &err) == 0)
        fail_msg("forwarded %s as %s", sender, out);
    assert_string_equal(out, "");
    return err.msg;
}

/* What postsrsd 1.10 (-d srs.example.net, this secret) answered. */
static void postsrsd_vectors(void **state)
{
    /* Day 20786 (2026-11-29) is slot 306 = "JS". */
    int64_t js = 20786 * DAY + 3600;

    assert_string_equal(forward_ok("Alice@Example.org", js),
                        "SRS0=+dMP=JS=Example.org=Alice@srs.example.net");
    assert_string_equal(reverse_ok("SRS0=+dMP=JS=Example.org=Alice@srs.example.net", js),
                        "Alice@Example.org");
    assert_string_equal(forward_ok("SRS0=abcd=TT=example.com=bob@other.example", js),
                        "SRS1=DWoa=other.example==abcd=TT=example.com=bob@srs.example.net");
    assert_string_equal(reverse_ok("SRS1=DWoa=other.example==abcd=TT=example.com=bob"
                                   "@srs.example.net", js),
                        "SRS0=abcd=TT=example.com=bob@other.example");
    assert_string_equal(forward_ok("alice@example.org", NOW),
                        "SRS0=+RXq=G3=example.org=alice@srs.example.net");
}

static void round_trips(void **state)
{
    static const char *const senders[] = {
        "alice@example.org",
        "Bob.Smith+tag@Mail.Example.COM",
        "a=b=c@x.example",                   /* '=' in the local part: it is the rest */
        "o'neil!#$%&*/?^`{|}~-@sub_domain.example-1.org",
        "x@y",
        "srs0x@example.org",                 /* not a tag: no separator */
        "SRS0@example.org",
    };
    char forwarded[sizeof out];

    for (size_t i = 0; i < sizeof senders / sizeof senders[0]; i++) {
        snprintf(forwarded, sizeof forwarded, "%s", forward_ok(senders[i], NOW));
        assert_memory_equal(forwarded, "SRS0=", 5);
        assert_string_equal(strrchr(forwarded, '@'), "@" DOMAIN);
        assert_string_equal(reverse_ok(forwarded, NOW), senders[i]);
        /* Still good on the last day, and by the domain we do not care. */
        *strrchr(forwarded, '@') = '\0';
        strcat(forwarded, "@elsewhere.example");
        assert_string_equal(reverse_ok(forwarded, NOW + 21 * DAY), senders[i]);
    }
}

static void null_and_own_senders_stay(void **state)
{
    assert_string_equal(forward_ok("", NOW), "");
    assert_string_equal(forward_ok("postmaster@srs.example.net", NOW),
                        "postmaster@srs.example.net");
    assert_string_equal(forward_ok("Bob@SRS.Example.NET", NOW), "Bob@SRS.Example.NET");
    /* Our own SRS addresses, then, too. */
    assert_string_equal(forward_ok("SRS0=+RXq=G3=example.org=alice@srs.example.net", NOW),
                        "SRS0=+RXq=G3=example.org=alice@srs.example.net");
    /* A subdomain is another domain. */
    assert_string_equal(forward_ok("a@x.srs.example.net", NOW),
                        "SRS0=bXNy=G3=x.srs.example.net=a@srs.example.net");
}

/* alice -> A -> B -> C; a bounce to C goes straight back to A. */
static void srs1_chain(void **state)
{
    char at_a[sizeof out], at_b[sizeof out], at_c[sizeof out], back[sizeof out];
    mr_err err;

    assert_int_equal(mr_srs_forward("secret-a-0123456", "a.example", "alice@example.org", NOW,
                                    at_a, sizeof at_a, &err), 0);
    assert_int_equal(mr_srs_forward("secret-b-0123456", "b.example", at_a, NOW, at_b,
                                    sizeof at_b, &err), 0);
    assert_int_equal(mr_srs_forward("secret-c-0123456", "c.example", at_b, NOW, at_c,
                                    sizeof at_c, &err), 0);
    /* SRS1=HB=a.example==HA=TT=example.org=alice@b.example: A's host and A's
     * local part after "SRS0"; C keeps all of it but the hash and the domain. */
    snprintf(back, sizeof back, "=a.example=%.*s@b.example",
             (int)(strchr(at_a, '@') - at_a - 4), at_a + 4);
    assert_memory_equal(at_b, "SRS1=", 5);
    assert_string_equal(at_b + 9, back);
    strcpy(strrchr(back, '@'), "@c.example");
    assert_memory_equal(at_c, "SRS1=", 5);
    assert_string_equal(at_c + 9, back);
    assert_memory_not_equal(at_b, at_c, 9);

    assert_int_equal(mr_srs_reverse("secret-c-0123456", at_c, NOW, 0, back, sizeof back, &err),
                     0);
    assert_string_equal(back, at_a);
    assert_int_equal(mr_srs_reverse("secret-b-0123456", at_b, NOW, 0, back, sizeof back, &err),
                     0);
    assert_string_equal(back, at_a);
    assert_int_equal(mr_srs_reverse("secret-a-0123456", at_a, NOW + 5 * DAY, 0, back,
                                    sizeof back, &err), 0);
    assert_string_equal(back, "alice@example.org");
    /* SRS1 carries no timestamp: only the SRS0 inside expires. */
    assert_int_equal(mr_srs_reverse("secret-c-0123456", at_c, NOW + 400 * DAY, 0, back,
                                    sizeof back, &err), 0);
    /* Another forwarder's secret does not open it. */
    assert_string_equal(reverse_error("secret-b-0123456", at_c, NOW, 0),
                        "SRS1 address: hash does not match (forged, or made with another "
                        "secret)");
}

static void srs0_with_other_separators(void **state)
{
    char srs1[sizeof out];

    /* libsrs2 takes "+" and "-" after the tag too, and keeps it inside SRS1. */
    snprintf(srs1, sizeof srs1, "%s",
             forward_ok("srs0+abcd=TT=example.com=bob@other.example", NOW));
    assert_memory_equal(srs1, "SRS1=", 5);
    assert_string_equal(srs1 + 9, "=other.example=+abcd=TT=example.com=bob@srs.example.net");
    assert_string_equal(reverse_ok(srs1, NOW), "SRS0+abcd=TT=example.com=bob@other.example");
    assert_memory_equal(forward_ok("Srs1-hhhh=other.example==abcd=TT=e=b@x.example", NOW),
                        "SRS1=", 5);
    assert_string_equal(out + 9, "=other.example==abcd=TT=e=b@srs.example.net");
}

static void case_smashed_on_the_way(void **state)
{
    char upper[sizeof out];

    snprintf(upper, sizeof upper, "%s", forward_ok("Alice@example.org", NOW));
    for (char *p = upper; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    assert_string_equal(reverse_ok(upper, NOW), "ALICE@EXAMPLE.ORG");
    for (char *p = upper; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    assert_string_equal(reverse_ok(upper, NOW), "alice@example.org");
}

static void forged_hashes(void **state)
{
    const char *bad = "SRS0 address: hash does not match (forged, or made with another secret)";

    assert_string_equal(reverse_error(SECRET, "SRS0=+RXr=G3=example.org=alice@srs.example.net",
                                      NOW, 0), bad);
    /* The data is covered too: another user, host or day. */
    assert_string_equal(reverse_error(SECRET, "SRS0=+RXq=G3=example.org=alicf@srs.example.net",
                                      NOW, 0), bad);
    assert_string_equal(reverse_error(SECRET, "SRS0=+RXq=G3=example.com=alice@srs.example.net",
                                      NOW, 0), bad);
    assert_string_equal(reverse_error(SECRET, "SRS0=+RXq=G4=example.org=alice@srs.example.net",
                                      NOW, 0), bad);
    assert_string_equal(reverse_error("another-secret-01",
                                      "SRS0=+RXq=G3=example.org=alice@srs.example.net", NOW, 0),
                        bad);
    assert_string_equal(reverse_error(SECRET, "SRS0=+RX=G3=example.org=alice@srs.example.net",
                                      NOW, 0),
                        "SRS0 address: hash shorter than 4 characters");
    assert_string_equal(reverse_error(SECRET, "SRS1=xxxx=other.example==abcd=TT=e=b@s.example",
                                      NOW, 0),
                        "SRS1 address: hash does not match (forged, or made with another "
                        "secret)");
    /* As libsrs2: a longer hash is compared on its first 4 characters. */
    assert_string_equal(reverse_ok("SRS0=+RXqZZ=G3=example.org=alice@srs.example.net", NOW),
                        "alice@example.org");
}

static void timestamps(void **state)
{
    const char *addr = "SRS0=+RXq=G3=example.org=alice@srs.example.net";
    int64_t day_start = NOW - NOW % DAY;

    assert_string_equal(reverse_ok(addr, day_start), "alice@example.org");
    assert_string_equal(reverse_ok(addr, day_start + 22 * DAY - 1), "alice@example.org");
    assert_string_equal(reverse_error(SECRET, addr, day_start + 22 * DAY, 0),
                        "SRS0 address: expired (22 days old, more than 21)");
    /* From the future: a whole cycle old. */
    assert_string_equal(reverse_error(SECRET, addr, day_start - 1, 0),
                        "SRS0 address: expired (1023 days old, more than 21)");
    /* A cycle later it is young again (1024 days; as in libsrs2). */
    assert_string_equal(reverse_ok(addr, NOW + 1024 * DAY), "alice@example.org");
    /* max_age_days. */
    assert_string_equal(reverse_error(SECRET, addr, NOW + 2 * DAY, 1),
                        "SRS0 address: expired (2 days old, more than 1)");
    assert_int_equal(mr_srs_reverse(SECRET, addr, NOW + 1 * DAY, 1, out, sizeof out, NULL), 0);
    assert_int_equal(mr_srs_reverse(SECRET, addr, NOW + 1000 * DAY, 1023, out, sizeof out, NULL),
                     0);
    assert_string_equal(reverse_error(SECRET, addr, NOW, 1024),
                        "SRS: maximum age must be from 1 to 1023 days");
    assert_string_equal(reverse_error(SECRET, addr, NOW, -1),
                        "SRS: maximum age must be from 1 to 1023 days");
    assert_string_equal(reverse_error(SECRET, addr, -1, 0), "SRS: time before 1970");
}

/* Slot 1023 ("77") to slot 2 ("AC"): 3 days across the wrap. */
static void timestamp_wraps(void **state)
{
    int64_t day1023 = (1023 + 1024 * 19) * DAY;
    char made[sizeof out];

    snprintf(made, sizeof made, "%s", forward_ok("a@b.example", day1023));
    assert_non_null(strstr(made, "=77=b.example=a@"));
    assert_string_equal(reverse_ok(made, day1023 + 3 * DAY), "a@b.example");
    assert_string_equal(reverse_error(SECRET, made, day1023 + 22 * DAY, 0),
                        "SRS0 address: expired (22 days old, more than 21)");
    snprintf(made, sizeof made, "%s", forward_ok("a@b.example", 0));
    assert_non_null(strstr(made, "=AA=b.example=a@"));
}

static void reverse_garbage(void **state)
{
    static const struct {
        const char *address;
        const char *error;
    } cases[] = {
        {"", "not an SRS address: not local@domain"},
        {"alice@example.org", "not an SRS address: its local part does not start with SRS0= "
                              "or SRS1="},
        {"SRS2=abcd=G3=h=u@x", "not an SRS address: its local part does not start with SRS0= "
                               "or SRS1="},
        {"SRS0_abcd=G3=h=u@x", "not an SRS address: its local part does not start with SRS0= "
                               "or SRS1="},
        {"SRS0", "not an SRS address: not local@domain"},
        {"SRS0=+RXq=G3=example.org=alice@", "not an SRS address: not local@domain"},
        {"SRS0=+RXq=G3=example.org=alice", "not an SRS address: not local@domain"},
        {"SRS0=@x", "SRS0 address: malformed (expected SRS0=HASH=TT=HOST=USER)"},
        {"SRS0=abcd@x", "SRS0 address: malformed (expected SRS0=HASH=TT=HOST=USER)"},
        {"SRS0=abcd=G3=h@x", "SRS0 address: malformed (expected SRS0=HASH=TT=HOST=USER)"},
        {"SRS0=abcd=G3=h=@x", "SRS0 address: malformed (expected SRS0=HASH=TT=HOST=USER)"},
        {"SRS0=abcd=G3==u@x", "SRS0 address: malformed (expected SRS0=HASH=TT=HOST=USER)"},
        {"SRS0==G3=h=u@x", "SRS0 address: malformed (expected SRS0=HASH=TT=HOST=USER)"},
        {"SRS0=abcd=G1=h=u@x", "SRS0 address: the timestamp is not 2 base32 characters"},
        {"SRS0=abcd=G=h=u@x", "SRS0 address: the timestamp is not 2 base32 characters"},
        {"SRS0=abcd=G33=h=u@x", "SRS0 address: the timestamp is not 2 base32 characters"},
        {"SRS1=@x", "SRS1 address: malformed (expected SRS1=HASH=HOST=USER)"},
        {"SRS1=abcd=host@x", "SRS1 address: malformed (expected SRS1=HASH=HOST=USER)"},
        {"SRS1=abcd==u@x", "SRS1 address: malformed (expected SRS1=HASH=HOST=USER)"},
        {"SRS1=abcd=h=@x", "SRS1 address: malformed (expected SRS1=HASH=HOST=USER)"},
        {"SRS0=abcd=G3=h=u v@x", "not an SRS address: holds blanks, control characters or "
                                 "non-ASCII"},
        {"SRS0=abcd=G3=h=u\r\n@x", "not an SRS address: holds blanks, control characters or "
                                   "non-ASCII"},
        {"SRS0=abcd=G3=h=\xc3\xa9@x", "not an SRS address: holds blanks, control characters or "
                                      "non-ASCII"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = reverse_error(SECRET, cases[i].address, NOW, 0);

        if (strcmp(got, cases[i].error) != 0)
            fail_msg("%s\n  got:  %s\n  want: %s", cases[i].address, got, cases[i].error);
    }
    assert_string_equal(reverse_error("", "SRS0=+RXq=G3=example.org=alice@x", NOW, 0),
                        "SRS: no secret (srs_secret)");
    assert_string_equal(reverse_error(SECRET, NULL, NOW, 0), "not an SRS address: none given");
}

static void forward_garbage(void **state)
{
    static const struct {
        const char *sender;
        const char *error;
    } cases[] = {
        {"alice", "SRS: sender is not local@domain"},
        {"@example.org", "SRS: sender is not local@domain"},
        {"alice@", "SRS: sender is not local@domain"},
        {"\"a b\"@example.org", "SRS: sender's local part has characters an SRS address cannot "
                                "carry (quotes, blanks, brackets, non-ASCII)"},
        {"a@b@example.org", "SRS: sender's local part has characters an SRS address cannot "
                            "carry (quotes, blanks, brackets, non-ASCII)"},
        {"j\xc3\xb6rg@example.org", "SRS: sender's local part has characters an SRS address "
                                    "cannot carry (quotes, blanks, brackets, non-ASCII)"},
        {"a\n@example.org", "SRS: sender's local part has characters an SRS address cannot "
                            "carry (quotes, blanks, brackets, non-ASCII)"},
        {"a@[192.0.2.1]", "SRS: sender's domain is not a host name"},
        {"a@b=c.example", "SRS: sender's domain is not a host name"},
        {"a@b c", "SRS: sender's domain is not a host name"},
        {"SRS1=abcd@other.example", "SRS: malformed SRS1 sender: expected SRS1=HASH=HOST=USER"},
        {"SRS1=abcd=host=@other.example",
         "SRS: malformed SRS1 sender: expected SRS1=HASH=HOST=USER"},
        {"SRS1=abcd==u@other.example",
         "SRS: malformed SRS1 sender: expected SRS1=HASH=HOST=USER"},
        {"SRS1==host=u@other.example",
         "SRS: malformed SRS1 sender: expected SRS1=HASH=HOST=USER"},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *got = forward_error(SECRET, DOMAIN, cases[i].sender);

        if (strcmp(got, cases[i].error) != 0)
            fail_msg("%s\n  got:  %s\n  want: %s", cases[i].sender, got, cases[i].error);
    }
    assert_string_equal(forward_error("", DOMAIN, "a@b"), "SRS: no secret (srs_secret)");
    assert_string_equal(forward_error(NULL, DOMAIN, "a@b"), "SRS: no secret (srs_secret)");
    assert_string_equal(forward_error(SECRET, "", "a@b"), "SRS: srs_domain is not a host name");
    assert_string_equal(forward_error(SECRET, "@srs.example", "a@b"),
                        "SRS: srs_domain is not a host name");
    assert_string_equal(forward_error(SECRET, "srs..example", "a@b"),
                        "SRS: srs_domain is not a host name");
    assert_string_equal(forward_error(SECRET, DOMAIN, NULL), "SRS: no sender");
}

static void lengths(void **state)
{
    char sender[MR_SRS_ADDRESS_MAX + 2], secret[MR_SRS_SECRET_MAX + 2], small[47];
    char made[sizeof out];
    mr_err err;

    /* What forward makes, reverse takes: at most 512 bytes. Here the result
     * is the sender and 29 ("SRS0=HHHH=TT=" "example.org=" "@srs.example.net"
     * for "@example.org"). */
    memset(sender, 'a', sizeof sender);
    memcpy(sender + MR_SRS_ADDRESS_MAX - 29 - 12, "@example.org", 13);
    snprintf(made, sizeof made, "%s", forward_ok(sender, NOW));
    assert_int_equal(strlen(made), MR_SRS_ADDRESS_MAX);
    assert_string_equal(reverse_ok(made, NOW), sender);
    memset(sender, 'a', sizeof sender);
    memcpy(sender + MR_SRS_ADDRESS_MAX - 29 - 11, "@example.org", 13);
    assert_string_equal(forward_error(SECRET, DOMAIN, sender),
                        "SRS: the address would be longer than 512 bytes");

    memset(sender, 'a', sizeof sender);
    memcpy(sender + MR_SRS_ADDRESS_MAX - 11, "@example.org", 13);
    assert_string_equal(forward_error(SECRET, DOMAIN, sender), "SRS: sender longer than 512 bytes");
    assert_string_equal(reverse_error(SECRET, sender, NOW, 0),
                        "not an SRS address: longer than 512 bytes");

    /* The output buffer. */
    assert_int_equal(mr_srs_forward(SECRET, DOMAIN, "alice@example.org", NOW, small, 46, &err),
                     -1);
    assert_string_equal(small, "");
    assert_string_equal(err.msg, "SRS: the address (46 characters) does not fit in 46 bytes");
    assert_int_equal(mr_srs_forward(SECRET, DOMAIN, "alice@example.org", NOW, small, 47, &err),
                     0);
    assert_string_equal(small, "SRS0=+RXq=G3=example.org=alice@srs.example.net");
    assert_int_equal(mr_srs_reverse(SECRET, small, NOW, 0, made, 5, &err), -1);
    assert_string_equal(err.msg, "SRS: the address (17 characters) does not fit in 5 bytes");
    assert_int_equal(mr_srs_forward(SECRET, DOMAIN, "a@b", NOW, NULL, 0, &err), -1);
    assert_string_equal(err.msg, "SRS: no room for the address");

    memset(secret, 's', sizeof secret);
    secret[MR_SRS_SECRET_MAX] = '\0';
    assert_int_equal(mr_srs_forward(secret, DOMAIN, "a@b", NOW, out, sizeof out, &err), 0);
    secret[MR_SRS_SECRET_MAX] = 's';
    secret[MR_SRS_SECRET_MAX + 1] = '\0';
    assert_string_equal(forward_error(secret, DOMAIN, "a@b"),
                        "SRS: the secret is longer than 1024 bytes");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(postsrsd_vectors),
        cmocka_unit_test(round_trips),
        cmocka_unit_test(null_and_own_senders_stay),
        cmocka_unit_test(srs1_chain),
        cmocka_unit_test(srs0_with_other_separators),
        cmocka_unit_test(case_smashed_on_the_way),
        cmocka_unit_test(forged_hashes),
        cmocka_unit_test(timestamps),
        cmocka_unit_test(timestamp_wraps),
        cmocka_unit_test(reverse_garbage),
        cmocka_unit_test(forward_garbage),
        cmocka_unit_test(lengths),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
