# shellcheck shell=bash
# deploy/local/lib.sh — helpers shared by the deploy/local service scripts
# (kafka, redis, postfix, install-deps). Sourced, never run. Expects the
# caller to run under `set -euo pipefail` and to set MR_NAME (the service
# name used in messages).

# mr_say MSG...: one line of progress on stderr (unless MR_QUIET=1).
mr_say() {
    [[ "${MR_QUIET:-0}" == 1 ]] || printf '%s: %s\n' "${MR_NAME:-mailrobot}" "$*" >&2
}

# mr_warn MSG...: a warning on stderr, printed even with MR_QUIET=1.
mr_warn() {
    printf '%s: warning: %s\n' "${MR_NAME:-mailrobot}" "$*" >&2
}

# mr_die MSG...: print an error and exit 1.
mr_die() {
    printf '%s: error: %s\n' "${MR_NAME:-mailrobot}" "$*" >&2
    exit 1
}

# mr_port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
mr_port_open() {
    # shellcheck disable=SC2016  # $1 is the inner bash's argument
    timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null
}

# mr_read_pid PIDFILE: print the pid recorded in PIDFILE (nothing if none).
mr_read_pid() {
    local pid=""
    if [[ -r "$1" ]]; then read -r pid <"$1" 2>/dev/null || true; fi
    if [[ "$pid" =~ ^[0-9]+$ ]]; then printf '%s\n' "$pid"; fi
    return 0
}

# mr_pid_matches PID PATTERN: true if process PID is alive (not a zombie) and
# its command line contains PATTERN — guards against a stale pid file whose
# pid was reused by an unrelated process.
mr_pid_matches() {
    local pid="$1" pattern="$2" state cmdline
    [[ -n "$pid" && -d "/proc/$pid" ]] || return 1
    state="$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" || return 1
    [[ "$state" != Z && -n "$state" ]] || return 1
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ "$cmdline" == *"$pattern"* ]]
}

# mr_tail_log FILE [N]: show the last N (30) lines of FILE on stderr.
mr_tail_log() {
    local file="$1" n="${2:-30}"
    if [[ -s "$file" ]]; then
        printf -- '----- last %s lines of %s -----\n' "$n" "$file" >&2
        tail -n "$n" "$file" >&2
        printf -- '----- end of %s -----\n' "$file" >&2
    else
        printf '(log %s is empty or missing)\n' "$file" >&2
    fi
}

# mr_wait_pid_exit PID TIMEOUT_SECONDS: wait for PID to exit; false on timeout.
mr_wait_pid_exit() {
    local pid="$1" deadline=$((SECONDS + $2))
    while kill -0 "$pid" 2>/dev/null; do
        # A zombie waiting to be reaped by its parent counts as gone, once
        # all its threads have exited (the leader of a multi-threaded
        # process, e.g. a JVM, shows Z while other threads still tear down).
        local tasks=("/proc/$pid/task"/*)
        if [[ "$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)" == Z ]] &&
            ((${#tasks[@]} <= 1)); then
            return 0
        fi
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
    return 0
}

# mr_stop_pid PID TIMEOUT LOG: SIGTERM PID, wait up to TIMEOUT seconds, then
# SIGKILL (and say so, naming LOG).
mr_stop_pid() {
    local pid="$1" t="$2" log="$3"
    kill -TERM "$pid" 2>/dev/null || return 0
    if ! mr_wait_pid_exit "$pid" "$t"; then
        mr_say "pid $pid did not exit ${t}s after SIGTERM; sending SIGKILL (log: $log)"
        kill -KILL "$pid" 2>/dev/null || true
        mr_wait_pid_exit "$pid" 10 || mr_die "pid $pid survived SIGKILL (log: $log)"
    fi
}

# mr_lock FILE: take an exclusive lock (fd 9) so two invocations for the same
# state dir do not race; waits at most 120 s. Children that outlive the
# script must be started with 9>&- so they do not keep the lock.
mr_lock() {
    exec 9>>"$1"
    flock -w 120 9 || mr_die "could not lock $1 within 120 s (another start/stop running?)"
}
