/*
 * dir_ctl.c - what the directory commands (domain, account, alias, backup,
 * restore) share: opening the directory, reporting a library status and
 * recording the audit event of a change.
 */
#include <stdio.h>

#include "ctl.h"

int ctl_dir_open(ctl_context *ctx, mr_dir *d, const char *what)
{
    mr_err err;

    if (mr_dir_open(d, &ctx->cfg, &err) == MR_DIR_OK)
        return 0;
    ctl_error("%s: unavailable: %s", what, err.msg);
    return -1;
}

void ctl_audit(ctl_context *ctx, const char *operation, const char *target, mr_dir_status st)
{
    mr_err err;

    if (ctx->audit == NULL && !ctx->audit_failed) {
        ctx->audit = mr_audit_new(&ctx->cfg, &ctx->kafka, &ctx->log, "cli", &err);
        if (ctx->audit == NULL) {
            ctx->audit_failed = 1;
            mr_log(&ctx->log, MR_LOG_ERROR, "audit events cannot be written", "reason", err.msg,
                   NULL);
        }
    }
    if (ctx->audit != NULL)
        mr_audit_record(ctx->audit, operation, target, st);
    else
        mr_log(&ctx->log, MR_LOG_ERROR, "audit event lost", "operation", operation, "target",
               target, "result", mr_dir_status_name(st), NULL);
}

int ctl_dir_result(mr_dir_status st, const char *what, const mr_err *err)
{
    if (st == MR_DIR_OK)
        return CTL_OK;
    ctl_error("%s: %s: %s", what, mr_dir_status_name(st), err->msg);
    return CTL_FAILED;
}
