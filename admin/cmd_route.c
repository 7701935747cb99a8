/*
 * cmd_route.c - `mailrobotctl route add|del|list|show`: which robot gets
 * the mail of which address (SPEC §6; keys.h, docs/redis.md).
 *
 * Addresses are lower-cased and are one of: local@domain (exact; may carry
 * a +extension), @domain (catch-all) or * (the default robot). `route show`
 * answers for one recipient as a worker would: exact address, then the
 * address without its +extension, then @domain, then *.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailrobot/keys.h"
#include "mailrobot/redis.h"
#include "mailrobot/route.h"
#include "mailrobot/robot.h"

#include "ctl.h"
#include "directory.h"

#define LOCAL_MAX 64    /* RFC 5321 4.5.3.1 */
#define DOMAIN_MAX 255
#define ADDRESS_MAX (LOCAL_MAX + 1 + DOMAIN_MAX)
#define EXTENSION_DELIMITER '+'

static const char usage_text[] =
    "usage: mailrobotctl route add ADDRESS ROBOT\n"
    "       mailrobotctl route del ADDRESS\n"
    "       mailrobotctl route list\n"
    "       mailrobotctl route show RECIPIENT\n"
    "ADDRESS: local@domain, local+ext@domain, @domain or * (the default robot)";

static int usage(void)
{
    ctl_error("%s", usage_text);
    return CTL_USAGE;
}

/* Local parts: RFC 5322 atext and dots (no quoted strings), or UTF-8. */
static int local_valid(const char *local, size_t len)
{
    static const char specials[] = "\"(),:;<>@[\\] ";

    if (len == 0 || len > LOCAL_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)local[i];

        if (c <= 0x20 || c == 0x7f || strchr(specials, c))
            return 0;
    }
    return 1;
}

/* Domains: dot-separated labels of letters, digits, '-' and '_' (or UTF-8). */
static int domain_valid(const char *domain)
{
    size_t len = strlen(domain);

    if (len == 0 || len > DOMAIN_MAX || domain[0] == '.' || domain[len - 1] == '.'
        || strstr(domain, "..") != NULL)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)domain[i];

        if (c < 0x80 && !strchr("abcdefghijklmnopqrstuvwxyz0123456789.-_", c))
            return 0;
    }
    return 1;
}

/* Lower-cases (ASCII) and checks a route address into out (ADDRESS_MAX + 1
 * bytes). recipient_only: only local@domain is allowed. */
static int address_parse(const char *text, int recipient_only, char *out, mr_err *err)
{
    const char *at;
    size_t len = strlen(text);

    if (len > ADDRESS_MAX)
        return mr_err_set(err, "address is longer than %d bytes", ADDRESS_MAX);
    for (size_t i = 0; i <= len; i++)
        out[i] = (char)(text[i] >= 'A' && text[i] <= 'Z' ? text[i] - 'A' + 'a' : text[i]);
    if (strcmp(out, MR_ROUTE_DEFAULT) == 0 && !recipient_only)
        return 0;
    at = strrchr(out, '@');
    if (at == NULL || !domain_valid(at + 1) || (at == out && recipient_only)
        || (at != out && !local_valid(out, (size_t)(at - out))))
        return mr_err_set(err, "bad %s '%s': expected %s", recipient_only ? "recipient" : "address",
                          text, recipient_only ? "local@domain"
                                               : "local@domain, @domain or *");
    return 0;
}

/* --- add, del ----------------------------------------------------------------- */

typedef struct route_plan {
    const char *address;
    const char *robot;          /* NULL: delete the route */
    char previous[MR_ROBOT_NAME_MAX + 64];
} route_plan;

static int plan_add(redisContext *c, const mr_config *cfg, void *opaque, dir_write *writes,
                    size_t *count, mr_err *err)
{
    route_plan *plan = opaque;
    char *previous = NULL;
    int found = dir_get(c, cfg, MR_KEY_ROBOT, plan->robot, NULL, NULL, err);

    if (found <= 0)
        return found < 0 ? -1 : mr_err_set(err, "no robot %s (apply it first with "
                                           "'mailrobotctl robot apply')", plan->robot);
    if (dir_get(c, cfg, MR_KEY_ROUTE, plan->address, &previous, NULL, err) < 0)
        return -1;
    /* Said only when the route changes robot. */
    snprintf(plan->previous, sizeof plan->previous, "%s",
             previous && strcmp(previous, plan->robot) ? previous : "");
    free(previous);
    return dir_put(cfg, writes, count, MR_KEY_ROUTE, MR_KEY_ROUTES, plan->address, plan->robot,
                   err);
}

static int plan_del(redisContext *c, const mr_config *cfg, void *opaque, dir_write *writes,
                    size_t *count, mr_err *err)
{
    route_plan *plan = opaque;
    char *previous = NULL;
    int found = dir_get(c, cfg, MR_KEY_ROUTE, plan->address, &previous, NULL, err);

    if (found <= 0)
        return found < 0 ? -1 : mr_err_set(err, "no such route");
    snprintf(plan->previous, sizeof plan->previous, "%s", previous);
    free(previous);
    return dir_drop(cfg, writes, count, MR_KEY_ROUTE, MR_KEY_ROUTES, plan->address, err);
}

static int route_change(ctl_context *ctx, const char *address_arg, const char *robot)
{
    char address[ADDRESS_MAX + 1];
    route_plan plan = {address, robot, ""};
    redisContext *c = NULL;
    mr_err err;
    int rc = address_parse(address_arg, 0, address, &err);

    if (rc == 0 && robot != NULL && !mr_robot_name_valid(robot))
        rc = mr_err_set(&err, "bad robot name '%s'", robot);
    if (rc == 0 && (c = mr_redis_connect(&ctx->cfg, &err)) == NULL)
        rc = -1;
    if (rc == 0)
        rc = dir_change(c, &ctx->cfg, robot ? plan_add : plan_del, &plan, &err);
    if (rc < 0)
        ctl_error("route %s %s: %s", robot ? "add" : "del", address_arg, err.msg);
    else if (robot == NULL)
        printf("deleted route %s -> %s\n", address, plan.previous);
    else
        printf("added route %s -> %s%s%s%s\n", address, robot, plan.previous[0] ? " (was " : "",
               plan.previous, plan.previous[0] ? ")" : "");
    if (c != NULL)
        redisFree(c);
    return rc < 0 ? CTL_FAILED : CTL_OK;
}

/* --- list ----------------------------------------------------------------------- */

static int route_list(ctl_context *ctx)
{
    redisContext *c;
    dir_route *routes = NULL;
    char **robots = NULL;
    size_t count = 0, robot_count = 0;
    mr_err err;
    int rc;

    c = mr_redis_connect(&ctx->cfg, &err);
    rc = c ? dir_routes(c, &ctx->cfg, &routes, &count, &err) : -1;
    if (rc == 0)
        rc = dir_members(c, &ctx->cfg, MR_KEY_ROBOTS, &robots, &robot_count, &err);
    for (size_t i = 0; rc == 0 && i < count; i++) {
        const char *robot = routes[i].robot ? routes[i].robot : "?";

        printf("%s -> %s%s\n", routes[i].address, robot,
               dir_names_has(robots, robot_count, robot) ? "" : "  (robot missing)");
    }
    if (rc < 0)
        ctl_error("route list: %s", err.msg);
    dir_routes_free(routes, count);
    dir_names_free(robots, robot_count);
    if (c != NULL)
        redisFree(c);
    return rc < 0 ? CTL_FAILED : CTL_OK;
}

/* --- show ----------------------------------------------------------------------- */

/* The first candidate that has a route: its index and robot (malloc'd),
 * or -1 with *robot NULL when none has. */
static int first_route(redisContext *c, const mr_config *cfg, const mr_route_candidates *rc,
                       char **robot, int *index, mr_err *err)
{
    *robot = NULL;
    *index = -1;
    for (size_t i = 0; i < rc->count; i++) {
        int found = dir_get(c, cfg, MR_KEY_ROUTE, rc->address[i], robot, NULL, err);

        if (found < 0)
            return -1;
        if (found) {
            *index = (int)i;
            return 0;
        }
    }
    return 0;
}

static int show_match(redisContext *c, const mr_config *cfg, const char *recipient,
                      mr_err *err)
{
    mr_route_candidates rc;
    char *robot;
    int index, exists;

    mr_route_candidates_for(recipient, &rc);
    if (first_route(c, cfg, &rc, &robot, &index, err) < 0)
        return -1;
    printf("recipient  %s\n", recipient);
    if (rc.extension[0])
        printf("extension  %s\n", rc.extension);
    if (index < 0)
        return mr_err_set(err, "no route: mail to %s is dead-lettered (no_route)", recipient);
    printf("route      %s  (%s)\n", rc.address[index], rc.why[index]);
    exists = dir_get(c, cfg, MR_KEY_ROBOT, robot, NULL, NULL, err);
    if (exists >= 0)
        printf("robot      %s%s\n", robot, exists ? "" : "  (missing)");
    if (exists == 0)
        mr_err_set(err, "route %s points to robot %s, which does not exist", rc.address[index],
                   robot);
    free(robot);
    return exists == 1 ? 0 : -1;
}

static int route_show(ctl_context *ctx, const char *recipient_arg)
{
    char recipient[ADDRESS_MAX + 1];
    redisContext *c = NULL;
    mr_err err;
    int rc = address_parse(recipient_arg, 1, recipient, &err);

    if (rc == 0 && (c = mr_redis_connect(&ctx->cfg, &err)) == NULL)
        rc = -1;
    if (rc == 0)
        rc = show_match(c, &ctx->cfg, recipient, &err);
    if (rc < 0)
        ctl_error("route show %s: %s", recipient_arg, err.msg);
    if (c != NULL)
        redisFree(c);
    return rc < 0 ? CTL_FAILED : CTL_OK;
}

int ctl_route(ctl_context *ctx, int argc, char **argv)
{
    const char *verb = argc > 0 ? argv[0] : "";

    if (argc == 3 && strcmp(verb, "add") == 0)
        return route_change(ctx, argv[1], argv[2]);
    if (argc == 2 && (strcmp(verb, "del") == 0 || strcmp(verb, "delete") == 0))
        return route_change(ctx, argv[1], NULL);
    if (argc == 1 && strcmp(verb, "list") == 0)
        return route_list(ctx);
    if (argc == 2 && strcmp(verb, "show") == 0)
        return route_show(ctx, argv[1]);
    return usage();
}
