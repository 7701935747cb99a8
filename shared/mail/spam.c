/*
 * spam.c - the spam verdict in a message's header fields (see spam.h).
 */
#include <stddef.h>
#include <strings.h>

#include "mailrobot/header_fields.h"
#include "mailrobot/spam.h"

/* The fields that carry a verdict, in the order they are believed. */
static const char *const verdict_fields[] = {"X-Spam-Flag", "X-Spam-Status", "X-Spam"};

#define VERDICT_FIELDS (sizeof verdict_fields / sizeof verdict_fields[0])

/* 1 or 0 for a value that starts with yes/true or no/false; -1 otherwise.
 * The value runs to the end of the field (folded lines included). */
static int yes_no(const unsigned char *p, size_t n)
{
    static const struct {
        const char *word;
        int verdict;
    } words[] = {{"yes", 1}, {"true", 1}, {"no", 0}, {"false", 0}};

    while (n > 0 && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) {
        p++;
        n--;
    }
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t wn = 0;

        while (words[i].word[wn] != '\0')
            wn++;
        if (n >= wn && strncasecmp((const char *)p, words[i].word, wn) == 0)
            return words[i].verdict;
    }
    return -1;
}

int mr_spam_verdict(const unsigned char *msg, size_t len)
{
    int verdict[VERDICT_FIELDS], seen[VERDICT_FIELDS] = {0};
    mr_header_scan s;
    mr_header_field f;

    /* One pass: the first field of each name, then the first name that
     * has a verdict. */
    mr_header_scan_init(&s, msg, len);
    while (mr_header_next(&s, &f)) {
        for (size_t i = 0; i < VERDICT_FIELDS; i++) {
            if (!seen[i] && mr_header_is(&f, verdict_fields[i])) {
                seen[i] = 1;
                verdict[i] = yes_no(f.value, f.value_len);
            }
        }
    }
    for (size_t i = 0; i < VERDICT_FIELDS; i++)
        if (seen[i] && verdict[i] >= 0)
            return verdict[i];
    return -1;
}
