/*
 * cmd_account.c - `mailrobotctl account ...`: hosted-mail accounts, their
 * passwords and password resets (docs/accounts.md; the library:
 * mailrobot/directory.h).
 *
 * Passwords are read from standard input (one per line) or from a file
 * (--password-file), never from the command line: argv is readable by
 * every user of the machine (ps, /proc/PID/cmdline) and lands in shell
 * histories. They are never printed or logged.
 *
 * `account reset-start` puts the reset mail onto <prefix>.outbound, where
 * the worker's sender delivers it like any robot's mail (docs/outbound.md):
 * from postmaster@<the account's domain> to the recovery address
 * (mr_dir_reset_send, shared with the admin API). The token
 * is in that mail only, unless --print-token asks for it on standard
 * output (for tests, and operators who hand tokens over another way).
 *
 * Every change records an audit event (ctl_audit; never a password).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>


#include "ctl.h"

#define SECRET_SIZE (MR_DIR_PASSWORD_MAX + 2)

static const char usage_text[] =
    "usage: mailrobotctl account create ADDRESS [--recovery ADDRESS] [--password-file F]\n"
    "       mailrobotctl account remove ADDRESS     (with everything it owns)\n"
    "       mailrobotctl account list [DOMAIN]\n"
    "       mailrobotctl account show ADDRESS\n"
    "       mailrobotctl account passwd ADDRESS [--admin] [--old-password-file F]\n"
    "                                   [--password-file F]\n"
    "       mailrobotctl account recovery ADDRESS RECOVERY|--none\n"
    "       mailrobotctl account own ADDRESS robot:NAME|route:ADDRESS|alias:ADDRESS\n"
    "       mailrobotctl account check ADDRESS [--password-file F]\n"
    "       mailrobotctl account reset-start ADDRESS [--print-token]\n"
    "       mailrobotctl account reset-finish --token TOKEN [--password-file F]\n"
    "Passwords are read from standard input, one per line (passwd: the old one,\n"
    "then the new one; --admin needs no old one), or from the files named.";

static int usage(void)
{
    ctl_error("%s", usage_text);
    return CTL_USAGE;
}

/* The options of every account command. */
typedef struct account_args {
    const char *address;
    const char *recovery;
    const char *password_file;
    const char *old_password_file;
    const char *token;
    const char *extra;         /* recovery's and own's second operand */
    int admin, print_token;
} account_args;

static int parse_args(int argc, char **argv, account_args *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 0; i < argc; i++) {
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;

        if (!strcmp(argv[i], "--recovery") && next)
            a->recovery = argv[++i];
        else if (!strcmp(argv[i], "--password-file") && next)
            a->password_file = argv[++i];
        else if (!strcmp(argv[i], "--old-password-file") && next)
            a->old_password_file = argv[++i];
        else if (!strcmp(argv[i], "--token") && next)
            a->token = argv[++i];
        else if (!strcmp(argv[i], "--admin"))
            a->admin = 1;
        else if (!strcmp(argv[i], "--print-token"))
            a->print_token = 1;
        else if (!strcmp(argv[i], "--none") && a->address && !a->extra)
            a->extra = "";
        else if (argv[i][0] == '-' && argv[i][1] != '\0')
            return -1;
        else if (a->address == NULL)
            a->address = argv[i];
        else if (a->extra == NULL)
            a->extra = argv[i];
        else
            return -1;
    }
    return 0;
}

/* One line (without its line end) from in: a password. 0, or -1 with the
 * reason (never the password) in err. */
static int read_secret(FILE *in, const char *what, char out[SECRET_SIZE], mr_err *err)
{
    size_t len;

    if (fgets(out, SECRET_SIZE, in) == NULL)
        return mr_err_set(err, "%s: nothing to read (give it on standard input or with "
                          "--password-file)", what);
    len = strlen(out);
    if (len > 0 && out[len - 1] == '\n')
        out[--len] = '\0';
    else if (!feof(in))
        return mr_err_set(err, "%s: longer than %d bytes", what, MR_DIR_PASSWORD_MAX);
    if (len > 0 && out[len - 1] == '\r')
        out[--len] = '\0';
    return 0;
}

static int read_secret_from(const char *path, const char *what, char out[SECRET_SIZE],
                            mr_err *err)
{
    FILE *f;
    int rc;

    if (path == NULL)
        return read_secret(stdin, what, out, err);
    if ((f = fopen(path, "r")) == NULL)
        return mr_err_set(err, "%s: cannot open %s", what, path);
    rc = read_secret(f, what, out, err);
    fclose(f);
    return rc;
}

static int reset_start(ctl_context *ctx, mr_dir *d, const account_args *a)
{
    char token[MR_DIR_TOKEN_SIZE], recovery[MR_DIR_ADDRESS_MAX + 1];
    mr_err err;
    mr_dir_status st = mr_dir_reset_send(d, &ctx->kafka, a->address, token, recovery, &err);

    ctl_audit(ctx, "account.reset_start", a->address, st);
    if (st != MR_DIR_OK)
        return ctl_dir_result(st, "account reset-start", &err);
    printf("reset mail for %s queued to %s\n", a->address, recovery);
    if (a->print_token)
        printf("token %s\n", token);
    sodium_memzero(token, sizeof token);
    return CTL_OK;
}

/* --- the others ---------------------------------------------------------------------- */

static int show(mr_dir *d, const char *address)
{
    mr_dir_account a;
    mr_err err;
    mr_dir_status st = mr_dir_account_show(d, address, &a, &err);

    if (st == MR_DIR_OK) {
        printf("address   %s\nrecovery  %s\ncreated   %s\nupdated   %s\nreset     %s\n",
               a.address, a.recovery[0] ? a.recovery : "(none)", a.created, a.updated,
               a.reset_pending ? "pending" : "none");
        for (size_t i = 0; i < a.owns_count; i++)
            printf("owns      %s\n", a.owns[i]);
        mr_dir_account_free(&a);
    }
    return ctl_dir_result(st, "account show", &err);
}

static int list(mr_dir *d, const char *domain)
{
    char **names;
    size_t count;
    mr_err err;
    mr_dir_status st = mr_dir_account_list(d, domain, &names, &count, &err);

    for (size_t i = 0; st == MR_DIR_OK && i < count; i++)
        puts(names[i]);
    if (st == MR_DIR_OK)
        mr_dir_names_free(names, count);
    return ctl_dir_result(st, "account list", &err);
}

static int passwd(ctl_context *ctx, mr_dir *d, const account_args *a)
{
    char old[SECRET_SIZE] = "", new_password[SECRET_SIZE] = "";
    mr_err err;
    mr_dir_status st = MR_DIR_INVALID;

    if ((a->admin || read_secret_from(a->old_password_file, "old password", old, &err) == 0)
        && read_secret_from(a->password_file, "password", new_password, &err) == 0)
        st = mr_dir_account_passwd(d, a->address, a->admin ? NULL : old, new_password, &err);
    ctl_audit(ctx, "account.password", a->address, st);
    sodium_memzero(old, sizeof old);
    sodium_memzero(new_password, sizeof new_password);
    if (st == MR_DIR_OK)
        printf("changed the password of %s\n", a->address);
    return ctl_dir_result(st, "account passwd", &err);
}

/* create, check and reset-finish: one password, then the operation. */
static int with_password(ctl_context *ctx, mr_dir *d, const char *verb,
                         const account_args *a)
{
    char password[SECRET_SIZE] = "", address[MR_DIR_ADDRESS_MAX + 1] = "";
    char what[64];
    mr_err err;
    mr_dir_status st = MR_DIR_INVALID;

    snprintf(what, sizeof what, "account %s", verb);
    if (read_secret_from(a->password_file, "password", password, &err) == 0) {
        if (!strcmp(verb, "create"))
            st = mr_dir_account_create(d, a->address, password, a->recovery, &err);
        else if (!strcmp(verb, "check"))
            st = mr_dir_account_verify(d, a->address, password, &err);
        else
            st = mr_dir_reset_finish(d, a->token, password, address, &err);
    }
    if (!strcmp(verb, "create"))
        ctl_audit(ctx, "account.create", a->address, st);
    else if (strcmp(verb, "check") != 0)
        ctl_audit(ctx, "account.reset_finish", address[0] ? address : NULL, st);
    sodium_memzero(password, sizeof password);
    if (st == MR_DIR_OK && !strcmp(verb, "create"))
        printf("created account %s\n", a->address);
    else if (st == MR_DIR_OK && !strcmp(verb, "check"))
        printf("password of %s: ok\n", a->address);
    else if (st == MR_DIR_OK)
        printf("changed the password of %s; the token is used up\n", address);
    return ctl_dir_result(st, what, &err);
}

int ctl_account(ctl_context *ctx, int argc, char **argv)
{
    const char *verb = argc > 0 ? argv[0] : "";
    account_args a;
    mr_dir d;
    mr_err err;
    int rc;

    if (argc < 1 || parse_args(argc - 1, argv + 1, &a) < 0)
        return usage();
    if (strcmp(verb, "reset-finish") == 0 ? (a.token == NULL || a.address != NULL)
        : strcmp(verb, "list") == 0 ? a.extra != NULL
        : a.address == NULL
              || ((strcmp(verb, "recovery") == 0 || strcmp(verb, "own") == 0) != (a.extra != NULL)))
        return usage();
    if (ctl_dir_open(ctx, &d, "account") < 0)
        return CTL_FAILED;
    if (!strcmp(verb, "create") || !strcmp(verb, "check") || !strcmp(verb, "reset-finish"))
        rc = with_password(ctx, &d, verb, &a);
    else if (!strcmp(verb, "remove")) {
        mr_dir_status st = mr_dir_account_remove(&d, a.address, &err);

        ctl_audit(ctx, "account.remove", a.address, st);
        rc = ctl_dir_result(st, "account remove", &err);
        if (rc == CTL_OK)
            printf("removed account %s and everything it owned\n", a.address);
    } else if (!strcmp(verb, "list"))
        rc = list(&d, a.address);
    else if (!strcmp(verb, "show"))
        rc = show(&d, a.address);
    else if (!strcmp(verb, "passwd"))
        rc = passwd(ctx, &d, &a);
    else if (!strcmp(verb, "recovery")) {
        mr_dir_status st = mr_dir_account_recovery(&d, a.address,
                                                   a.extra[0] ? a.extra : NULL, &err);

        ctl_audit(ctx, "account.recovery", a.address, st);
        rc = ctl_dir_result(st, "account recovery", &err);
        if (rc == CTL_OK)
            printf("recovery address of %s: %s\n", a.address, a.extra[0] ? a.extra : "none");
    } else if (!strcmp(verb, "own")) {
        mr_dir_status st = mr_dir_account_own(&d, a.address, a.extra, &err);

        ctl_audit(ctx, "account.own", a.address, st);
        rc = ctl_dir_result(st, "account own", &err);
        if (rc == CTL_OK)
            printf("%s now owns %s\n", a.address, a.extra);
    } else if (!strcmp(verb, "reset-start"))
        rc = reset_start(ctx, &d, &a);
    else
        rc = usage();
    mr_dir_close(&d);
    return rc;
}
