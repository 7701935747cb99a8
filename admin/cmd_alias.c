/*
 * cmd_alias.c - `mailrobotctl alias set|remove|list|show`: aliases and
 * their targets (docs/accounts.md; the library: mailrobot/directory.h).
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static const char usage_text[] =
    "usage: mailrobotctl alias set ADDRESS TARGET...   (1 to 50; replaces the targets)\n"
    "       mailrobotctl alias remove ADDRESS\n"
    "       mailrobotctl alias list [DOMAIN]\n"
    "       mailrobotctl alias show ADDRESS\n"
    "TARGET: local@domain (an account, alias or routed address when the domain is\n"
    "hosted, else an offsite address) or robot:NAME";

static int usage(void)
{
    ctl_error("%s", usage_text);
    return CTL_USAGE;
}

static int print_names(mr_dir_status st, char **names, size_t count, const char *what,
                       const mr_err *err)
{
    for (size_t i = 0; st == MR_DIR_OK && i < count; i++)
        puts(names[i]);
    if (st == MR_DIR_OK)
        mr_dir_names_free(names, count);
    return ctl_dir_result(st, what, err);
}

int ctl_alias(ctl_context *ctx, int argc, char **argv)
{
    const char *verb = argc > 0 ? argv[0] : "";
    char **names = NULL;
    size_t count = 0;
    mr_dir d;
    mr_err err;
    int rc;

    if (!((argc >= 3 && !strcmp(verb, "set")) || (argc == 2 && !strcmp(verb, "remove"))
          || ((argc == 1 || argc == 2) && !strcmp(verb, "list"))
          || (argc == 2 && !strcmp(verb, "show"))))
        return usage();
    if (ctl_dir_open(ctx, &d, "alias") < 0)
        return CTL_FAILED;
    if (!strcmp(verb, "set")) {
        mr_dir_status st = mr_dir_alias_set(&d, argv[1], (const char *const *)argv + 2,
                                            (size_t)argc - 2, &err);

        ctl_audit(ctx, "alias.set", argv[1], st);
        rc = ctl_dir_result(st, "alias set", &err);
        if (rc == CTL_OK)
            printf("set alias %s (%d target%s)\n", argv[1], argc - 2, argc == 3 ? "" : "s");
    } else if (!strcmp(verb, "remove")) {
        mr_dir_status st = mr_dir_alias_remove(&d, argv[1], &err);

        ctl_audit(ctx, "alias.remove", argv[1], st);
        rc = ctl_dir_result(st, "alias remove", &err);
        if (rc == CTL_OK)
            printf("removed alias %s\n", argv[1]);
    } else if (!strcmp(verb, "list")) {
        mr_dir_status st = mr_dir_alias_list(&d, argc == 2 ? argv[1] : NULL, &names, &count,
                                             &err);

        rc = print_names(st, names, count, "alias list", &err);
    } else {
        mr_dir_status st = mr_dir_alias_get(&d, argv[1], &names, &count, &err);

        rc = print_names(st, names, count, "alias show", &err);
    }
    mr_dir_close(&d);
    return rc;
}
