/*
 * route.c - the route candidates of a recipient (see route.h).
 */
#include <stdio.h>
#include <string.h>

#include "mailrobot/keys.h"
#include "mailrobot/route.h"

/* Adds the candidate made of the first n bytes of head and all of tail. */
static void add(mr_route_candidates *rc, const char *why, const char *head, int n,
                const char *tail)
{
    snprintf(rc->address[rc->count], sizeof rc->address[0], "%.*s%s", n, head, tail);
    rc->why[rc->count++] = why;
}

void mr_route_candidates_for(const char *recipient, mr_route_candidates *rc)
{
    char address[MR_ROUTE_ADDRESS_MAX];
    const char *at, *plus;

    memset(rc, 0, sizeof *rc);
    snprintf(address, sizeof address, "%s", recipient);
    for (char *p = address; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    add(rc, "exact address", address, (int)strlen(address), "");
    at = strrchr(address, '@');
    if (at != NULL) {
        plus = memchr(address, '+', (size_t)(at - address));
        if (plus != NULL && plus != address) {
            snprintf(rc->extension, sizeof rc->extension, "%.*s", (int)(at - plus - 1), plus + 1);
            add(rc, "address without its +extension", address, (int)(plus - address), at);
        }
        add(rc, "catch-all for the domain", "", 0, at);
    }
    add(rc, "default robot", MR_ROUTE_DEFAULT, (int)strlen(MR_ROUTE_DEFAULT), "");
}
