/*
 * cmd_backup.c - `mailrobotctl backup [--account A]` and `restore FILE|-`:
 * the directory as JSON (schemas/backup-v1.json; docs/accounts.md).
 *
 * The backup holds password hashes (argon2id), never passwords: keep it as
 * private as the Redis it comes from. A restore reads at most
 * directory_backup_limit bytes, checks all of it and writes all or nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mailrobot/buf.h"

#include "ctl.h"

int ctl_backup(ctl_context *ctx, int argc, char **argv)
{
    const char *account = NULL;
    char *json = NULL;
    size_t len = 0;
    mr_dir d;
    mr_err err;
    mr_dir_status st;

    if (argc == 2 && strcmp(argv[0], "--account") == 0)
        account = argv[1];
    else if (argc != 0) {
        ctl_error("usage: mailrobotctl backup [--account ADDRESS] > FILE");
        return CTL_USAGE;
    }
    if (ctl_dir_open(ctx, &d, "backup") < 0)
        return CTL_FAILED;
    st = mr_dir_backup(&d, account, &json, &len, &err);
    if (st == MR_DIR_OK && (fwrite(json, 1, len, stdout) != len || fputc('\n', stdout) == EOF
                            || fflush(stdout) != 0))
        st = (mr_err_set(&err, "cannot write the backup to standard output"), MR_DIR_UNAVAILABLE);
    free(json);
    mr_dir_close(&d);
    return ctl_dir_result(st, "backup", &err);
}

/* Reads all of f, at most limit bytes. */
static int read_all(FILE *f, size_t limit, char **out, size_t *len, mr_err *err)
{
    size_t cap = 65536, n = 0, got;
    char *buf = malloc(cap + 1);

    while (buf != NULL && (got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n > limit) {
            free(buf);
            return mr_err_set(err, "the backup is larger than directory_backup_limit (%zu "
                              "bytes)", limit);
        }
        if (n == cap) {
            char *grown = realloc(buf, 2 * cap + 1);

            if (grown == NULL)
                break;
            buf = grown;
            cap *= 2;
        }
    }
    if (buf == NULL || ferror(f)) {
        free(buf);
        return mr_err_set(err, "cannot read the backup");
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

int ctl_restore(ctl_context *ctx, int argc, char **argv)
{
    FILE *f;
    char *json = NULL;
    size_t len = 0;
    mr_dir d;
    mr_err err;
    mr_dir_status st = MR_DIR_INVALID;

    if (argc != 1) {
        ctl_error("usage: mailrobotctl restore FILE|-");
        return CTL_USAGE;
    }
    f = strcmp(argv[0], "-") == 0 ? stdin : fopen(argv[0], "r");
    if (f == NULL) {
        ctl_error("restore: cannot open %s", argv[0]);
        return CTL_FAILED;
    }
    if (read_all(f, ctx->cfg.directory_backup_limit, &json, &len, &err) == 0) {
        if (ctl_dir_open(ctx, &d, "restore") < 0) {
            free(json);
            return CTL_FAILED;
        }
        st = mr_dir_restore(&d, json, len, &err);
        ctl_audit(ctx, "restore", NULL, st);
        mr_dir_close(&d);
    }
    if (f != stdin)
        fclose(f);
    free(json);
    if (st == MR_DIR_OK)
        printf("restored %s\n", argv[0]);
    return ctl_dir_result(st, "restore", &err);
}
