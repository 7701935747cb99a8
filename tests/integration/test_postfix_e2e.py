"""End to end through a real, private Postfix instance (SPEC §3): SMTP ->
Postfix -> pipe(8) -> mailrobot-ingest -> mailrobot-ingestd -> Kafka, read
back with an independent Kafka client and parsed with Python's email
package. Kafka stopped: Postfix keeps the mail (deferred, 4.4.1) until it
comes back. And the /etc/aliases way: local(8) -> "|mailrobot-ingest"."""

import re
import smtplib
import subprocess
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

import pytest

from mailrobot_harness import INGEST, by_queue_id, read_records


@pytest.fixture(scope="module")
def mta(kafka):
    kafka.write_config(ingest_time_limit="3s")
    kafka.start("ingestd")
    kafka.start("postfix")
    return kafka


def postfix_dir(stack):
    return stack.dir / "postfix" / "conf"


def maillog(stack):
    return (stack.dir / "postfix" / "maillog").read_text(errors="replace")


def send(stack, msg: bytes, rcpt, sender="alice@example.org"):
    """Sends one message; returns (queue id, HELO name) from the real SMTP
    dialogue."""
    with smtplib.SMTP("127.0.0.1", stack.smtp_port, timeout=60) as smtp:
        smtp.ehlo("client.example.org")
        code, _ = smtp.mail(sender, ["BODY=8BITMIME"])
        assert code == 250
        code, reply = smtp.rcpt(rcpt)
        assert code == 250, reply
        code, reply = smtp.data(msg)
        assert code == 250, reply
    queue_id = re.search(rb"queued as ([0-9A-Za-z]+)", reply).group(1).decode()
    return queue_id, "client.example.org"


def wait_for_log(stack, pattern, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = re.search(pattern, maillog(stack))
        if m:
            return m
        time.sleep(0.2)
    raise AssertionError(f"no {pattern!r} in the maillog:\n{maillog(stack)[-3000:]}")


def strip_trace_headers(value: bytes) -> bytes:
    """Removes what Postfix prepends (Return-Path from flags=R, Received,
    and for local(8) Delivered-To/X-Original-To), folded lines included."""
    lines = value.split(b"\n")
    i = 1 if lines[0].startswith(b"From ") else 0  # local(8)'s mbox envelope line
    prepended = (b"Return-Path:", b"Received:", b"Delivered-To:", b"X-Original-To:")
    while i < len(lines) and (lines[i].startswith(prepended)
                              or (i > 0 and lines[i][:1] in (b" ", b"\t"))):
        i += 1
    return b"\n".join(lines[i:])


def make_messages():
    plain = EmailMessage(policy=policy.SMTP)
    plain["From"] = "Alice <alice@example.org>"
    plain["To"] = "bot@robots.example.test"
    plain["Subject"] = "plain"
    plain["Message-ID"] = "<plain-1@example.org>"
    plain["Date"] = "Sun, 29 Nov 2026 10:00:00 +0000"
    plain.set_content("Hello robot.\n")

    utf8 = EmailMessage(policy=policy.SMTP)
    utf8["From"] = "Zoë <zoe@example.org>"
    utf8["To"] = "bot@robots.example.test"
    utf8["Subject"] = "Grüße aus Köln – 東京"
    utf8["Message-ID"] = "<utf8-1@example.org>"
    utf8["Date"] = "Sun, 29 Nov 2026 10:00:00 +0000"
    utf8.set_content("Ünïcödé body, 8-bit on the wire.\n", cte="8bit")

    big = EmailMessage(policy=policy.SMTP)
    big["From"] = "alice@example.org"
    big["To"] = "bot@robots.example.test"
    big["Subject"] = "attachment"
    big["Message-ID"] = "<big-1@example.org>"
    big["Date"] = "Sun, 29 Nov 2026 10:00:00 +0000"
    big.set_content("see attachment\n")
    big.add_attachment(bytes(range(256)) * 20000, maintype="application",
                       subtype="octet-stream", filename="blob.bin")
    return {"plain": plain, "utf8": utf8, "big": big}


@pytest.mark.parametrize("name", ["plain", "utf8", "big"])
def test_smtp_message_reaches_kafka_unchanged(mta, name):
    original = make_messages()[name]
    sent = original.as_bytes()
    queue_id, helo = send(mta, sent, "Bot@robots.example.test")
    [rec] = read_records(mta.brokers, where=by_queue_id(queue_id), timeout=90)

    # The bytes: what was sent (SMTP's CRLF as LF, as pipe(8) delivers),
    # after the trace headers Postfix prepends.
    assert strip_trace_headers(rec.value) == sent.replace(b"\r\n", b"\n")
    assert rec.value.startswith(b"Return-Path: <alice@example.org>\n")
    # The envelope, from Postfix's own macros.
    assert rec.h("mr.queue_id") == queue_id
    assert rec.h("mr.sender") == "alice@example.org"
    assert rec.h("mr.recipient") == "Bot@robots.example.test"
    assert rec.h("mr.original_recipient") == "Bot@robots.example.test"
    assert rec.h("mr.client_address") == "127.0.0.1"
    assert rec.h("mr.helo") == helo
    # An independent parser reads the same message out of Kafka.
    parsed = BytesParser(policy=policy.default).parsebytes(rec.value)
    assert parsed["Subject"] == original["Subject"]
    assert parsed["Message-ID"] == original["Message-ID"]
    assert parsed.get_body().get_content() == original.get_body().get_content()
    if name == "big":
        [att] = parsed.iter_attachments()
        assert att.get_content() == bytes(range(256)) * 20000
    assert rec.key == f"bot@robots.example.test {original['Message-ID'][1:-1]}".encode()
    wait_for_log(mta, rf"{queue_id}: to=<Bot@robots.example.test>.*status=sent")


def test_kafka_down_postfix_keeps_the_mail_then_flush_delivers(mta):
    message = make_messages()["plain"]
    message.replace_header("Message-ID", "<while-kafka-down@example.org>")
    mta.stop("kafka")
    try:
        queue_id, _ = send(mta, message.as_bytes(), "bot@robots.example.test")
        line = wait_for_log(mta, rf"{queue_id}: to=<bot@robots.example.test>.*status=deferred"
                                 rf" \((.*)\)").group(1)
        # Postfix takes the leading 4.4.1 as the status and logs the rest.
        assert line.startswith("mailrobot-ingest: Kafka did not"), line
        assert "dsn=4.4.1" in wait_for_log(mta, rf"{queue_id}: .*dsn=4\.4\.1").group(0)
        queue = mta.script("postfix", "queue").stdout
        assert queue_id in queue, queue
        assert "bounced" not in maillog(mta) and "status=bounced" not in maillog(mta)
    finally:
        mta.start("kafka")
    mta.script("postfix", "flush")
    [rec] = read_records(mta.brokers, where=by_queue_id(queue_id), timeout=120)
    assert strip_trace_headers(rec.value) == message.as_bytes().replace(b"\r\n", b"\n")
    wait_for_log(mta, rf"{queue_id}: to=<bot@robots.example.test>.*status=sent")
    deadline = time.monotonic() + 30
    while queue_id in mta.script("postfix", "queue").stdout:
        assert time.monotonic() < deadline, "the delivered mail is still queued"
        time.sleep(0.5)


def test_oversize_mail_bounces_with_534(mta):
    """The one permanent failure: over max_message_bytes (here 64 KiB)."""
    mta.write_config(ingest_time_limit="3s", max_message_bytes="64k")
    try:
        big = b"From: alice@example.org\r\nSubject: too big\r\n\r\n" + b"x" * 70000 + b"\r\n"
        queue_id, _ = send(mta, big, "bot@robots.example.test")
        m = wait_for_log(mta, rf"{queue_id}: to=<bot@robots.example.test>.*status=bounced"
                              rf" \((.*)\)")
        # Postfix takes the leading 5.3.4 as the status and logs the rest.
        assert "dsn=5.3.4" in m.group(0)
        assert m.group(1).startswith("message too big: larger than 65536 bytes"), m.group(0)
    finally:
        mta.write_config(ingest_time_limit="3s")


def test_alias_pipe_through_local8(mta):
    """The classic robot: an /etc/aliases line "|mailrobot-ingest". local(8)
    runs it with the envelope in the environment; the record carries it."""
    conf = postfix_dir(mta)
    aliases = conf / "aliases"
    aliases.write_text(f'bot: "|{INGEST} -C {mta.config}"\n')
    subprocess.run(["postalias", "-c", str(conf), f"hash:{aliases}"], check=True)
    # Commands from a root-owned alias file run as default_privs.
    for setting in ("mydestination = local.example.test",
                    f"alias_maps = hash:{aliases}", f"alias_database = hash:{aliases}",
                    "default_privs = mailrobot"):
        subprocess.run(["postconf", "-c", str(conf), "-e", setting], check=True)
    subprocess.run(["postfix", "-c", str(conf), "reload"], check=True, capture_output=True)
    time.sleep(1)
    msg = make_messages()["plain"]
    msg.replace_header("To", "bot@local.example.test")
    msg.replace_header("Message-ID", "<alias-1@example.org>")
    queue_id, helo = send(mta, msg.as_bytes(), "bot@local.example.test",
                          sender="carol@example.org")
    wait_for_log(mta, rf"{queue_id}: to=<bot@local.example.test>.*relay=local.*status=sent")
    [rec] = read_records(mta.brokers, where=lambda r: r.h("mr.recipient")
                         == "bot@local.example.test", timeout=60)
    assert strip_trace_headers(rec.value) == msg.as_bytes().replace(b"\r\n", b"\n")
    # local(8) gives a command the mbox "From " line and Delivered-To; the
    # ingest keeps the bytes exactly as it got them.
    assert rec.value.startswith(b"From carol@example.org ")
    assert b"\nDelivered-To: bot@local.example.test\n" in rec.value
    assert rec.h("mr.sender") == "carol@example.org"
    assert rec.h("mr.original_recipient") == "bot@local.example.test"
    assert rec.h("mr.client_address") == "127.0.0.1"
    assert rec.h("mr.helo") == helo
