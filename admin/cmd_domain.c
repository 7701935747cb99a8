/*
 * cmd_domain.c - `mailrobotctl domain add|remove|list|catch-all`: the
 * hosted domains (docs/accounts.md; the library: mailrobot/directory.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static const char usage_text[] =
    "usage: mailrobotctl domain add DOMAIN\n"
    "       mailrobotctl domain remove DOMAIN      (refused while it has accounts or aliases)\n"
    "       mailrobotctl domain list\n"
    "       mailrobotctl domain catch-all DOMAIN [TARGET|--none]\n"
    "TARGET: local@domain or robot:NAME, for addresses that are neither account nor alias";

static int usage(void)
{
    ctl_error("%s", usage_text);
    return CTL_USAGE;
}

static int domain_list(mr_dir *d)
{
    char **names;
    size_t count;
    mr_err err;
    mr_dir_status st = mr_dir_domain_list(d, &names, &count, &err);

    for (size_t i = 0; st == MR_DIR_OK && i < count; i++) {
        char *catch_all = NULL;

        st = mr_dir_domain_get(d, names[i], &catch_all, &err);
        if (st == MR_DIR_OK)
            printf("%s%s%s\n", names[i], catch_all ? "  catch-all -> " : "",
                   catch_all ? catch_all : "");
        free(catch_all);
    }
    if (st == MR_DIR_OK)
        mr_dir_names_free(names, count);
    return ctl_dir_result(st, "domain list", &err);
}

static int domain_catch_all(ctl_context *ctx, mr_dir *d, int argc, char **argv)
{
    const char *domain = argv[1];
    char *target = NULL;
    mr_err err;
    mr_dir_status st;

    if (argc == 2) {
        st = mr_dir_domain_get(d, domain, &target, &err);
        if (st == MR_DIR_OK)
            printf("%s\n", target ? target : "(none)");
        free(target);
        return ctl_dir_result(st, "domain catch-all", &err);
    }
    st = mr_dir_domain_catch_all(d, domain, strcmp(argv[2], "--none") ? argv[2] : NULL, &err);
    ctl_audit(ctx, "domain.catch_all", domain, st);
    if (st == MR_DIR_OK)
        printf("catch-all of %s: %s\n", domain, strcmp(argv[2], "--none") ? argv[2] : "none");
    return ctl_dir_result(st, "domain catch-all", &err);
}

int ctl_domain(ctl_context *ctx, int argc, char **argv)
{
    const char *verb = argc > 0 ? argv[0] : "";
    mr_dir d;
    mr_err err;
    int rc;

    if (!((argc == 2 && (!strcmp(verb, "add") || !strcmp(verb, "remove")))
          || (argc == 1 && !strcmp(verb, "list"))
          || ((argc == 2 || argc == 3) && !strcmp(verb, "catch-all"))))
        return usage();
    if (ctl_dir_open(ctx, &d, "domain") < 0)
        return CTL_FAILED;
    if (!strcmp(verb, "add")) {
        mr_dir_status st = mr_dir_domain_add(&d, argv[1], &err);

        ctl_audit(ctx, "domain.add", argv[1], st);
        rc = ctl_dir_result(st, "domain add", &err);
        if (rc == CTL_OK)
            printf("added domain %s\n", argv[1]);
    } else if (!strcmp(verb, "remove")) {
        mr_dir_status st = mr_dir_domain_remove(&d, argv[1], &err);

        ctl_audit(ctx, "domain.remove", argv[1], st);
        rc = ctl_dir_result(st, "domain remove", &err);
        if (rc == CTL_OK)
            printf("removed domain %s\n", argv[1]);
    } else if (!strcmp(verb, "list")) {
        rc = domain_list(&d);
    } else {
        rc = domain_catch_all(ctx, &d, argc, argv);
    }
    mr_dir_close(&d);
    return rc;
}
