"""The exec robot contract, checked against the real thing (SPEC §7): the
private Postfix delivers a message through an /etc/aliases pipe to a
recorder script (local(8) runs it), then the same message goes the
mailrobot way (pipe(8) -> ingest -> Kafka -> worker) to an exec robot
running the same recorder with the same command line. The recorder saves
stdin, argv and environment; this test compares them.

What differs by nature is named here and nowhere else:
  stdin  the "From " line's date and the Received header's queue id and
         date (two deliveries, two queue files)
  env    MAIL_CONFIG (Postfix's configuration directory: local(8) only);
         HOME and SHELL (mailrobot gives every robot its working directory
         and /bin/sh; local(8) sets them for .forward deliveries, not for
         aliases)
  cwd    local(8): the Postfix queue directory; mailrobot: the robot's
         working directory
"""

import json
import re
import shutil
import smtplib
import subprocess
import time
from pathlib import Path

import pytest
import redis

from exec_harness import recorded
from mailrobot_harness import start_worker, stop_worker

HERE = Path(__file__).parent
DOMAIN = "local.example.test"
ADDRESS = f"recorder+tag@{DOMAIN}"


@pytest.fixture(scope="module")
def mta(kafka):
    kafka.start("redis")
    redis_url = f"redis://127.0.0.1:{kafka.env['MR_REDIS_PORT']}/0"
    kafka.write_config(redis_url=redis_url, worker_http_listen="127.0.0.1:0",
                       exec_directory=str(kafka.dir / "robots"), ingest_time_limit="20s")
    kafka.start("ingestd")
    kafka.start("postfix")
    kafka.worker = start_worker(kafka)
    yield kafka
    assert stop_worker(kafka.worker) == 0


def postconf(stack, *settings):
    conf = stack.dir / "postfix" / "conf"
    for setting in settings:
        subprocess.run(["postconf", "-c", str(conf), "-e", setting], check=True)
    subprocess.run(["postfix", "-c", str(conf), "reload"], check=True, capture_output=True)
    time.sleep(1)


def smtp_send(stack, msg):
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=60) as smtp:
        smtp.ehlo("client.example.org")
        smtp.sendmail("carol@example.org", [ADDRESS], msg)


def mask(stdin):
    """The parts of stdin that differ by nature between two deliveries."""
    stdin = re.sub(rb"^From (\S+)  .{24}\n", rb"From \1  <date>\n", stdin)
    stdin = re.sub(rb"with ESMTP id [0-9A-Za-z]+", b"with ESMTP id <queue id>", stdin)
    return re.sub(rb"(for <[^>]+>); [^\n]+", rb"\1; <date>", stdin)


def test_exec_robot_gets_what_local8_gives_an_alias_command(mta):
    bin_dir = mta.dir / "bin"
    bin_dir.mkdir(mode=0o755)
    shutil.copy(HERE / "robots" / "recorder.py", bin_dir / "recorder.py")
    (bin_dir / "recorder.py").chmod(0o755)
    out = mta.dir / "recordings"
    out.mkdir()
    out.chmod(0o777)
    command = f"{bin_dir}/recorder.py {out} --queue support"

    # 1. Postfix local(8): /etc/aliases "|command", run as default_privs.
    conf = mta.dir / "postfix" / "conf"
    aliases = conf / "aliases"
    aliases.write_text(f'recorder: "|{command}"\n')
    subprocess.run(["postalias", "-c", str(conf), f"hash:{aliases}"], check=True)
    postconf(mta, f"mydestination = {DOMAIN}", f"alias_maps = hash:{aliases}",
             f"alias_database = hash:{aliases}", "default_privs = mailrobot-exec",
             "local_recipient_maps =")
    msg = (f"From: Carol <carol@example.org>\nTo: {ADDRESS}\nSubject: compare\n"
           "Message-ID: <compare-1@example.org>\nDate: Sun, 29 Nov 2026 12:00:00 +0000\n"
           "MIME-Version: 1.0\n"
           "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
           "Grüße, robot.\n\nFrom here on\n.leading dot\n").encode()
    smtp_send(mta, msg)
    [local8] = recorded(out, 1, timeout=90)

    # 2. mailrobot: the domain goes to the pipe(8) ingest; the worker runs
    #    an exec robot with the same command line.
    r = redis.Redis(port=int(mta.env["MR_REDIS_PORT"]))
    r.set("mailrobot:robot:recorder", json.dumps(
        {"name": "recorder", "kind": "exec", "exec": {"command": command}}))
    r.sadd("mailrobot:robots", "recorder")
    r.set(f"mailrobot:route:recorder@{DOMAIN}", "recorder")
    r.sadd("mailrobot:routes", f"recorder@{DOMAIN}")
    r.incr("mailrobot:robots:version")
    postconf(mta, "mydestination =", f"relay_domains = {DOMAIN}",
             f"transport_maps = inline:{{ {DOMAIN}=mailrobot: }}")
    smtp_send(mta, msg)
    local8, robot = recorded(out, 2, timeout=90)

    assert robot["argv"] == local8["argv"] == [f"{bin_dir}/recorder.py", str(out), "--queue",
                                               "support"]
    assert mask(robot["stdin"]) == mask(local8["stdin"])
    assert robot["stdin"] != mask(robot["stdin"])  # the masks did match something
    assert local8["stdin"].split(b"\n")[1:4] == [
        b"Return-Path: <carol@example.org>", f"X-Original-To: {ADDRESS}".encode(),
        f"Delivered-To: {ADDRESS}".encode()]

    only_local8 = {"MAIL_CONFIG"}
    only_robot = {"HOME", "SHELL"}
    assert set(local8["env"]) - set(robot["env"]) == only_local8, local8["env"]
    assert set(robot["env"]) - set(local8["env"]) == only_robot, robot["env"]
    common = set(local8["env"]) & set(robot["env"])
    assert {k: robot["env"][k] for k in common} == {k: local8["env"][k] for k in common}
    # The variables SPEC §7 promises, as far as this SMTP session has them.
    assert {"USER", "LOGNAME", "EXTENSION", "DOMAIN", "LOCAL", "ORIGINAL_RECIPIENT",
            "RECIPIENT", "SENDER", "CLIENT_ADDRESS", "CLIENT_HELO", "CLIENT_HOSTNAME",
            "CLIENT_PROTOCOL", "PATH"} <= common
    assert robot["env"]["EXTENSION"] == "tag" and robot["env"]["LOCAL"] == "recorder+tag"
    assert (robot["uid"], robot["gid"]) == (local8["uid"], local8["gid"])
    assert robot["umask"] == local8["umask"] == 0o077
    assert robot["cwd"] == str(mta.dir / "robots" / "recorder")
