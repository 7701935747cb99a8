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
 * What the command needs is computed by exec_plan.c, the process started
 * by exec_spawn.c; this file runs it: input written and output read on
 * the worker's event loop, SIGCHLD (via libevent) reaping children, the
 * timeout, the global limit, and the conclusion (effects.c for output).
 * When the command's process exits, whatever it left behind in its
 * process group is killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mailrobot/buf.h"
#include "mailrobot/clock.h"

#include "exec_plan.h"

#define PIPE_GRACE_MS 2000     /* output still open after the command exited */
#define STDERR_HEAD_CHARS 300  /* of stderr, in errors and events */

struct exec_state {
    struct event *sigchld;
    size_t running;
    job *waiting_head, *waiting_tail;   /* FIFO for exec_process_limit */
    struct exec_run *runs;
    int fd_limit;                        /* RLIMIT_NOFILE: fds a child closes */
};

/* What the child needs, all computed before fork(). */
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
        return (size_t)exec_limit_or(j->robot->exec.output_kb, cfg->exec_output_kb) << 10;
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
    exec_plan plan;
    int planned;
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
    mr_buf_init(&r->err, (size_t)exec_limit_or(j->robot->exec.output_kb, w->cfg->exec_output_kb)
                             << 10);
    planned = exec_plan_make(&plan, j, &err) == 0;
    plan.fd_limit = w->exec->fd_limit;
    if (!planned || exec_input(&plan.envelope, j->msg->payload, j->msg->len, &r->input, &err) < 0
        || (r->pid = exec_spawn(&plan, fds, &err)) < 0) {
        exec_plan_free(&plan);
        exec_run_free(r);
        snprintf(j->error, sizeof j->error, "robot '%s': %s", j->robot_name, err.msg);
        worker_log_job(j, MR_LOG_ERROR, "exec robot cannot run", err.msg);
        j->result = ATTEMPT_TEMPORARY;   /* an operator's mistake: defer, never bounce */
        job_attempt_finished(j);
        return;
    }
    exec_plan_free(&plan);
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
    struct rlimit own;

    w->exec = calloc(1, sizeof *w->exec);
    if (w->exec == NULL)
        return mr_err_set(err, "out of memory");
    w->exec->fd_limit = getrlimit(RLIMIT_NOFILE, &own) == 0 && own.rlim_cur < 65536
                            ? (int)own.rlim_cur : 65536;
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
