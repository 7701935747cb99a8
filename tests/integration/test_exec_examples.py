"""The example exec robots of docs/robots/examples/ (ticket.sh, autofiler.py,
unsubscribe.pl) end to end: ingest -> Kafka -> worker -> the script as the
exec user -> its files in its working directory, its reply on the outbound
topic, its state in Redis, and what its exit statuses make of the mail."""

import fcntl
import os
import pwd
import smtplib
import subprocess
import time
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from exec_harness import DOMAIN, EXEC_USER, events, exec_stack, records_of, send
from mailrobot_harness import read_records, run_ingest, unique

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "docs" / "robots" / "examples"


@pytest.fixture(scope="module")
def env(kafka):
    yield from exec_stack(kafka, robot_dirs=(EXAMPLES,))


def parse(data):
    return BytesParser(policy=policy.default).parsebytes(data)


def send_raw(env, recipient, msg, sender="alice@example.org"):
    """Ingests msg (bytes) as it is; returns its mr.id."""
    queue_id = unique()
    res = run_ingest(env.config, [recipient], msg, queue_id=queue_id, sender=sender)
    assert res.returncode == 0, res.stderr
    [rec] = read_records(env.brokers, where=lambda r: r.h("mr.queue_id") == queue_id)
    return rec.h("mr.id")


def text(mail):
    """The text body, with LF line ends."""
    return mail.get_content().replace("\r\n", "\n")


def state(env, robot, key):
    return env.redis.get(f"mailrobot:state:{robot}:{key}")


def fate(env, mr_id, timeout=60):
    """The message's last event once it is delivered or dead-lettered."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        evs = events(env, mr_id, "received")
        if evs[-1]["type"] in ("delivered", "dead"):
            return evs[-1]
        time.sleep(0.5)
    raise AssertionError(f"{mr_id} neither delivered nor dead: {evs}")


def no_outbound(env, mr_id):
    return not records_of(env, "mailrobot.outbound", mr_id, expect=None, timeout=20)


def assert_reply_to(out, msg, to):
    """out: an outbound record replying to msg (bytes); returns the parsed reply."""
    assert out.h("mr.kind") == "reply" and out.h("mr.rcpt_to") == to
    assert b"\n" not in out.value.replace(b"\r\n", b"")
    reply, original = parse(out.value), parse(msg)
    assert [a.addr_spec for a in reply["To"].addresses] == [to]
    assert reply["In-Reply-To"] == original["Message-ID"]
    assert original["Message-ID"] in reply["References"]
    assert reply["Auto-Submitted"] == "auto-replied"
    assert reply["Subject"] == f"Re: {original['Subject']}"
    return reply


def owned_by_robot_user(path):
    st = path.stat()
    return st.st_uid == pwd.getpwnam(EXEC_USER).pw_uid and (st.st_mode & 0o077) == 0


# --- ticket.sh ---------------------------------------------------------------------------


def test_ticket_opens_a_ticket_and_replies_with_its_number(env):
    rcpt = env.robots.add("helpdesk", f"{env.bin}/ticket.sh", exec={"output": "actions"})
    mr_id, msg = send(env, rcpt, subject="Printer on fire", body="It is on fire.\n",
                      sender="bob@example.org")
    evs = events(env, mr_id, "delivered")
    assert [e["type"] for e in evs][-1] == "delivered"
    home = env.robots_dir / "helpdesk"
    ticket = home / "tickets" / "1.eml"
    # The mail as local(8) frames it, without the "From " line.
    saved = ticket.read_bytes()
    assert saved.startswith(b"Return-Path: <bob@example.org>\n")
    assert f"Delivered-To: {rcpt}\n".encode() in saved and saved.endswith(msg)
    assert owned_by_robot_user(ticket)
    assert (home / "ticket.counter").read_text() == "1\n"
    assert (home / "tickets" / "index").read_text() == f"1 {parse(msg)['Message-ID']}\n"
    assert state(env, "helpdesk", "last-ticket") == b"1"
    [out] = records_of(env, "mailrobot.outbound", mr_id)
    reply = assert_reply_to(out, msg, "bob@example.org")
    assert reply["Subject"] == "Re: Printer on fire"
    assert reply["X-Ticket"] == "1"
    assert text(reply).startswith("Ticket #1 opened.\n")


def test_ticket_numbers_are_distinct_under_concurrency(env):
    rcpt = env.robots.add("tickets", f"{env.bin}/ticket.sh", exec={"output": "actions"},
                          concurrency=5, ordered=False)
    sent = [send(env, rcpt, subject=f"Problem {i}", sender=f"user{i}@example.org")
            for i in range(5)]
    numbers = {}
    for i, (mr_id, msg) in enumerate(sent):
        events(env, mr_id, "delivered")
        [out] = records_of(env, "mailrobot.outbound", mr_id)
        reply = assert_reply_to(out, msg, f"user{i}@example.org")
        number = reply["X-Ticket"]
        assert text(reply).startswith(f"Ticket #{number} opened.\n")
        # The ticket of that number holds this very mail.
        assert (env.robots_dir / "tickets" / "tickets" / f"{number}.eml").read_bytes().endswith(msg)
        numbers[mr_id] = int(number)
    assert sorted(numbers.values()) == [1, 2, 3, 4, 5]
    home = env.robots_dir / "tickets"
    assert (home / "ticket.counter").read_text() == "5\n"
    assert sorted(p.name for p in (home / "tickets").iterdir()) == [
        "1.eml", "2.eml", "3.eml", "4.eml", "5.eml", "index"]
    index = (home / "tickets" / "index").read_text().splitlines()
    assert sorted(int(line.split()[0]) for line in index) == [1, 2, 3, 4, 5]
    assert state(env, "tickets", "last-ticket") in {b"1", b"2", b"3", b"4", b"5"}


def test_ticket_for_the_same_mail_again_keeps_its_number(env):
    rcpt = env.robots.add("helpdesk-again", f"{env.bin}/ticket.sh", exec={"output": "actions"})
    msg = (f"From: Carol <carol@example.org>\nTo: {rcpt}\nSubject: Broken link\n"
           f"Message-ID: <{unique()}@example.org>\n\nThe link is broken.\n").encode()
    first = send_raw(env, rcpt, msg, sender="carol@example.org")
    events(env, first, "delivered")
    # Postfix delivers it again (another queue id): the same ticket.
    second = send_raw(env, rcpt, msg, sender="carol@example.org")
    assert second != first
    events(env, second, "delivered")
    for mr_id in (first, second):
        [out] = records_of(env, "mailrobot.outbound", mr_id)
        assert parse(out.value)["X-Ticket"] == "1"
    home = env.robots_dir / "helpdesk-again"
    assert (home / "ticket.counter").read_text() == "1\n"
    assert len((home / "tickets" / "index").read_text().splitlines()) == 1


def test_ticket_counter_busy_is_retried(env):
    rcpt = env.robots.add("helpdesk-busy", f"{env.bin}/ticket.sh", exec={"output": "actions"})
    first, _ = send(env, rcpt, subject="first")
    events(env, first, "delivered")
    lock_path = env.robots_dir / "helpdesk-busy" / "ticket.lock"
    with open(lock_path, "rb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)          # someone holds the counter
        mr_id, msg = send(env, rcpt, subject="second")
        evs = events(env, mr_id, "retried")
    retried = next(e for e in evs if e["type"] == "retried")
    assert retried["exit_status"] == 75, retried
    assert retried["stderr"] == "ticket.sh: ticket counter busy; try again later"
    # Lock released: the retry opens the ticket.
    evs = events(env, mr_id, "delivered")
    assert [e["type"] for e in evs][-1] == "delivered"
    assert (env.robots_dir / "helpdesk-busy" / "tickets" / "2.eml").read_bytes().endswith(msg)
    assert state(env, "helpdesk-busy", "last-ticket") == b"2"


@pytest.mark.parametrize("missing,stderr", [
    ("Subject", "ticket.sh: the mail has no Subject"),
    ("From", "ticket.sh: the mail has no From address"),
])
def test_ticket_without_from_or_subject_is_a_data_error(env, missing, stderr):
    name = f"helpdesk-no-{missing.lower()}"
    rcpt = env.robots.add(name, f"{env.bin}/ticket.sh", exec={"output": "actions"})
    fields = {"From": "Dave <dave@example.org>", "To": rcpt, "Subject": "Help",
              "Message-ID": f"<{unique()}@example.org>"}
    del fields[missing]
    msg = ("".join(f"{k}: {v}\n" for k, v in fields.items()) + "\nHelp me.\n").encode()
    mr_id = send_raw(env, rcpt, msg, sender="dave@example.org")
    dead = next(e for e in events(env, mr_id, "dead") if e["type"] == "dead")
    assert dead["exit_status"] == 65 and dead["error_kind"] == "permanent", dead
    assert dead["stderr"] == stderr
    [rec] = records_of(env, "mailrobot.dead", mr_id)
    assert rec.value == msg and rec.h("mr.exit_status") == "exit 65"
    assert not list((env.robots_dir / name / "tickets").glob("*.eml"))
    assert not (env.robots_dir / name / "ticket.counter").exists()
    assert state(env, name, "last-ticket") is None
    assert no_outbound(env, mr_id)


def test_ticket_from_an_autoreply_is_opened_but_not_answered(env):
    rcpt = env.robots.add("helpdesk-auto", f"{env.bin}/ticket.sh", exec={"output": "actions"})
    mr_id, msg = send(env, rcpt, subject="Out of office",
                      headers="Auto-Submitted: auto-replied\n")
    events(env, mr_id, "delivered")
    assert (env.robots_dir / "helpdesk-auto" / "tickets" / "1.eml").read_bytes().endswith(msg)
    assert state(env, "helpdesk-auto", "last-ticket") == b"1"
    assert no_outbound(env, mr_id)


# --- autofiler.py ------------------------------------------------------------------------


def filed(env, robot):
    base = env.robots_dir / robot / "filed"
    return {p.relative_to(base).parts[0]: p for p in base.glob("*/*.eml")}


@pytest.mark.parametrize("robot,extension,subject,folder", [
    ("autofiler-ext", "Taxes", "Hello there", "taxes"),
    ("autofiler-kw", "", "Your invoice 2024-0042", "finance"),
    ("autofiler-utf8", "", "Quittung für März (receipt)", "finance"),
    ("autofiler-plain", "", "Lunch on Friday?", "inbox"),
])
def test_autofiler_files_and_replies(env, robot, extension, subject, folder):
    rcpt = env.robots.add(robot, f"{env.bin}/autofiler.py", exec={"output": "reply"})
    to = rcpt.replace("@", f"+{extension}@") if extension else rcpt
    mr_id, msg = send(env, to, subject=subject, sender="erin@example.org")
    events(env, mr_id, "delivered")
    files = filed(env, robot)
    assert list(files) == [folder], files
    saved = files[folder].read_bytes()
    assert saved.startswith(b"Return-Path: <erin@example.org>\n") and saved.endswith(msg)
    assert owned_by_robot_user(files[folder])
    [out] = records_of(env, "mailrobot.outbound", mr_id)
    assert out.h("mr.robot") == robot
    reply = assert_reply_to(out, msg, "erin@example.org")
    assert [a.addr_spec for a in reply["From"].addresses] == [to]
    assert reply["Subject"] == f"Re: {subject}"
    assert text(reply).startswith(f"Filed under {folder}\n")
    assert reply["Message-ID"].startswith(f"<{out.key.decode()}@")


def test_autofiler_answers_reply_to_and_keeps_one_file_per_mail(env):
    rcpt = env.robots.add("autofiler-rt", f"{env.bin}/autofiler.py", exec={"output": "reply"})
    msg = (f"From: Frank <frank@example.org>\nReply-To: Billing <billing@example.org>\n"
           f"To: {rcpt}\nSubject: Re: receipt\nMessage-ID: <{unique()}@example.org>\n"
           f"References: <root-{unique()}@example.org>\n\nSee the receipt.\n").encode()
    ids = [send_raw(env, rcpt, msg, sender="frank@example.org") for _ in range(2)]
    for mr_id in ids:
        events(env, mr_id, "delivered")
        [out] = records_of(env, "mailrobot.outbound", mr_id)
        assert out.h("mr.rcpt_to") == "billing@example.org"
        reply = parse(out.value)
        assert reply["Subject"] == "Re: receipt"          # no second "Re:"
        assert reply["References"].split() == [*parse(msg)["References"].split(),
                                               parse(msg)["Message-ID"]]
    # Delivered twice, filed once.
    assert [p.parent.name for p in (env.robots_dir / "autofiler-rt" / "filed").glob("*/*")] == [
        "finance"]


def test_autofiler_files_list_mail_without_replying(env):
    # It prints nothing for list mail: under RFC 3834 mailrobot sends no
    # reply then either, and that is no failure.
    rcpt = env.robots.add("autofiler-list", f"{env.bin}/autofiler.py", exec={"output": "reply"})
    mr_id, _ = send(env, rcpt, subject="Weekly invoice digest",
                    headers="List-Id: <digest.example.org>\n")
    last = fate(env, mr_id)
    assert list(filed(env, "autofiler-list")) == ["finance"]   # filed, either way
    assert last["type"] == "delivered", last
    assert no_outbound(env, mr_id)


# --- unsubscribe.pl ----------------------------------------------------------------------


def test_unsubscribe_records_the_sender_once_and_confirms(env):
    rcpt = env.robots.add("list-unsubscribe", f"{env.bin}/unsubscribe.pl",
                          exec={"output": "actions"})
    assert rcpt == f"list-unsubscribe@{DOMAIN}"
    home = env.robots_dir / "list-unsubscribe"
    mr_id, msg = send(env, rcpt, subject="please remove me", sender="grace@example.org")
    events(env, mr_id, "delivered")
    assert (home / "unsubscribed.txt").read_text() == "grace@example.org\n"
    assert owned_by_robot_user(home / "unsubscribed.txt")
    assert state(env, "list-unsubscribe", "unsubscribed:grace:example.org") == b"1"
    [out] = records_of(env, "mailrobot.outbound", mr_id)
    reply = assert_reply_to(out, msg, "grace@example.org")
    assert text(reply) == ("The address grace@example.org has been unsubscribed; "
                                   "you will get no more mail from this list.\n")
    # Again, with the address in other case: still one line.
    mr_id, msg = send(env, rcpt, subject="remove me!", sender="Grace@Example.ORG")
    events(env, mr_id, "delivered")
    assert (home / "unsubscribed.txt").read_text() == "grace@example.org\n"
    [out] = records_of(env, "mailrobot.outbound", mr_id)
    assert "was already unsubscribed" in text(parse(out.value))
    # Another subscriber.
    mr_id, _ = send(env, rcpt, subject="bye", sender="heidi+news@example.net")
    events(env, mr_id, "delivered")
    assert (home / "unsubscribed.txt").read_text() == (
        "grace@example.org\nheidi+news@example.net\n")
    assert state(env, "list-unsubscribe", "unsubscribed:heidi_news:example.net") == b"1"


def test_unsubscribe_ignores_a_bounce(env):
    rcpt = env.robots.add("news-unsubscribe", f"{env.bin}/unsubscribe.pl",
                          exec={"output": "actions"})
    msg = (f"From: Mail Delivery System <MAILER-DAEMON@example.org>\nTo: {rcpt}\n"
           f"Subject: Undelivered Mail Returned to Sender\n"
           f"Message-ID: <{unique()}@example.org>\n\nunsubscribe\n").encode()
    mr_id = send_raw(env, rcpt, msg, sender="")
    evs = events(env, mr_id, "delivered")
    assert [e["type"] for e in evs][-1] == "delivered"
    assert not (env.robots_dir / "news-unsubscribe" / "unsubscribed.txt").exists()
    assert not env.redis.keys("mailrobot:state:news-unsubscribe:*")
    assert no_outbound(env, mr_id)


def test_unsubscribe_by_subject_on_any_address(env):
    rcpt = env.robots.add("listdesk", f"{env.bin}/unsubscribe.pl", exec={"output": "actions"})
    other, _ = send(env, rcpt, subject="a question", sender="ivan@example.org")
    events(env, other, "delivered")
    assert not (env.robots_dir / "listdesk" / "unsubscribed.txt").exists()
    assert no_outbound(env, other)
    mr_id, msg = send(env, rcpt, subject="UNSUBSCRIBE", sender="ivan@example.org")
    events(env, mr_id, "delivered")
    assert (env.robots_dir / "listdesk" / "unsubscribed.txt").read_text() == "ivan@example.org\n"
    assert state(env, "listdesk", "unsubscribed:ivan:example.org") == b"1"
    [out] = records_of(env, "mailrobot.outbound", mr_id)
    assert_reply_to(out, msg, "ivan@example.org")


def test_examples_are_executable_and_documented():
    readme = (EXAMPLES / "README.md").read_text()
    for name, interpreter in (("ticket.sh", b"#!/bin/sh\n"),
                              ("autofiler.py", b"#!/usr/bin/python3\n"),
                              ("unsubscribe.pl", b"#!/usr/bin/perl\n")):
        script = EXAMPLES / name
        assert script.read_bytes().startswith(interpreter)
        assert os.access(script, os.X_OK), f"{script} is not executable"
        assert name in readme
        source = script.read_text()
        assert '"kind": "exec"' in source and '"|/usr/local/bin/' in source


# --- the same scripts under Postfix local(8) ---------------------------------------------


def test_examples_work_unchanged_as_local8_alias_commands(env):
    """/etc/aliases "|script DIR" lines, delivered by the real local(8) as
    default_privs: the files are made the same way (the printed output goes
    nowhere there)."""
    user = pwd.getpwnam(EXEC_USER)
    dirs = {}
    for name in ("tickets", "autofiler", "list-unsubscribe"):
        dirs[name] = env.dir / f"local8-{name}"
        dirs[name].mkdir(mode=0o700)
        os.chown(dirs[name], user.pw_uid, user.pw_gid)
    env.start("postfix")
    conf = env.dir / "postfix" / "conf"
    aliases = conf / "aliases"
    aliases.write_text(
        f'tickets: "|{env.bin}/ticket.sh {dirs["tickets"]}"\n'
        f'autofiler: "|{env.bin}/autofiler.py {dirs["autofiler"]}"\n'
        f'list-unsubscribe: "|{env.bin}/unsubscribe.pl {dirs["list-unsubscribe"]}"\n')
    subprocess.run(["postalias", "-c", str(conf), f"hash:{aliases}"], check=True)
    domain = "local.example.test"
    for setting in (f"mydestination = {domain}", f"alias_maps = hash:{aliases}",
                    f"alias_database = hash:{aliases}", f"default_privs = {EXEC_USER}",
                    "local_recipient_maps ="):
        subprocess.run(["postconf", "-c", str(conf), "-e", setting], check=True)
    subprocess.run(["postfix", "-c", str(conf), "reload"], check=True, capture_output=True)
    time.sleep(1)

    def smtp(rcpt, subject):
        msg = (f"From: Judy <judy@example.org>\nTo: {rcpt}\nSubject: {subject}\n"
               f"Message-ID: <{unique()}@example.org>\n\nHello.\n").encode()
        with smtplib.SMTP("127.0.0.1", env.smtp_port, timeout=60) as conn:
            conn.ehlo("client.example.org")
            conn.sendmail("judy@example.org", [rcpt], msg)
        return msg

    sent = [smtp(f"tickets@{domain}", "Printer jam"),
            smtp(f"autofiler+taxes@{domain}", "2024 return"),
            smtp(f"list-unsubscribe@{domain}", "remove me")]
    ticket = dirs["tickets"] / "tickets" / "1.eml"
    unsubscribed = dirs["list-unsubscribe"] / "unsubscribed.txt"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        filed_mail = list((dirs["autofiler"] / "filed").glob("*/*.eml"))
        if ticket.exists() and filed_mail and unsubscribed.exists():
            break
        time.sleep(0.3)
    log = (env.dir / "postfix" / "maillog").read_text(errors="replace")[-3000:]
    assert ticket.exists(), log
    # Postfix adds Received and Date: compare the fields sent and the body.
    def same_mail(saved, msg):
        saved, msg = parse(saved), parse(msg)
        return (saved["Return-Path"] == "<judy@example.org>"
                and all(saved[k] == msg[k] for k in ("From", "To", "Subject", "Message-ID"))
                and text(saved).strip() == text(msg).strip())
    assert same_mail(ticket.read_bytes(), sent[0]) and owned_by_robot_user(ticket)
    assert (dirs["tickets"] / "ticket.counter").read_text() == "1\n"
    assert [p.parent.name for p in filed_mail] == ["taxes"], log
    assert same_mail(filed_mail[0].read_bytes(), sent[1])
    assert unsubscribed.read_text() == "judy@example.org\n", log
