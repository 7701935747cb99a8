"""mailrobot-directoryd, the socketmap server Postfix asks at SMTP time
(issue 7, docs/postfix.md): the private real Postfix is configured with the
four socketmap maps; the directory is written straight into Redis with the
key layout of docs/directory-layout.md (not through mailrobot's code).

Through Postfix: an account is delivered by virtual(8) into its Maildir; a
robot address goes through the pipe to Kafka; an unknown recipient is
refused with 550 at RCPT and nothing is queued; an alias written to Redis
works on the next mail without a reload; with the daemon or Redis down
Postfix answers 4xx, never 5xx.

And the protocol itself, netstrings on the socket: bad and oversized
requests, unknown maps, many connections, the TCP listener, a slow Redis."""

import json
import re
import smtplib
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from mailrobot_harness import CTL, clean_env, free_port, read_records

DOMAIN = "hosted.example.test"
P = "mailrobot"


# --- the stack ---------------------------------------------------------------------------

def write_directory(r):
    """An account, a robot with a route, and the hosted domain."""
    r.sadd(f"{P}:domains", DOMAIN)
    r.hset(f"{P}:domain:{DOMAIN}", mapping={"created": "2026-11-29T12:00:00Z"})
    r.sadd(f"{P}:accounts", f"bob@{DOMAIN}")
    r.hset(f"{P}:account:bob@{DOMAIN}", mapping={
        "password": "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA", "created": "2026-11-29T12:00:00Z",
        "updated": "2026-11-29T12:00:00Z"})
    r.set(f"{P}:robot:hello", json.dumps({"name": "hello", "kind": "drop"}))
    r.sadd(f"{P}:robots", "hello")
    r.set(f"{P}:route:hello@{DOMAIN}", "hello")
    r.sadd(f"{P}:routes", f"hello@{DOMAIN}")
    r.incr(f"{P}:robots:version")
    r.incr(f"{P}:directory:version")


def conf_dir(stack):
    return stack.dir / "postfix" / "conf"


def postconf(stack, *settings):
    for setting in settings:
        subprocess.run(["postconf", "-c", str(conf_dir(stack)), "-e", setting], check=True)
    subprocess.run(["postfix", "-c", str(conf_dir(stack)), "reload"], check=True,
                   capture_output=True)
    time.sleep(1)


@pytest.fixture(scope="module")
def mta(kafka):
    stack = kafka
    stack.start("redis")
    stack.sock = stack.dir / "directoryd" / "directoryd.sock"
    stack.tcp_port = free_port()
    stack.write_config(redis_url=f"redis://127.0.0.1:{stack.env['MR_REDIS_PORT']}/0",
                       directoryd_socket=str(stack.sock),
                       directoryd_listen=f"127.0.0.1:{stack.tcp_port}",
                       directoryd_time_limit="1s", log_level="debug")
    stack.redis = redis.Redis(port=int(stack.env["MR_REDIS_PORT"]), decode_responses=True)
    write_directory(stack.redis)
    stack.start("ingestd")
    stack.start("postfix")
    stack.start("directoryd")
    stack.vmail = stack.dir / "vmail"
    stack.vmail.mkdir()
    stack.vmail.chmod(0o777)  # written as nobody
    # Account mail: Postfix's virtual(8) refuses mailbox paths from a
    # socketmap ("not allowed for security-sensitive data"), so accounts are
    # delivered by the virtual_transport - Dovecot LMTP in production
    # (docs/postfix.md); here a pipe that writes <base>/<domain>/<user>/new/.
    bindir = stack.dir / "bin"
    bindir.mkdir(mode=0o755, exist_ok=True)
    deliver = bindir / "deliver-maildir"
    deliver.write_text("#!/bin/sh\nset -e\numask 022\nd=\"$1/$2/$3/new\"\nmkdir -p \"$d\"\n"
                       "cat > \"$d/.tmp.$$\"\nmv \"$d/.tmp.$$\" \"$d/$(date +%s).$$.eml\"\n")
    deliver.chmod(0o755)
    subprocess.run(["postconf", "-c", str(conf_dir(stack)), "-M",
                    f"vmaildir/unix=vmaildir unix - n n - - pipe flags=DRhu user=nobody "
                    f"argv={deliver} {stack.vmail} ${{domain}} ${{user}}"], check=True)
    sock = f"socketmap:unix:{stack.sock}"
    postconf(stack,
             "virtual_transport = vmaildir",
             "vmaildir_destination_recipient_limit = 1",
             f"virtual_mailbox_domains = {sock}:domains",
             f"virtual_mailbox_maps = {sock}:mailboxes",
             f"virtual_alias_maps = {sock}:aliases",
             f"transport_maps = {sock}:transport, "
             f"inline:{{ {stack.env.get('MR_DEMO_DOMAIN', 'robots.example.test')}=mailrobot: }}",
             f"virtual_mailbox_base = {stack.vmail}")
    return stack


def maillog(stack):
    return (stack.dir / "postfix" / "maillog").read_text(errors="replace")


def send(stack, rcpts, subject):
    """One SMTP transaction. Returns (queue id or None, {rcpt: (code, reply)})."""
    msg = (f"From: carol@example.org\r\nTo: {', '.join(rcpts)}\r\nSubject: {subject}\r\n"
           f"Message-ID: <{subject}@example.org>\r\n\r\nHello.\r\n")
    answers = {}
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=60) as smtp:
        smtp.ehlo("client.example.org")
        assert smtp.mail("carol@example.org")[0] == 250
        for rcpt in rcpts:
            answers[rcpt] = smtp.rcpt(rcpt)
        if not any(code == 250 for code, _ in answers.values()):
            smtp.rset()
            return None, answers
        code, reply = smtp.data(msg.encode())
        assert code == 250, reply
    return re.search(rb"queued as ([0-9A-Za-z]+)", reply).group(1).decode(), answers


def queued(stack):
    out = subprocess.run(["postqueue", "-c", str(conf_dir(stack)), "-j"], check=True,
                         capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def maildir_files(stack, local):
    """Delivered mails: the files in new/ (not the deliverer's .tmp.* being written)."""
    new = stack.vmail / DOMAIN / local / "new"
    return sorted(f for f in new.iterdir() if not f.name.startswith(".")) if new.is_dir() else []


def wait_maildir(stack, local, count, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = maildir_files(stack, local)
        if len(files) >= count:
            return files
        time.sleep(0.2)
    raise AssertionError(f"{count} mails not in {local}'s Maildir:\n{maillog(stack)[-3000:]}")


# --- through Postfix -----------------------------------------------------------------------

def test_account_is_accepted_and_delivered_to_its_maildir(mta):
    qid, answers = send(mta, [f"Bob@{DOMAIN}"], "account-1")
    assert answers[f"Bob@{DOMAIN}"][0] == 250
    [path] = wait_maildir(mta, "bob", 1)
    text = path.read_text()
    assert "Subject: account-1" in text and f"delivered-to: bob@{DOMAIN}" in text.lower()
    assert re.search(rf"{qid}: to=<bob@{DOMAIN}>.*relay=vmaildir.*status=sent", maillog(mta),
                     re.IGNORECASE)


def test_robot_address_goes_through_the_pipe_to_kafka(mta):
    qid, answers = send(mta, [f"hello+tag@{DOMAIN}"], "robot-1")
    assert answers[f"hello+tag@{DOMAIN}"][0] == 250
    [rec] = read_records(mta.brokers, where=lambda r: r.h("mr.queue_id") == qid)
    assert rec.h("mr.recipient") == f"hello+tag@{DOMAIN}"
    assert b"Subject: robot-1" in rec.value
    assert re.search(rf"{qid}: to=<hello\+tag@{DOMAIN}>.*relay=mailrobot.*status=sent",
                     maillog(mta))


def test_unknown_recipient_is_refused_at_rcpt_and_nothing_is_queued(mta):
    before = len(read_records(mta.brokers, expect=None, timeout=30))
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        with smtplib.SMTP("127.0.0.1", mta.smtp_port, timeout=60) as smtp:
            smtp.sendmail("carol@example.org", [f"nobody@{DOMAIN}"], b"Subject: x\r\n\r\nx\r\n")
    code, reply = refused.value.recipients[f"nobody@{DOMAIN}"]
    assert code == 550 and b"5.1.1" in reply, reply
    assert queued(mta) == []
    # One unknown among known: only that one is refused.
    qid, answers = send(mta, [f"nobody@{DOMAIN}", f"bob@{DOMAIN}"], "mixed-1")
    assert answers[f"nobody@{DOMAIN}"][0] == 550 and answers[f"bob@{DOMAIN}"][0] == 250
    wait_maildir(mta, "bob", 2)
    time.sleep(2)
    assert queued(mta) == []
    assert len(read_records(mta.brokers, expect=None, timeout=30)) == before
    assert re.search(rf"reject: RCPT from .*550 5\.1\.1 <nobody@{DOMAIN}>", maillog(mta))


def test_alias_written_to_redis_works_on_the_next_mail_without_reload(mta):
    alias = f"team@{DOMAIN}"
    _, answers = send(mta, [alias], "alias-0")
    assert answers[alias][0] == 550
    bob_before = len(maildir_files(mta, "bob"))
    r = mta.redis
    r.sadd(f"{P}:alias:{alias}", f"bob@{DOMAIN}", "robot:hello")
    r.sadd(f"{P}:aliases", alias)
    r.incr(f"{P}:directory:version")
    qid, answers = send(mta, [alias], "alias-1")
    assert answers[alias][0] == 250
    files = wait_maildir(mta, "bob", bob_before + 1)
    assert any("Subject: alias-1" in f.read_text() for f in files)
    [rec] = read_records(mta.brokers, where=lambda r: r.h("mr.queue_id") == qid)
    assert rec.h("mr.recipient") == f"hello@{DOMAIN}"
    assert rec.h("mr.original_recipient") == alias
    # And removed: refused again, at once.
    r.delete(f"{P}:alias:{alias}")
    _, answers = send(mta, [alias], "alias-2")
    assert answers[alias][0] == 550


def test_catch_all_takes_unknown_addresses_but_not_accounts(mta):
    r = mta.redis
    r.hset(f"{P}:domain:{DOMAIN}", "catch_all", "robot:hello")
    try:
        qid, answers = send(mta, [f"whoever@{DOMAIN}"], "catchall-1")
        assert answers[f"whoever@{DOMAIN}"][0] == 250
        [rec] = read_records(mta.brokers, where=lambda rec: rec.h("mr.queue_id") == qid)
        assert rec.h("mr.recipient") == f"hello@{DOMAIN}"
        bob_before = len(maildir_files(mta, "bob"))
        send(mta, [f"bob@{DOMAIN}"], "catchall-2")
        files = wait_maildir(mta, "bob", bob_before + 1)
        assert any("Subject: catchall-2" in f.read_text() for f in files)
    finally:
        r.hdel(f"{P}:domain:{DOMAIN}", "catch_all")


def rcpt_code(stack, rcpt):
    _, answers = send(stack, [rcpt], f"probe-{time.monotonic_ns()}")
    return answers[rcpt]


def wait_rcpt_code(stack, rcpt, want, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        code, reply = rcpt_code(stack, rcpt)
        if code == want or time.monotonic() > deadline:
            return code, reply
        time.sleep(0.5)


def test_directoryd_down_gives_4xx_never_5xx(mta):
    mta.stop("directoryd")
    try:
        for rcpt in (f"bob@{DOMAIN}", f"nobody@{DOMAIN}", f"hello@{DOMAIN}"):
            code, reply = rcpt_code(mta, rcpt)
            assert code == 451 and b"4.3.0" in reply, (rcpt, code, reply)
    finally:
        mta.start("directoryd")
    code, reply = wait_rcpt_code(mta, f"bob@{DOMAIN}", 250)
    assert code == 250, reply
    assert queued(mta) == [] or all(m["queue_name"] != "deferred" for m in queued(mta))


def test_redis_down_or_slow_gives_4xx_never_5xx(mta):
    mta.stop("redis")
    try:
        for rcpt in (f"bob@{DOMAIN}", f"nobody@{DOMAIN}"):
            code, reply = rcpt_code(mta, rcpt)
            assert code == 451 and b"4.3.0" in reply, (rcpt, code, reply)
    finally:
        mta.start("redis")
    write_directory(mta.redis)
    code, reply = wait_rcpt_code(mta, f"bob@{DOMAIN}", 250)
    assert code == 250, reply
    # Slow: Redis takes longer than directoryd_time_limit (1 s).
    mta.redis.execute_command("CLIENT", "PAUSE", "4000", "ALL")
    code, reply = rcpt_code(mta, f"nobody@{DOMAIN}")
    assert code == 451 and b"4.3.0" in reply, (code, reply)
    time.sleep(4)
    assert wait_rcpt_code(mta, f"nobody@{DOMAIN}", 550)[0] == 550


# --- the protocol on the socket ----------------------------------------------------------

def netstring(data: bytes) -> bytes:
    return str(len(data)).encode() + b":" + data + b","


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError(buf)
        buf += chunk
    return buf


def read_netstring(sock):
    """One netstring, reading no byte beyond it."""
    digits = b""
    while (c := recv_exact(sock, 1)) != b":":
        assert c.isdigit() and len(digits) < 9, digits + c
        digits += c
    data = recv_exact(sock, int(digits) + 1)
    assert data[-1:] == b","
    return data[:-1]


def connect(stack):
    deadline = time.monotonic() + 10
    while True:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        try:
            s.connect(str(stack.sock))
            return s
        except BlockingIOError:  # the listen backlog is full: wait for accept
            s.close()
            assert time.monotonic() < deadline
            time.sleep(0.01)


def ask(s, name, key):
    s.sendall(netstring(f"{name} {key}".encode()))
    return read_netstring(s).decode()


def test_socket_answers_the_four_maps(mta):
    assert oct(mta.sock.stat().st_mode & 0o777) == "0o660"
    with connect(mta) as s:
        assert ask(s, "domains", DOMAIN.upper()) == f"OK {DOMAIN}"
        assert ask(s, "domains", "other.example.test") == "NOTFOUND "
        assert ask(s, "mailboxes", f"Bob@{DOMAIN}") == f"OK {DOMAIN}/bob/"
        assert ask(s, "mailboxes", f"bob+x@{DOMAIN}") == f"OK {DOMAIN}/bob/"
        assert ask(s, "mailboxes", f"hello+x@{DOMAIN}") == f"OK hello+x@{DOMAIN}"
        assert ask(s, "mailboxes", f"nobody@{DOMAIN}") == "NOTFOUND "
        assert ask(s, "transport", f"hello@{DOMAIN}") == "OK mailrobot:"
        assert ask(s, "transport", f"bob@{DOMAIN}") == "NOTFOUND "
        assert ask(s, "transport", DOMAIN) == "NOTFOUND "
        assert ask(s, "aliases", f"bob@{DOMAIN}") == "NOTFOUND "
        assert ask(s, "aliases", f"@{DOMAIN}") == "NOTFOUND "


def test_protocol_errors(mta):
    with connect(mta) as s:  # unknown map: PERM, and the connection goes on
        assert ask(s, "passwd", "root").startswith("PERM ")
        s.sendall(netstring(b"domainsonly"))
        assert read_netstring(s).startswith(b"PERM ")
        assert ask(s, "domains", DOMAIN) == f"OK {DOMAIN}"
    for bad in (b"x:domains a,", b"5:domains a.test,", b"05:ab cd,", b":,"):
        with connect(mta) as s:  # not a netstring: PERM, then closed
            s.sendall(bad)
            assert read_netstring(s).startswith(b"PERM ")
            assert s.recv(10) == b""
    with connect(mta) as s:  # oversized: refused from the length alone
        s.sendall(b"100000000:domains ")
        assert read_netstring(s) == b"PERM request too long"
        assert s.recv(10) == b""
    with connect(mta) as s:  # just over the 1024-byte limit
        s.sendall(netstring(b"domains " + b"a" * 1017))
        assert read_netstring(s) == b"PERM request too long"
    with connect(mta) as s:  # a long key that is no address
        assert ask(s, "mailboxes", "a" * 600 + "@x") == "NOTFOUND "


def test_many_connections_and_pipelined_requests(mta):
    socks = [connect(mta) for _ in range(150)]
    try:
        for i, s in enumerate(socks):  # two requests in one write each
            s.sendall(netstring(f"mailboxes bob@{DOMAIN}".encode())
                      + netstring(f"domains {DOMAIN}".encode()))
        for s in socks:
            assert read_netstring(s) == f"OK {DOMAIN}/bob/".encode()
            assert read_netstring(s) == f"OK {DOMAIN}".encode()
    finally:
        for s in socks:
            s.close()

    def one(i):
        with connect(mta) as s:
            return [ask(s, "transport", f"hello@{DOMAIN}") for _ in range(20)]
    with ThreadPoolExecutor(32) as pool:
        for answers in pool.map(one, range(64)):
            assert answers == ["OK mailrobot:"] * 20


def test_tcp_listener(mta):
    with socket.create_connection(("127.0.0.1", mta.tcp_port), timeout=10) as s:
        assert ask(s, "domains", DOMAIN) == f"OK {DOMAIN}"


def test_slow_redis_is_a_timeout(mta):
    with connect(mta) as s:
        assert ask(s, "domains", DOMAIN) == f"OK {DOMAIN}"
        mta.redis.execute_command("CLIENT", "PAUSE", "2500", "ALL")
        t0 = time.monotonic()
        answer = ask(s, "domains", DOMAIN)
        assert answer.startswith("TIMEOUT ") and time.monotonic() - t0 < 2.0, answer
        time.sleep(2.5)
        deadline = time.monotonic() + 10
        while (answer := ask(s, "domains", DOMAIN)) != f"OK {DOMAIN}":
            assert answer.startswith("TEMP ") and time.monotonic() < deadline, answer
            time.sleep(0.2)
    log = Path(mta.dir / "directoryd" / "directoryd.log").read_text()
    assert '"msg":"redis connection dropped"' in log


def test_alias_with_offsite_targets_goes_through_its_forward_robot(mta):
    # Written with mailrobotctl: the library gives the alias a forward robot
    # for its offsite target and routes the alias's address to it.
    alias = f"sales@{DOMAIN}"
    res = subprocess.run([str(CTL), "-C", str(mta.config), "alias", "set", alias,
                          f"bob@{DOMAIN}", "ann@partner.example"], capture_output=True,
                         text=True, env=clean_env(), timeout=60)
    assert res.returncode == 0, res.stderr
    robot = mta.redis.get(f"{P}:route:{alias}")
    assert robot and robot.startswith("alias.")
    doc = json.loads(mta.redis.get(f"{P}:robot:{robot}"))
    assert doc["kind"] == "forward" and doc["forward"]["to"] == ["ann@partner.example"]
    bob_before = len(maildir_files(mta, "bob"))
    qid, answers = send(mta, [alias], "offsite-1")
    assert answers[alias][0] == 250
    wait_maildir(mta, "bob", bob_before + 1)          # the local target, by Postfix
    [rec] = read_records(mta.brokers, where=lambda r: r.h("mr.queue_id") == qid)
    assert rec.h("mr.recipient") == alias              # the offsite one, via the robot
    assert "ann@partner.example" not in maillog(mta)   # never relayed by Postfix itself
    res = subprocess.run([str(CTL), "-C", str(mta.config), "alias", "remove", alias],
                         capture_output=True, text=True, env=clean_env(), timeout=60)
    assert res.returncode == 0, res.stderr
    assert mta.redis.get(f"{P}:route:{alias}") is None
    assert mta.redis.get(f"{P}:robot:{robot}") is None
    assert robot not in mta.redis.smembers(f"{P}:robots")
