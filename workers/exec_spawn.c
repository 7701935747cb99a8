/*
 * exec_spawn.c - starting an exec robot's command (exec_plan.h). The
 * child is started the way posix_spawn() does it, with clone(CLONE_VM |
 * CLONE_VFORK) on its own small stack: no page tables of the (large,
 * threaded) worker are copied and torn down again (bench/exec measured
 * fork() adding 1.5 ms of CPU to every command); sanitizer builds use
 * fork(). Until execve() the child calls only async-signal-safe functions
 * and raw system calls: its own session, fds 0-2 only, every signal back
 * to its default, umask 077, the rlimits, the user and group, the working
 * directory. A pipe with O_CLOEXEC tells the parent whether execve()
 * worked, and if not, which step failed and why.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec_plan.h"

#define CHILD_STACK (128 * 1024)

#if defined(__SANITIZE_ADDRESS__)
#define EXEC_USE_FORK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define EXEC_USE_FORK 1
#endif
#endif

/* Reports errno of a failed step to the parent and exits. */
static void child_fail(int report_fd, int step, int code)
{
    int msg[2] = {step, errno};

    (void)!write(report_fd, msg, sizeof msg);
    _exit(code);
}

enum { STEP_EXEC = 1, STEP_IDENTITY, STEP_DIRECTORY, STEP_LIMITS, STEP_FDS };

static void child_reset_signals(void)
{
    struct sigaction dfl;
    sigset_t none;

    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        sigaction(sig, &dfl, NULL);   /* fails harmlessly for SIGKILL, SIGSTOP, RT gaps */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
}

static void child(const exec_plan *p, const int fds[3], int report_fd)
{
    setsid();
    if (dup2(fds[0], 0) < 0 || dup2(fds[1], 1) < 0 || dup2(fds[2], 2) < 0)
        child_fail(report_fd, STEP_FDS, EXEC_CANNOT_RUN);
    /* Everything else goes, but the report pipe (close-on-exec) must stay. */
    for (int fd = 3; fd < report_fd; fd++)
        close(fd);
    if (close_range((unsigned)report_fd + 1, ~0U, 0) < 0)   /* kernels before 5.9 */
        for (int fd = report_fd + 1; fd < p->fd_limit; fd++)
            close(fd);
    child_reset_signals();
    umask(077);
    for (int i = 0; i < 6; i++)
        if (setrlimit(p->limit_names[i], &p->limits[i]) < 0)
            child_fail(report_fd, STEP_LIMITS, EXEC_CANNOT_RUN);
    /* Raw system calls: glibc's wrappers would try to change every thread
     * of the worker (the child shares its memory until execve). */
    if (p->switch_user
        && (syscall(SYS_setgroups, 1, &p->gid) < 0 || syscall(SYS_setgid, p->gid) < 0
            || syscall(SYS_setuid, p->uid) < 0))
        child_fail(report_fd, STEP_IDENTITY, EXEC_CANNOT_RUN);
    if (chdir(p->directory) < 0)
        child_fail(report_fd, STEP_DIRECTORY, EXEC_CANNOT_RUN);
    execve(p->run_path, p->run_argv, p->env);
    child_fail(report_fd, STEP_EXEC, errno == ENOENT ? EXEC_NOT_FOUND : EXEC_CANNOT_RUN);
}

static const char *step_name(int step)
{
    switch (step) {
    case STEP_IDENTITY: return "cannot switch to the robot's user";
    case STEP_DIRECTORY: return "cannot enter the working directory";
    case STEP_LIMITS: return "cannot set resource limits";
    case STEP_FDS: return "cannot set up standard input and output";
    default: return "cannot execute";
    }
}

static void close_pair(int fds[2])
{
    for (int i = 0; i < 2; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

#ifndef EXEC_USE_FORK
typedef struct child_args {
    const exec_plan *plan;
    const int *fds;
    int report_fd;
} child_args;

static int child_main(void *arg)
{
    const child_args *a = arg;

    child(a->plan, a->fds, a->report_fd);
    return EXEC_CANNOT_RUN;
}
#endif

/* Starts the child; returns its pid or -1 (errno set). The parent's
 * signals are blocked meanwhile, so that no handler of the worker runs
 * in the child while they share memory; the child resets and unblocks
 * them itself. */
static pid_t start_child(const exec_plan *p, const int fds[3], int report_fd)
{
    sigset_t all, old;
    pid_t pid;
#ifdef EXEC_USE_FORK
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    if ((pid = fork()) == 0)
        child(p, fds, report_fd);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
#else
    child_args args = {p, fds, report_fd};
    char *stack = mmap(NULL, CHILD_STACK, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    int saved;

    if (stack == MAP_FAILED)
        return -1;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pid = clone(child_main, stack + CHILD_STACK, CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
    saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    munmap(stack, CHILD_STACK);
    errno = saved;
#endif
    return pid;
}

/* Forks and execs. Returns the pid, or -1 with err (the child, if any,
 * is reaped). fds get the parent's ends: stdin, stdout, stderr. */
pid_t exec_spawn(const exec_plan *p, int fds[3], mr_err *err)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1}, report[2] = {-1, -1};
    int child_fds[3], msg[2];
    ssize_t got;
    pid_t pid;

    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(er, O_CLOEXEC) < 0
        || pipe2(report, O_CLOEXEC) < 0) {
        mr_err_set(err, "pipe: %s", strerror(errno));
        goto fail;
    }
    child_fds[0] = in[0];
    child_fds[1] = out[1];
    child_fds[2] = er[1];
    if ((pid = start_child(p, child_fds, report[1])) < 0) {
        mr_err_set(err, "cannot start a process: %s", strerror(errno));
        goto fail;
    }
    close(in[0]);
    close(out[1]);
    close(er[1]);
    close(report[1]);
    do
        got = read(report[0], msg, sizeof msg);
    while (got < 0 && errno == EINTR);
    close(report[0]);
    if (got == (ssize_t)sizeof msg) {
        waitpid(pid, NULL, 0);
        close(in[1]);
        close(out[0]);
        close(er[0]);
        return mr_err_set(err, "%s %s: %s", step_name(msg[0]),
                          msg[0] == STEP_DIRECTORY ? p->directory : p->run_path,
                          strerror(msg[1]));
    }
    fds[0] = in[1];
    fds[1] = out[0];
    fds[2] = er[0];
    return pid;
fail:
    close_pair(in);
    close_pair(out);
    close_pair(er);
    close_pair(report);
    return -1;
}
