/*
 * exec_plan.h - inside the exec robot (exec.c): everything its command
 * needs, computed before a process is started (exec_plan.c), and starting
 * it safely (exec_spawn.c).
 */
#ifndef WORKERS_EXEC_PLAN_H
#define WORKERS_EXEC_PLAN_H

#include <sys/resource.h>
#include <sys/types.h>

#include "mailrobot/err.h"

#include "exec_prepare.h"
#include "worker.h"

#define EXEC_BWRAP_ARGS 40

/* What the child needs, all computed before it starts. */
typedef struct exec_plan {
    exec_strings argv;        /* the command's argv */
    exec_strings env;
    char path[4096];          /* argv[0] resolved on PATH */
    char **run_argv;          /* what is executed: argv, or bwrap + argv */
    const char *run_path;
    char directory[4096];
    uid_t uid;
    gid_t gid;
    int switch_user;
    struct rlimit limits[6];
    int limit_names[6];
    int fd_limit;             /* the worker's RLIMIT_NOFILE: fds to close (set by exec.c) */
    exec_envelope envelope;   /* the delivery, from the record's headers */
} exec_plan;

/* exec_plan.c */
int64_t exec_limit_or(int64_t robot, int64_t config);   /* robot's value, else config's */
/* Identity, working directory (created), limits, argv, environment and,
 * for bwrap, its command line. Errors are the operator's to fix. */
int exec_plan_make(exec_plan *p, const job *j, mr_err *err);
void exec_plan_free(exec_plan *p);

/* exec_spawn.c: starts the command of p with pipes for its stdin, stdout
 * and stderr; fds gets the parent's ends. Returns the pid, or -1 with err
 * (a child that could not execve is reaped; err says which step failed). */
pid_t exec_spawn(const exec_plan *p, int fds[3], mr_err *err);

#endif
