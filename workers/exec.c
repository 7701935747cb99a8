/*
 * exec.c - the exec robot (SPEC §7, docs/robots/exec.md): runs the
 * command of an /etc/aliases line for one message, the way Postfix's
 * local(8) would (exec_prepare.c computes argv, environment, standard
 * input and what the exit status means), but from the worker, behind the
 * queue, inside limits:
 *
 *   identity  an unprivileged user and group (never root), its own
 *             session and process group, umask 077
 *   directory <exec_directory>/<robot> (or the robot's), created 0750 for
 *             the user; the command's working directory and HOME
 *   limits    RLIMIT_CPU, _AS, _NOFILE, _NPROC, _FSIZE (robot, else the
 *             exec_* configuration), no core files; a wall-clock timeout
 *             that kills the whole process group
 *   output    stdout and stderr read as they come, kept up to a limit, the
 *             rest read and thrown away (counted, reported)
 *   at once   the robot's concurrency (ordering.c) and exec_process_limit
 *             for all robots of this worker (a FIFO here)
 *   bwrap     optionally inside bubblewrap: read-only system, private
 *             /tmp, only its own directory writable, no network unless
 *             the robot allows it
 *
 * Everything the child needs is prepared before it is started; until
 * execve() it calls only async-signal-safe functions and raw system calls.
 * It is started like posix_spawn() does it, with clone(CLONE_VM |
 * CLONE_VFORK) on its own small stack: no page tables of the (large,
 * threaded) worker are copied and torn down again (bench/exec measured
 * fork() adding 1.5 ms of CPU to every command); sanitizer builds use
 * fork(). A pipe with O_CLOEXEC tells the parent whether execve() worked. SIGCHLD (via
 * libevent) reaps children; when the command's process exits, whatever it
 * left behind in its process group is killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mailrobot/buf.h"
#include "mailrobot/clock.h"

#include "exec_prepare.h"
#include "worker.h"

extern char **environ;

#define PIPE_GRACE_MS 2000     /* output still open after the command exited */
#define STDERR_HEAD_CHARS 300  /* of stderr, in errors and events */
#define BWRAP_ARGS 40
#define CHILD_STACK (128 * 1024)

#if defined(__SANITIZE_ADDRESS__)
#define EXEC_USE_FORK 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define EXEC_USE_FORK 1
#endif
#endif

struct exec_state {
    struct event *sigchld;
    size_t running;
    job *waiting_head, *waiting_tail;   /* FIFO for exec_process_limit */
    struct exec_run *runs;
};

/* What the child needs, all computed before fork(). */
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
    int fd_limit;             /* the worker's RLIMIT_NOFILE: fds to close */
} exec_plan;

typedef struct exec_run {
    job *j;
    worker *w;
    pid_t pid;
    int in_fd, out_fd, err_fd;
    struct event *in_ev, *out_ev, *err_ev, *timer;
    mr_buf input;
    size_t input_off;
    mr_buf out, err;
    size_t out_dropped, err_dropped;
    int exited, wait_status, timed_out, grace;
    int64_t started_ms;
    struct exec_run *next;
} exec_run;

static void run_start(job *j);
static void run_maybe_finish(exec_run *r);

/* --- the child ------------------------------------------------------------------- */

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

/* --- preparing ------------------------------------------------------------------ */

static int64_t limit_or(int64_t robot, int64_t config)
{
    return robot > 0 ? robot : config;
}

static void set_limit(exec_plan *p, int i, int name, rlim_t soft, rlim_t hard)
{
    p->limit_names[i] = name;
    p->limits[i].rlim_cur = soft;
    p->limits[i].rlim_max = hard;
}

static void plan_limits(exec_plan *p, const mr_robot *robot, const mr_config *cfg)
{
    rlim_t cpu = (rlim_t)limit_or(robot->exec.cpu_seconds, cfg->exec_cpu_seconds);
    rlim_t mb = (rlim_t)limit_or(robot->exec.memory_mb, cfg->exec_memory_mb);
    rlim_t files = (rlim_t)limit_or(robot->exec.files, cfg->exec_files);
    rlim_t procs = (rlim_t)limit_or(robot->exec.processes, cfg->exec_processes);
    rlim_t fsize = (rlim_t)limit_or(robot->exec.file_size_mb, cfg->exec_file_size_mb);

    /* SIGXCPU at the soft limit, SIGKILL a second later. */
    set_limit(p, 0, RLIMIT_CPU, cpu, cpu + 1);
    set_limit(p, 1, RLIMIT_AS, mb << 20, mb << 20);
    set_limit(p, 2, RLIMIT_NOFILE, files, files);
    set_limit(p, 3, RLIMIT_NPROC, procs, procs);
    set_limit(p, 4, RLIMIT_FSIZE, fsize << 20, fsize << 20);
    set_limit(p, 5, RLIMIT_CORE, 0, 0);
}

/* The user and group the command runs as. */
static int plan_identity(exec_plan *p, const mr_robot *robot, const mr_config *cfg,
                         mr_err *err)
{
    const char *name = robot->exec.user ? robot->exec.user : cfg->exec_user;
    struct passwd *pw;

    if (geteuid() != 0) {
        if (robot->exec.user != NULL && strcmp(robot->exec.user, cfg->exec_user) != 0)
            return mr_err_set(err, "exec.user '%s': the worker is not root and cannot "
                              "switch users", robot->exec.user);
        p->uid = geteuid();
        p->gid = getegid();
        p->switch_user = 0;
        return 0;
    }
    errno = 0;
    if ((pw = getpwnam(name)) == NULL)
        return mr_err_set(err, "exec user '%s' does not exist", name);
    if (pw->pw_uid == 0)
        return mr_err_set(err, "exec user '%s' is root; robots never run as root", name);
    p->uid = pw->pw_uid;
    p->gid = pw->pw_gid;
    p->switch_user = 1;
    if (robot->exec.group != NULL) {
        struct group *gr = getgrnam(robot->exec.group);

        if (gr == NULL)
            return mr_err_set(err, "exec group '%s' does not exist", robot->exec.group);
        if (gr->gr_gid == 0)
            return mr_err_set(err, "exec group '%s' is root's group", robot->exec.group);
        p->gid = gr->gr_gid;
    }
    return 0;
}

/* mkdir -p of the parents (0755), the directory itself 0750 for the user. */
static int plan_directory(exec_plan *p, const mr_robot *robot, const mr_config *cfg,
                          mr_err *err)
{
    struct stat st;
    int n = robot->exec.directory
                ? snprintf(p->directory, sizeof p->directory, "%s", robot->exec.directory)
                : snprintf(p->directory, sizeof p->directory, "%s/%s", cfg->exec_directory,
                           robot->name);

    if (n < 0 || (size_t)n >= sizeof p->directory)
        return mr_err_set(err, "working directory name too long");
    if (stat(p->directory, &st) == 0)
        return S_ISDIR(st.st_mode) ? 0
                                   : mr_err_set(err, "working directory %s is not a directory",
                                                p->directory);
    for (char *slash = strchr(p->directory + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        if (mkdir(p->directory, 0755) < 0 && errno != EEXIST) {
            mr_err_set(err, "cannot create %s: %s", p->directory, strerror(errno));
            *slash = '/';
            return -1;
        }
        *slash = '/';
    }
    if (mkdir(p->directory, 0750) < 0 && errno != EEXIST)
        return mr_err_set(err, "cannot create working directory %s: %s", p->directory,
                          strerror(errno));
    if (p->switch_user && chown(p->directory, p->uid, p->gid) < 0)
        return mr_err_set(err, "cannot give working directory %s to uid %d: %s", p->directory,
                          (int)p->uid, strerror(errno));
    return 0;
}

/* argv[0] on PATH, as execvp would find it with the command's PATH. */
static int plan_path(exec_plan *p, mr_err *err)
{
    const char *name = p->argv[0];
    char dirs[] = EXEC_PATH;
    char *save = NULL;

    if (strchr(name, '/') != NULL) {
        snprintf(p->path, sizeof p->path, "%s", name);
        return 0;
    }
    for (char *dir = strtok_r(dirs, ":", &save); dir; dir = strtok_r(NULL, ":", &save)) {
        snprintf(p->path, sizeof p->path, "%s/%s", dir, name);
        if (access(p->path, X_OK) == 0)
            return 0;
    }
    return mr_err_set(err, "command '%s' not found on PATH %s", name, EXEC_PATH);
}

/* The bubblewrap command line around the command. */
static int plan_bwrap(exec_plan *p, const mr_robot *robot, const mr_config *cfg, mr_err *err)
{
    const char *fixed[] = {
        cfg->exec_bwrap, "--die-with-parent", "--unshare-all", "--ro-bind", "/", "/",
        "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/var/tmp",
        "--tmpfs", "/run", "--tmpfs", cfg->exec_directory,
    };
    size_t nfixed = sizeof fixed / sizeof fixed[0], n = 0, argc = 0;

    while (p->argv[argc])
        argc++;
    p->run_argv = calloc(BWRAP_ARGS + argc + 1, sizeof *p->run_argv);
    if (p->run_argv == NULL)
        return mr_err_set(err, "out of memory");
    for (size_t i = 0; i < nfixed; i++)
        p->run_argv[n++] = (char *)fixed[i];
    if (robot->exec.network)
        p->run_argv[n++] = "--share-net";
    p->run_argv[n++] = "--bind";
    p->run_argv[n++] = p->directory;
    p->run_argv[n++] = p->directory;
    p->run_argv[n++] = "--chdir";
    p->run_argv[n++] = p->directory;
    p->run_argv[n++] = "--";
    p->run_argv[n++] = p->path;
    for (size_t i = 1; i < argc; i++)
        p->run_argv[n++] = p->argv[i];
    p->run_path = cfg->exec_bwrap;
    if (access(cfg->exec_bwrap, X_OK) < 0)
        return mr_err_set(err, "sandbox bwrap: %s: %s (install bubblewrap or set exec_bwrap)",
                          cfg->exec_bwrap, strerror(errno));
    return 0;
}

static void plan_free(exec_plan *p)
{
    if (p->run_argv != p->argv)
        free(p->run_argv);
    free(p->argv);
    free(p->env);
}

static void envelope_of(const job *j, exec_envelope *e)
{
    memset(e, 0, sizeof *e);
    e->sender = j->sender;
    e->recipient = j->recipient;
    e->original_recipient = j->original_recipient;
    e->client_hostname = j->client_hostname;
    e->client_address = j->client_address;
    e->client_helo = j->helo;
    e->client_protocol = j->client_protocol;
    e->sasl_method = j->sasl_method;
    e->sasl_sender = j->sasl_sender;
    e->sasl_username = j->sasl_username;
    e->arrival_ms = rd_kafka_message_timestamp(j->msg, NULL);
    if (e->arrival_ms <= 0)
        e->arrival_ms = mr_wall_ms();
}

static int plan_make(exec_plan *p, const job *j, mr_err *err)
{
    const mr_robot *robot = j->robot;
    const mr_config *cfg = j->w->cfg;
    exec_envelope envelope;
    struct rlimit own;

    memset(p, 0, sizeof *p);
    envelope_of(j, &envelope);
    plan_limits(p, robot, cfg);
    p->fd_limit = getrlimit(RLIMIT_NOFILE, &own) == 0 && own.rlim_cur < 65536
                      ? (int)own.rlim_cur : 65536;
    if (plan_identity(p, robot, cfg, err) < 0 || plan_directory(p, robot, cfg, err) < 0)
        return -1;
    if ((p->argv = exec_argv(robot->exec.command, robot->exec.shell, err)) == NULL
        || (p->env = exec_environment(&envelope, p->directory, EXEC_SHELL,
                                      cfg->exec_export_environment, environ, err)) == NULL
        || plan_path(p, err) < 0)
        return -1;
    p->run_argv = p->argv;
    p->run_path = p->path;
    if (robot->exec.sandbox == MR_EXEC_SANDBOX_BWRAP)
        return plan_bwrap(p, robot, cfg, err);
    return 0;
}

/* --- starting ------------------------------------------------------------------- */

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
static pid_t spawn(const exec_plan *p, int fds[3], mr_err *err)
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

/* --- the running command ----------------------------------------------------------- */

static void close_event(struct event **ev, int *fd)
{
    if (*ev) {
        event_free(*ev);
        *ev = NULL;
    }
    if (*fd >= 0) {
        close(*fd);
        *fd = -1;
    }
}

static void on_input_writable(evutil_socket_t fd, short what, void *arg)
{
    exec_run *r = arg;

    while (r->input_off < r->input.len) {
        ssize_t n = write(fd, r->input.data + r->input_off, r->input.len - r->input_off);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n < 0)
            break;   /* EPIPE: the command does not read all of it, as it may */
        r->input_off += (size_t)n;
    }
    close_event(&r->in_ev, &r->in_fd);
}

/* Reads what is there; keeps it up to the buffer's limit, counts the rest. */
static int drain(int fd, mr_buf *keep, size_t *dropped)
{
    unsigned char chunk[65536];

    for (;;) {
        ssize_t n = read(fd, chunk, sizeof chunk);
        size_t room, take;

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return 0;
        if (n <= 0)
            return 1;   /* end of file (or an error: the same for us) */
        room = keep->limit - keep->len;
        take = (size_t)n < room ? (size_t)n : room;
        if (take > 0 && mr_buf_append(keep, chunk, take, NULL) < 0)
            take = 0;
        *dropped += (size_t)n - take;
    }
}

static void on_stdout(evutil_socket_t fd, short what, void *arg)
{
    exec_run *r = arg;

    if (drain(fd, &r->out, &r->out_dropped)) {
        close_event(&r->out_ev, &r->out_fd);
        run_maybe_finish(r);
    }
}

static void on_stderr(evutil_socket_t fd, short what, void *arg)
{
    exec_run *r = arg;

    if (drain(fd, &r->err, &r->err_dropped)) {
        close_event(&r->err_ev, &r->err_fd);
        run_maybe_finish(r);
    }
}

static void kill_group(exec_run *r)
{
    if (r->pid > 0)
        kill(-r->pid, SIGKILL);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    exec_run *r = arg;

    if (!r->exited) {
        r->timed_out = 1;
        kill_group(r);
        kill(r->pid, SIGKILL);
        return;   /* SIGCHLD comes next */
    }
    /* The command exited but something holds its output open: stop reading. */
    r->grace = 1;
    close_event(&r->out_ev, &r->out_fd);
    close_event(&r->err_ev, &r->err_fd);
    run_maybe_finish(r);
}

static void exec_run_free(exec_run *r)
{
    exec_state *s = r->w->exec;

    for (exec_run **link = &s->runs; *link; link = &(*link)->next)
        if (*link == r) {
            *link = r->next;
            break;
        }
    if (!r->exited && r->pid > 0) {
        /* Abandoned (worker shutting down): no one waits for it but init. */
        kill_group(r);
        kill(r->pid, SIGKILL);
        waitpid(r->pid, NULL, 0);
    }
    close_event(&r->in_ev, &r->in_fd);
    close_event(&r->out_ev, &r->out_fd);
    close_event(&r->err_ev, &r->err_fd);
    if (r->timer)
        event_free(r->timer);
    mr_buf_free(&r->input);
    mr_buf_free(&r->out);
    mr_buf_free(&r->err);
    free(r);
}

static struct event *watch(exec_run *r, int fd, short what, event_callback_fn fn)
{
    struct event *ev;

    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    ev = event_new(r->w->base, fd, what | EV_PERSIST, fn, r);
    if (ev != NULL)
        event_add(ev, NULL);
    return ev;
}

static size_t stdout_limit(const job *j)
{
    const mr_config *cfg = j->w->cfg;

    if (j->robot->exec.output == MR_EXEC_OUTPUT_IGNORE)
        return (size_t)limit_or(j->robot->exec.output_kb, cfg->exec_output_kb) << 10;
    return (size_t)cfg->max_message_bytes;
}

/* --- finishing -------------------------------------------------------------------- */

/* The first lines of stderr, printable, for errors and events. */
static void stderr_head(const mr_buf *err, char *out, size_t outsz)
{
    size_t n = 0;

    for (size_t i = 0; i < err->len && n + 1 < outsz && n < STDERR_HEAD_CHARS; i++) {
        unsigned char c = err->data[i];

        if (c == '\n' && i + 1 == err->len)
            break;
        out[n++] = c == '\n' ? '|' : (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[n] = '\0';
}

static void set_error(job *j, const char *what, const char *stderr_text)
{
    if (stderr_text[0])
        snprintf(j->error, sizeof j->error, "%s; stderr: %s", what, stderr_text);
    else
        snprintf(j->error, sizeof j->error, "%s", what);
}

static void report_output(exec_run *r)
{
    job *j = r->j;
    char out[32], err[32];

    if (r->out_dropped == 0 && r->err_dropped == 0)
        return;
    snprintf(out, sizeof out, "%zu", r->out_dropped);
    snprintf(err, sizeof err, "%zu", r->err_dropped);
    mr_log(j->w->log, MR_LOG_WARN, "exec robot output truncated", "id", j->id, "robot",
           j->robot_name, "stdout_dropped_bytes", out, "stderr_dropped_bytes", err, NULL);
    j->exec_stdout_dropped = r->out_dropped;
    j->exec_stderr_dropped = r->err_dropped;
}

/* The command is done: what it means, then its output's effects. */
static void run_conclude(exec_run *r)
{
    job *j = r->j;
    char status[128], head[STDERR_HEAD_CHARS + 1];
    exec_verdict verdict = exec_classify(r->wait_status, status, sizeof status);

    stderr_head(&r->err, head, sizeof head);
    snprintf(j->exec_stderr, sizeof j->exec_stderr, "%s", head);
    j->exec_wait_status = r->wait_status;
    j->exec_ran = 1;
    report_output(r);
    if (r->timed_out) {
        char what[160];

        snprintf(what, sizeof what, "timed out after %lld ms; process group killed",
                 (long long)(mr_monotonic_ms() - r->started_ms));
        set_error(j, what, head);
        verdict = EXEC_LATER;
    } else if (verdict != EXEC_DONE) {
        set_error(j, status, head);
    }
    if (verdict != EXEC_DONE) {
        j->result = verdict == EXEC_LATER ? ATTEMPT_TEMPORARY : ATTEMPT_PERMANENT;
        job_attempt_finished(j);
        return;
    }
    if (j->robot->exec.output != MR_EXEC_OUTPUT_IGNORE && r->out_dropped > 0) {
        snprintf(j->error, sizeof j->error, "output: more than %zu bytes on stdout",
                 r->out.limit);
        j->result = ATTEMPT_PERMANENT;
        job_attempt_finished(j);
        return;
    }
    switch (j->robot->exec.output) {
    case MR_EXEC_OUTPUT_REPLY:
        effects_run_reply(j, r->out.data ? r->out.data : (unsigned char *)"", r->out.len);
        return;
    case MR_EXEC_OUTPUT_ACTIONS:
        effects_run_actions(j, r->out.data ? r->out.data : (unsigned char *)"", r->out.len);
        return;
    case MR_EXEC_OUTPUT_IGNORE:
        j->result = ATTEMPT_DONE;
        job_attempt_finished(j);
        return;
    }
}

static void start_waiting(worker *w)
{
    exec_state *s = w->exec;

    while (s->waiting_head && s->running < (size_t)w->cfg->exec_process_limit) {
        job *j = s->waiting_head;

        s->waiting_head = j->next_exec_waiter;
        if (s->waiting_head == NULL)
            s->waiting_tail = NULL;
        j->next_exec_waiter = NULL;
        run_start(j);
    }
}

static void run_maybe_finish(exec_run *r)
{
    worker *w = r->w;
    job *j = r->j;

    if (!r->exited || r->out_fd >= 0 || r->err_fd >= 0)
        return;
    j->exec = NULL;
    /* Keep the output until the conclusion is drawn, then free the run. */
    w->exec->running--;
    run_conclude(r);
    exec_run_free(r);
    start_waiting(w);
}

static void on_exited(exec_run *r, int status)
{
    struct timeval grace = {PIPE_GRACE_MS / 1000, (PIPE_GRACE_MS % 1000) * 1000};

    r->exited = 1;
    r->wait_status = status;
    kill_group(r);   /* what it left behind */
    if (r->out_fd >= 0 || r->err_fd >= 0) {
        /* Read what is left; give up after a grace period. */
        evtimer_del(r->timer);
        evtimer_add(r->timer, &grace);
    }
    run_maybe_finish(r);
}

static void on_sigchld(evutil_socket_t sig, short what, void *arg)
{
    worker *w = arg;
    int status;
    pid_t pid;

    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (exec_run *r = w->exec->runs; r; r = r->next)
            if (r->pid == pid) {
                on_exited(r, status);
                break;
            }
    }
}

static int run_io(exec_run *r, const int fds[3], int64_t timeout_ms, mr_err *err)
{
    struct timeval tv = {(time_t)(timeout_ms / 1000), (suseconds_t)(timeout_ms % 1000) * 1000};

    r->in_fd = fds[0];
    r->out_fd = fds[1];
    r->err_fd = fds[2];
    r->in_ev = watch(r, r->in_fd, EV_WRITE, on_input_writable);
    r->out_ev = watch(r, r->out_fd, EV_READ, on_stdout);
    r->err_ev = watch(r, r->err_fd, EV_READ, on_stderr);
    r->timer = evtimer_new(r->w->base, on_timer, r);
    if (r->in_ev == NULL || r->out_ev == NULL || r->err_ev == NULL || r->timer == NULL)
        return mr_err_set(err, "out of memory");
    evtimer_add(r->timer, &tv);
    return 0;
}

static void run_start(job *j)
{
    worker *w = j->w;
    exec_run *r = calloc(1, sizeof *r);
    exec_envelope envelope;
    exec_plan plan;
    int fds[3] = {-1, -1, -1};
    mr_err err;

    if (r == NULL) {
        snprintf(j->error, sizeof j->error, "out of memory");
        j->result = ATTEMPT_TEMPORARY;
        job_attempt_finished(j);
        return;
    }
    r->j = j;
    r->w = w;
    r->in_fd = r->out_fd = r->err_fd = -1;
    mr_buf_init(&r->input, (size_t)w->cfg->max_message_bytes + 4096);
    mr_buf_init(&r->out, stdout_limit(j));
    mr_buf_init(&r->err, (size_t)limit_or(j->robot->exec.output_kb, w->cfg->exec_output_kb)
                             << 10);
    envelope_of(j, &envelope);
    if (plan_make(&plan, j, &err) < 0
        || exec_input(&envelope, j->msg->payload, j->msg->len, &r->input, &err) < 0
        || (r->pid = spawn(&plan, fds, &err)) < 0) {
        plan_free(&plan);
        exec_run_free(r);
        snprintf(j->error, sizeof j->error, "robot '%s': %s", j->robot_name, err.msg);
        worker_log_job(j, MR_LOG_ERROR, "exec robot cannot run", err.msg);
        j->result = ATTEMPT_TEMPORARY;   /* an operator's mistake: defer, never bounce */
        job_attempt_finished(j);
        return;
    }
    plan_free(&plan);
    r->started_ms = mr_monotonic_ms();
    r->next = w->exec->runs;
    w->exec->runs = r;
    w->exec->running++;
    j->exec = r;
    if (run_io(r, fds, j->robot->timeout_ms > 0 ? j->robot->timeout_ms
                                                : w->cfg->exec_time_limit, &err) < 0) {
        r->timed_out = 1;   /* cannot watch it: kill it, and retry */
        kill_group(r);
    }
}

/* --- the interface ----------------------------------------------------------------- */

void exec_deliver(job *j)
{
    exec_state *s = j->w->exec;

    j->exec_ran = 0;
    j->exec_stderr[0] = '\0';
    j->exec_stdout_dropped = j->exec_stderr_dropped = 0;
    if (s->running < (size_t)j->w->cfg->exec_process_limit && s->waiting_head == NULL) {
        run_start(j);
        return;
    }
    j->next_exec_waiter = NULL;
    if (s->waiting_tail)
        s->waiting_tail->next_exec_waiter = j;
    else
        s->waiting_head = j;
    s->waiting_tail = j;
}

/* A job freed while its command runs or waits (the worker stops). */
void exec_abandon(job *j)
{
    exec_state *s = j->w->exec;

    if (s == NULL)
        return;
    if (j->exec != NULL) {
        s->running--;
        exec_run_free(j->exec);
        j->exec = NULL;
    }
    for (job **link = &s->waiting_head, *prev = NULL; *link;
         prev = *link, link = &(*link)->next_exec_waiter)
        if (*link == j) {
            *link = j->next_exec_waiter;
            if (s->waiting_tail == j)
                s->waiting_tail = prev;
            break;
        }
}

int exec_init(worker *w, mr_err *err)
{
    w->exec = calloc(1, sizeof *w->exec);
    if (w->exec == NULL)
        return mr_err_set(err, "out of memory");
    w->exec->sigchld = evsignal_new(w->base, SIGCHLD, on_sigchld, w);
    if (w->exec->sigchld == NULL || event_add(w->exec->sigchld, NULL) < 0)
        return mr_err_set(err, "cannot watch SIGCHLD");
    return 0;
}

void exec_free(worker *w)
{
    if (w->exec == NULL)
        return;
    if (w->exec->sigchld)
        event_free(w->exec->sigchld);
    free(w->exec);
    w->exec = NULL;
}
