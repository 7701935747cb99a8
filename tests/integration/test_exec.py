"""Exec robots (SPEC §7, docs/robots/exec.md) against a real worker, Kafka
and Redis: the command's identity, environment, directory and limits as
the command itself sees them; the process group killed on timeout; output
bounded; concurrency limits; what exit statuses mean; the output modes
"reply" and "actions" and where their mail goes; bubblewrap."""

import grp
import json
import pwd
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from exec_harness import (DOMAIN, EXEC_USER, events, exec_stack, outdir, recorded, records_of,
                          send)


@pytest.fixture(scope="module")
def env(kafka):
    yield from exec_stack(kafka, exec_process_limit="3", worker_robot_backlog="2",
                          worker_robot_wait_limit="100ms")


# --- identity, environment, directory, limits ----------------------------------------------


def test_command_runs_as_the_robot_user_with_a_clean_environment(env):
    out = outdir(env, "identity")
    rcpt = env.robots.add("identity", f"{env.bin}/recorder.py {out} second-arg")
    mr_id, msg = send(env, rcpt.replace("@", "+tag@"), extra_args=[
        "-c", "192.0.2.7", "-h", "client.example.org", "-p", "ESMTP", "-o",
        rcpt.replace("@", "+tag@")])
    [rec] = recorded(out)
    user = pwd.getpwnam(EXEC_USER)
    assert (rec["uid"], rec["gid"], rec["groups"]) == (user.pw_uid, user.pw_gid, [user.pw_gid])
    assert rec["argv"] == [f"{env.bin}/recorder.py", str(out), "second-arg"]
    assert rec["cwd"] == str(env.robots_dir / "identity")
    assert rec["umask"] == 0o077
    assert rec["sid_is_pid"] and rec["pgid_is_pid"]
    e = rec["env"]
    assert set(e) == {"HOME", "SHELL", "PATH", "LANG", "LOGNAME", "USER", "SENDER", "RECIPIENT",
                      "LOCAL", "DOMAIN", "EXTENSION", "ORIGINAL_RECIPIENT", "CLIENT_ADDRESS",
                      "CLIENT_HELO", "CLIENT_PROTOCOL"}, e
    assert (e["CLIENT_ADDRESS"], e["CLIENT_HELO"]) == ("192.0.2.7", "client.example.org")
    assert e["RECIPIENT"] == f"identity+tag@{DOMAIN}" and e["EXTENSION"] == "tag"
    assert e["LOCAL"] == "identity+tag" and e["USER"] == e["LOGNAME"] == "identity"
    assert e["HOME"] == rec["cwd"] and e["PATH"] == "/usr/bin:/bin"
    assert e["SENDER"] == "alice@example.org"
    # local(8)'s framing, then the message exactly.
    lines = rec["stdin"].split(b"\n", 4)
    assert lines[0].startswith(b"From alice@example.org  ")
    assert lines[1:4] == [b"Return-Path: <alice@example.org>",
                          f"X-Original-To: identity+tag@{DOMAIN}".encode(),
                          f"Delivered-To: identity+tag@{DOMAIN}".encode()]
    assert lines[4] == msg
    work = env.robots_dir / "identity"
    assert work.stat().st_uid == user.pw_uid and (work.stat().st_mode & 0o777) == 0o750
    types = [ev["type"] for ev in events(env, mr_id, "delivered")]
    assert types[-1] == "delivered"


def test_robot_user_and_group_override_the_default(env):
    # Another unprivileged user and another group than exec_user's own.
    out = outdir(env, "otheruser")
    rcpt = env.robots.add("otheruser", f"{env.bin}/recorder.py {out}",
                          exec={"user": "mailrobot", "group": EXEC_USER})
    send(env, rcpt)
    [rec] = recorded(out)
    assert rec["uid"] == pwd.getpwnam("mailrobot").pw_uid
    assert rec["gid"] == grp.getgrnam(EXEC_USER).gr_gid
    assert rec["groups"] == [grp.getgrnam(EXEC_USER).gr_gid]
    work = env.robots_dir / "otheruser"
    assert (work.stat().st_uid, work.stat().st_gid) == (rec["uid"], rec["gid"])


def test_root_is_refused(env):
    rcpt = env.robots.add("asroot", "true", exec={"user": "root"})
    mr_id, _ = send(env, rcpt)
    retried = next(e for e in events(env, mr_id, "retried") if e["type"] == "retried")
    assert "robots never run as root" in retried["error"]


def test_every_limit_reaches_the_command(env):
    out = outdir(env, "limits")
    rcpt = env.robots.add("limits", f"{env.bin}/recorder.py {out}", exec={"limits": {
        "cpu_seconds": 7, "memory_mb": 300, "files": 40, "processes": 30, "file_size_mb": 5}})
    send(env, rcpt)
    [rec] = recorded(out)
    mib = 1 << 20
    assert rec["limits"] == {"RLIMIT_CPU": [7, 8], "RLIMIT_AS": [300 * mib, 300 * mib],
                             "RLIMIT_NOFILE": [40, 40], "RLIMIT_NPROC": [30, 30],
                             "RLIMIT_FSIZE": [5 * mib, 5 * mib], "RLIMIT_CORE": [0, 0]}


def test_configured_defaults_apply_without_robot_limits(env):
    out = outdir(env, "deflimits")
    rcpt = env.robots.add("deflimits", f"{env.bin}/recorder.py {out}")
    send(env, rcpt)
    [rec] = recorded(out)
    # The defaults of docs/configuration.md: exec_cpu_seconds 60, exec_memory_mb 512, ...
    assert rec["limits"]["RLIMIT_CPU"] == [60, 61]
    assert rec["limits"]["RLIMIT_AS"] == [512 << 20, 512 << 20]
    assert rec["limits"]["RLIMIT_NOFILE"] == [256, 256]


@pytest.mark.parametrize("name,command,limits,signal_number", [
    ("cpuhog", "while :; do :; done", {"cpu_seconds": 1}, 24),           # SIGXCPU
    ("bigfile", "exec head -c 3000000 /dev/zero > big", {"file_size_mb": 1}, 25),  # SIGXFSZ
])
def test_resource_kill_is_retried(env, name, command, limits, signal_number):
    rcpt = env.robots.add(name, command, exec={"limits": limits})
    mr_id, _ = send(env, rcpt)
    evs = events(env, mr_id, "retried")
    retried = next(e for e in evs if e["type"] == "retried")
    assert retried["signal"] == signal_number, retried
    assert f"killed by signal {signal_number}" in retried["error"]


def test_memory_and_files_limits_hold(env):
    rcpt = env.robots.add("memfiles", f"{env.bin}/hog.py",
                          exec={"limits": {"memory_mb": 100, "files": 20}})
    mr_id, _ = send(env, rcpt)
    events(env, mr_id, "delivered")
    report = (env.robots_dir / "memfiles" / "report").read_text().split("\n")
    assert report[0] == "no memory"
    assert report[1] == "highest fd 19"


def test_processes_limit_holds(env):
    rcpt = env.robots.add("forker", f"{env.bin}/forker.py", exec={"limits": {"processes": 5}})
    mr_id, _ = send(env, rcpt)
    events(env, mr_id, "delivered")
    report = (env.robots_dir / "forker" / "report").read_text()
    forked = int(report.split()[1])
    # The script itself is one of the user's 5 processes.
    assert 0 < forked <= 4, report


# --- timeouts, output, exit statuses -----------------------------------------------------


def test_timeout_kills_the_whole_process_group(env):
    rcpt = env.robots.add("sleeper", "sleep 600 & echo $! > child; exec sleep 600",
                          timeout="1s")
    mr_id, _ = send(env, rcpt)
    evs = events(env, mr_id, "retried")
    retried = next(e for e in evs if e["type"] == "retried")
    assert "timed out" in retried["error"] and retried["signal"] == 9
    child = int((env.robots_dir / "sleeper" / "child").read_text())
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{child}").exists(), "the grandchild survived the timeout"


def worker_peak_rss_kib(env):
    for line in Path(f"/proc/{env.worker.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_gigabytes_of_output_are_read_bounded_and_reported(env):
    size = 3 * 1000 ** 3
    before = worker_peak_rss_kib(env)
    rcpt = env.robots.add("spew", f"head -c {size} /dev/zero; head -c {size} /dev/zero >&2",
                          exec={"limits": {"output_kb": 64}}, timeout="120s")
    mr_id, _ = send(env, rcpt)
    evs = events(env, mr_id, "delivered", timeout=180)
    done = next(e for e in evs if e["type"] == "delivered")
    assert done["stdout_dropped_bytes"] == size - 64 * 1024
    assert done["stderr_dropped_bytes"] == size - 64 * 1024
    # 6 GB went through the worker; its peak memory barely moved.
    assert worker_peak_rss_kib(env) - before < 64 * 1024
    assert b"exec robot output truncated" in Path(env.worker.log_path).read_bytes()


def test_a_command_that_does_not_read_its_input_is_fine(env):
    # 2 MB of message, a command that exits without reading it: the worker
    # gets EPIPE (not SIGPIPE), and exit status 0 means delivered, as with
    # local(8).
    rcpt = env.robots.add("deaf", "true")
    mr_id, _ = send(env, rcpt, body=("y" * 76 + "\n") * 27000)
    evs = events(env, mr_id, "delivered")
    assert [e["type"] for e in evs][-1] == "delivered"
    assert env.worker.poll() is None


def test_exit_75_is_retried_and_then_delivered(env):
    # Fails the first time (no marker file yet), succeeds the second.
    rcpt = env.robots.add("flaky", "if [ -e tried ]; then exit 0; fi; touch tried; "
                                   "echo 'database busy' >&2; exit 75")
    mr_id, _ = send(env, rcpt)
    evs = events(env, mr_id, "delivered")
    types = [e["type"] for e in evs]
    assert types.count("retried") == 1 and types[-1] == "delivered", types
    retried = next(e for e in evs if e["type"] == "retried")
    assert retried["exit_status"] == 75 and retried["stderr"] == "database busy"
    [rec] = records_of(env, "mailrobot.retry.1s", mr_id)
    assert rec.h("mr.exit_status") == "exit 75"
    assert "exit status 75 (temporary failure)" in rec.h("mr.error")


def test_other_exit_status_dead_letters_with_status_and_stderr(env):
    rcpt = env.robots.add("picky", "echo 'line 1: no ticket number' >&2; "
                                   "echo 'giving up' >&2; exit 65")
    mr_id, msg = send(env, rcpt)
    evs = events(env, mr_id, "dead")
    dead = next(e for e in evs if e["type"] == "dead")
    assert dead["exit_status"] == 65 and dead["error_kind"] == "permanent"
    assert dead["stderr"] == "line 1: no ticket number|giving up"
    [rec] = records_of(env, "mailrobot.dead", mr_id)
    assert rec.value == msg
    assert rec.h("mr.exit_status") == "exit 65"
    assert rec.h("mr.stderr") == "line 1: no ticket number|giving up"
    assert rec.h("mr.error") == ("exit status 65 (data format error); stderr: "
                                 "line 1: no ticket number|giving up")


def test_operator_mistakes_defer_never_bounce(env):
    rcpt = env.robots.add("missing", "/nonexistent/robot.py --flag")
    mr_id, _ = send(env, rcpt)
    retried = next(e for e in events(env, mr_id, "retried") if e["type"] == "retried")
    assert "cannot execute /nonexistent/robot.py: No such file or directory" in retried["error"]
    rcpt = env.robots.add("nouser", "true", exec={"user": "no-such-user-here"})
    mr_id, _ = send(env, rcpt)
    retried = next(e for e in events(env, mr_id, "retried") if e["type"] == "retried")
    assert "exec user 'no-such-user-here' does not exist" in retried["error"]


# --- concurrency -------------------------------------------------------------------------


def overlap(log_path):
    """Most commands running at once, from 'start|end <ns>' lines."""
    marks = []
    for line in Path(log_path).read_text().split():
        kind, at = line.split("|")
        marks.append((int(at), 1 if kind == "start" else -1))
    running = peak = 0
    for _, step in sorted(marks, key=lambda m: (m[0], m[1])):
        running += step
        peak = max(peak, running)
    return peak


def test_robot_and_global_concurrency_limits(env):
    out = outdir(env, "conc")
    log = out / "log"
    log.touch()
    log.chmod(0o666)
    body = f"echo start\\|$(date +%s%N) >> {log}; sleep 2; echo end\\|$(date +%s%N) >> {log}"
    a = env.robots.add("conc-a", body, concurrency=2, ordered=False)
    b = env.robots.add("conc-b", body, concurrency=3, ordered=False)
    ids = [send(env, a)[0] for _ in range(5)] + [send(env, b)[0] for _ in range(5)]
    for mr_id in ids:
        events(env, mr_id, "delivered")
    lines = log.read_text().split()
    assert len(lines) == 20
    # Together at most exec_process_limit = 3, though the robots allow 5.
    assert overlap(log) == 3
    a_log = out / "a"
    a_log.write_text("")  # conc-a alone: at most its concurrency, 2
    a_log.chmod(0o666)
    env.robots.add("conc-a", body.replace(str(log), str(a_log)), concurrency=2, ordered=False)
    ids = [send(env, a)[0] for _ in range(5)]
    for mr_id in ids:
        events(env, mr_id, "delivered")
    assert overlap(a_log) == 2


def test_a_slow_robot_does_not_stall_other_robots(env):
    slow = env.robots.add("slowpoke", "sleep 3", concurrency=1, ordered=False)
    out = outdir(env, "fast")
    fast = env.robots.add("quick", f"{env.bin}/recorder.py {out}")
    slow_ids = [send(env, slow)[0] for _ in range(5)]
    fast_id, _ = send(env, fast)
    events(env, fast_id, "delivered")
    # The fast robot's mail was delivered while the slow robot still had
    # most of its messages: one runs, two wait (worker_robot_backlog = 2,
    # and they wait longer than worker_robot_wait_limit = 100ms), the others
    # were postponed to the retry topic rather than held.
    done = [any(e["type"] == "delivered" for e in events(env, i, "received")) for i in slow_ids]
    assert done.count(False) >= 3, done
    postponed = [e for i in slow_ids for e in events(env, i, "received")
                 if e["type"] == "postponed"]
    assert postponed and all(e["attempt"] == 0 for e in postponed), postponed
    assert "worker_robot_backlog" in postponed[0]["error"]
    for mr_id in slow_ids:
        evs = events(env, mr_id, "delivered", timeout=90)
        assert not any(e["type"] in ("retried", "dead") for e in evs)
    # A postponed record is not a failed attempt.
    rec = next(r for i in slow_ids for r in records_of(env, "mailrobot.retry.1s", i,
                                                       expect=None, timeout=10))
    assert rec.h("mr.error_kind") == "postponed" and rec.h("mr.attempt") == "0"


# --- output modes ------------------------------------------------------------------------


def test_reply_output_goes_to_the_outbound_topic(env):
    script = ("printf 'From: Auto Filer <filer@exec.example.test>\\nSubject: Filed\\n\\n"
              "Your message was filed.\\n'")
    rcpt = env.robots.add("filer", script, exec={"output": "reply"})
    mr_id, msg = send(env, rcpt, subject="Invoice 42", sender="bob@example.org")
    events(env, mr_id, "delivered")
    [out] = records_of(env, "mailrobot.outbound", mr_id)
    assert out.h("mr.kind") == "reply" and out.h("mr.robot") == "filer"
    assert out.h("mr.rcpt_to") == "bob@example.org"
    assert len(out.key) == 32 and out.h("mr.effect_id") == out.key.decode()
    assert b"\n" not in out.value.replace(b"\r\n", b"")
    reply = BytesParser(policy=policy.default).parsebytes(out.value)
    original = BytesParser(policy=policy.default).parsebytes(msg)
    assert reply["In-Reply-To"] == original["Message-ID"]
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["To"] is not None and "bob@example.org" in reply["To"]
    assert reply.get_content().strip() == "Your message was filed."


def test_no_reply_to_a_bounce_or_a_list(env):
    # RFC 3834: the robot's reply is not sent, and that is no failure.
    script = "printf 'Subject: Filed\\n\\nFiled.\\n'"
    rcpt = env.robots.add("politefiler", script, exec={"output": "reply"})
    acts = env.robots.add("politeacts", "printf '%s' '{\"actions\": [{\"type\": \"reply\", "
                                        "\"text\": \"x\"}, {\"type\": \"set_state\", "
                                        "\"key\": \"seen\", \"value\": \"1\"}]}'",
                          exec={"output": "actions"})
    bounce, _ = send(env, rcpt, sender="")
    listmail, _ = send(env, acts, headers="List-Id: <news.example.org>\n")
    for mr_id in (bounce, listmail):
        assert [e["type"] for e in events(env, mr_id, "delivered")][-1] == "delivered"
        assert not records_of(env, "mailrobot.outbound", mr_id, expect=None, timeout=20)
    assert env.redis.get("mailrobot:state:politeacts:seen") == b"1"
    assert b"no reply (RFC 3834)" in Path(env.worker.log_path).read_bytes()


@pytest.mark.parametrize("output", ["reply", "actions"])
def test_silence_means_nothing_to_do(env, output):
    rcpt = env.robots.add(f"silent-{output}", "echo", exec={"output": output})
    mr_id, _ = send(env, rcpt)
    assert [e["type"] for e in events(env, mr_id, "delivered")][-1] == "delivered"
    assert not records_of(env, "mailrobot.outbound", mr_id, expect=None, timeout=20)


def test_actions_output_send_state_and_webhook(env):
    rx = env.receiver
    actions = {"actions": [
        {"type": "send", "to": ["ops@example.net"], "subject": "New ticket",
         "text": "A ticket was opened.\n"},
        {"type": "set_state", "key": "last-ticket", "value": "T-1001"},
        {"type": "webhook", "url": rx.url("/ok"), "body": {"ticket": "T-1001"}},
    ]}
    script = f"printf '%s' '{json.dumps(actions)}'"
    rcpt = env.robots.add("ticketer", script, exec={"output": "actions"})
    mr_id, _ = send(env, rcpt)
    events(env, mr_id, "delivered")
    [out] = records_of(env, "mailrobot.outbound", mr_id)
    assert out.h("mr.kind") == "send" and out.h("mr.rcpt_to") == "ops@example.net"
    sent = BytesParser(policy=policy.default).parsebytes(out.value)
    assert sent["Subject"] == "New ticket"
    assert env.redis.get("mailrobot:state:ticketer:last-ticket") == b"T-1001"
    [req] = rx.wait_for(1, "/ok", where=lambda r: b"T-1001" in r["body"])
    assert json.loads(req["body"]) == {"ticket": "T-1001"}
    assert len(req["headers"]["Mailrobot-Effect-Id"]) == 32


@pytest.mark.parametrize("name,output,fate,needle", [
    ("badjson", "{not json", "dead", "output: invalid actions"),
    ("badfield", '{"actions": [{"type": "send", "to": ["nobody"]}]}', "dead", "/actions/0"),
    ("deferrer", '{"actions": [{"type": "defer", "reason": "CRM down"}]}', "retried",
     "robot asked to defer: CRM down"),
    ("rejecter", '{"actions": [{"type": "reject", "reason": "spam"}]}', "dead",
     "robot asked to reject: spam"),
])
def test_actions_fates_and_invalid_output(env, name, output, fate, needle):
    rcpt = env.robots.add(name, f"printf '%s' '{output}'", exec={"output": "actions"})
    mr_id, _ = send(env, rcpt)
    last = next(e for e in events(env, mr_id, fate) if e["type"] == fate)
    assert needle in last["error"], last
    assert not records_of(env, "mailrobot.outbound", mr_id, expect=None, timeout=20)


# --- bubblewrap --------------------------------------------------------------------------


def test_bwrap_sandbox(env):
    if not Path("/usr/bin/bwrap").exists():
        pytest.fail("bubblewrap is not installed (deploy/local/install-deps installs it)")
    port = int(env.env["MR_REDIS_PORT"])
    probe = (f"touch /usr/mailrobot-probe 2>/dev/null && echo usr-writable >> report; "
             f"echo secret > /tmp/probe && echo tmp-ok >> report; "
             f"ls {env.robots_dir} >> report; "
             f"(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo net-ok >> report; "
             f"echo done >> report")
    boxed = env.robots.add("boxed", f"bash -c '{probe}'", exec={"sandbox": "bwrap"})
    netted = env.robots.add("netted", f"bash -c '{probe}'",
                            exec={"sandbox": "bwrap", "network": True})
    for rcpt in (boxed, netted):
        mr_id, _ = send(env, rcpt)
        events(env, mr_id, "delivered")
    boxed_report = (env.robots_dir / "boxed" / "report").read_text().split()
    netted_report = (env.robots_dir / "netted" / "report").read_text().split()
    # Read-only system, private /tmp, only its own directory of exec_directory, no network.
    assert boxed_report == ["tmp-ok", "boxed", "done"], boxed_report
    assert not Path("/tmp/probe").exists() or Path("/tmp/probe").read_text() != "secret\n"
    assert "net-ok" in netted_report, netted_report


def processes_running(argv0, arg):
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline[:2] == [argv0.encode(), arg.encode()]:
            found.append(int(proc.name))
    return found


def test_bwrap_timeout_kills_even_a_process_that_left_the_group(env):
    # setsid takes the child out of the command's process group, which is
    # what a timeout kills; bubblewrap's PID namespace still gets it.
    rcpt = env.robots.add("escapee", "setsid sleep 613 & exec sleep 614",
                          timeout="2s", exec={"sandbox": "bwrap"})
    mr_id, _ = send(env, rcpt)
    retried = next(e for e in events(env, mr_id, "retried") if e["type"] == "retried")
    assert "timed out" in retried["error"]
    deadline = time.monotonic() + 10
    while processes_running("sleep", "613") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not processes_running("sleep", "613")
    assert not processes_running("sleep", "614")
