/*
 * route.h - which routes a recipient can match, most specific first
 * (SPEC §6, keys.h). One implementation for the worker's router and
 * `mailrobotctl route show`, so the two cannot disagree.
 *
 * For "Bot+Sales@Example.COM" (lower-cased, ASCII only):
 *   bot+sales@example.com   exact address
 *   bot@example.com         address without its +extension (extension "sales")
 *   @example.com            catch-all for the domain
 *   *                       default robot
 * The extension follows the first '+' of the local part, unless the local
 * part starts with it (Postfix's rule). An address without '@' has only
 * the exact and default candidates.
 */
#ifndef MAILROBOT_ROUTE_H
#define MAILROBOT_ROUTE_H

#include <stddef.h>

#define MR_ROUTE_CANDIDATES 4
#define MR_ROUTE_ADDRESS_MAX 512

typedef struct mr_route_candidates {
    char address[MR_ROUTE_CANDIDATES][MR_ROUTE_ADDRESS_MAX];
    const char *why[MR_ROUTE_CANDIDATES];   /* "exact address", ... */
    size_t count;
    char extension[MR_ROUTE_ADDRESS_MAX];   /* "" when there is none */
} mr_route_candidates;

void mr_route_candidates_for(const char *recipient, mr_route_candidates *rc);

#endif
