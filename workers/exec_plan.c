/*
 * exec_plan.c - what an exec robot's command needs, computed in the worker
 * before any process starts (exec_plan.h): the user and group (never
 * root), the working directory (created 0750 for the user), the rlimits,
 * argv and environment as local(8) would make them (exec_prepare.c), the
 * program found on PATH, and bubblewrap's command line when the robot is
 * sandboxed.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailrobot/clock.h"

#include "exec_plan.h"

extern char **environ;

int64_t exec_limit_or(int64_t robot, int64_t config)
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
    rlim_t cpu = (rlim_t)exec_limit_or(robot->exec.cpu_seconds, cfg->exec_cpu_seconds);
    rlim_t mb = (rlim_t)exec_limit_or(robot->exec.memory_mb, cfg->exec_memory_mb);
    rlim_t files = (rlim_t)exec_limit_or(robot->exec.files, cfg->exec_files);
    rlim_t procs = (rlim_t)exec_limit_or(robot->exec.processes, cfg->exec_processes);
    rlim_t fsize = (rlim_t)exec_limit_or(robot->exec.file_size_mb, cfg->exec_file_size_mb);

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
    p->run_argv = calloc(EXEC_BWRAP_ARGS + argc + 1, sizeof *p->run_argv);
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

void exec_plan_free(exec_plan *p)
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
    e->spam = j->spam_tagged ? "yes" : NULL;
    e->arrival_ms = rd_kafka_message_timestamp(j->msg, NULL);
    if (e->arrival_ms <= 0)
        e->arrival_ms = mr_wall_ms();
}

int exec_plan_make(exec_plan *p, const job *j, mr_err *err)
{
    const mr_robot *robot = j->robot;
    const mr_config *cfg = j->w->cfg;

    memset(p, 0, sizeof *p);
    envelope_of(j, &p->envelope);
    plan_limits(p, robot, cfg);
    if (plan_identity(p, robot, cfg, err) < 0 || plan_directory(p, robot, cfg, err) < 0)
        return -1;
    if ((p->argv = exec_argv(robot->exec.command, robot->exec.shell, err)) == NULL
        || (p->env = exec_environment(&p->envelope, p->directory, EXEC_SHELL,
                                      cfg->exec_export_environment, environ, err)) == NULL
        || plan_path(p, err) < 0)
        return -1;
    p->run_argv = p->argv;
    p->run_path = p->path;
    if (robot->exec.sandbox == MR_EXEC_SANDBOX_BWRAP)
        return plan_bwrap(p, robot, cfg, err);
    return 0;
}
