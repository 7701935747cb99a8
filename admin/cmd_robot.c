/*
 * cmd_robot.c - `mailrobotctl robot apply|list|show|delete|validate`:
 * robot definitions (robot.h, schemas/robot-v1.json) kept in Redis
 * (keys.h, docs/redis.md).
 *
 * apply stores the document exactly as given after validating it; show
 * never prints a secret; delete refuses while routes point to the robot
 * (unless --force); validate needs no Redis at all.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailrobot/buf.h"
#include "mailrobot/keys.h"
#include "mailrobot/redis.h"
#include "mailrobot/robot.h"

#include "ctl.h"
#include "directory.h"

/* Robot documents are a few hundred bytes; this only stops a wrong file. */
#define ROBOT_FILE_LIMIT (1u << 20)

static const char usage_text[] =
    "usage: mailrobotctl robot apply FILE.json|-\n"
    "       mailrobotctl robot list\n"
    "       mailrobotctl robot show NAME\n"
    "       mailrobotctl robot delete NAME [--force]\n"
    "       mailrobotctl robot validate FILE.json|-";

static int usage(void)
{
    ctl_error("%s", usage_text);
    return CTL_USAGE;
}

/* Reads and validates a robot document from a file, or stdin for "-".
 * Errors read "FILE: /field: what is wrong". */
static int load_robot(const char *path, mr_robot *robot, mr_err *err)
{
    int fd = strcmp(path, "-") == 0 ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    const char *name = fd == STDIN_FILENO ? "stdin" : path;
    mr_read_status status;
    mr_buf buf;
    int rc;

    if (fd < 0)
        return mr_err_set(err, "%s: cannot open: %s", path, strerror(errno));
    mr_buf_init(&buf, ROBOT_FILE_LIMIT);
    status = mr_buf_read_fd(&buf, fd, err);
    if (fd != STDIN_FILENO)
        close(fd);
    if (status == MR_READ_TOO_BIG)
        rc = mr_err_set(err, "%s: larger than %u bytes", name, ROBOT_FILE_LIMIT);
    else if (status == MR_READ_ERROR)
        rc = mr_err_prefix(err, "%s", name);
    else if ((rc = mr_robot_parse((const char *)buf.data, buf.len, robot, err)) < 0)
        mr_err_prefix(err, "%s", name);
    mr_buf_free(&buf);
    return rc;
}

static int robot_validate(const char *path)
{
    mr_robot robot;
    mr_err err;

    if (load_robot(path, &robot, &err) < 0) {
        ctl_error("%s", err.msg);
        return CTL_FAILED;
    }
    printf("ok: %s\n", robot.name);
    mr_robot_free(&robot);
    return CTL_OK;
}

static int plan_apply(redisContext *c, const mr_config *cfg, void *opaque, dir_write *writes,
                      size_t *count, mr_err *err)
{
    const mr_robot *robot = opaque;

    return dir_put(cfg, writes, count, MR_KEY_ROBOT, MR_KEY_ROBOTS, robot->name, robot->json,
                   err);
}

static int robot_apply(ctl_context *ctx, const char *path)
{
    redisContext *c;
    mr_robot robot;
    mr_err err;
    int rc;

    if (load_robot(path, &robot, &err) < 0) {
        ctl_error("%s", err.msg);
        return CTL_FAILED;
    }
    c = mr_redis_connect(&ctx->cfg, &err);
    rc = c ? dir_change(c, &ctx->cfg, plan_apply, &robot, &err) : -1;
    if (rc == 0)
        printf("applied robot %s\n", robot.name);
    else
        ctl_error("robot apply %s: %s", robot.name, err.msg);
    mr_robot_free(&robot);
    if (c != NULL)
        redisFree(c);
    return rc == 0 ? CTL_OK : CTL_FAILED;
}

static const char *order_name(mr_robot_order order)
{
    return order == MR_ORDER_NONE ? "false" : order == MR_ORDER_STRICT ? "strict" : "true";
}

/* One line: name, kind, url, ordered, concurrency (0: the worker's default). */
static int print_robot_line(redisContext *c, const mr_config *cfg, const char *name,
                            mr_err *err)
{
    char *json = NULL, concurrency[24];
    mr_robot robot;
    size_t len;
    int found = dir_get(c, cfg, MR_KEY_ROBOT, name, &json, &len, err);

    if (found < 0)
        return -1;
    if (found == 0)
        printf("%-20s (listed in %s:%s but has no document)\n", name, cfg->redis_prefix,
               MR_KEY_ROBOTS);
    else if (mr_robot_parse(json, len, &robot, err) < 0)
        printf("%-20s (invalid: %s)\n", name, err->msg);
    else {
        snprintf(concurrency, sizeof concurrency, "%" PRId64, robot.concurrency);
        printf("%-20s %-8s %s  ordered=%s concurrency=%s\n", robot.name,
               mr_robot_kind_name(robot.kind), robot.webhook.url ? robot.webhook.url : "-",
               order_name(robot.ordered), robot.concurrency ? concurrency : "default");
        mr_robot_free(&robot);
    }
    free(json);
    return 0;
}

static int robot_list(ctl_context *ctx)
{
    redisContext *c;
    char **names = NULL;
    size_t count = 0;
    mr_err err;
    int rc;

    c = mr_redis_connect(&ctx->cfg, &err);
    rc = c ? dir_members(c, &ctx->cfg, MR_KEY_ROBOTS, &names, &count, &err) : -1;
    for (size_t i = 0; rc == 0 && i < count; i++)
        rc = print_robot_line(c, &ctx->cfg, names[i], &err);
    if (rc < 0)
        ctl_error("robot list: %s", err.msg);
    dir_names_free(names, count);
    if (c != NULL)
        redisFree(c);
    return rc == 0 ? CTL_OK : CTL_FAILED;
}

/* The stored document of a robot, parsed: 1 found, 0 not, -1 error. */
static int fetch_robot(redisContext *c, const mr_config *cfg, const char *name, mr_robot *robot,
                       mr_err *err)
{
    char *json = NULL;
    size_t len;
    int found = dir_get(c, cfg, MR_KEY_ROBOT, name, &json, &len, err);

    if (found == 1 && mr_robot_parse(json, len, robot, err) < 0)
        found = mr_err_prefix(err, "the stored document of robot %s is not valid", name);
    free(json);
    return found;
}

static int robot_show(ctl_context *ctx, const char *name)
{
    mr_robot robot;
    mr_err err;
    char *shown = NULL;
    redisContext *c = mr_redis_connect(&ctx->cfg, &err);
    int found = c ? fetch_robot(c, &ctx->cfg, name, &robot, &err) : -1;

    if (found == 1) {
        shown = mr_robot_redacted_json(&robot);
        mr_robot_free(&robot);
        if (shown != NULL)
            puts(shown);
        else
            found = mr_err_set(&err, "out of memory");
    } else if (found == 0)
        mr_err_set(&err, "no such robot");
    if (found != 1)
        ctl_error("robot show %s: %s", name, err.msg);
    free(shown);
    if (c != NULL)
        redisFree(c);
    return found == 1 ? CTL_OK : CTL_FAILED;
}

typedef struct delete_plan {
    const char *name;
    int force;
    char routes[512];  /* the routes left pointing at it (with --force) */
} delete_plan;

/* Lists, into out, the routes whose robot is name. Returns how many. */
static size_t routes_to(const dir_route *routes, size_t count, const char *name, char *out,
                        size_t outsz)
{
    size_t found = 0, n = 0;

    out[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        if (routes[i].robot == NULL || strcmp(routes[i].robot, name) != 0)
            continue;
        if (n < outsz)
            n += (size_t)snprintf(out + n, outsz - n, "%s%s", found ? ", " : "",
                                  routes[i].address);
        found++;
    }
    return found;
}

static int plan_delete(redisContext *c, const mr_config *cfg, void *opaque, dir_write *writes,
                       size_t *count, mr_err *err)
{
    delete_plan *plan = opaque;
    dir_route *routes;
    size_t n, pointing;
    int found = dir_get(c, cfg, MR_KEY_ROBOT, plan->name, NULL, NULL, err);

    if (found <= 0)
        return found < 0 ? -1 : mr_err_set(err, "no such robot");
    if (dir_routes(c, cfg, &routes, &n, err) < 0)
        return -1;
    pointing = routes_to(routes, n, plan->name, plan->routes, sizeof plan->routes);
    dir_routes_free(routes, n);
    if (pointing > 0 && !plan->force)
        return mr_err_set(err, "%zu route(s) point to it: %s (delete them first, or use "
                          "--force to leave them pointing at a missing robot)", pointing,
                          plan->routes);
    return dir_drop(cfg, writes, count, MR_KEY_ROBOT, MR_KEY_ROBOTS, plan->name, err);
}

static int robot_delete(ctl_context *ctx, int argc, char **argv)
{
    delete_plan plan = {NULL, 0, ""};
    redisContext *c;
    mr_err err;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--force") == 0)
            plan.force = 1;
        else if (plan.name == NULL && mr_robot_name_valid(argv[i]))
            plan.name = argv[i];
        else
            return usage();
    }
    if (plan.name == NULL)
        return usage();
    c = mr_redis_connect(&ctx->cfg, &err);
    rc = c ? dir_change(c, &ctx->cfg, plan_delete, &plan, &err) : -1;
    if (rc == 0 && plan.routes[0])
        printf("deleted robot %s (routes still pointing at it: %s)\n", plan.name, plan.routes);
    else if (rc == 0)
        printf("deleted robot %s\n", plan.name);
    else
        ctl_error("robot delete %s: %s", plan.name, err.msg);
    if (c != NULL)
        redisFree(c);
    return rc == 0 ? CTL_OK : CTL_FAILED;
}

int ctl_robot(ctl_context *ctx, int argc, char **argv)
{
    const char *verb = argc > 0 ? argv[0] : "";

    if (argc == 2 && strcmp(verb, "apply") == 0)
        return robot_apply(ctx, argv[1]);
    if (argc == 2 && strcmp(verb, "validate") == 0)
        return robot_validate(argv[1]);
    if (argc == 1 && strcmp(verb, "list") == 0)
        return robot_list(ctx);
    if (argc == 2 && strcmp(verb, "show") == 0 && mr_robot_name_valid(argv[1]))
        return robot_show(ctx, argv[1]);
    if (strcmp(verb, "delete") == 0)
        return robot_delete(ctx, argc - 1, argv + 1);
    return usage();
}
